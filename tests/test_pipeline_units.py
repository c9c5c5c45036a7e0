"""Pipeline bookkeeping without running stages: the run layout, --from, evaluation targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hiwar.config import load_config
from hiwar.errors import ConfigError
from hiwar.evaluation.run import evaluation_targets
from hiwar.pipeline import STAGES, reset_from
from hiwar.run_layout import RunLayout


def config_for(tmp_path: Path, *extra: str):
    return load_config(None, [f"run_dir={tmp_path}", *extra])


def test_paths_follow_run_dir_and_overrides(tmp_path: Path) -> None:
    config = config_for(tmp_path, f"evaluation.output_dir={tmp_path / 'elsewhere'}")
    layout = RunLayout(config)
    assert layout.dataset == tmp_path / "dataset"
    assert layout.eval_dataset == tmp_path / "dataset"
    assert layout.evaluation == tmp_path / "elsewhere"
    assert layout.manifest("train") == tmp_path / "manifests" / "train.json"
    assert layout.output_places("evaluate") == [("evaluation.output_dir", tmp_path / "elsewhere")]


def test_every_stage_finds_the_dataset_at_generation_output_dir(tmp_path: Path) -> None:
    data = tmp_path / "shared" / "data-v2"
    config = config_for(
        tmp_path / "run",
        f"generation.output_dir={data}",
        "training.models=[{name: s, model: m}, {name: t, model: m, output_dir: " + str(tmp_path / "t") + "}]",
    )
    layout = RunLayout(config)
    assert layout.dataset == layout.eval_dataset == data
    assert layout.output_places("generate") == [("generation.output_dir", data)]
    assert layout.output_places("train") == [
        ("run_dir", tmp_path / "run" / "models" / "s"),
        ("training.models[1].output_dir", tmp_path / "t"),
        ("run_dir", (tmp_path / "run" / "train").resolve()),
    ]
    assert layout.model_marker(config.training.models[1]) == tmp_path / "t" / "hiwar_model.json"


def test_from_removes_that_stage_and_later_ones(tmp_path: Path) -> None:
    config = config_for(tmp_path, "training.models=[{name: s, model: m}]")
    layout = RunLayout(config)
    for stage in STAGES:
        for target in layout.stage_outputs(stage):
            target.mkdir(parents=True, exist_ok=True) if target.suffix != ".md" else target.write_text("x")
        layout.manifests.mkdir(parents=True, exist_ok=True)
        layout.manifest(stage).write_text(json.dumps({"status": "done"}), encoding="utf-8")
    reset_from(layout, "train")
    assert layout.manifest("generate").exists() and layout.dataset.is_dir()
    for stage in STAGES[1:]:
        assert not layout.manifest(stage).exists()
    assert not (tmp_path / "models" / "s").exists()
    assert not (tmp_path / "train" / "s").exists()  # the Ray Train run too, or a rerun would resume at its end
    assert not layout.evaluation.exists() and not layout.report.exists()


def test_unknown_from_stage(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--from 'trian': unknown stage"):
        reset_from(RunLayout(config_for(tmp_path)), "trian")


def test_evaluation_targets_are_trained_models_then_baselines(tmp_path: Path) -> None:
    config = config_for(
        tmp_path,
        "training.models=[{name: a, model: base-a}]",
        "evaluation.models=[org/baseline, {name: a, path: elsewhere}]",
    )
    targets = evaluation_targets(config, RunLayout(config))
    assert [(t.name, t.model) for t in targets] == [
        ("a", str(tmp_path / "models" / "a")),
        ("org--baseline", "org/baseline"),
    ]
    bare = config_for(tmp_path, "evaluation.models=[org/baseline]")
    assert [t.model for t in evaluation_targets(bare, RunLayout(bare))] == ["org/baseline"]


def _finish(layout: RunLayout, stage: str, config) -> None:
    """Write ``stage``'s manifest as the pipeline does after running it."""
    from hiwar.markers import write_marker
    from hiwar.pipeline import STAGE_KEYS

    write_marker(layout.manifest(stage), STAGE_KEYS[stage](config, layout), stage=stage)


def _dataset(layout: RunLayout, n: int = 6) -> None:
    from hiwar.assets import load_seed_conversations
    from hiwar.records_io import write_parquet

    records = load_seed_conversations()
    write_parquet(records[:n], layout.dataset / "data" / "train-00000.parquet")
    write_parquet(records[n : 2 * n], layout.dataset / "data" / "test-00000.parquet")


def test_a_stage_is_done_only_with_the_key_it_would_write_now(tmp_path: Path) -> None:
    from hiwar.errors import HiwarError
    from hiwar.pipeline import stages_to_run

    models = "training.models=[{name: s, model: base/s}]"
    config = config_for(tmp_path, models, "training.learning_rate=0.001")
    layout = RunLayout(config)
    _dataset(layout)
    for stage in ("generate", "train"):
        _finish(layout, stage, config)
    assert stages_to_run(config, layout, ("generate", "train"), None) == []
    # A key that only says how the work runs (checkpoint spacing) leaves the stage done.
    same = config_for(tmp_path, models, "training.learning_rate=0.001", "training.save_steps=7")
    assert stages_to_run(same, RunLayout(same), ("generate", "train"), None) == []
    # A key that decides the weights: one line naming it, and the way to redo the stage.
    changed = config_for(tmp_path, models, "training.learning_rate=0.002")
    with pytest.raises(HiwarError) as err:
        stages_to_run(changed, RunLayout(changed), ("generate", "train"), None)
    assert str(err.value) == (
        "stage train was made with other inputs (training.models (s).training.learning_rate: 0.001 -> 0.002); "
        "rerun with --from train to redo it and every later stage"
    )
    assert stages_to_run(changed, RunLayout(changed), ("generate", "train"), "train") == ["train"]
    # A changed input file (the dataset re-split or edited in place) makes the stage out of date too.
    _dataset(layout, n=4)
    with pytest.raises(
        HiwarError, match=r"stage train was made with other inputs \(training.models \(s\).input dataset"
    ):
        stages_to_run(config, layout, ("generate", "train"), None)


def test_pipeline_reruns_redo_or_refuse_by_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real stages (human-eval sheets and the report; no Ray needed for them) under the completion rule."""
    from types import SimpleNamespace

    import hiwar.cluster.session as session
    from hiwar.errors import HiwarError
    from hiwar.pipeline import run_pipeline

    monkeypatch.setattr(session, "connect", lambda cluster, warm=0: SimpleNamespace(dashboard_url=None))
    monkeypatch.setattr(session, "shutdown", lambda s: None)
    stages = ("human-eval", "report")

    def run(*extra: str, from_stage: str | None = None) -> list[str]:
        config = config_for(tmp_path, "human_eval.samples_per_model=4", *extra)
        return [o.status for o in run_pipeline(config, from_stage=from_stage, stages=stages).outcomes]

    _dataset(RunLayout(config_for(tmp_path)))
    assert run() == ["done", "done"]
    assert run() == ["skipped", "skipped"]
    assert run("human_eval.bootstrap_samples=500") == ["skipped", "skipped"]  # read by `analyze` only
    with pytest.raises(
        HiwarError, match=r"stage human-eval .* \(human_eval.raters: 2 -> 3\); rerun with --from human-eval"
    ):
        run("human_eval.raters=3")
    assert run("human_eval.raters=3", from_stage="human-eval") == ["done", "done"]
    _dataset(RunLayout(config_for(tmp_path)), n=5)  # the rated conversations changed on disk
    with pytest.raises(HiwarError, match=r"stage human-eval .*input files"):
        run("human_eval.raters=3")
