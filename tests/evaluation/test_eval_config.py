"""The evaluation config section and completion markers."""

from __future__ import annotations

from pathlib import Path

import pytest

from hiwar.config import load_config
from hiwar.errors import ConfigError
from hiwar.evaluation.markers import is_done, mark_done


def test_models_as_paths_or_mappings() -> None:
    config = load_config(
        None,
        [
            "evaluation.models=[runs/x/models/aragpt2, "
            "{name: qwen, path: Qwen/Qwen2.5-7B-Instruct, trust_remote_code: true}]"
        ],
    )
    specs = config.evaluation.model_specs()
    assert [(s.name, s.path, s.trust_remote_code) for s in specs] == [
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


@pytest.mark.parametrize("name", ["local-cpu.yaml", "paper-gpu.yaml"])
def test_shipped_configs_load(name: str) -> None:
    config = load_config(Path(__file__).parents[2] / "configs" / name)
    assert config.evaluation.split == "test"


def test_markers_require_the_same_inputs(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    assert not is_done(out, {"a": 1})
    out.write_text("{}")
    assert not is_done(out, {"a": 1})  # output without a marker: a killed run
    mark_done(out, {"a": 1})
    assert is_done(out, {"a": 1}) and not is_done(out, {"a": 2})
