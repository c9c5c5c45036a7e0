"""One run layout (hiwar/run_layout.py): separate commands on one config meet in the same folders.

The dataset lives at ``generation.output_dir``, outside the run folder: ``hiwar generate``, then ``hiwar train``, then
``hiwar evaluate``, each its own command, must each find what the previous one wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hiwar.cli import cli
from tests.generation.fake_openai import FakeOpenAI
from tests.generation.teach import BAD_TOPICS, GOOD_TOPICS, grid_overrides, targets

pytestmark = [pytest.mark.ray, pytest.mark.train, pytest.mark.slow]

KEY = "sk-layout-test"


def _arabic_names(topic_ids: tuple[str, ...]) -> list[str]:
    from hiwar.assets import load_topics

    return [t["ar"] for t in load_topics() if t["id"] in topic_ids]


def _overrides(run_dir: Path, dataset: Path, model: Path, server_url: str) -> list[str]:
    return [
        f"run_dir={run_dir}",
        "cluster.include_dashboard=false",
        f"generation.output_dir={dataset}",
        "generation.engine=openai",
        "generation.model=served-model",
        f"generation.base_url={server_url}",
        "generation.api_key_env=HIWAR_LAYOUT_KEY",
        "generation.max_retries=0",
        *grid_overrides(),
        "generation.splits.train=1.0",
        "generation.splits.validation=0.0",
        "generation.splits.test=0.0",
        f"training.models=[{{name: tiny, model: '{model}'}}]",
        "training.num_workers=0",
        "training.max_steps=4",
        "training.max_seq_len=256",
        "training.per_device_train_batch_size=2",
        "training.validation_split=null",
        "training.warmup_steps=0",
        "evaluation.split=train",
        "evaluation.raven.enabled=false",
        "evaluation.perplexity.max_tokens_per_batch=512",
    ]


def _hiwar(command: str, overrides: list[str]) -> str:
    args = ["--log-level", "WARNING", command]
    for item in overrides:
        args += ["--set", item]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_generate_then_train_then_evaluate_as_separate_commands(ray_local, tiny_gpt2, tmp_path, monkeypatch):
    run_dir, dataset = tmp_path / "run", tmp_path / "datasets" / "arabic-v1"  # the dataset lives outside run_dir
    answers = {name: targets()[t] for t in GOOD_TOPICS for name in _arabic_names((t,))}
    monkeypatch.setenv("HIWAR_LAYOUT_KEY", KEY)
    with FakeOpenAI(KEY, answers, failing=tuple(_arabic_names(BAD_TOPICS))) as server:
        overrides = _overrides(run_dir, dataset, tiny_gpt2, server.url)
        _hiwar("generate", overrides)
    assert json.loads((dataset / "stats.json").read_text())["counts"]["accepted"] == 2
    assert not (run_dir / "dataset").exists()

    assert f"model: {run_dir / 'models' / 'tiny'}" in _hiwar("train", overrides)
    model = run_dir / "models" / "tiny"
    trained_on = json.loads((model / "dataset.json").read_text())
    assert trained_on["path"] == str(dataset) and trained_on["train_rows"] == 2

    _hiwar("evaluate", overrides)  # no --model, no --dataset: the trained model, on generation.output_dir
    report = json.loads((run_dir / "evaluation" / "report.json").read_text())
    assert [row["model"] for row in report["table"]] == ["tiny"]
    assert report["table"][0]["perplexity_status"] == "ok"
    assert report["dataset"]["path"] == str(dataset)
