"""The openai engine through Ray Data LLM's HTTP processor against a small server started on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from hiwar.config import load_config
from hiwar.generation import validate as v
from tests.generation.conftest import run_overrides
from tests.generation.fake_openai import FakeOpenAI
from tests.generation.teach import BAD_TOPICS, GOOD_TOPICS, targets

pytestmark = [pytest.mark.ray]

KEY = "sk-test-3f9a1c0de2b7"


def arabic_names(topic_ids) -> list[str]:
    from hiwar.assets import load_topics

    return [t["ar"] for t in load_topics() if t["id"] in topic_ids]


def test_openai_engine_end_to_end_and_key_stays_secret(ray_local, tmp_path, monkeypatch, caplog):
    from hiwar.generation.run import run_generate

    want = targets()
    answers = {name: want[t] for t in GOOD_TOPICS for name in arabic_names([t])}
    monkeypatch.setenv("HIWAR_TEST_KEY", KEY)
    with FakeOpenAI(KEY, answers, failing=tuple(arabic_names(BAD_TOPICS))) as server:
        config = load_config(
            overrides=run_overrides(
                tmp_path,
                "served-model",
                "generation.engine=openai",
                f"generation.base_url={server.url}",
                "generation.api_key_env=HIWAR_TEST_KEY",
                "generation.max_retries=1",
                "generation.sampling.temperature=0.5",
                "generation.sampling.top_k=-1",
            )
        )
        out = run_generate(config)
    stats = json.loads((out / "stats.json").read_text())
    c = stats["counts"]
    assert (c["prompts"], c["accepted"], c["exact_duplicates"], c["request_errors"]) == (4, 2, 1, 1)
    assert stats["rejects_by_reason"][v.REQUEST_FAILED] == 1
    # 4 rows reached the server, the failing one twice (max_retries=1), each with its own row seed.
    assert len(server.requests) == 4 + 1
    from hiwar.generation.grid import build_grid

    seeds = {r.seed for r in build_grid(config.generation.grid, "v1", config.seed)}
    assert {r["seed"] for r in server.requests} == seeds
    assert all(r["model"] == "served-model" and r["temperature"] == 0.5 and "messages" in r for r in server.requests)
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in caplog.text


def test_wrong_key_gives_error_rows_not_a_crash(ray_local, tmp_path, monkeypatch):
    import ray.data

    from hiwar.generation.config import EngineConfig
    from hiwar.generation.engines import generate_texts

    monkeypatch.setenv("HIWAR_TEST_KEY", "wrong")
    with FakeOpenAI(KEY, {}, failing=()) as server:
        cfg = EngineConfig(engine="openai", model="m", base_url=server.url, api_key_env="HIWAR_TEST_KEY")
        rows = [
            {"request_id": "a", "seed": 1, "prompt": "نص"},
            {"request_id": "b", "seed": 2, "prompt": "نص"},
        ]
        out = sorted(generate_texts(ray.data.from_items(rows), cfg).take_all(), key=lambda r: r["request_id"])
    assert [r["request_id"] for r in out] == ["a", "b"]
    assert all(r["error"] == "bad key" and r["generated_text"] == "" for r in out)
    assert all(r["prompt"] == "نص" and r["seed"] in (1, 2) for r in out)
