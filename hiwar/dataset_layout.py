"""The layout of a hiwar dataset folder, shared by generation (writer), training and evaluation (readers).

    <dataset>/data/{split}-{shard:05d}.parquet   accepted conversations, split train/validation/test
    <dataset>/rejects/*.parquet                   rejected generations with raw text and reasons
    <dataset>/stats.json                          counts and distributions
    <dataset>/README.md                           Hugging Face dataset card
    <dataset>/config.resolved.yaml                the config that made it

``datasets.load_dataset("parquet", data_dir=f"{dataset}/data")`` finds the splits by their file names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hiwar.errors import DataError
from hiwar.record import Conversation
from hiwar.records_io import data_files, read_records

SPLITS = ("train", "validation", "test")
STATS_FILE = "stats.json"


def read_stats(dataset_dir: str | Path) -> dict[str, Any]:
    """A dataset folder's ``stats.json`` (what generation counted: rows, rejects, splits, throughput)."""
    return json.loads((Path(dataset_dir) / STATS_FILE).read_text(encoding="utf-8"))


def split_files(dataset_dir: str | Path, split: str) -> list[Path]:
    """Parquet files of ``split`` in a hiwar dataset folder (empty if the folder has none)."""
    return sorted((Path(dataset_dir) / "data").glob(f"{split}-*.parquet"))


def is_dataset_dir(path: str | Path) -> bool:
    """Whether ``path`` is a hiwar dataset folder (it has a ``data/`` folder of split shards)."""
    return (Path(path) / "data").is_dir()


def resolve_split(path: str | Path, split: str | None) -> list[Path]:
    """Files to read for ``split``: a dataset folder's split shards, or any Parquet/JSONL file or folder as is.

    Raises:
        DataError: missing path, or a dataset folder with no shards for ``split``.
    """
    path = Path(path)
    if split is not None and is_dataset_dir(path):
        files = split_files(path, split)
        if not files:
            raise DataError(f"{path}: dataset has no '{split}' split (no data/{split}-*.parquet)")
        return files
    return data_files(path)


def read_split(path: str | Path, split: str | None) -> list[Conversation]:
    """Conversations of ``split`` from a dataset folder, or every conversation of a plain file or folder.

    Raises:
        DataError: as :func:`resolve_split`, or when the split holds no conversations.
    """
    records = [r for f in resolve_split(path, split) for r in read_records(f)]
    if not records:
        raise DataError(f"{path}: split '{split}' holds no conversations")
    return records
