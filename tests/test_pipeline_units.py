"""Pipeline bookkeeping without running stages: paths, markers, --from, evaluation targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hiwar.config import load_config
from hiwar.errors import ConfigError
from hiwar.pipeline import STAGES, RunPaths, evaluation_targets, is_done, reset_from


def config_for(tmp_path: Path, *extra: str):
    return load_config(None, [f"run_dir={tmp_path}", *extra])


def test_paths_follow_run_dir_and_overrides(tmp_path: Path) -> None:
    config = config_for(tmp_path, f"evaluation.output_dir={tmp_path / 'elsewhere'}")
    paths = RunPaths(config)
    assert paths.dataset == tmp_path / "dataset"
    assert paths.evaluation == tmp_path / "elsewhere"
    assert paths.manifest("train") == tmp_path / "manifests" / "train.json"


def test_is_done_reads_the_marker(tmp_path: Path) -> None:
    paths = RunPaths(config_for(tmp_path))
    assert not is_done(paths, "generate")
    paths.manifests.mkdir(parents=True)
    paths.manifest("generate").write_text('{"status": "do', encoding="utf-8")  # torn write: not done
    assert not is_done(paths, "generate")
    paths.manifest("generate").write_text(json.dumps({"status": "done"}), encoding="utf-8")
    assert is_done(paths, "generate")


def test_from_removes_that_stage_and_later_ones(tmp_path: Path) -> None:
    config = config_for(tmp_path, "training.models=[{name: s, model: m}]")
    paths = RunPaths(config)
    for stage in STAGES:
        for target in paths.stage_outputs(stage, config):
            target.mkdir(parents=True, exist_ok=True) if target.suffix != ".md" else target.write_text("x")
        paths.manifests.mkdir(parents=True, exist_ok=True)
        paths.manifest(stage).write_text(json.dumps({"status": "done"}), encoding="utf-8")
    reset_from(paths, config, "train")
    assert is_done(paths, "generate") and paths.dataset.is_dir()
    for stage in STAGES[1:]:
        assert not is_done(paths, stage)
    assert not (tmp_path / "models" / "s").exists()
    assert not (tmp_path / "train" / "s").exists()  # the Ray Train run too, or a rerun would resume at its end
    assert not paths.evaluation.exists() and not paths.report.exists()


def test_unknown_from_stage(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    with pytest.raises(ConfigError, match="--from 'trian': unknown stage"):
        reset_from(RunPaths(config), config, "trian")


def test_evaluation_targets_are_trained_models_then_baselines(tmp_path: Path) -> None:
    config = config_for(
        tmp_path,
        "training.models=[{name: a, model: base-a}]",
        "evaluation.models=[org/baseline, {name: a, path: elsewhere}]",
    )
    targets = evaluation_targets(config, RunPaths(config))
    assert [(t.name, t.path) for t in targets] == [
        ("a", str(tmp_path / "models" / "a")),
        ("org--baseline", "org/baseline"),
    ]
    bare = config_for(tmp_path, "evaluation.models=[org/baseline]")
    assert [t.path for t in evaluation_targets(bare, RunPaths(bare))] == ["org/baseline"]
