"""Join a Ray cluster: a running one (address, RAY_ADDRESS, or 'auto') or an embedded local one."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from hiwar.cluster.config import ClusterConfig
from hiwar.errors import HiwarError

log = logging.getLogger(__name__)


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


def connect(config: ClusterConfig | None = None) -> RaySession:
    """Initialise Ray once per process and describe the session.

    An already-initialised Ray (a test fixture, a Ray job's driver) is reused as it is.

    Raises:
        HiwarError: the given address cannot be reached.
    """
    import ray

    config = config or ClusterConfig()
    if ray.is_initialized():
        return _describe(embedded=False)
    address = resolve_address(config)
    if address is None:
        # The dashboard binds to loopback unless the config says otherwise: an open dashboard runs arbitrary jobs.
        context = ray.init(
            num_cpus=config.num_cpus,
            num_gpus=config.num_gpus,
            include_dashboard=config.include_dashboard,
            dashboard_host=config.dashboard_host,
            dashboard_port=config.dashboard_port,
            namespace=config.namespace,
            object_store_memory=config.object_store_memory,
            log_to_driver=config.log_to_driver,
        )
        session = _describe(embedded=True, context=context)
    else:
        try:
            context = ray.init(address=address, namespace=config.namespace, log_to_driver=config.log_to_driver)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise HiwarError(f"cluster.address={address!r}: cannot connect to Ray ({err})") from err
        session = _describe(embedded=False, context=context)
    log.info("Ray at %s; dashboard: %s", session.address, session.dashboard_url or "off")
    return session


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
