"""hiwar.cluster.session.connect joins a running `ray start --head` cluster by address and runs tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# A fresh interpreter: this test process may already hold the session-wide local Ray of tests/conftest.py.
CONNECT = """
import json, sys
import ray
from hiwar.cluster.config import ClusterConfig
from hiwar.cluster.session import connect, shutdown

session = connect(ClusterConfig(address=sys.argv[1], log_to_driver=False))
square = ray.remote(lambda x: x * x)
nodes = [n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]]
print(json.dumps({"address": session.address, "embedded": session.embedded, "squares": ray.get(
    [square.remote(i) for i in range(5)]), "cpus": ray.cluster_resources().get("CPU"), "nodes": nodes}))
shutdown(session)
print(json.dumps({"still_initialized": ray.is_initialized()}))
"""


@pytest.mark.ray
def test_connect_joins_a_running_cluster(ray_head) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    env["RAY_AUTH_MODE"] = "disabled"  # as the head was started
    done = subprocess.run(
        [sys.executable, "-c", CONNECT, ray_head.gcs_address],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    joined, after = lines
    # Ray reports the GCS under the node's own IP; the port identifies the head this test started.
    assert joined["address"].rsplit(":", 1)[1] == ray_head.gcs_address.rsplit(":", 1)[1]
    assert joined["embedded"] is False
    assert joined["squares"] == [0, 1, 4, 9, 16]
    assert joined["cpus"] == 2.0 and len(joined["nodes"]) == 1
    # hiwar did not start this cluster, so shutdown() leaves the connection as it is.
    assert after == {"still_initialized": True}


# 8265 held by someone else (another Ray's dashboard): the default takes the next free port; a port the config
# names must be free, else one line.
BUSY_DASHBOARD = """
import json, socket, sys
import ray
from hiwar.cluster.config import ClusterConfig
from hiwar.cluster.session import connect, shutdown
from hiwar.errors import HiwarError

holders = []
for port in (8265, int(sys.argv[1])):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        holders.append(sock)
    except OSError:  # already held by another process: busy either way
        pass
try:
    connect(ClusterConfig(dashboard_port=int(sys.argv[1]), num_cpus=1, log_to_driver=False))
    named = "started"
except HiwarError as err:
    named = str(err)
ray.shutdown()
session = connect(ClusterConfig(num_cpus=1, log_to_driver=False))
print(json.dumps({"named": named, "url": session.dashboard_url, "embedded": session.embedded}))
shutdown(session)
"""


@pytest.mark.ray
def test_dashboard_port_taken_by_another_ray(tmp_path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    done = subprocess.run(
        [sys.executable, "-c", BUSY_DASHBOARD, str(port)], capture_output=True, text=True, env=env, timeout=240
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["named"].startswith(f"cluster.dashboard_port={port}: Failed to bind to 127.0.0.1:{port}")
    assert "\n" not in result["named"] and "leave it unset" in result["named"]
    assert result["embedded"] is True
    assert result["url"] and result["url"].startswith("http://127.0.0.1:") and not result["url"].endswith(":8265")
