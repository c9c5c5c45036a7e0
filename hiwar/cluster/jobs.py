"""Ray job submission for hiwar: submit any hiwar command to a cluster's job server, then list, inspect, tail
and stop jobs. The CLI (``hiwar submit``, ``hiwar jobs ...``) is a thin layer over these functions.

The job server is the Ray dashboard's HTTP address (``http://<head>:8265``). Reach a remote one through an SSH
tunnel or ``kubectl port-forward`` rather than an open port: whoever reaches it can run code on the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hiwar.cluster.job_spec import JobSpec, build_job_spec, check_command
from hiwar.errors import HiwarError, require

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
# Ray's client lets these variables override an explicit address; hiwar's --address must win.
_ADDRESS_VARIABLES = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")

Echo = Callable[[str], None]


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


@dataclass
class SubmitResult:
    """A submitted job: its id, the job server, its last seen status, and the exit code for hiwar."""

    job_id: str
    address: str
    status: str
    exit_code: int
    spec: JobSpec


def resolve_job_address(address: str | None = None) -> str:
    """The job server URL: ``address``, else ``RAY_ADDRESS`` if it is an HTTP address, else the local one."""
    if address:
        if not address.startswith(("http://", "https://")):
            raise HiwarError(
                f"--address {address}: give the job server's HTTP address (the dashboard), e.g. {DEFAULT_ADDRESS}"
            )
        return address.rstrip("/")
    env = os.environ.get("RAY_ADDRESS", "")
    return env.rstrip("/") if env.startswith(("http://", "https://")) else DEFAULT_ADDRESS


@contextlib.contextmanager
def _without_address_variables() -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in _ADDRESS_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def job_client(address: str | None = None) -> Any:
    """A ``JobSubmissionClient`` for the job server, or a one-line HiwarError if nothing answers there."""
    module = require("ray.job_submission", "pip install 'ray[default]'", "Ray job submission")
    url = resolve_job_address(address)
    with _without_address_variables():
        try:
            return module.JobSubmissionClient(url)
        except Exception as err:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError or requests errors
            if "Authentication" in type(err).__name__ or "Authentication" in str(err):
                raise HiwarError(
                    f"--address {url}: the job server wants a Ray auth token; export RAY_AUTH_MODE=token and "
                    "the cluster's token as RAY_AUTH_TOKEN or in ~/.ray/auth_token (docs/scale-out.md)"
                ) from err
            raise HiwarError(
                f"--address {url}: no Ray job server answers there ({type(err).__name__}); start "
                "one with `ray start --head --dashboard-host=127.0.0.1` or open a tunnel to it "
                "(docs/scale-out.md)"
            ) from err


def _call(what: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a client call, turning Ray's RuntimeError (unknown job, refused spec) into one line."""
    try:
        return func(*args, **kwargs)
    except (RuntimeError, ValueError, TypeError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise HiwarError(f"{what}: {first}") from err


def new_submission_id(command: str) -> str:
    """A readable, unique id: ``hiwar-<command>-<UTC time>-<random>``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"hiwar-{command}-{stamp}-{secrets.token_hex(3)}"


def run_submit(
    command: Sequence[str],
    *,
    address: str | None = None,
    working_dir: str | Path | None = None,
    pip: Sequence[str] = (),
    requirements: str | Path | None = None,
    image: str | None = None,
    env_names: Sequence[str] = (),
    excludes: Sequence[str] = (),
    python: str = "python",
    follow: bool = False,
    no_wait: bool = False,
    echo: Echo = _stdout,
    parser: Any = None,
) -> SubmitResult:
    """Submit a hiwar command as a Ray job.

    ``parser`` (``hiwar submit`` passes its own click group) parses the command first, so a typo stops here with
    one line instead of failing on the cluster.

    By default it waits until the job has left PENDING (so a failing runtime_env shows at once); ``no_wait``
    returns right after submitting; ``follow`` streams the logs until the job ends. The exit code is 0 unless
    the job is known to have failed or been stopped (with ``follow``: 0 only for SUCCEEDED).
    """
    if parser is not None:
        check_command(command, parser)
    spec = build_job_spec(
        command,
        working_dir=working_dir,
        pip=pip,
        requirements=requirements,
        image=image,
        env_names=env_names,
        excludes=excludes,
        python=python,
    )
    for note in spec.notes:
        echo(note + "\n")
    client = job_client(address)
    url = resolve_job_address(address)
    job_id = _call(f"submit to {url}", submit_spec, client, spec)
    echo(f"submitted {job_id} to {url}\n  entrypoint: {spec.entrypoint}\n")
    if no_wait:
        status = "PENDING"
    elif follow:
        status = follow_job(client, job_id, echo)
    else:
        status = wait_for(client, job_id, until_started=True)
        echo(f"{job_id}: {status}; follow with: hiwar jobs logs {job_id} --address {url} --follow\n")
    failed = status in ("FAILED", "STOPPED")
    exit_code = (0 if status == "SUCCEEDED" else 1) if follow else int(failed)
    return SubmitResult(job_id=job_id, address=url, status=status, exit_code=exit_code, spec=spec)


def submit_spec(client: Any, spec: JobSpec, retry_s: float = 90) -> str:
    """Submit ``spec`` under a fresh id, retrying while a just-started or busy job server cannot take it.

    Retries reuse the id, so a submission that did land but whose answer was lost is found, not duplicated.
    """
    job_id = new_submission_id(spec.command[0])
    deadline = time.monotonic() + retry_s
    retried = False
    while True:
        try:
            return client.submit_job(
                entrypoint=spec.entrypoint,
                runtime_env=spec.runtime_env,
                metadata=spec.metadata,
                submission_id=job_id,
            )
        except (RuntimeError, ConnectionError, OSError) as err:
            # Ray answers 500 "No available agent to submit job" until the head's dashboard agent is up; an
            # overloaded dashboard may drop the connection (requests' ConnectionError is an OSError).
            retry = "No available agent" in str(err) or isinstance(err, (ConnectionError, OSError))
            if retried and "already exists" in str(err):
                return job_id
            if not retry or time.monotonic() > deadline:
                raise
            retried = True
            time.sleep(1.0)


def wait_for(
    client: Any, job_id: str, until_started: bool = False, poll_s: float = 0.5, timeout_s: float | None = None
) -> str:
    """Poll a job until it ends (or, with ``until_started``, leaves PENDING); return its status name."""
    start = time.monotonic()
    while True:
        status = str(_call(f"job {job_id}", client.get_job_status, job_id).value)
        if status not in ("PENDING", "RUNNING") or (until_started and status != "PENDING"):
            return status
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            return status
        time.sleep(poll_s)


def follow_job(client: Any, job_id: str, echo: Echo = _stdout) -> str:
    """Stream a job's logs until it ends; return its final status name."""

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            echo(chunk)

    try:
        asyncio.run(tail())
    except RuntimeError as err:  # the log socket can close before the end; the status below still tells
        echo(f"(log stream closed: {err})\n")
    status = wait_for(client, job_id)
    echo(f"{job_id}: {status}\n")
    return status


def run_jobs_list(address: str | None = None) -> list[Any]:
    """All jobs the cluster knows, newest first (``JobDetails`` objects)."""
    client = job_client(address)
    jobs = _call("list jobs", client.list_jobs)
    return sorted(jobs, key=lambda job: job.start_time or 0, reverse=True)


def check_job_id(job_id: str) -> str:
    """``job_id`` if it can name a job; the job server reads an empty or path-like id as another request.

    Raises:
        HiwarError: an empty id, or one with spaces, ``/``, ``?`` or ``#``.
    """
    if not job_id.strip():
        raise HiwarError("job id '': give a job id (`hiwar jobs list` shows them)")
    if any(c.isspace() or c in "/?#" for c in job_id):
        raise HiwarError(f"job id {job_id!r}: not a job id (no spaces, '/', '?' or '#'); `hiwar jobs list` shows them")
    return job_id


def run_jobs_status(job_id: str, address: str | None = None) -> Any:
    """One job's ``JobDetails`` (status, message, entrypoint, times)."""
    check_job_id(job_id)
    return _call(f"job {job_id}", job_client(address).get_job_info, job_id)


def run_jobs_logs(job_id: str, address: str | None = None, follow: bool = False, echo: Echo = _stdout) -> str:
    """Print a job's logs (all so far, or followed until it ends); return the logs or the final status."""
    check_job_id(job_id)
    client = job_client(address)
    if follow:
        return follow_job(client, job_id, echo)
    logs = _call(f"job {job_id}", client.get_job_logs, job_id)
    echo(logs)
    return logs


def run_jobs_stop(job_id: str, address: str | None = None, wait: bool = True) -> str:
    """Ask a job to stop; with ``wait``, return its status once it has ended."""
    check_job_id(job_id)
    client = job_client(address)
    _call(f"job {job_id}", client.stop_job, job_id)
    return wait_for(client, job_id, timeout_s=60) if wait else "STOPPING"


def _when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def format_jobs(jobs: Sequence[Any], width: int = 60) -> str:
    """A plain table of jobs: id, status, start time (UTC), entrypoint."""
    rows = [("JOB", "STATUS", "STARTED (UTC)", "ENTRYPOINT")]
    for job in jobs:
        entry = job.entrypoint if len(job.entrypoint) <= width else job.entrypoint[: width - 3] + "..."
        rows.append((job.submission_id or job.job_id or "-", str(job.status.value), _when(job.start_time), entry))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3] for row in rows]
    return "\n".join(lines) + "\n"


def format_job(job: Any) -> str:
    """A job's details, one field a line."""
    fields = [
        ("job", job.submission_id or job.job_id),
        ("status", str(job.status.value)),
        ("message", job.message or ""),
        ("entrypoint", job.entrypoint),
        ("started", _when(job.start_time)),
        ("ended", _when(job.end_time)),
    ]
    return "\n".join(f"{name}: {value}" for name, value in fields) + "\n"
