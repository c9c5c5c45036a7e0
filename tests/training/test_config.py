"""The training config section: per-model overrides and GPU-only guards."""

from __future__ import annotations

import pytest

from hiwar.config import load_config
from hiwar.errors import ConfigError

TWO_MODELS = [
    "training.models=[{name: a, model: m/a}, {name: b, model: m/b, overrides: {learning_rate: 2.0e-5, lora: "
    "{enabled: true}}}]",
]


def test_overrides_apply_to_their_model_only():
    config = load_config(None, TWO_MODELS)
    a, b = config.training.models
    assert config.training.for_model(a).learning_rate == 5.0e-5
    settings_b = config.training.for_model(b)
    assert settings_b.learning_rate == 2.0e-5
    assert settings_b.lora.enabled and settings_b.lora.r == 16  # a nested section: defaults fill the rest
    assert settings_b.max_seq_len == config.training.max_seq_len


@pytest.mark.parametrize(
    "override,message",
    [
        (
            "training.models=[{name: a, model: m, overrides: {learning_rat: 1.0}}]",
            "unknown key(s) learning_rat",
        ),
        ("training.models=[{name: a, model: m, overrides: {max_seq_len: 0}}]", "overrides.max_seq_len"),
        ("training.models=[{name: a, model: m}, {name: a, model: n}]", "duplicate name(s) a"),
        ("training.models=[{name: 'a b', model: m}]", "models[0]: name 'a b' is not a folder name"),
        ("training.models=[{model: ./_m}]", "models[0]: name '_m' (derived from model './_m') is not a folder name"),
        ("training.fsdp=true", "fsdp needs GPU workers"),
        ("training.precision=bf16", "precision bf16 needs GPU workers"),
        (
            "training.models=[{name: a, model: m, overrides: {fsdp: true}}]",
            "models[0] (a): fsdp needs GPU workers",
        ),
    ],
)
def test_bad_training_config_is_one_clear_line(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_a_model_without_a_name_is_named_after_it():
    config = load_config(None, ["training.models=[{model: org/base-1}, {name: b, path: m/b}]"])
    assert [(m.name, m.model) for m in config.training.models] == [("org--base-1", "org/base-1"), ("b", "m/b")]


def test_gpu_settings_validate_when_workers_have_gpus():
    config = load_config(None, ["training.use_gpu=true", "training.fsdp=true", "training.precision=bf16"])
    assert config.training.fsdp and config.training.precision == "bf16"


def test_shipped_configs_list_models():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    paper = load_config(root / "configs" / "paper-gpu.yaml")
    assert [m.model for m in paper.training.models] == [
        "aubmindlab/aragpt2-mega",
        "riotu-lab/ArabianGPT-08B-V2",
    ]
    mega = paper.training.for_model(paper.training.models[0])
    assert mega.use_gpu and mega.fsdp and mega.gradient_checkpointing
    local = load_config(root / "configs" / "local-cpu.yaml")
    assert local.training.models and not local.training.use_gpu


@pytest.mark.parametrize(
    ("packing", "setting", "expected"),
    [(True, None, True), (False, None, False), (True, False, False), (False, True, True)],
)
def test_length_grouping_follows_packing_unless_set(packing: bool, setting: bool | None, expected: bool) -> None:
    from hiwar.training.config import TrainingConfig
    from hiwar.training.worker import grouped, training_arguments

    settings = TrainingConfig(packing=packing, group_by_length=setting)
    assert grouped(settings) is expected
    args = training_arguments(settings, 0, "/tmp/unused", has_eval=False, precision="fp32")
    assert args.train_sampling_strategy == ("group_by_length" if expected else "random")
