"""The evaluation config section."""

from __future__ import annotations

from pathlib import Path

import pytest

from hiwar.config import load_config
from hiwar.errors import ConfigError


def test_models_as_paths_or_mappings() -> None:
    config = load_config(
        None,
        [
            "evaluation.models=[runs/x/models/aragpt2, "
            "{name: qwen, path: Qwen/Qwen2.5-7B-Instruct, trust_remote_code: true}]"
        ],
    )
    specs = config.evaluation.model_specs()
    assert [(s.name, s.model, s.trust_remote_code) for s in specs] == [
        ("models--aragpt2", "runs/x/models/aragpt2", False),
        ("qwen", "Qwen/Qwen2.5-7B-Instruct", True),
    ]
    assert config.evaluation.raven.engine.sampling.temperature == 0.0  # greedy replies by default
    partial = load_config(None, ["evaluation.raven.engine.sampling.max_tokens=8"]).evaluation.raven.engine.sampling
    assert (partial.temperature, partial.repetition_penalty, partial.max_tokens) == (0.0, 1.0, 8)


def test_bad_evaluation_config_names_the_key() -> None:
    with pytest.raises(ConfigError, match="model names must be unique"):
        load_config(None, ["evaluation.models=[a/b, {path: a/b}]"])
    with pytest.raises(ConfigError, match="evaluation.perplexity.mask"):
        load_config(None, ["evaluation.perplexity.mask=user"])


@pytest.mark.parametrize("key", ["overrides: {learning_rate: 1.0}", "output_dir: out"])
def test_a_training_key_in_an_evaluation_entry_is_one_line(key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [f"evaluation.models=[org/a, {{name: b, model: org/b, {key}}}]"])
    name = key.split(":")[0]
    assert f"models[1] (b): '{name}' is a training key (training.models)" in str(err.value)
    assert "\n" not in str(err.value)


def test_an_evaluation_models_key_keeps_the_path_name_markers_always_had() -> None:
    from hiwar.evaluation.model_evaluation import model_key
    from hiwar.models.spec import ModelSpec

    spec = ModelSpec(name="q", model="org/q", trust_remote_code=True)
    assert model_key(spec) == {
        "name": "q",
        "path": "org/q",
        "trust_remote_code": True,
        "revision": None,
        "eos_token": None,
        "pad_token": None,
        "allow_weight_mismatch": False,
    }


def test_a_metric_is_reused_only_with_the_same_key_and_redone_otherwise(tmp_path: Path, caplog) -> None:
    from hiwar.evaluation.model_evaluation import run_metric

    calls = []

    def compute() -> dict:
        calls.append(1)
        return {"perplexity": 2.0 + len(calls)}

    first = run_metric("m/perplexity", tmp_path, {"window": 64}, compute)
    again = run_metric("m/perplexity", tmp_path, {"window": 64}, compute)
    assert (first["resumed"], again["resumed"], again["perplexity"], len(calls)) == (False, True, 3.0, 1)
    with caplog.at_level("INFO", logger="hiwar"):
        redone = run_metric("m/perplexity", tmp_path, {"window": 128}, compute)
    assert (redone["resumed"], redone["perplexity"], len(calls)) == (False, 4.0, 2)
    assert "m/perplexity: made with other inputs (window: 64 -> 128); computing it again" in caplog.text
