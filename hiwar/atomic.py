"""Atomic writes: a file is written under a temporary name beside it and renamed onto its path, so a reader (or a
rerun after a kill) sees the old file or the new one, never half of one.

The temporary name is unique per writer (process id and a random part): two processes writing the same file at once
(two warm workers filling the import cache, two jobs finishing the same marker) each rename a whole file of their
own, where a fixed ``<name>.tmp`` let one writer rename or truncate the other's half-written file. The name ends in
``.tmp``, so globs for finished files (``*.parquet``, ``*.json``) never see it. Only ``os`` and ``secrets`` are
imported: :mod:`hiwar.import_cache` uses this while ``import hiwar`` runs.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def temporary_name(path: str | Path) -> Path:
    """A fresh temporary path beside ``path``: ``<name>.<pid>-<random>.tmp``."""
    path = Path(path)
    return path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; on leaving the block, rename it onto ``path``.

    If the block raises, the temporary file is removed and ``path`` is left as it was. The file is created by the
    writer (plain ``open``), so it gets the usual permissions from the umask, not the 0600 of ``mkstemp``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | Path, encoding: str = "utf-8", newline: str | None = None) -> Iterator[IO[str]]:
    """A text file to write ``path``'s content to: closed and renamed onto ``path`` when the block ends without an
    error, removed (``path`` left as it was) when it raises."""
    # "x": a name clash is an error, never a shared file. The file closes before atomic_path renames it.
    with atomic_path(path) as tmp, open(tmp, "x", encoding=encoding, newline=newline) as fh:
        yield fh


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return ``path``."""
    with atomic_open(path) as fh:
        fh.write(text)
    return Path(path)
