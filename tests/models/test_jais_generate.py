"""`hiwar generate` end to end with a Jais-architecture model (tiny, random, laid out as the hub lays out
jais-13b-chat) through both engines: the prompt reaches it in the card's format (picked by ``model_type``), and
greedy decoding gives the same text on vLLM (hiwar's plugin) as on transformers (hiwar's port)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from hiwar.cli import cli

pytestmark = [pytest.mark.ray, pytest.mark.vllm, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_jais(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hiwar.tiny_models import build_tiny_jais

    return build_tiny_jais(tmp_path_factory.mktemp("jais") / "hub", positions=2048)


def generate(run_dir: Path, model: Path, *extra: str) -> Path:
    sets = [
        f"run_dir={run_dir}",
        f"generation.model={model}",
        "generation.grid.limit=3",
        "generation.sampling.temperature=0",
        "generation.sampling.repetition_penalty=1.0",
        "generation.sampling.max_tokens=24",
        "generation.dedup.near=false",
        *extra,
    ]
    args = ["--log-level", "WARNING", "generate"] + [a for s in sets for a in ("--set", s)]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return run_dir / "dataset"


def texts(dataset: Path) -> dict[str, str]:
    """Every row's raw model text by id (a random model's rows are all rejects, each with its text)."""
    rows = pq.read_table(dataset / "rejects").to_pylist()
    return {r["id"]: r["raw_text"] for r in rows}


def test_jais_runs_on_both_engines_with_the_same_greedy_text(ray_local, tiny_jais: Path, tmp_path: Path, monkeypatch):
    import json

    hf = generate(tmp_path / "hf", tiny_jais)
    stats = json.loads((hf / "stats.json").read_text())
    assert stats["prompt_format"] == "jais"  # picked by model_type: the folder's name says nothing
    assert stats["counts"]["prompts"] == 3 and len(texts(hf)) + stats["counts"]["accepted"] == 3
    assert all(text.strip() for text in texts(hf).values())
    pytest.importorskip("vllm")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    vllm = generate(
        tmp_path / "vllm",
        tiny_jais,
        "generation.engine=vllm",
        "generation.dtype=float32",
        "generation.max_model_len=2048",
    )
    assert json.loads((vllm / "stats.json").read_text())["generator"]["engine"] == "vllm"
    assert texts(vllm) == texts(hf)
