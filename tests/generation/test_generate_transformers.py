"""The full `hiwar generate` path through the transformers engine on local Ray, with a taught tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hiwar.cli import cli
from hiwar.generation import validate as v
from tests.generation.conftest import run_overrides
from tests.generation.teach import BAD_TOPICS, COUNTRIES, GOOD_TOPICS, targets

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def generate(run_dir: Path, model: Path, *extra: str) -> Path:
    args = ["--log-level", "WARNING", "generate"]
    for item in run_overrides(run_dir, model, *extra):
        args += ["--set", item]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "hiwar generate:" in result.output and "accepted" in result.output
    return run_dir / "dataset"


@pytest.fixture(scope="module")
def clean_run(ray_local, taught_model, tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("clean"), taught_model)


def kept_and_dropped() -> tuple[str, str]:
    """Of two topics taught the same transcript, dedup keeps the one with the smaller id."""
    from hiwar.generation.grid import row_id

    pair = sorted(("public_transportation", "traffic_rules"), key=lambda t: row_id("v1", t, COUNTRIES[0], 0))
    return pair[0], pair[1]


def test_accepted_conversations_are_the_taught_transcripts(clean_run):
    from hiwar.dataset_layout import read_split
    from hiwar.generation.parse import parse_transcript

    convs = read_split(clean_run, "train") + read_split(clean_run, "validation")
    want = {t: parse_transcript(text).messages for t, text in targets().items()}
    assert sorted(c.topic for c in convs) == sorted(["recycling", kept_and_dropped()[0]])
    for conv in convs:
        assert conv.messages == want[conv.topic] and len(conv.messages) == 4
        assert conv.generator.engine == "transformers" and conv.generator.prompt_version == "v1"
        assert conv.generator.sampling["temperature"] == 0
        assert json.loads(conv.to_row()["metadata"])["n_turns_requested"] == 2


def test_rejects_keep_raw_text_and_every_reason(clean_run):
    import pyarrow.parquet as pq

    from hiwar.generation.grid import row_id

    rejects = {r["topic"]: r for r in pq.read_table(clean_run / "rejects").to_pylist()}
    kept, dropped = kept_and_dropped()
    assert sorted(rejects) == sorted([dropped, *BAD_TOPICS])
    assert rejects[dropped]["reasons"] == [v.DUPLICATE]
    assert rejects[dropped]["duplicate_of"] == row_id("v1", kept, COUNTRIES[0], 0)
    bad = rejects[BAD_TOPICS[0]]
    assert {v.STARTS_WITH_ASSISTANT, v.ENDS_WITH_USER} <= set(bad["reasons"])
    assert bad["raw_text"].strip() == targets()[BAD_TOPICS[0]]
    assert bad["num_generated_tokens"] > 10 and bad["error"] == ""


def test_stats_card_config_and_offline_load(clean_run):
    import datasets

    stats = json.loads((clean_run / "stats.json").read_text())
    c = stats["counts"]
    assert (c["prompts"], c["accepted"], c["rejected"], c["exact_duplicates"]) == (4, 2, 2, 1)
    assert stats["acceptance_rate"] == 0.5
    assert stats["rejects_by_reason"][v.STARTS_WITH_ASSISTANT] == 1
    assert stats["turns"]["histogram"] == {"2": 2}
    assert stats["splits"] == {"train": 1, "validation": 1, "test": 0}
    assert stats["accepted_per_country"] == {COUNTRIES[0]: 2}
    assert stats["tokens"]["generated"]["count"] == 4 and stats["tokens"]["generated"]["total"] > 40
    card = (clean_run / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["language"] == ["ar"]
    assert {"split": "train", "path": "data/train-*.parquet"} in header["configs"][0]["data_files"]
    assert "| accepted | 2 |" in card
    resolved = yaml.safe_load((clean_run / "config.resolved.yaml").read_text())
    assert resolved["generation"]["grid"]["topics"] == list(GOOD_TOPICS + BAD_TOPICS)
    ds = datasets.load_dataset("parquet", data_dir=str(clean_run / "data"))
    assert ds["train"].num_rows == 1 and ds["validation"].num_rows == 1 and "test" not in ds
    assert ds["train"][0]["messages"][0]["role"] == "user"


def test_rerun_skips_everything_and_split_command_resplits(clean_run):
    from hiwar.dataset_layout import split_files

    before = {p.name: p.stat().st_mtime_ns for p in (clean_run / "work" / "shards").glob("*.parquet")}
    run_dir = clean_run.parent
    out = CliRunner().invoke(
        cli,
        [
            "split",
            "--dataset",
            str(clean_run),
            "--set",
            "generation.splits.train=1.0",
            "--set",
            "generation.splits.validation=0.0",
            "--set",
            "generation.splits.test=0.0",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "train 2, validation 0, test 0" in out.output
    assert len(split_files(clean_run, "train")) == 1
    generate(run_dir, Path(json.loads((clean_run / "stats.json").read_text())["generator"]["model"]))
    after = {p.name: p.stat().st_mtime_ns for p in (clean_run / "work" / "shards").glob("*.parquet")}
    assert after == before  # nothing regenerated
    stats = json.loads((clean_run / "stats.json").read_text())
    assert stats["throughput"]["shards_skipped"] == 2 and stats["throughput"]["rows_generated"] == 0
