"""The engine API (`generate_texts`) with the transformers engine: columns, per-row seeds, error rows."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.ray]


def test_transformers_engine_seeds_batching_and_errors(ray_local, tiny_gpt2):
    import ray.data

    from hiwar.generation.config import EngineConfig, SamplingConfig
    from hiwar.generation.engines import OUTPUT_COLUMNS, generate_texts

    rows = [
        {
            "request_id": f"r{i}",
            "seed": 100 + i % 3,
            "topic": "t",
            "messages": [{"role": "user", "content": "ما رأيك في " + "السفر " * (1 + i)}],
        }
        for i in range(6)
    ]
    rows.append(
        {
            "request_id": "too-long",
            "seed": 1,
            "topic": "t",
            "messages": [{"role": "user", "content": "مرحبا " * 600}],
        }
    )
    sampling = SamplingConfig(temperature=1.0, top_p=0.95, top_k=50, repetition_penalty=1.1, max_tokens=10)
    small = EngineConfig(
        engine="transformers", model=str(tiny_gpt2), sampling=sampling, batch_size=3, micro_batch_size=2
    )
    big = small.model_copy(update={"batch_size": 7, "micro_batch_size": 7, "sort_by_length": False})
    a = {r["request_id"]: r for r in generate_texts(ray.data.from_items(rows), small).take_all()}
    b = {r["request_id"]: r for r in generate_texts(ray.data.from_items(rows), big).take_all()}
    assert sorted(a) == sorted(r["request_id"] for r in rows)
    for rid, row in a.items():
        assert set(OUTPUT_COLUMNS) | {"request_id", "seed", "topic", "messages"} == set(row)
        assert row["messages"] == next(r for r in rows if r["request_id"] == rid)["messages"]
    err = a.pop("too-long")
    assert err["generated_text"] == "" and "tokens; the model takes at most 512" in err["error"]
    assert all(r["error"] == "" and r["num_generated_tokens"] > 0 and r["num_prompt_tokens"] > 0 for r in a.values())
    # Sampled text depends on the row's seed and prompt only, not on batching or sorting.
    assert {k: r["generated_text"] for k, r in a.items()} == {k: b[k]["generated_text"] for k in a}
    assert len({r["generated_text"] for r in a.values()}) > 1
    # Prompt tokens grow with the prompt (the rows grow by one word each).
    counts = [a[f"r{i}"]["num_prompt_tokens"] for i in range(6)]
    assert counts == sorted(counts) and counts[0] < counts[-1]


def test_sampler_draws_depend_only_on_the_row_seed():
    import torch

    from hiwar.generation.engines.sampler import PerRowSampler

    torch.manual_seed(0)
    scores = torch.randn(3, 50)
    one = PerRowSampler([7, 8, 9], temperature=1.0, top_k=-1, top_p=1.0)(None, scores)
    alone = PerRowSampler([8], temperature=1.0, top_k=-1, top_p=1.0)(None, scores[1:2])
    assert torch.equal(one[1:2], alone)
    assert (one == 0).sum(-1).tolist() == [1, 1, 1]  # exactly one allowed token per row
    top1 = PerRowSampler([1, 2, 3], temperature=1.0, top_k=1, top_p=1.0)(None, scores)
    assert top1.argmax(-1).tolist() == scores.argmax(-1).tolist()
    nucleus = PerRowSampler([5] * 3, temperature=1.0, top_k=-1, top_p=1e-6)(None, scores)
    assert nucleus.argmax(-1).tolist() == scores.argmax(-1).tolist()
