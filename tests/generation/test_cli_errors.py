"""User errors of `hiwar generate` / `hiwar split`: one line, exit status 2, no traceback, before Ray
starts."""

from __future__ import annotations

from click.testing import CliRunner

from hiwar.cli import cli


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output.strip()


def test_missing_model_folder(tmp_path):
    code, out = invoke(
        "generate",
        "--set",
        f"run_dir={tmp_path}",
        "--set",
        "generation.model=/no/such/model",
        "--set",
        "generation.grid.limit=2",
    )
    assert code == 2
    assert out == "Error: generation.model='/no/such/model': no such model folder"


def test_model_folder_without_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    code, out = invoke("generate", "--set", f"run_dir={tmp_path}", "--set", f"generation.model={tmp_path}/empty")
    assert code == 2 and len(out.splitlines()) == 1
    assert out.startswith(f"Error: generation.model='{tmp_path}/empty': cannot load the model config")


def test_bad_config_values(tmp_path):
    code, out = invoke("generate", "--set", "generation.grid.per_pair=zero")
    assert code == 2 and len(out.splitlines()) == 1 and "generation.grid.per_pair" in out
    code, out = invoke("generate", "--set", "generation.grid.topics=[nope]", "--set", "generation.model=x")
    assert code == 2 and out == "Error: generation.grid.topics: unknown topics 'nope'"
    code, out = invoke("generate", "--set", "generation.splits.train=0.5")
    assert code == 2 and "must be 1.0" in out and len(out.splitlines()) == 1
    code, out = invoke(
        "generate",
        "--set",
        "generation.engine=openai",
        "--set",
        "generation.model=m",
        "--set",
        f"run_dir={tmp_path}",
        "--set",
        "generation.grid.limit=1",
    )
    assert code == 2 and out == (
        "Error: generation.base_url: the openai engine needs the server's base URL, e.g. http://127.0.0.1:8000/v1"
    )


def test_split_of_a_folder_that_is_no_dataset(tmp_path):
    code, out = invoke("split", "--dataset", str(tmp_path))
    assert (
        code == 2
        and out == f"Error: {tmp_path}: not a hiwar dataset folder (no data/ or stats.json); run `hiwar generate` first"
    )
