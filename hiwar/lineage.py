"""Lineage: fingerprints of inputs and the code version, recorded beside every artifact."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hiwar import __version__
from hiwar.atomic import write_text


def fingerprint(paths: Iterable[str | Path]) -> str:
    """SHA-256 over the names (relative order as given) and bytes of ``paths``; the first 16 hex digits."""
    digest = hashlib.sha256()
    for path in paths:
        path = Path(path)
        digest.update(path.name.encode())
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def folder_stamp(path: str | Path) -> str | None:
    """Names, sizes and modification times of a local folder's files, hashed (first 16 hex digits); None for
    anything that is not a local folder (a hub id is named by the config instead).

    Cheap where :func:`fingerprint` would read gigabytes of weights: a model retrained in place gets a new stamp.
    """
    folder = Path(path)
    if not str(path) or not folder.is_dir():
        return None
    stats = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file())
    return hashlib.sha256(repr(stats).encode()).hexdigest()[:16]


def code_version() -> dict[str, str | None]:
    """hiwar's version and, when run from a git checkout, its commit (with '+dirty' for local changes)."""
    root = Path(__file__).resolve().parents[1]
    commit = None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty=+dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        commit = out.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"hiwar": __version__, "git": commit}


def code_text(version: dict[str, Any]) -> str:
    """:func:`code_version` in words for reports: ``hiwar 0.1.0 (git 3dda18ddf700)``."""
    git = f" (git {version['git']})" if version.get("git") else ""
    return f"hiwar {version.get('hiwar')}{git}"


def finite(data: Any) -> Any:
    """``data`` with NaN and infinities replaced by None (strict JSON has neither)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def write_json(path: str | Path, data: dict[str, Any]) -> Path:
    """Write pretty UTF-8 JSON (Arabic kept readable), atomically: a killed job never leaves half a file."""
    return write_text(path, json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n")
