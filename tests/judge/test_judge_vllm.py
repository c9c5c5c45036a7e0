"""The judge on the vllm engine (in the pool's actors, vllm-cpu) with JSON-schema guided decoding: even a tiny random
model's judgments all parse, on the scale, at the first attempt. One engine start."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from hiwar.config import load_config
from tests.judge.conftest import conversation, write_dataset

pytestmark = [pytest.mark.ray, pytest.mark.vllm, pytest.mark.slow]


def test_guided_judgments_all_parse(ray_local, judge_model, tmp_path, monkeypatch):
    pytest.importorskip("vllm")
    from hiwar.judge.run import run_judge

    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    convs = [conversation(f"c{i}", "travel", f"الجواب رقم {i}") for i in range(6)]
    data = write_dataset(tmp_path / "dataset", convs)
    config = load_config(
        overrides=[
            f"run_dir={tmp_path}",
            "cluster.include_dashboard=false",
            "judge.engine=vllm",
            f"judge.model={judge_model}",
            "judge.dtype=float32",
            "judge.max_model_len=2048",
            "judge.sampling.temperature=1.0",  # random draws from a random model: only the grammar makes it JSON
            "judge.sampling.max_tokens=600",
            "judge.rationale_max_chars=30",
            "judge.bootstrap_samples=100",
        ]
    )
    out = run_judge(config, [str(data)])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    c = summary["counts"]
    assert (c["items"], c["judged"], c["kept_aside"], c["failed_attempts"]) == (6, 6, 0, 0), c
    assert summary["throughput"]["rounds"] == [6] and summary["judge"]["structured_output"] is True
    rows = pq.read_table(out / "judgments.parquet").to_pylist()
    names = [cr.name for cr in config.human_eval.criteria]
    for row in rows:
        assert all(1 <= row[f"score_{n}"] <= 5 for n in names)
        rationales = json.loads(row["rationales_json"])
        assert list(rationales) == names and all(0 < len(t) <= 30 for t in rationales.values())
    assert sum(summary["criteria"]["fluency"]["distribution"].values()) == 6
