"""hiwar submit / hiwar jobs: the job spec (no secrets, config placement) and a real job on a Ray head."""

from __future__ import annotations

import json
import shlex
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from hiwar.cli import cli
from hiwar.cluster import job_entry
from hiwar.cluster.job_spec import CONFIG_ENV, CONFIG_PLACEHOLDER, build_job_spec
from hiwar.cluster.jobs import (
    DEFAULT_ADDRESS,
    resolve_job_address,
    run_jobs_list,
    run_jobs_status,
    run_submit,
)
from hiwar.errors import ConfigError, HiwarError

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spec_text(spec: object) -> str:
    return json.dumps([spec.entrypoint, spec.runtime_env, spec.metadata])


def test_secret_values_never_enter_the_job_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "sekrit")
    monkeypatch.setenv("HIWAR_PLAIN", "plain-value")
    spec = build_job_spec(["hiwar", "doctor", "--no-ray"], working_dir=REPO, env_names=["HF_TOKEN", "HIWAR_PLAIN"])
    assert "sekrit" not in _spec_text(spec)
    assert spec.runtime_env["env_vars"] == {"HIWAR_PLAIN": "plain-value"}
    assert spec.required_env == ["HF_TOKEN"]
    assert shlex.split(spec.entrypoint) == [
        "python",
        "-m",
        "hiwar.cluster.job_entry",
        "--require-env=HF_TOKEN",
        "--",
        "doctor",
        "--no-ray",
    ]
    assert not any("sekrit" in note for note in spec.notes)


def test_secret_names_are_matched_by_pattern() -> None:
    env = {name: "v" for name in ("OPENAI_API_KEY", "aws_secret_access_key", "DB_PASSWORD", "GH_TOKEN", "MODE")}
    spec = build_job_spec(["config"], working_dir=REPO, env_names=list(env), environ=env)
    assert spec.required_env == ["OPENAI_API_KEY", "aws_secret_access_key", "DB_PASSWORD", "GH_TOKEN"]
    assert spec.runtime_env["env_vars"] == {"MODE": "v"}


def test_env_var_given_with_a_value_is_refused_without_echoing_it() -> None:
    with pytest.raises(HiwarError) as err:
        build_job_spec(["config"], working_dir=REPO, env_names=["MODE=hunter2"], environ={})
    assert "hunter2" not in str(err.value) and "MODE" in str(err.value)
    with pytest.raises(HiwarError, match="MODE: not set"):
        build_job_spec(["config"], working_dir=REPO, env_names=["MODE"], environ={})


def test_plain_command_uploads_the_project_without_venv() -> None:
    spec = build_job_spec(["hiwar", "config", "--set", "seed=3"], working_dir=REPO, environ={})
    assert spec.entrypoint == "python -m hiwar.cli config --set seed=3"
    assert spec.runtime_env["working_dir"] == str(REPO)
    assert {".venv", ".git", "runs"} <= set(spec.runtime_env["excludes"])
    assert "env_vars" not in spec.runtime_env
    assert spec.metadata["hiwar_command"] == "config"


def test_config_inside_working_dir_becomes_a_relative_path(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    config = tmp_path / "configs" / "run.yaml"
    config.write_text("seed: 5\n")
    spec = build_job_spec(["config", "-c", str(config)], working_dir=tmp_path, environ={})
    assert spec.entrypoint == "python -m hiwar.cli config -c configs/run.yaml"
    spec = build_job_spec(["config", f"--config={config}"], working_dir=tmp_path, environ={})
    assert spec.entrypoint == "python -m hiwar.cli config --config=configs/run.yaml"


def test_config_outside_working_dir_travels_and_is_restored(tmp_path: Path) -> None:
    project, outside = tmp_path / "project", tmp_path / "elsewhere.yaml"
    project.mkdir()
    outside.write_text("seed: 9\nrun_dir: /mnt/shared/x\n")
    spec = build_job_spec(["config", "-c", str(outside)], working_dir=project, environ={})
    env_vars = spec.runtime_env["env_vars"]
    assert env_vars[CONFIG_ENV] == outside.read_text()
    argv = shlex.split(spec.entrypoint)
    assert argv[:3] == ["python", "-m", "hiwar.cluster.job_entry"] and CONFIG_PLACEHOLDER in argv
    required, args = job_entry.parse(argv[3:])
    restored = job_entry.restore_config(args, env_vars, tmp_path)
    assert required == [] and restored == ["config", "-c", str(tmp_path / "config.yaml")]
    assert (tmp_path / "config.yaml").read_text() == outside.read_text()


def test_invalid_config_fails_before_submitting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("generation:\n  not_a_key: 1\n")
    with pytest.raises(ConfigError, match="not_a_key"):
        build_job_spec(["config", "-c", str(bad)], working_dir=tmp_path, environ={})
    with pytest.raises(HiwarError, match="file not found"):
        build_job_spec(["config", "-c", str(tmp_path / "nope.yaml")], working_dir=tmp_path, environ={})


def test_relative_run_dir_gets_a_note() -> None:
    spec = build_job_spec(["config", "--set", "run_dir=runs/x"], working_dir=REPO, environ={})
    assert any("run_dir='runs/x' is relative" in note for note in spec.notes)


def test_image_jobs_carry_no_working_dir_and_refuse_pip() -> None:
    spec = build_job_spec(["doctor"], image="ghcr.io/acme/hiwar:0.1", environ={})
    assert spec.runtime_env == {"image_uri": "ghcr.io/acme/hiwar:0.1"}
    with pytest.raises(HiwarError, match="--image"):
        build_job_spec(["doctor"], image="img", pip=["x"], environ={})
    with pytest.raises(HiwarError, match="after --"):
        build_job_spec(["hiwar"], working_dir=REPO, environ={})


def test_job_address_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_job_address() == DEFAULT_ADDRESS
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:6379")  # a GCS address is no job server: ignored
    assert resolve_job_address() == DEFAULT_ADDRESS
    monkeypatch.setenv("RAY_ADDRESS", "http://head:8265/")
    assert resolve_job_address() == "http://head:8265"
    assert resolve_job_address("http://other:8265") == "http://other:8265"
    with pytest.raises(HiwarError, match="HTTP address"):
        resolve_job_address("head:6379")


def test_unreachable_job_server_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "sekrit")
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(HiwarError, match="no Ray job server answers"):
        run_jobs_list(url)
    result = CliRunner().invoke(cli, ["submit", "--address", url, "--env-var", "HF_TOKEN", "--", "doctor"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(f"Error: --address {url}: no Ray job server")
    assert "sekrit" not in result.output


def test_job_entry_stops_when_a_required_secret_is_missing(capsys: pytest.CaptureFixture) -> None:
    code = job_entry.main(["--require-env=HF_TOKEN", "--require-env=OK_KEY", "--", "doctor"], {"OK_KEY": "v"})
    assert code == 2
    err = capsys.readouterr().err
    assert "HF_TOKEN not set on the cluster" in err and "OK_KEY" not in err


@pytest.mark.ray
@pytest.mark.slow
def test_submit_real_job_to_ray_head(ray_head, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Submit `hiwar config` with an outside config and a secret by name; follow it to SUCCEEDED."""
    monkeypatch.setenv("HF_TOKEN", "sekrit")
    monkeypatch.setenv("HIWAR_PLAIN", "plain-value")
    config = tmp_path / "run.yaml"
    config.write_text("seed: 11\ngeneration:\n  model: model-from-the-submitted-file\n")
    out_dir = tmp_path / "out"
    chunks: list[str] = []
    result = run_submit(
        ["hiwar", "config", "-c", str(config), "--set", f"run_dir={out_dir}"],
        address=ray_head.dashboard_url,
        working_dir=REPO,
        env_names=["HF_TOKEN", "HIWAR_PLAIN"],
        follow=True,
        echo=chunks.append,
    )
    logs = "".join(chunks)
    assert (result.status, result.exit_code) == ("SUCCEEDED", 0), logs
    # The job printed the config it resolved on the cluster: the file's values and the --set override.
    for expected in ("seed: 11", "model: model-from-the-submitted-file", f"run_dir: {out_dir}"):
        assert expected in logs

    info = run_jobs_status(result.job_id, ray_head.dashboard_url)
    stored = json.dumps([info.entrypoint, info.runtime_env, info.metadata])
    assert "sekrit" not in stored and "sekrit" not in logs and ray_head.secret not in logs
    assert info.runtime_env["env_vars"]["HIWAR_PLAIN"] == "plain-value"

    runner = CliRunner()
    listed = runner.invoke(cli, ["jobs", "list", "--address", ray_head.dashboard_url])
    assert listed.exit_code == 0 and result.job_id in listed.output and "SUCCEEDED" in listed.output
    fetched = runner.invoke(cli, ["jobs", "logs", result.job_id, "--address", ray_head.dashboard_url])
    assert fetched.exit_code == 0 and "model: model-from-the-submitted-file" in fetched.output

    # A secret the cluster lacks stops the job at once, and --follow exits 1.
    failed = runner.invoke(
        cli,
        [
            "submit",
            "--address",
            ray_head.dashboard_url,
            "--working-dir",
            str(REPO),
            "--env-var",
            "MISSING_API_KEY",
            "--follow",
            "--",
            "doctor",
            "--no-ray",
        ],
    )
    assert failed.exit_code == 1, failed.output
    assert "MISSING_API_KEY not set on the cluster" in failed.output and "FAILED" in failed.output
