"""Work shards: the unit of resume of a long Ray Data job (generation's shard chain, the judge).

A job's inputs, in a fixed order, are cut into consecutive shards of ``shard_size``; shard ``k`` is finished when
its file ``shards/shard-{k:05d}.parquet`` exists. Files are written atomically (temporary file, then rename), so a
killed job leaves only whole shards and a rerun sends exactly the shards that have no file. The marker that makes
sure the shards were made from the same inputs is the caller's (generation's plan marker; the judge's work folder
named by its key), under :mod:`hiwar.markers`' rule. How a job streams rows back and decides that a shard's last
row has arrived differs (generation: one answer per row; the judge: rounds of retries) and stays with the job.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from hiwar.atomic import atomic_path

T = TypeVar("T")

SHARD_GLOB = "shard-*.parquet"


def shard_path(shards_dir: Path, shard: int) -> Path:
    """The file of work shard ``shard``."""
    return shards_dir / f"shard-{shard:05d}.parquet"


def cut(items: Sequence[T], size: int) -> list[list[T]]:
    """``items`` as consecutive shards of ``size`` (the last may be shorter); shard ``k`` starts at ``k * size``."""
    return [list(items[k : k + size]) for k in range(0, len(items), size)]


def unfinished(shards_dir: Path, n_shards: int) -> list[int]:
    """The shards of ``range(n_shards)`` that have no file yet: what a (re)run still has to do."""
    return [k for k in range(n_shards) if not shard_path(shards_dir, k).exists()]


def finished(shards_dir: Path) -> list[Path]:
    """The finished shards' files, in shard order."""
    return sorted(shards_dir.glob(SHARD_GLOB))


def write_shard(rows: Any, path: Path, sort_by: str) -> None:
    """Write one finished shard atomically, rows sorted by the ``sort_by`` column.

    Args:
        rows: a pyarrow Table, a list of Tables of one schema, or a list of row dicts.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(rows, list):
        rows = pa.concat_tables(rows) if rows and isinstance(rows[0], pa.Table) else pa.Table.from_pylist(rows)
    with atomic_path(path) as tmp:
        pq.write_table(rows.sort_by(sort_by), tmp)


def read_shards(shards_dir: Path, sort_by: str) -> list[dict[str, Any]]:
    """Every row of every finished shard, sorted by ``sort_by``.

    Files are read one by one, not concatenated: a column that is empty in one shard may have another Arrow type
    there (``list<null>`` for lists that are empty in every row).
    """
    import pyarrow.parquet as pq

    rows = [row for f in finished(shards_dir) for row in pq.read_table(f).to_pylist()]
    return sorted(rows, key=lambda r: r[sort_by])
