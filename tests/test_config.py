"""Config loading, overrides and every error path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hiwar.config import (
    RESOLVED_NAME,
    apply_overrides,
    load_config,
    parse_override,
    save_resolved,
    to_yaml,
)
from hiwar.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file() -> None:
    config = load_config(None)
    assert config.cluster.dashboard_host == "127.0.0.1"
    assert config.generation.trust_remote_code is False
    assert config.generation.sampling.temperature == 0.3
    assert config.generation.sampling.top_p == 0.9
    assert config.generation.sampling.repetition_penalty == 1.2


def test_paper_config_is_paper_scale() -> None:
    config = load_config(REPO / "configs" / "paper-gpu.yaml")
    assert config.generation.model == "inceptionai/jais-13b-chat"
    assert config.generation.engine == "vllm"
    # Jais runs on hiwar's own port: no remote code; ArabianGPT's EOS/pad are named (AraNizer may name none).
    assert config.generation.trust_remote_code is False and config.generation.prompt_format == "jais"
    assert [m.model for m in config.training.models] == ["aubmindlab/aragpt2-mega", "riotu-lab/ArabianGPT-08B-V2"]
    assert not any(m.trust_remote_code for m in config.training.models)
    assert (config.training.models[1].eos_token, config.training.models[1].pad_token) == ("<EOS>", "<PAD>")
    assert config.generation.grid.target_total == 43316


def test_file_values_and_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 7\ngeneration:\n  engine: transformers\n  sampling: {temperature: 0.5}\n")
    config = load_config(path, ["generation.engine=vllm", "generation.sampling.max_tokens=64", "cluster.num_cpus=3"])
    assert config.seed == 7
    assert config.generation.engine == "vllm"
    assert config.generation.sampling.temperature == 0.5
    assert config.generation.sampling.max_tokens == 64
    assert config.cluster.num_cpus == 3


def test_override_value_is_yaml() -> None:
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override("a=[x, y]") == (["a"], ["x", "y"])
    assert parse_override("a.b=") == (["a", "b"], "")
    assert apply_overrides({"a": {"c": 1}}, ["a.b=2"]) == {"a": {"c": 1, "b": 2}}


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        ("generation:\n  engin: vllm\n", [], "generation.engin: unknown key"),
        ("bogus: 1\n", [], "bogus: unknown key"),
        ("generation:\n  engine: tgi\n", [], "generation.engine: Input should be 'vllm', 'transformers' or 'openai'"),
        ("cluster:\n  num_cpus: two\n", [], "cluster.num_cpus: Input should be a valid integer"),
        ("generation:\n  sampling:\n    temperature: hot\n", [], "generation.sampling.temperature"),
        ("generation:\n  trust_remote_code: 'yes'\n", [], "generation.trust_remote_code"),
        ("", ["cluster.dashboard_port=0"], "cluster.dashboard_port: Input should be greater than or equal to 1"),
        ("", ["generation.sampling.top_p=2"], "generation.sampling.top_p"),
    ],
)
def test_validation_errors_name_file_and_key(tmp_path: Path, text: str, overrides: list[str], expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    message = str(info.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\ngeneration: [\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: line 3: not valid YAML"):
        load_config(path)


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


@pytest.mark.parametrize("bad", ["noequals", "=3"])
def test_bad_override_syntax(bad: str) -> None:
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        load_config(None, [bad])


def test_override_into_a_value_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'seed' is a value, not a section"):
        load_config(write(tmp_path, "seed: 3\n"), ["seed.x=1"])


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    config = load_config(None, ["generation.model=ملف/نموذج", "seed=5"])
    path = save_resolved(config, tmp_path / "out")
    assert path.name == RESOLVED_NAME
    text = path.read_text(encoding="utf-8")
    assert "ملف/نموذج" in text  # Arabic stays readable, not \u-escaped
    again = load_config(path)
    assert again == config
    assert yaml.safe_load(text)["seed"] == 5


CONFIGS = REPO / "configs"


def _assert_written_keys_hold(written: object, resolved: object, key: str) -> None:
    """Every value the YAML file writes is the resolved value at that key (defaults may fill in the rest)."""
    if isinstance(written, dict):
        assert isinstance(resolved, dict), key
        for name, value in written.items():
            assert name in resolved, f"{key}.{name}: not in the resolved config"
            _assert_written_keys_hold(value, resolved[name], f"{key}.{name}")
    elif isinstance(written, list) and written and isinstance(written[0], dict):
        assert isinstance(resolved, list) and len(resolved) == len(written), key
        for i, (w, r) in enumerate(zip(written, resolved, strict=True)):
            _assert_written_keys_hold(w, r, f"{key}[{i}]")
    else:
        assert resolved == written, f"{key}: file says {written!r}, resolved {resolved!r}"


@pytest.mark.parametrize("name", ["local-cpu.yaml", "paper-gpu.yaml"])
def test_shipped_configs_resolve_to_what_they_write(name: str) -> None:
    path = CONFIGS / name
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    _assert_written_keys_hold(written, load_config(path).model_dump(mode="json"), name)


def test_local_cpu_config_runs_the_demo_models_locally() -> None:
    from hiwar.evaluation.run import evaluation_targets
    from hiwar.run_layout import RunLayout

    config = load_config(CONFIGS / "local-cpu.yaml")
    layout = RunLayout(config)
    assert config.cluster.address is None and config.cluster.dashboard_host == "127.0.0.1"
    assert config.generation.engine == "transformers" and config.generation.model == "runs/demo/models/teacher"
    assert layout.dataset == Path("runs/local/dataset")
    assert [(t.name, t.model) for t in evaluation_targets(config, layout)] == [
        ("student", "runs/local/models/student"),  # fine-tuned by this run, then the baseline
        ("student-base", "runs/demo/models/student-base"),
    ]


def test_paper_config_is_the_papers_scale_on_shared_storage() -> None:
    from hiwar.evaluation.run import evaluation_targets
    from hiwar.run_layout import RunLayout

    config = load_config(CONFIGS / "paper-gpu.yaml")
    layout = RunLayout(config)
    gen = config.generation
    assert Path(config.run_dir).is_absolute() and config.cluster.address == "auto"
    assert (gen.engine, gen.model, gen.prompt_format) == ("vllm", "inceptionai/jais-13b-chat", "jais")
    assert (gen.grid.topics, gen.grid.countries, gen.grid.target_total) == ([], [], 43316)
    assert [m.name for m in config.training.models] == ["aragpt2-mega", "arabiangpt-08b-v2"]
    targets = [t.name for t in evaluation_targets(config, layout)]
    assert targets[:2] == ["aragpt2-mega", "arabiangpt-08b-v2"] and len(targets) == 5
    assert config.evaluation.split == "test" and config.human_eval.raters >= 2


OLD_STYLE = """
generation: {replicas: 3, num_cpus_per_replica: 2, num_gpus_per_replica: 0.5, batch_size: 4}
evaluation:
  models: [{name: q, path: org/q, trust_remote_code: true}, org/r]
  raven: {actors: 2, engine: {replicas: 5, num_gpus_per_replica: 1}}
judge: {replicas: 4, num_cpus_per_replica: 3}
"""
NEW_STYLE = [  # the same settings under the new names, as --set overrides
    "generation={actors: 3, num_cpus: 2, num_gpus: 0.5, batch_size: 4}",
    "evaluation.models=[{name: q, model: org/q, trust_remote_code: true}, org/r]",
    "evaluation.raven={actors: 2, engine: {actors: 5, num_gpus: 1}}",
    "judge={actors: 4, num_cpus: 3}",
]


def test_old_key_names_resolve_as_the_new_ones(tmp_path: Path) -> None:
    old = load_config(write(tmp_path, OLD_STYLE))
    new = load_config(None, NEW_STYLE)
    for section in ("generation", "evaluation", "judge"):
        assert getattr(old, section).model_dump() == getattr(new, section).model_dump(), section
    gen, engine = new.generation, new.evaluation.raven.engine
    assert (gen.actors, gen.num_cpus, gen.num_gpus, engine.actors, engine.num_gpus) == (3, 2.0, 0.5, 5, 1.0)
    assert (new.judge.actors, new.judge.num_cpus) == (4, 3.0)
    assert [(s.name, s.model) for s in old.evaluation.model_specs()] == [("q", "org/q"), ("org--r", "org/r")]
    assert "replicas" not in to_yaml(old)  # the resolved config speaks the new names only
    assert load_config(None, ["generation.replicas=2"]).generation.actors == 2  # --set with the old name


def test_both_names_of_one_key_is_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, ["generation.replicas=2", "generation.actors=3"])
    assert "actors and replicas are one key (actors); give one" in str(err.value) and "\n" not in str(err.value)


def test_resource_keys_leave_the_evaluation_key_alone(tmp_path: Path) -> None:
    from hiwar.evaluation.run import evaluation_key
    from hiwar.run_layout import RunLayout

    def key(*overrides: str) -> dict:
        config = load_config(None, [f"run_dir={tmp_path}", "evaluation.models=[org/q]", *overrides])
        return evaluation_key(config, RunLayout(config))

    base = key()
    assert base["evaluation models"]["org--q"]["path"] == "org/q"
    assert key("evaluation.raven.engine.replicas=4", "evaluation.perplexity.accelerator_type=A100") == base
    assert key("evaluation.perplexity.dtype=float32") != base  # a key that decides the scores does count
