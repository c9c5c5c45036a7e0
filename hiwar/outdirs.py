"""Output folders: every command checks each place it will write before any work (or Ray) starts.

A folder that is a file, lies under a file, or cannot be written is one line naming the config key (or option)
and the path, exit status 2, instead of a ``NotADirectoryError`` or ``PermissionError`` after a long job.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from hiwar.errors import HiwarError


def output_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be (created and) written as a folder, or None when it can.

    The check is real: it creates and deletes a small file in the folder, or in its nearest existing parent,
    so read-only file systems, immutable folders and missing permissions are found even when running as root.
    """
    path = Path(path).expanduser()
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            return f"{existing} is a broken symbolic link"
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return "is a file, not a folder" if existing == path else f"lies under {existing}, which is a file"
    try:
        fd, probe = tempfile.mkstemp(prefix=".hiwar-write-check-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        where = "" if existing == path else f" in {existing}"
        return f"cannot write{where} ({err.strerror or err})"
    return None


def check_output_dirs(places: Iterable[tuple[str, str | Path]]) -> None:
    """Check every ``(key, folder)`` a command will write to; the key names the config key or option.

    Raises:
        HiwarError: one line for the first folder that cannot be written.
    """
    for key, path in places:
        problem = output_problem(path)
        if problem:
            raise HiwarError(f"{key}={path}: {problem}")


def make_output_dir(key: str, path: str | Path) -> Path:
    """Check ``path`` (see :func:`check_output_dirs`), then create it; returns it as a Path."""
    check_output_dirs([(key, path)])
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    return out
