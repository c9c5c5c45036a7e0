"""hiwar's maintained cluster templates (hiwar/cluster/templates): read them; check that a run config fits.

Print one to start from::

    python -m hiwar.cluster.cluster_templates aws > cluster.yaml
    python -m hiwar.cluster.cluster_templates rayjob --config configs/paper-gpu.yaml > rayjob.yaml
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from hiwar.errors import HiwarError

TEMPLATES = {
    "aws": "aws.yaml",
    "gcp": "gcp.yaml",
    "raycluster": "raycluster.yaml",
    "rayjob": "rayjob.yaml",
    "dockerfile": "Dockerfile",
}
# GKE's GPU node label -> the accelerator type Ray detects on such a node.
GKE_ACCELERATORS = {
    "nvidia-l4": "L4",
    "nvidia-a100-80gb": "A100",
    "nvidia-tesla-a100": "A100",
    "nvidia-h100-80gb": "H100",
}
HIWAR_CALL = re.compile(r"(?:^|[\s;&|(])hiwar\s+([a-z][a-z0-9-]*)")


@dataclass(frozen=True)
class NodeGroup:
    """One worker node type of a template: what each node offers and how many the autoscaler may start."""

    name: str
    cpus: float
    gpus: int
    accelerator: str | None
    min_workers: int
    max_workers: int


def template_text(name: str) -> str:
    """The text of template ``name`` (see ``TEMPLATES``), from the installed package."""
    if name not in TEMPLATES:
        raise HiwarError(f"template {name!r}: unknown; choose one of {', '.join(TEMPLATES)}")
    return resources.files("hiwar.cluster").joinpath("templates", TEMPLATES[name]).read_text(encoding="utf-8")


def load_template(name: str) -> list[dict[str, Any]]:
    """The YAML documents of a template."""
    return [doc for doc in yaml.safe_load_all(template_text(name)) if doc]


def node_groups(name: str) -> list[NodeGroup]:
    """The worker node types of a launcher template (aws, gcp) or a KubeRay RayCluster (raycluster)."""
    docs = load_template(name)
    if name in ("aws", "gcp"):
        return [
            _launcher_group(key, spec)
            for key, spec in docs[0]["available_node_types"].items()
            if key != docs[0]["head_node_type"]
        ]
    cluster = next(doc for doc in docs if doc.get("kind") == "RayCluster")
    return [_kuberay_group(group) for group in cluster["spec"]["workerGroupSpecs"]]


def _launcher_group(key: str, spec: dict[str, Any]) -> NodeGroup:
    res = spec.get("resources", {})
    accelerator = next((k.split(":", 1)[1] for k in res if k.startswith("accelerator_type:")), None)
    return NodeGroup(
        key,
        float(res.get("CPU", 0)),
        int(res.get("GPU", 0)),
        accelerator,
        int(spec.get("min_workers", 0)),
        int(spec.get("max_workers", 0)),
    )


def _kuberay_group(group: dict[str, Any]) -> NodeGroup:
    pod = group["template"]["spec"]
    limits = pod["containers"][0]["resources"]["limits"]
    label = pod.get("nodeSelector", {}).get("cloud.google.com/gke-accelerator")
    return NodeGroup(
        group["groupName"],
        float(limits.get("cpu", 0)),
        int(limits.get("nvidia.com/gpu", 0)),
        GKE_ACCELERATORS.get(label) if label else None,
        int(group.get("minReplicas", 0)),
        int(group.get("maxReplicas", 0)),
    )


def hiwar_commands(name: str) -> list[str]:
    """The hiwar subcommands a template runs (setup checks, job entrypoints), in order of appearance."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            found.extend(HIWAR_CALL.findall(node))

    for doc in load_template(name):
        if doc.get("kind") != "ConfigMap":  # a config file is data, not commands
            walk(doc)
    return found


def render_rayjob(config_path: str | Path) -> str:
    """rayjob.yaml with its ConfigMap holding the text of ``config_path`` (checked to load first)."""
    from hiwar.config import load_config

    load_config(config_path, [])
    docs = load_template("rayjob")
    config_map = next(doc for doc in docs if doc.get("kind") == "ConfigMap")
    key = next(iter(config_map["data"]))
    config_map["data"][key] = Path(config_path).read_text(encoding="utf-8")
    head = template_text("rayjob").split("apiVersion:", 1)[0]  # keep the usage comment
    return head + yaml.dump_all(docs, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True)


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (the embedded config) as readable ``|`` blocks."""


def _str_block(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_BlockDumper.add_representer(str, _str_block)


def _capacity(groups: Sequence[NodeGroup], gpus: float, cpus: float, accelerator: str | None) -> int:
    """How many units (each ``gpus`` GPUs and ``cpus`` CPUs on one node) the groups hold at full scale."""
    total = 0
    for group in groups:
        if accelerator and group.accelerator != accelerator:
            continue
        per_node = group.gpus // math.ceil(gpus) if gpus else math.inf
        if cpus:
            per_node = min(per_node, int(group.cpus // cpus))
        total += 0 if per_node == math.inf else int(per_node) * group.max_workers
    return total


def fit_problems(config: Any, groups: Sequence[NodeGroup], where: str = "template") -> list[str]:
    """Where a run config asks for more than the node groups offer (empty list: it fits).

    Generation: each engine needs its GPUs (``EngineConfig.gpus_per_actor``: tensor_parallel_size x
    pipeline_parallel_size for vLLM) on one node; ``actors`` engines must fit at the groups' max_workers.
    Training: ``num_workers`` workers with their ``resources_per_worker``, for every model (with its overrides).
    """
    problems = []
    gen = config.generation
    gen_gpus = gen.gpus_per_actor()
    if gen_gpus:
        room = _capacity(groups, gen_gpus, gen.num_cpus, gen.accelerator_type)
        if room < gen.actors:
            problems.append(
                f"{where}: generation asks for {gen.actors} engine(s) of {gen_gpus:g} GPU(s) "
                f"(accelerator {gen.accelerator_type or 'any'}); the node groups hold {room}"
            )
    training = config.training
    for spec, settings in [(s, training.for_model(s)) for s in training.models] or [(None, training)]:
        if not settings.use_gpu:
            continue
        per_worker = settings.resources_per_worker
        room = _capacity(groups, per_worker.get("GPU", 1.0), per_worker.get("CPU", 0.0), settings.accelerator_type)
        if room < settings.num_workers:
            name = spec.name if spec else "training"
            problems.append(
                f"{where}: {name} asks for {settings.num_workers} worker(s) of {per_worker} "
                f"(accelerator {settings.accelerator_type or 'any'}); the node groups hold {room}"
            )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Print a template (``rayjob`` filled with ``--config``)."""
    parser = argparse.ArgumentParser(prog="python -m hiwar.cluster.cluster_templates", description=__doc__)
    parser.add_argument("name", choices=sorted(TEMPLATES))
    parser.add_argument("--config", help="rayjob: the run config to put in its ConfigMap")
    args = parser.parse_args(argv)
    try:
        text = render_rayjob(args.config) if args.name == "rayjob" and args.config else template_text(args.name)
    except HiwarError as err:
        print(f"Error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
