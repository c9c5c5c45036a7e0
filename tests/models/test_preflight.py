"""The preflight: one case per problem it detects, each one line with exit 2 before Ray starts; and
``hiwar doctor --model`` / ``-c`` telling which model runs on which engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hiwar.cli import cli
from tests.models.arabiangpt import build_tiny_arabiangpt


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output.strip()


def generate(tmp_path: Path, model: Path | str, *sets: str) -> tuple[int, str]:
    args = ["generate", "--set", f"run_dir={tmp_path / 'run'}", "--set", f"generation.model={model}"]
    for item in ("generation.grid.limit=2", *sets):
        args += ["--set", item]
    return invoke(*args)


def assert_one_line(code: int, out: str, *parts: str) -> None:
    assert code == 2, out
    assert len(out.splitlines()) == 1 and "Traceback" not in out, out
    for part in parts:
        assert part in out, out


@pytest.fixture(scope="module")
def arabiangpt_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_arabiangpt(tmp_path_factory.mktemp("agpt") / "raw", declare=False)


@pytest.fixture(scope="module")
def aragpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hiwar.tiny_models import build_tiny_aragpt2

    return build_tiny_aragpt2(tmp_path_factory.mktemp("aragpt2") / "hub")


def test_remote_code_that_hiwar_does_not_port(tmp_path: Path) -> None:
    model = tmp_path / "mystery"
    model.mkdir()
    config = {
        "model_type": "mystery",
        "architectures": ["MysteryLM"],
        "auto_map": {"AutoConfig": "configuration_mystery.MysteryConfig"},
    }
    (model / "config.json").write_text(json.dumps(config))
    code, out = generate(tmp_path, model)
    assert_one_line(code, out, f"generation.model='{model}'", "needs the model's own code", "trust_remote_code")


def test_tokenizer_without_eos(tmp_path: Path, arabiangpt_raw: Path) -> None:
    code, out = generate(tmp_path, arabiangpt_raw)
    assert_one_line(code, out, "the tokenizer names no EOS token", "eos_token", "'<EOS>'")
    assert_one_line(*generate(tmp_path, arabiangpt_raw, "generation.eos_token=<nope>"), "is not in the tokenizer")


def test_context_too_small_for_the_settings(tmp_path: Path, tiny_gpt2: Path) -> None:
    code, out = generate(tmp_path, tiny_gpt2, "generation.max_model_len=4096")
    assert_one_line(code, out, "max_model_len=4096 is above the model's 512 positions")
    code, out = generate(tmp_path, tiny_gpt2, "generation.sampling.max_tokens=600")
    assert_one_line(code, out, "sampling.max_tokens=600 leaves no room for a prompt in 512 tokens")


def test_missing_and_corrupt_weights(tmp_path: Path, tiny_gpt2: Path) -> None:
    model = tmp_path / "no-weights"
    shutil.copytree(tiny_gpt2, model)
    (model / "model.safetensors").unlink()
    assert_one_line(*generate(tmp_path, model), "no weights in the folder")
    (model / "model.safetensors").write_bytes(b"garbage")
    assert_one_line(*generate(tmp_path, model), "weights file model.safetensors is corrupt")


def test_training_a_model_with_corrupt_weights_fails_before_ray(tmp_path: Path, tiny_gpt2: Path) -> None:
    from hiwar.assets import load_seed_conversations
    from hiwar.records_io import write_parquet

    model = tmp_path / "corrupt"
    shutil.copytree(tiny_gpt2, model)
    (model / "model.safetensors").write_bytes(b"\x00" * 16)
    write_parquet(load_seed_conversations()[:4], tmp_path / "ds" / "data" / "train-00000.parquet")
    code, out = invoke(
        "train",
        "--set",
        f"run_dir={tmp_path / 'run'}",
        "--set",
        f"training.models=[{{name: m, model: {model}}}]",
        "--dataset",
        str(tmp_path / "ds"),
    )
    assert_one_line(code, out, "training.models[0] (m): model", "weights file model.safetensors is corrupt")


def test_doctor_tells_which_engine_runs_aragpt2(aragpt2: Path) -> None:
    code, out = invoke("doctor", "--model", str(aragpt2))
    assert code == 0, out
    assert out.startswith(f"ok  transformers {aragpt2}  (architecture AraGPT2LMHeadModel, positions 128")
    pytest.importorskip("vllm")
    code, out = invoke("doctor", "--model", str(aragpt2), "--engine", "all")
    assert code == 2
    lines = out.splitlines()
    assert lines[0].startswith("ok  transformers")
    assert lines[1] == (
        f"--  vllm         {aragpt2}  --model: model '{aragpt2}': AraGPT2 (Grover) has no vLLM implementation; "
        "use engine: transformers"
    )
    assert lines[-1].startswith("Error: 1 of 2 model/engine check(s) failed")


def test_doctor_checks_every_model_of_a_config(tmp_path: Path, tiny_gpt2: Path, arabiangpt_raw: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text(
        f"generation:\n  model: {tiny_gpt2}\n"
        f"training:\n  models:\n    - {{name: agpt, model: {arabiangpt_raw}}}\n"
        f"    - {{name: agpt-fixed, model: {arabiangpt_raw}, eos_token: '<EOS>', pad_token: '<PAD>'}}\n"
        f"evaluation:\n  models: [{{path: {tmp_path / 'missing'}}}]\n"
    )
    code, out = invoke("doctor", "-c", str(config))
    assert code == 2
    lines = out.splitlines()
    assert lines[0].startswith(f"ok  transformers {tiny_gpt2}")
    assert "training.models[0] (agpt)" in lines[1] and "names no EOS token" in lines[1]
    assert lines[2].startswith(f"ok  transformers {arabiangpt_raw}") and "eos <EOS>, pad <PAD>" in lines[2]
    assert "no such model folder" in lines[3]
    assert lines[-1].startswith("Error: 2 of 4 model/engine check(s) failed")
