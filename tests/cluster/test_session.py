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
