"""Turn a hiwar command into a Ray job spec: an entrypoint and a ``runtime_env`` that never holds a secret.

What travels with the job:

- the project (``working_dir``, without virtualenvs, run folders, git history or caches), or a prebuilt image;
- the config file: rewritten to its path inside ``working_dir`` when it lies there, otherwise attached as the
  text of the ``HIWAR_JOB_CONFIG`` variable and written back to a file by :mod:`hiwar.cluster.job_entry`;
- pip packages or a requirements file;
- environment variables by name, their values read from this shell. Names that look like secrets (``*KEY*``,
  ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ...) are never sent: Ray stores the job spec and shows it on the
  dashboard. The job instead checks on the cluster that they are set there, and stops at once if not.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiwar.errors import ConfigError, HiwarError
from hiwar.textfiles import read_text

# Names whose values must never enter a job spec (matched anywhere in the name, case-insensitively).
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|PRIVATE", re.IGNORECASE)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Kept out of the uploaded working_dir (Ray also honours .gitignore and .rayignore files).
PROJECT_EXCLUDES = (
    ".venv",
    "venv",
    ".git",
    "runs",
    "hiwar_runs",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    "build",
    "dist",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    ".ipynb_checkpoints",
)

CONFIG_ENV = "HIWAR_JOB_CONFIG"
CONFIG_PLACEHOLDER = "{HIWAR_JOB_CONFIG}"
CONFIG_FLAGS = ("-c", "--config")


@dataclass
class JobSpec:
    """What :meth:`JobSubmissionClient.submit_job` receives, plus notes for the user."""

    entrypoint: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str]
    command: list[str]
    required_env: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def hiwar_args(command: Sequence[str]) -> list[str]:
    """The hiwar arguments of ``command``, without a leading ``hiwar`` or ``--``."""
    args = list(command)
    while args and args[0] in ("--", "hiwar"):
        args = args[1:]
    if not args:
        raise HiwarError("submit: give the hiwar command to run after --, e.g. hiwar submit -- doctor --no-ray")
    return args


def check_command(command: Sequence[str], parser: Any) -> None:
    """Parse a command for ``hiwar submit`` against ``parser`` (hiwar's click group), here, so a typo never reaches
    the cluster.

    Only the arguments are parsed (names, options, types); nothing runs. ``--help`` and ``--version`` pass.

    Raises:
        HiwarError: the command, as click would report it, on one line.
    """
    import click

    args = hiwar_args(command)
    if any(a in ("--help", "-h", "--version") for a in args):
        return
    cmd: click.Command = parser
    name, parent, rest = "hiwar", None, list(args)
    try:
        while True:
            ctx = cmd.context_class(cmd, info_name=name, parent=parent, **cmd.context_settings)
            if not isinstance(cmd, click.Group):
                cmd.parse_args(ctx, rest)
                return
            if rest:  # the group's own options (a group with no arguments at all would print its help)
                rest = click.Command.parse_args(cmd, ctx, rest)
            if not rest:
                raise click.UsageError(f"missing command (one of {', '.join(cmd.list_commands(ctx))})", ctx)
            name, sub, rest = cmd.resolve_command(ctx, rest)
            cmd, parent = sub, ctx
    except click.ClickException as err:
        message = " ".join(err.format_message().split())
        raise HiwarError(f"submit: hiwar {' '.join(args)}: {message}") from err


def split_env_names(names: Sequence[str], environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Split ``--env-var`` names into (plain name -> local value, secret names required on the cluster).

    Raises:
        HiwarError: a name is malformed, carries a value, or (for a plain name) is not set here.
    """
    plain: dict[str, str] = {}
    secret: list[str] = []
    for name in names:
        if "=" in name:
            raise HiwarError(
                f"--env-var {name.split('=')[0]}=...: give a NAME only; its value is read from "
                "this shell at submit time"
            )
        if not ENV_NAME.fullmatch(name):
            raise HiwarError(f"--env-var {name!r}: not an environment variable name")
        if SECRET_NAME.search(name):
            secret.append(name)
        elif name not in environ:
            raise HiwarError(f"--env-var {name}: not set in this shell, so there is no value to send")
        else:
            plain[name] = environ[name]
    return plain, secret


def find_config(args: Sequence[str]) -> tuple[int, str, str] | None:
    """Locate the config option: (argument index, path, form: ``split``, ``joined`` or ``short``)."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in CONFIG_FLAGS and i + 1 < len(args):
            return i + 1, args[i + 1], "split"
        if arg.startswith("--config="):
            return i, arg.split("=", 1)[1], "joined"
        if arg.startswith("-c") and len(arg) > 2 and not arg.startswith("--"):
            return i, arg[2:], "short"
    return None


def set_config_arg(args: list[str], index: int, form: str, value: str) -> list[str]:
    """A copy of ``args`` with the config path at ``index`` replaced by ``value`` (same form)."""
    prefix = {"split": "", "joined": "--config=", "short": "-c"}[form]
    out = list(args)
    out[index] = prefix + value
    return out


def overrides_of(args: Sequence[str]) -> list[str]:
    """The ``--set KEY=VALUE`` overrides in ``args``, so the config can be checked before submitting."""
    found = []
    for i, arg in enumerate(args):
        if arg == "--set" and i + 1 < len(args):
            found.append(args[i + 1])
        elif arg.startswith("--set="):
            found.append(arg.split("=", 1)[1])
    return found


def check_config(path: str | None, overrides: list[str]) -> list[str]:
    """Load the run config here, so a bad file fails before upload; return notes about cluster paths."""
    from hiwar.config import load_config

    config = load_config(path, overrides)
    if not Path(config.run_dir).is_absolute() and "://" not in config.run_dir:
        return [
            f"note: run_dir={config.run_dir!r} is relative: on the cluster it lands inside the job's "
            "temporary working_dir and is lost when the job ends; use shared storage (see docs/scale-out.md)"
        ]
    return []


def _place_config(args: list[str], working_dir: Path | None, env_vars: dict[str, str]) -> tuple[list[str], bool]:
    """Make the config file reach the job; returns the new args and whether the job must write it back."""
    found = find_config(args)
    if found is None:
        return args, False
    index, raw, form = found
    path = Path(raw).expanduser().resolve()
    if not path.is_file():
        raise HiwarError(f"--config {raw}: file not found")
    if working_dir is not None and path.is_relative_to(working_dir):
        # The job's current directory is the unpacked working_dir, so a relative path finds the same file.
        return set_config_arg(args, index, form, path.relative_to(working_dir).as_posix()), False
    env_vars[CONFIG_ENV] = read_text(path, error=ConfigError)
    return set_config_arg(args, index, form, CONFIG_PLACEHOLDER), True


def build_job_spec(
    command: Sequence[str],
    *,
    working_dir: str | Path | None = None,
    pip: Sequence[str] = (),
    requirements: str | Path | None = None,
    image: str | None = None,
    env_names: Sequence[str] = (),
    excludes: Sequence[str] = (),
    python: str = "python",
    environ: Mapping[str, str] | None = None,
) -> JobSpec:
    """Build the entrypoint and runtime_env for one hiwar command.

    Args:
        command: the hiwar command and its arguments (a leading ``hiwar`` is dropped).
        working_dir: the project folder to upload (default: the current folder; none with ``image``).
        pip: pip requirement strings installed for the job; or ``requirements``, a requirements file.
        image: a container image that already holds hiwar (Ray's ``image_uri``; needs podman on the nodes).
        env_names: environment variable names; see the module docstring for secrets.
        excludes: extra gitignore-style patterns kept out of the upload.
        python: the interpreter on the cluster that runs hiwar.
        environ: where values are read (default: ``os.environ``).

    Raises:
        HiwarError: incompatible options, a missing file or variable, or an invalid config.
    """
    environ = os.environ if environ is None else environ
    args = hiwar_args(command)
    _check_options(pip, requirements, image, working_dir)
    wd = None if image else _working_dir(working_dir or ".")
    env_vars, required = split_env_names(env_names, environ)
    found = find_config(args)
    notes = check_config(found[1] if found else None, overrides_of(args)) if found or overrides_of(args) else []
    args, attached = _place_config(args, wd, env_vars)
    from hiwar import __version__

    return JobSpec(
        entrypoint=shlex.join([*_launcher(python, required, attached), *args]),
        runtime_env=_runtime_env(wd, pip, requirements, image, env_vars, excludes),
        metadata={"hiwar_command": args[0], "hiwar_version": __version__},
        command=args,
        required_env=required,
        notes=notes + _secret_notes(required, attached),
    )


def _check_options(
    pip: Sequence[str], requirements: str | Path | None, image: str | None, working_dir: str | Path | None
) -> None:
    """Refuse option combinations Ray cannot honour."""
    if pip and requirements:
        raise HiwarError("submit: give --pip or --requirements, not both")
    if image and (pip or requirements or working_dir is not None):
        raise HiwarError(
            "submit --image: the image must already hold hiwar and its packages; Ray cannot add a "
            "working_dir or pip packages to an image_uri job (drop --working-dir/--pip/--requirements)"
        )


def _launcher(python: str, required: list[str], attached: bool) -> list[str]:
    """How the job starts hiwar: through :mod:`hiwar.cluster.job_entry` when it must check secret names on the
    cluster or write an attached config back to a file, else the CLI directly."""
    if required or attached:
        return [python, "-m", "hiwar.cluster.job_entry", *(f"--require-env={n}" for n in required), "--"]
    return [python, "-m", "hiwar.cli"]


def _secret_notes(required: list[str], attached: bool) -> list[str]:
    """What the user should know about values that do not travel in the spec."""
    notes = [
        f"note: {n} looks like a secret: its value is not sent; the job requires it to be set on the cluster"
        for n in required
    ]
    if attached:
        notes.append(f"note: the config file lies outside the working_dir: its text travels in {CONFIG_ENV}")
    return notes


def _working_dir(working_dir: str | Path | None) -> Path | None:
    if working_dir is None:
        return None
    path = Path(working_dir).expanduser().resolve()
    if not path.is_dir():
        raise HiwarError(f"--working-dir {working_dir}: not a folder")
    return path


def _runtime_env(
    wd: Path | None,
    pip: Sequence[str],
    requirements: str | Path | None,
    image: str | None,
    env_vars: dict[str, str],
    excludes: Sequence[str],
) -> dict[str, Any]:
    env: dict[str, Any] = {}
    if wd is not None:
        env["working_dir"] = str(wd)
        env["excludes"] = [*PROJECT_EXCLUDES, *excludes]
    if pip:
        env["pip"] = list(pip)
    if requirements:
        req = Path(requirements).expanduser().resolve()
        if not req.is_file():
            raise HiwarError(f"--requirements {requirements}: file not found")
        env["pip"] = str(req)  # Ray reads the file at submit time
    if image:
        env["image_uri"] = image
    if env_vars:
        env["env_vars"] = dict(env_vars)
    return env
