"""The pipeline's optional judge stage: it scores the human-eval export's items, writes its manifest, is skipped
when done, and its model is checked before any stage runs."""

from __future__ import annotations

import json

import pytest

from hiwar.config import load_config
from hiwar.errors import ConfigError
from hiwar.pipeline import STAGES, reset_from, run_pipeline
from hiwar.run_layout import RunLayout
from tests.judge.conftest import conversation
from tests.judge.judge_server import JudgeServer, judgment


def test_judge_stage_sits_before_the_report(tmp_path):
    assert STAGES.index("human-eval") < STAGES.index("judge") < STAGES.index("report")
    config = load_config(overrides=[f"run_dir={tmp_path}"])
    layout = RunLayout(config)
    assert layout.stage_outputs("judge") == [tmp_path / "judge"]
    (tmp_path / "judge").mkdir()
    layout.manifests.mkdir()
    layout.manifest("judge").write_text('{"status": "done"}', encoding="utf-8")
    reset_from(layout, "human-eval")
    assert not (tmp_path / "judge").exists() and not layout.manifest("judge").exists()


def test_a_judge_without_a_model_fails_before_any_stage(tmp_path):
    config = load_config(overrides=[f"run_dir={tmp_path}", "judge.enabled=true"])
    with pytest.raises(ConfigError, match=r"judge.model: the judge needs a model"):
        run_pipeline(config, stages=("judge",))
    assert not (tmp_path / "manifests").exists()


@pytest.mark.ray
def test_judge_stage_scores_the_export_and_resumes(ray_local, tmp_path):
    from hiwar.evaluation.human.export import run_export
    from hiwar.records_io import write_jsonl

    convs = [conversation(f"p{i}", "travel", f"نعم {i}", model="m1" if i % 2 else "m2") for i in range(4)]
    with JudgeServer(lambda prompt, seen: judgment((4, 4, 4, 4, 4))) as server:
        config = load_config(
            overrides=[
                f"run_dir={tmp_path}",
                "cluster.include_dashboard=false",
                "judge.enabled=true",
                "judge.engine=openai",
                "judge.model=judge-model",
                f"judge.base_url={server.url}",
                "judge.bootstrap_samples=0",
            ]
        )
        run_export(config, [str(write_jsonl(convs, tmp_path / "c.jsonl"))], out_dir=str(tmp_path / "human_eval"))
        first = run_pipeline(config, stages=("judge",))
        assert [(o.stage, o.status) for o in first.outcomes] == [("judge", "done")]
        assert len(server.requests) == 4
        again = run_pipeline(config, stages=("judge",))
        assert again.ran_nothing and len(server.requests) == 4
    manifest = json.loads((tmp_path / "manifests" / "judge.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "done" and manifest["outputs"]["judge"] == "judge-model"
    summary = json.loads((tmp_path / "judge" / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["judged"] == 4 and summary["sources"]["export_id"]
