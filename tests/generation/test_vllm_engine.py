"""The full `hiwar generate` path through the vllm engine on vllm-cpu, one engine start per runner: in the pool's
actors (the CPU default) and through Ray Data LLM's processor (the GPU default). Both write the taught targets."""

from __future__ import annotations

import json

import pytest

from hiwar.generation import validate as v
from tests.generation.teach import BAD_TOPICS, targets
from tests.generation.test_generate_transformers import generate

pytestmark = [pytest.mark.ray, pytest.mark.vllm, pytest.mark.slow]


@pytest.mark.parametrize("runner", ["in_actor", "ray_data_llm"])
def test_generate_with_vllm_engine(ray_local, taught_model, tmp_path, monkeypatch, runner):
    pytest.importorskip("vllm")
    import pyarrow.parquet as pq

    from hiwar.dataset_layout import read_split
    from hiwar.generation.parse import parse_transcript

    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    out = generate(
        tmp_path,
        taught_model,
        "generation.engine=vllm",
        f"generation.vllm_runner={runner}",
        "generation.dtype=float32",
        "generation.max_model_len=1024",
        "generation.shard_size=4",
        "generation.batch_size=8",
    )
    stats = json.loads((out / "stats.json").read_text())
    c = stats["counts"]
    assert (c["prompts"], c["accepted"], c["exact_duplicates"], c["request_errors"]) == (4, 2, 1, 0)
    assert stats["generator"]["engine"] == "vllm"
    want = {t: parse_transcript(text).messages for t, text in targets().items()}
    for conv in read_split(out, "train") + read_split(out, "validation"):
        assert conv.messages == want[conv.topic]
    bad = [r for r in pq.read_table(out / "rejects").to_pylist() if r["topic"] in BAD_TOPICS]
    assert len(bad) == 1 and all(v.STARTS_WITH_ASSISTANT in r["reasons"] for r in bad)
    assert all(r["num_prompt_tokens"] > 100 for r in bad)
