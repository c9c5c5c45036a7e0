"""Bad input that stops an evaluation before any model runs: one clear line, exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hiwar.cli import cli
from hiwar.config import load_config
from hiwar.errors import ConfigError, DataError
from hiwar.evaluation.run import run_evaluate
from hiwar.records_io import write_parquet
from tests.evaluation.helpers import conversation


def test_split_with_no_conversations_is_reported(tmp_path: Path) -> None:
    write_parquet([], tmp_path / "run" / "dataset" / "data" / "test-00000.parquet")
    config = load_config(None, [f"run_dir={tmp_path / 'run'}"])
    with pytest.raises(DataError, match="split 'test' holds no conversations"):
        run_evaluate(config, models=["some/model"])
    report = json.loads((tmp_path / "run" / "evaluation" / "report.json").read_text(encoding="utf-8"))
    assert "holds no conversations" in report["dataset"]["error"] and report["models"] == []


def test_missing_split_and_missing_models_through_the_cli(tmp_path: Path) -> None:
    write_parquet([conversation("c1", "t", "س", "ج")], tmp_path / "ds" / "data" / "train-00000.parquet")
    result = CliRunner().invoke(
        cli, ["evaluate", "--set", f"run_dir={tmp_path}", "-m", "x/y", "--dataset", str(tmp_path / "ds")]
    )
    assert result.exit_code == 2
    assert "dataset has no 'test' split" in result.output and "Traceback" not in result.output
    with pytest.raises(ConfigError, match="no models to evaluate"):
        run_evaluate(load_config(None, [f"run_dir={tmp_path}"]), dataset=str(tmp_path / "ds"))
