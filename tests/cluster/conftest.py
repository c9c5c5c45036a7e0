"""A real `ray start --head` on 127.0.0.1, shared by the job-submission and connection tests.

Every port is picked free, so the head never collides with another Ray on this machine, and teardown ends only
the processes this fixture started (never `ray stop`, which would stop every Ray of this user).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# A value only the cluster knows: the job-submission test checks the job can read it without it being sent.
CLUSTER_SECRET = "set-on-the-cluster"


@dataclass
class RayHead:
    """A running head node: its GCS address, job server URL and temp dir."""

    gcs_address: str
    dashboard_url: str
    temp_dir: Path
    secret: str = CLUSTER_SECRET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_command(temp_dir: Path, gcs_port: int, dashboard_port: int) -> list[str]:
    ports = {
        "port": gcs_port,
        "dashboard-port": dashboard_port,
        "ray-client-server-port": free_port(),
        "dashboard-agent-listen-port": free_port(),
        "dashboard-agent-grpc-port": free_port(),
        "metrics-export-port": free_port(),
        "runtime-env-agent-port": free_port(),
        "node-manager-port": free_port(),
        "object-manager-port": free_port(),
    }
    return [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        "--include-dashboard=true",
        "--num-cpus=2",
        "--disable-usage-stats",
        "--include-log-monitor=false",  # one process less on a 2-core machine; job logs do not need it
        f"--temp-dir={temp_dir}",
        *(f"--{name}={port}" for name, port in ports.items()),
    ]


def _wait_until_started(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    """Wait for `ray start` to report the node started (the job server can answer before the raylet has
    registered, and `ray start` then tears everything down), then for the job server."""
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + timeout_s
    while True:
        text = log.read_text(errors="replace")
        if proc.poll() is not None or "timed out during startup" in text:
            raise RuntimeError(f"ray start failed ({proc.poll()}):\n{text[-3000:]}")
        if "Ray runtime started" in text:
            try:
                JobSubmissionClient(url)
                return
            except Exception:  # noqa: BLE001 - not up yet
                pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"ray start not ready after {timeout_s:.0f} s:\n{text[-3000:]}")
        time.sleep(0.5)


def _stop(proc: subprocess.Popen, temp_dir: Path) -> None:
    """End the `ray start` process and every process of this head (found by its temp dir), by pid."""
    import psutil

    procs = {psutil.Process(proc.pid)} if proc.poll() is None else set()
    with_children = set(procs)
    for parent in procs:
        with_children.update(parent.children(recursive=True))
    for candidate in psutil.process_iter(["cmdline"]):
        if any(str(temp_dir) in arg for arg in candidate.info["cmdline"] or ()):
            with_children.add(candidate)
    for victim in with_children:
        try:
            victim.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(list(with_children), timeout=5)
    for victim in alive:
        try:
            victim.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """Start a 2-CPU Ray head on loopback with its job server; stop exactly its processes afterwards."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    # Jobs run with the cluster's environment: this venv's python first, and a secret only the cluster holds.
    # Token auth off: Ray 2.60 turns it on whenever ~/.ray/auth_token exists, and whether this test process
    # sends the token depends on whether another test ran ray.init first. The head listens on loopback only.
    env.update(RAY_AUTH_MODE="disabled")
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", HF_TOKEN=CLUSTER_SECRET)
    for attempt in (1, 2, 3):
        # Short path: Ray's unix sockets live under the temp dir and their paths are limited to ~107 bytes.
        temp_dir = Path(tempfile.mkdtemp(prefix="hwray", dir="/tmp"))
        gcs_port, dashboard_port = free_port(), free_port()
        url = f"http://127.0.0.1:{dashboard_port}"
        with open(temp_dir / "ray-start.log", "w") as log:
            proc = subprocess.Popen(
                _start_command(temp_dir, gcs_port, dashboard_port),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            _wait_until_started(url, proc, temp_dir / "ray-start.log")
        except Exception:
            _stop(proc, temp_dir)
            shutil.rmtree(temp_dir, ignore_errors=True)
            if attempt == 3:
                raise
            continue  # Ray gives the raylet a fixed 30 s to register; an overloaded machine can miss it
        try:
            yield RayHead(gcs_address=f"127.0.0.1:{gcs_port}", dashboard_url=url, temp_dir=temp_dir)
        finally:
            _stop(proc, temp_dir)
            shutil.rmtree(temp_dir, ignore_errors=True)
        return
