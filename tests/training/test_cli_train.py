"""``hiwar train`` user errors: one line, exit status 2, before any Ray cluster starts."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from hiwar.assets import load_seed_conversations
from hiwar.cli import cli
from hiwar.records_io import write_parquet


@pytest.fixture()
def good_dataset(tmp_path):
    write_parquet(load_seed_conversations()[:4], tmp_path / "ds" / "data" / "train-00000.parquet")
    return tmp_path / "ds"


def _run(*args: str):
    result = CliRunner().invoke(cli, ["train", *args])
    return result.exit_code, result.output.strip()


def _models(model: str) -> str:
    return f"training.models=[{{name: tiny, model: '{model}'}}]"


def test_no_models(tmp_path):
    code, out = _run("--set", f"run_dir={tmp_path}")
    assert code == 2 and out.startswith("Error: training.models: no models") and "\n" not in out


def test_missing_dataset(tmp_path, tiny_gpt2):
    code, out = _run("--set", _models(tiny_gpt2), "--dataset", str(tmp_path / "nowhere"))
    assert code == 2 and "nowhere: no such file or folder" in out and "\n" not in out


def test_dataset_without_train_split(tmp_path, tiny_gpt2):
    write_parquet(load_seed_conversations()[:2], tmp_path / "ds" / "data" / "test-00000.parquet")
    code, out = _run("--set", _models(tiny_gpt2), "--dataset", str(tmp_path / "ds"))
    assert code == 2 and "dataset has no 'train' split" in out and "\n" not in out


def test_empty_split(tmp_path, tiny_gpt2):
    write_parquet([], tmp_path / "ds" / "data" / "train-00000.parquet")
    code, out = _run("--set", _models(tiny_gpt2), "--dataset", str(tmp_path / "ds"))
    assert code == 2 and "split 'train' holds no conversations" in out and "\n" not in out


def test_unknown_model(tmp_path, good_dataset):
    code, out = _run(
        "--set",
        f"run_dir={tmp_path}",
        "--set",
        _models(tmp_path / "no-such-model"),
        "--dataset",
        str(good_dataset),
    )
    assert (
        code == 2 and "training.models[0] (tiny): model " in out and "no such model folder" in out and "\n" not in out
    )


def test_unknown_only_name(tmp_path, tiny_gpt2, good_dataset):
    code, out = _run("--set", _models(tiny_gpt2), "--only", "other", "--dataset", str(good_dataset))
    assert code == 2 and "unknown model name(s) other" in out and "\n" not in out


def test_fsdp_on_cpu_is_refused():
    code, out = _run("--set", "training.fsdp=true")
    assert code == 2 and "fsdp needs GPU workers" in out and "\n" not in out
