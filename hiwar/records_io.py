"""Read and write conversations as Parquet shards and JSONL, validated at the boundary."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hiwar.atomic import atomic_open, atomic_path
from hiwar.errors import DataError
from hiwar.record import CONVERSATION_SCHEMA, Conversation, row_problem
from hiwar.textfiles import iter_lines

DATA_SUFFIXES = (".parquet", ".jsonl")


def to_table(records: Sequence[Conversation]) -> pa.Table:
    """Conversations as one Arrow table with the conversation schema."""
    return pa.Table.from_pylist([r.to_row() for r in records], schema=CONVERSATION_SCHEMA)


def write_parquet(records: Sequence[Conversation], path: str | Path) -> Path:
    """Write one Parquet file atomically (parent folders are created): a reader, or a rerun after a kill, finds the
    old file or the whole new one, never a truncated one (:mod:`hiwar.atomic`)."""
    with atomic_path(path) as tmp:
        pq.write_table(to_table(records), tmp)
    return Path(path)


def write_parquet_shards(
    records: Sequence[Conversation], out_dir: str | Path, prefix: str = "part", rows_per_shard: int = 10_000
) -> list[Path]:
    """Write ``prefix-00000.parquet``, ``prefix-00001.parquet``... with at most ``rows_per_shard`` rows each."""
    out_dir = Path(out_dir)
    paths = []
    for shard, start in enumerate(range(0, max(len(records), 1), rows_per_shard)):
        paths.append(write_parquet(records[start : start + rows_per_shard], out_dir / f"{prefix}-{shard:05d}.parquet"))
    return paths


def write_jsonl(records: Iterable[Conversation], path: str | Path) -> Path:
    """Write one JSONL file atomically, one conversation row per line (UTF-8, Arabic kept readable)."""
    with atomic_open(path) as fh:
        for record in records:
            fh.write(json.dumps(record.to_row(), ensure_ascii=False) + "\n")
    return Path(path)


def data_files(path: str | Path) -> list[Path]:
    """The Parquet/JSONL files at ``path``: the file itself, or those in a folder (recursively, sorted).

    Raises:
        DataError: the path does not exist or holds no data file.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix not in DATA_SUFFIXES:
            raise DataError(f"{path}: expected a .parquet or .jsonl file")
        return [path]
    files = sorted(p for p in path.rglob("*") if p.suffix in DATA_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{path}: folder holds no .parquet or .jsonl files")
    return files


def _raw_rows(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise DataError(f"{path}: not a readable Parquet file ({err})") from err
        missing = [c for c in ("id", "messages") if c not in table.column_names]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
        return table.to_pylist()
    rows = []
    for line_no, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: line {line_no}: not valid JSON ({err.msg})") from err
    return rows


def read_records(path: str | Path) -> list[Conversation]:
    """Read and validate every conversation at ``path`` (file or folder of Parquet/JSONL).

    Raises:
        DataError: naming the file, the row (0-based for Parquet, 1-based line for JSONL) and the problem.
    """
    records = []
    for file in data_files(path):
        for index, row in enumerate(_raw_rows(file)):
            where = f"line {index + 1}" if file.suffix == ".jsonl" else f"row {index}"
            problem = row_problem(row)
            if problem is None:
                try:
                    records.append(Conversation.from_row(row))
                    continue
                except (ValueError, TypeError, json.JSONDecodeError) as err:
                    problem = f"cannot decode ({err})"
            raise DataError(f"{file}: {where}: {problem}")
    return records
