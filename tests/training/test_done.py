"""Which models ``hiwar train`` still has to train: the completion rule of hiwar/markers.py on model folders and
Ray Train runs (no training here: the markers are written by hand)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hiwar.config import load_config
from hiwar.errors import HiwarError
from hiwar.markers import write_marker
from hiwar.run_layout import RunLayout
from hiwar.training.plan import TrainingData, model_key, pending_models

DATA = TrainingData(train=[], info={"fingerprint": "0123456789abcdef"})


def _config(tmp_path: Path, *extra: str):
    return load_config(None, [f"run_dir={tmp_path}", "training.models=[{name: s, model: base/s}]", *extra])


def test_finished_current_models_are_skipped_and_stale_ones_refused_or_redone(tmp_path: Path) -> None:
    config = _config(tmp_path, "training.learning_rate=0.001")
    layout, spec = RunLayout(config), config.training.models[0]
    assert pending_models(config, [spec], DATA) == [spec]  # nothing yet
    write_marker(layout.model_marker(spec), model_key(config, spec, DATA.info["fingerprint"]), name="s")
    assert pending_models(config, [spec], DATA) == []
    assert (
        pending_models(_config(tmp_path, "training.learning_rate=0.001", "training.save_steps=9"), [spec], DATA) == []
    )
    changed = _config(tmp_path, "training.learning_rate=0.002")
    with pytest.raises(HiwarError) as err:
        pending_models(changed, [spec], DATA)
    assert str(err.value) == (
        f"training.models (s): {layout.model_dir(spec)} was made with other inputs (training.learning_rate: 0.001 -> "
        "0.002); rerun with --force to train anew"
    )
    assert pending_models(changed, [spec], DATA, force=True) == [spec]
    assert not layout.model_dir(spec).exists()


def test_checkpoints_of_other_settings_are_not_resumed(tmp_path: Path) -> None:
    config = _config(tmp_path)
    layout, spec = RunLayout(config), config.training.models[0]
    write_marker(layout.train_run_marker(spec), model_key(config, spec, DATA.info["fingerprint"]))
    assert pending_models(config, [spec], DATA) == [spec]  # same key: resumes from them
    other = TrainingData(train=[], info={"fingerprint": "fedcba9876543210"})  # the dataset changed
    with pytest.raises(HiwarError, match=r"train/s was made with other inputs \(input dataset: "):
        pending_models(config, [spec], other)
    pending_models(config, [spec], other, force=True)
    assert not layout.train_run(spec).exists()
