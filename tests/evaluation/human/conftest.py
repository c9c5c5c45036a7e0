"""Fixtures: tiny conversation and reply files for two models, and a fast run config."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hiwar.config import RunConfig, load_config
from hiwar.records_io import write_jsonl, write_parquet

from .helpers import MODELS, TOPICS, conversation


@pytest.fixture
def conversations(tmp_path: Path) -> list[Path]:
    """One JSONL and one Parquet file of conversation records, one per model, 9 conversations each."""
    paths = []
    for m, model in enumerate(MODELS):
        records = [conversation(model, 100 * m + n, TOPICS[n % 3]) for n in range(9)]
        writer = write_jsonl if m == 0 else write_parquet
        paths.append(writer(records, tmp_path / "data" / f"model{m}.{'jsonl' if m == 0 else 'parquet'}"))
    return paths


@pytest.fixture
def replies_file(tmp_path: Path) -> Path:
    """A replies Parquet file as ``hiwar evaluate`` writes it: both models answer the same 6 contexts."""
    rows = [
        {
            "model": model,
            "conversation_id": f"conv-{n}",
            "topic": TOPICS[n % 3],
            "context": json.dumps([{"role": "user", "content": f"سؤال {n}"}], ensure_ascii=False),
            "reply": f"جواب {n}",
            "reference": f"مرجع {n}",
        }
        for model in MODELS
        for n in range(6)
    ]
    path = tmp_path / "replies" / "replies.parquet"
    path.parent.mkdir(parents=True)
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, path)
    return path


@pytest.fixture
def config(tmp_path: Path) -> RunConfig:
    """A run under tmp_path with small samples, a fast bootstrap and no plots (one test draws them)."""
    return load_config(
        None,
        [
            f"run_dir={tmp_path / 'run'}",
            "human_eval.samples_per_model=6",
            "human_eval.bootstrap_samples=200",
            "human_eval.plots=false",
        ],
    )
