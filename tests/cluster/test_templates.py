"""Cluster templates parse, run real hiwar commands, keep the dashboard private and fit the paper config."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from hiwar.cli import cli
from hiwar.cluster.cluster_templates import (
    TEMPLATES,
    fit_problems,
    hiwar_commands,
    load_template,
    main,
    node_groups,
    render_rayjob,
    template_text,
)
from hiwar.config import load_config

REPO = Path(__file__).resolve().parents[2]
PAPER = REPO / "configs" / "paper-gpu.yaml"
CLUSTERS = ("aws", "gcp", "raycluster")


@pytest.fixture(scope="module")
def paper():
    return load_config(PAPER, [])


# Each YAML template: the documents it holds, as (kind, metadata.name) for Kubernetes or (provider, cluster_name)
# for Ray's cluster launcher.
EXPECTED_DOCUMENTS = {
    "aws": [("aws", "hiwar")],
    "gcp": [("gcp", "hiwar")],
    "raycluster": [("PersistentVolumeClaim", "hiwar-shared"), ("RayCluster", "hiwar")],
    "rayjob": [("ConfigMap", "hiwar-config"), ("RayJob", "hiwar-paper")],
}


@pytest.mark.parametrize("name", sorted(set(TEMPLATES) - {"dockerfile"}))
def test_templates_parse_into_the_expected_documents(name: str) -> None:
    docs = [doc for doc in yaml.safe_load_all(template_text(name)) if doc is not None]
    found = [
        (doc["kind"], doc["metadata"]["name"]) if "kind" in doc else (doc["provider"]["type"], doc["cluster_name"])
        for doc in docs
    ]
    assert found == EXPECTED_DOCUMENTS[name]
    if "kind" not in docs[0]:  # the launcher starts a head whose dashboard stays on loopback
        head = " ".join(docs[0]["head_start_ray_commands"])
        assert "ray start --head" in head and "--dashboard-host=127.0.0.1" in head


@pytest.mark.parametrize("name", ["aws", "gcp"])
def test_launcher_templates_pass_rays_schema(name: str) -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(copy.deepcopy(load_template(name)[0]))
    validate_config(config)  # raises on any schema error
    assert config["provider"]["type"] == name


@pytest.mark.parametrize("name", sorted(set(TEMPLATES) - {"dockerfile"}))
def test_templates_run_registered_hiwar_commands(name: str) -> None:
    registered = set(cli.commands)
    assert set(hiwar_commands(name)) <= registered, f"{name}: {hiwar_commands(name)} vs {sorted(registered)}"


def test_rayjob_runs_the_pipeline_on_the_raycluster() -> None:
    config_map, job = load_template("rayjob")
    cluster = next(doc for doc in load_template("raycluster") if doc["kind"] == "RayCluster")
    assert job["kind"] == "RayJob" and config_map["kind"] == "ConfigMap"
    words = job["spec"]["entrypoint"].split()
    assert words[:2] == ["hiwar", "pipeline"] and "pipeline" in cli.commands
    config_path = Path(words[words.index("-c") + 1])
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == cluster["metadata"]["name"]
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in head["containers"][0]["volumeMounts"]}
    volume = next(v for v in head["volumes"] if v.get("configMap"))
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert mounts[volume["name"]] == str(config_path.parent)
    assert config_path.name in config_map["data"]


def test_rendered_rayjob_carries_the_config_unchanged(paper) -> None:
    config_map, job = yaml.safe_load_all(render_rayjob(PAPER))
    embedded = config_map["data"]["paper-gpu.yaml"]
    assert embedded == PAPER.read_text(encoding="utf-8")
    assert yaml.safe_load(embedded) == yaml.safe_load(PAPER.read_text(encoding="utf-8"))
    assert job["spec"]["entrypoint"] == "hiwar pipeline -c /configs/paper-gpu.yaml"


def test_print_a_template(capsys: pytest.CaptureFixture) -> None:
    assert main(["aws"]) == 0
    assert capsys.readouterr().out == template_text("aws")


def test_node_groups_read_each_format() -> None:
    aws = {g.name: g for g in node_groups("aws")}
    assert (aws["gpu-a10g-x4"].gpus, aws["gpu-a10g-x4"].accelerator, aws["gpu-a10g-x4"].max_workers) == (
        4,
        "A10G",
        4,
    )
    assert "head" not in aws and aws["cpu"].gpus == 0
    kube = {g.name: g for g in node_groups("raycluster")}
    assert (kube["gpu-a100-x4"].gpus, kube["gpu-a100-x4"].accelerator, kube["gpu-a100-x4"].cpus) == (
        4,
        "A100",
        44.0,
    )


@pytest.mark.parametrize("name", CLUSTERS)
def test_paper_config_fits_every_cluster(name: str, paper) -> None:
    """Generation engines (TP x PP GPUs each, x replicas) and training workers fit the GPU node groups."""
    assert fit_problems(paper, node_groups(name), name) == []


@pytest.mark.parametrize("name", CLUSTERS)
def test_fit_check_catches_configs_the_cluster_cannot_hold(name: str) -> None:
    too_wide = load_config(PAPER, ["generation.engine=vllm", "generation.tensor_parallel_size=16"])
    assert any("generation" in p for p in fit_problems(too_wide, node_groups(name), name))
    wrong_gpu = load_config(PAPER, ["generation.engine=vllm", "generation.accelerator_type=TPU-v5"])
    assert any("TPU-v5" in p for p in fit_problems(wrong_gpu, node_groups(name), name))
    too_many = load_config(PAPER, ["training.use_gpu=true", "training.num_workers=1000", "training.models=[]"])
    assert any("1000 worker" in p for p in fit_problems(too_many, node_groups(name), name))


@pytest.mark.parametrize("name", ["aws", "gcp"])
def test_launcher_dashboards_bind_loopback(name: str) -> None:
    config = load_template(name)[0]
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start
    assert "0.0.0.0" not in template_text(name)


def test_kuberay_exposes_nothing_outside_the_cluster() -> None:
    for name in ("raycluster", "rayjob"):
        for doc in load_template(name):
            assert doc["kind"] not in ("Ingress", "Service"), f"{name}: {doc['kind']}"
    cluster = next(doc for doc in load_template("raycluster") if doc["kind"] == "RayCluster")
    assert cluster["spec"].get("headServiceAnnotations") is None
    assert "serviceType" not in cluster["spec"]["headGroupSpec"]  # ClusterIP: reach it with port-forward


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_templates_hold_no_secret_values(name: str) -> None:
    text = template_text(name)
    assert not re.search(
        r"hf_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16}|(TOKEN|KEY|SECRET|PASSWORD)\s*[:=]\s*['\"]?\w{8,}", text
    )
