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


class _Recorder:
    """Stand-ins for connect/shutdown: connect waits (in the main thread) until the work has started, so the test
    fails by timing out if the two ran one after the other."""

    def __init__(self, connect_error: Exception | None = None) -> None:
        import threading

        self.work_started = threading.Event()
        self.connect_error = connect_error
        self.calls: list[tuple] = []

    def connect(self, config, warm=0):
        import threading

        self.calls.append(("connect", threading.current_thread().name, warm))
        assert self.work_started.wait(10), "the work did not run while Ray was starting"
        if self.connect_error:
            raise self.connect_error
        return "session"

    def shutdown(self, session) -> None:
        self.calls.append(("shutdown", session))

    def work(self, result: object = None, error: Exception | None = None):
        def run():
            import threading

            self.calls.append(("work", threading.current_thread().name))
            self.work_started.set()
            if error:
                raise error
            return result

        return run


def _patched(monkeypatch: pytest.MonkeyPatch, recorder: _Recorder):
    import hiwar.cluster.session as session

    monkeypatch.setattr(session, "connect", recorder.connect)
    monkeypatch.setattr(session, "shutdown", recorder.shutdown)
    return session.connect_during


def test_connect_during_runs_the_work_beside_ray_start(monkeypatch) -> None:
    rec = _Recorder()
    assert _patched(monkeypatch, rec)(None, rec.work([1, 2]), warm=3) == ("session", [1, 2])
    assert ("connect", "MainThread", 3) in rec.calls  # ray.init installs signal handlers: main thread only
    [work] = [c for c in rec.calls if c[0] == "work"]
    assert work[1].startswith("prepare")
    assert not [c for c in rec.calls if c[0] == "shutdown"]


def test_connect_during_stops_the_session_when_the_work_fails(monkeypatch) -> None:
    rec = _Recorder()
    with pytest.raises(ValueError, match="bad tokenizer"):
        _patched(monkeypatch, rec)(None, rec.work(error=ValueError("bad tokenizer")))
    assert ("shutdown", "session") in rec.calls


def test_connect_during_reports_the_work_error_before_the_cluster_error(monkeypatch) -> None:
    from hiwar.errors import HiwarError

    rec = _Recorder(connect_error=HiwarError("cluster.address='x:1': no Ray cluster answered"))
    with pytest.raises(ValueError, match="bad tokenizer"):
        _patched(monkeypatch, rec)(None, rec.work(error=ValueError("bad tokenizer")))
    rec = _Recorder(connect_error=HiwarError("cluster.address='x:1': no Ray cluster answered"))
    with pytest.raises(HiwarError, match="no Ray cluster answered"):
        _patched(monkeypatch, rec)(None, rec.work("fine"))
    assert not [c for c in rec.calls if c[0] == "shutdown"]  # nothing was started
