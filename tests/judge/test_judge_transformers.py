"""Full `hiwar judge` through the transformers engine with a tiny random model: its judgments are malformed, so
every item is retried and then kept aside with its reason; counts add up; a lost shard is redone identically."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from hiwar.cli import cli
from hiwar.judge import parse
from tests.judge.conftest import conversation, write_dataset

pytestmark = [pytest.mark.ray]

REASON_CODES = {
    parse.EMPTY,
    parse.NO_JSON,
    parse.INVALID_JSON,
    parse.TEXT_AROUND,
    parse.NOT_OBJECT,
    parse.MISSING,
    parse.UNKNOWN,
    parse.BAD_ENTRY,
    parse.NOT_INTEGER,
    parse.OUT_OF_SCALE,
    parse.NO_RATIONALE,
    parse.TRUNCATED,
}


def test_tiny_model_judgments_are_retried_then_kept_aside(ray_local, judge_model, tmp_path):
    convs = [conversation(f"c{i}", "travel" if i % 2 else "food", f"الجواب رقم {i}") for i in range(3)]
    data = write_dataset(tmp_path / "dataset", convs)
    out = tmp_path / "judged"
    args = [
        "judge",
        str(data),
        "--out",
        str(out),
        "--set",
        "cluster.include_dashboard=false",
        "--set",
        f"judge.model={judge_model}",
        "--set",
        "judge.sampling.max_tokens=24",
        "--set",
        "judge.max_attempts=2",
        "--set",
        "judge.shard_size=1",
        "--set",
        "judge.bootstrap_samples=0",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "kept aside 3" in result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    c = summary["counts"]
    assert (c["items"], c["judged"], c["kept_aside"], c["retried"]) == (3, 0, 3, 3)
    assert c["attempts"] == {"2": 3} and c["failed_attempts"] == 6
    assert sum(c["failed_attempts_by_reason"].values()) == 6 and sum(c["kept_aside_by_reason"].values()) == 3
    assert set(c["failed_attempts_by_reason"]) <= REASON_CODES
    assert summary["throughput"]["rounds"] == [3, 3]
    assert summary["overall"]["n"] == 0 and summary["overall"]["mean"] is None  # no score is made up
    aside = {r["item_id"]: r for r in pq.read_table(out / "kept_aside.parquet").to_pylist()}
    assert sorted(aside) == ["c0", "c1", "c2"]
    for row in aside.values():
        assert row["status"] == "kept_aside" and row["attempts"] == 2 and len(row["reasons"]) == 2
        assert parse.reason_code(row["reason"]) in REASON_CODES
        assert row["num_prompt_tokens"] > 500 and row["score_fluency"] is None
    assert pq.read_table(out / "judgments.parquet").num_rows == 0

    # Lose one finished shard: the rerun judges that item only, with the same seeds, to the same texts.
    shards = sorted((out / "work").glob("*/shards/shard-*.parquet"))
    assert len(shards) == 3
    shards[1].unlink()
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["throughput"]["shards"] == 1 and summary["throughput"]["shards_skipped"] == 2
    assert summary["throughput"]["rounds"] == [1, 1]
    redone = {r["item_id"]: r for r in pq.read_table(out / "kept_aside.parquet").to_pylist()}
    for item_id, row in aside.items():
        assert (redone[item_id]["raw_text"], redone[item_id]["seed"]) == (row["raw_text"], row["seed"])
