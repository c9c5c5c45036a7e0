"""Where a submitted hiwar job starts on the cluster when it needs more than ``python -m hiwar.cli``.

``hiwar submit`` uses it for two things Ray's runtime_env cannot do by itself: check that secret variables are
set on the cluster (their values never travel with the job), and write an attached config file back to disk.

Usage (built by :func:`hiwar.cluster.job_spec.build_job_spec`)::

    python -m hiwar.cluster.job_entry --require-env=HF_TOKEN -- generate -c '{HIWAR_JOB_CONFIG}'
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from hiwar.cluster.job_spec import CONFIG_ENV, CONFIG_PLACEHOLDER


def missing_env(names: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The names in ``names`` that are unset or empty in ``environ``."""
    return [name for name in names if not environ.get(name)]


def restore_config(args: Sequence[str], environ: Mapping[str, str], folder: Path | None = None) -> list[str]:
    """Write the attached config text to a file and point the placeholder argument at it."""
    if not any(CONFIG_PLACEHOLDER in arg for arg in args):
        return list(args)
    if CONFIG_ENV not in environ:
        raise SystemExit(f"hiwar job: {CONFIG_ENV} is not set, so the attached config is missing")
    folder = folder or Path(tempfile.mkdtemp(prefix="hiwar-job-"))
    path = folder / "config.yaml"
    path.write_text(environ[CONFIG_ENV], encoding="utf-8")
    return [arg.replace(CONFIG_PLACEHOLDER, str(path)) for arg in args]


def parse(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` into (required variable names, hiwar arguments)."""
    parser = argparse.ArgumentParser(prog="python -m hiwar.cluster.job_entry")
    parser.add_argument("--require-env", action="append", default=[], metavar="NAME")
    parser.add_argument("hiwar_args", nargs=argparse.REMAINDER)
    ns = parser.parse_args(list(argv))
    args = ns.hiwar_args[1:] if ns.hiwar_args[:1] == ["--"] else ns.hiwar_args
    return ns.require_env, args


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Check required variables, restore the config, then run the hiwar command (exits with its status)."""
    import os

    environ = os.environ if environ is None else environ
    required, args = parse(sys.argv[1:] if argv is None else argv)
    missing = missing_env(required, environ)
    if missing:
        # Names only: a value never reaches a log.
        print(
            f"hiwar job: {', '.join(missing)} not set on the cluster; secrets never travel with a job, "
            "so set them where Ray runs (see docs/scale-out.md, 'Secrets')",
            file=sys.stderr,
        )
        return 2
    from hiwar.cli import cli

    return cli.main(args=restore_config(args, environ), prog_name="hiwar")


if __name__ == "__main__":
    sys.exit(main())
