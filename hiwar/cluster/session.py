"""Join a Ray cluster: a running one (address, RAY_ADDRESS, or 'auto') or an embedded local one."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from hiwar.cluster import warm_workers
from hiwar.cluster.config import ClusterConfig
from hiwar.errors import HiwarError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class RaySession:
    """What :func:`connect` joined: the address, whether hiwar started it, and the dashboard URL if any."""

    address: str
    embedded: bool
    dashboard_url: str | None


def resolve_address(config: ClusterConfig) -> str | None:
    """The address to connect to, or None for an embedded cluster. Config wins over ``RAY_ADDRESS``."""
    address = config.address or os.environ.get("RAY_ADDRESS") or None
    if address in (None, "", "local"):
        return None
    return address


def connect(config: ClusterConfig | None = None, warm: int = 0) -> RaySession:
    """Initialise Ray once per process and describe the session.

    An already-initialised Ray (a test fixture, a Ray job's driver) is reused as it is. ``warm``: model actors the
    caller will start first; that many warm workers are prestarted now (:mod:`hiwar.cluster.warm_workers`), so
    their imports overlap with the caller's own work until then.

    Raises:
        HiwarError: the given address cannot be reached.
    """
    import ray

    config = config or ClusterConfig()
    if ray.is_initialized():
        warm_workers.ensure(warm)
        return _describe(embedded=False)
    address = resolve_address(config)
    if address is None:
        try:
            context = _init_embedded(ray, config)
        except ValueError as err:  # Ray's "Failed to bind to 127.0.0.1:8265 because it's already occupied..."
            if "occupied" not in str(err):
                raise
            raise HiwarError(
                f"cluster.dashboard_port={config.dashboard_port}: {str(err).split('. ')[0]} "
                "(leave it unset to take the next free port)"
            ) from err
        session = _describe(embedded=True, context=context)
    else:
        wait_reachable(address, config.connect_timeout_s, "cluster.address" if config.address else "RAY_ADDRESS")
        try:
            context = ray.init(address=address, namespace=config.namespace, log_to_driver=config.log_to_driver)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise HiwarError(f"cluster.address={address!r}: cannot connect to Ray ({err})") from err
        session = _describe(embedded=False, context=context)
    log.info("Ray at %s; dashboard: %s", session.address, session.dashboard_url or "off")
    warm_workers.ensure(warm)
    return session


def _init_embedded(ray: Any, config: ClusterConfig) -> Any:
    """Start an embedded Ray; the dashboard binds to loopback unless the config says otherwise (an open
    dashboard runs arbitrary jobs). No ``dashboard_port``: Ray takes 8265 or the next free port, so a second
    cluster on the same machine (another user's, a test's) does not stop this one."""
    return ray.init(
        num_cpus=config.num_cpus,
        num_gpus=config.num_gpus,
        include_dashboard=config.include_dashboard,
        dashboard_host=config.dashboard_host,
        dashboard_port=config.dashboard_port,
        namespace=config.namespace,
        object_store_memory=config.object_store_memory,
        log_to_driver=config.log_to_driver,
    )


def _host_port(address: str) -> tuple[str, int] | None:
    """The ``(host, port)`` Ray would dial for ``address`` ('auto': the cluster `ray start` recorded), or None
    when there is none to probe (Ray then reports the problem itself, at once)."""
    target = address.removeprefix("ray://")
    if target == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address

            target = canonicalize_bootstrap_address("auto") or ""
        except Exception:  # noqa: BLE001 - no recorded cluster: ray.init says so without waiting
            return None
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def wait_reachable(
    address: str, timeout_s: float, key: str = "cluster.address", timeout_key: str = "cluster.connect_timeout_s"
) -> None:
    """Wait until something answers at ``address``'s host and port, for at most ``timeout_s`` seconds.

    Ray's own connect loop has no deadline: an address where nothing listens hangs ``ray.init`` for good. A
    cluster that is still starting gets the whole wait.

    Raises:
        HiwarError: nothing answered in time; the line names the address and the timeout's config key.
    """
    import socket
    import time

    target = _host_port(address)
    if target is None:
        return
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            with socket.create_connection(target, timeout=max(0.05, min(left, 5.0))):
                return
        except OSError as err:
            reason = err.strerror or type(err).__name__
        if time.monotonic() + 0.5 > deadline:
            raise HiwarError(
                f"{key}={address!r}: no Ray cluster answered at {target[0]}:{target[1]} within {timeout_s:g} s "
                f"({reason}); start it (`ray start --head`) or fix the address ({timeout_key} sets the wait)"
            )
        time.sleep(0.5)


def _describe(embedded: bool, context: object | None = None) -> RaySession:
    import ray

    url = getattr(context, "dashboard_url", None) or _dashboard_from_node()
    address = (getattr(context, "address_info", None) or {}).get("address") or ray.get_runtime_context().gcs_address
    if url and not url.startswith("http"):
        url = f"http://{url}"
    return RaySession(address=address, embedded=embedded, dashboard_url=url or None)


def _dashboard_from_node() -> str | None:
    """The dashboard address of the cluster this process joined (Ray keeps it on the driver's node object)."""
    try:
        from ray._private.worker import global_worker

        return getattr(global_worker.node, "webui_url", None) or None
    except Exception:  # noqa: BLE001 - the dashboard is optional, never a reason to fail
        return None


def shutdown(session: RaySession) -> None:
    """Stop Ray if hiwar started it; leave shared clusters running."""
    import ray

    if session.embedded and ray.is_initialized():
        ray.shutdown()


def connect_during(config: ClusterConfig | None, work: Callable[[], T], warm: int = 0) -> tuple[RaySession, T]:
    """:func:`connect` while ``work`` (the command's own preparation) runs in a thread; the session and its result.

    Starting an embedded Ray is mostly waiting for its processes, and a command's preparation (preflight, loading
    tokenizers and configs) is one thread importing torch and transformers: side by side they take the longer of
    the two, not the sum (``hiwar train`` asks for its workers 3-3.5 s sooner on 2 cores, docs/generation.md "Actor
    start-up"). Checks
    that cost nothing (config, paths) belong before this call, so that a typo still costs no Ray start.

    Raises:
        Whatever ``work`` raised (after shutting down the session it started); else what :func:`connect` raised.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare") as pool:
        prepared = pool.submit(work)
        # Ray starts in this (the main) thread: ray.init installs signal handlers, which only the main thread may.
        try:
            session = connect(config, warm=warm)
        except BaseException:
            prepared.result()  # the preparation's error first: it is what the serial order reported
            raise
        try:
            return session, prepared.result()
        except BaseException:
            shutdown(session)
            raise
