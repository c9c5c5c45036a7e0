"""The ``cluster`` config section: where Ray runs and how this process joins it."""

from __future__ import annotations

from pydantic import Field

from hiwar.section import Section


class ClusterConfig(Section):
    """Where Ray runs. With no ``address`` (and no ``RAY_ADDRESS``), hiwar starts an embedded local Ray."""

    address: str | None = Field(
        None,
        description="Ray address: 'auto' (a cluster started with `ray start`), 'ray://host:10001', "
        "'host:6379', or 'local' to force an embedded cluster. Unset: RAY_ADDRESS, else embedded.",
    )
    connect_timeout_s: float = Field(
        30.0,
        gt=0,
        description="Seconds to wait for the Ray cluster at 'address' to answer before giving up (Ray itself "
        "would retry for good).",
    )
    num_cpus: int | None = Field(None, ge=1, description="Logical CPUs of an embedded cluster (default: all).")
    num_gpus: int | None = Field(None, ge=0, description="GPUs of an embedded cluster (default: detected).")
    include_dashboard: bool = Field(True, description="Start the Ray dashboard with an embedded cluster.")
    dashboard_host: str = Field("127.0.0.1", description="Dashboard bind address; 0.0.0.0 exposes it.")
    dashboard_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Dashboard port of an embedded cluster (default: 8265, or the next free one when another Ray "
        "holds it; a port given here must be free).",
    )
    namespace: str = Field("hiwar", description="Ray namespace for hiwar's named actors and jobs.")
    object_store_memory: int | None = Field(None, ge=78_643_200, description="Bytes for an embedded cluster.")
    log_to_driver: bool = Field(True, description="Forward worker logs to this process.")
