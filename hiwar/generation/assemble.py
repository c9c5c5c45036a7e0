"""From finished work shards to the dataset folder: dedup, conversations, rejects and splits."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiwar.atomic import atomic_path
from hiwar.dataset_layout import SPLITS
from hiwar.generation.config import GenerationConfig, SplitConfig
from hiwar.generation.dedup import find_duplicates
from hiwar.record import Conversation, Generator

REJECT_COLUMNS = (
    "id",
    "topic",
    "country",
    "sample_index",
    "seed",
    "n_turns",
    "reasons",
    "languages",
    "duplicate_of",
    "error",
    "raw_text",
    "num_prompt_tokens",
    "num_generated_tokens",
    "created_at",
)


@dataclass
class Assembled:
    """Accepted conversations and rejects of a whole run, plus the work rows they came from."""

    accepted: list[Conversation] = field(default_factory=list)
    rejects: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def read_work(shards_dir: Path) -> list[dict[str, Any]]:
    """Every finished work row, sorted by id."""
    from hiwar.work_shards import read_shards

    return read_shards(shards_dir, "id")


def to_conversation(row: dict[str, Any], cfg: GenerationConfig, prompt_format: str) -> Conversation:
    """A validated work row as the record type."""
    return Conversation(
        id=row["id"],
        messages=json.loads(row["messages_json"]),
        topic=row["topic"],
        country=row["country"],
        generator=Generator(
            model=cfg.model,
            engine=cfg.engine,
            prompt_version=cfg.prompt_version,
            sampling=cfg.sampling.model_dump(),
        ),
        seed=int(row["seed"]),
        created_at=row["created_at"],
        metadata={
            "sample_index": row["sample_index"],
            "n_turns_requested": row["n_turns"],
            "prompt_format": prompt_format,
            "num_prompt_tokens": row["num_prompt_tokens"],
            "num_generated_tokens": row["num_generated_tokens"],
        },
    )


def reject_row(row: dict[str, Any], reasons: list[str], duplicate_of: str = "") -> dict[str, Any]:
    """A rejects-table row: the raw text, every reason, and each message's language."""
    out = {k: row[k] for k in REJECT_COLUMNS if k in row}
    out.setdefault("languages", [])
    out.update(reasons=list(reasons), duplicate_of=duplicate_of, raw_text=row["generated_text"] or "")
    return out


def assemble(rows: list[dict[str, Any]], cfg: GenerationConfig, prompt_format: str) -> Assembled:
    """Validated rows minus duplicates (first id kept) become conversations; the rest become rejects."""
    valid = {r["id"]: json.loads(r["messages_json"]) for r in rows if not r["reasons"]}
    dups = find_duplicates(valid, cfg.dedup)
    out = Assembled(rows=rows)
    for row in rows:
        if row["reasons"]:
            out.rejects.append(reject_row(row, row["reasons"]))
        elif row["id"] in dups:
            out.rejects.append(reject_row(row, [dups[row["id"]].reason], dups[row["id"]].of))
        else:
            out.accepted.append(to_conversation(row, cfg, prompt_format))
    return out


def write_rejects(rejects: list[dict[str, Any]], dataset: Path, rows_per_file: int) -> None:
    """Replace ``rejects/`` with the run's rejects (at least one file, possibly empty)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hiwar.generation.postprocess import grid_fields, language_type

    schema = pa.schema(
        [
            *grid_fields(),
            ("reasons", pa.list_(pa.string())),
            ("languages", pa.list_(language_type())),
            ("duplicate_of", pa.string()),
            ("error", pa.string()),
            ("raw_text", pa.string()),
            ("num_prompt_tokens", pa.int64()),
            ("num_generated_tokens", pa.int64()),
            ("created_at", pa.string()),
            ("judge", pa.string()),  # generation.judge: the scores (JSON) of a judge_below_threshold reject
        ]
    )
    folder = dataset / "rejects"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    for shard, start in enumerate(range(0, max(len(rejects), 1), rows_per_file)):
        table = pa.Table.from_pylist(rejects[start : start + rows_per_file], schema=schema)
        with atomic_path(folder / f"rejects-{shard:05d}.parquet") as tmp:
            pq.write_table(table, tmp)


def write_splits(
    convs: list[Conversation], dataset: Path, cfg: SplitConfig, seed: int, rows_per_file: int
) -> dict[str, int]:
    """Replace ``data/`` with deterministic splits of ``convs``. An empty split gets no file (``datasets``
    cannot read an empty Parquet file), so it is absent from the folder."""
    from hiwar.generation.splits import assign_splits
    from hiwar.records_io import write_parquet_shards

    data = dataset / "data"
    data.mkdir(parents=True, exist_ok=True)
    for old in data.glob("*.parquet"):
        old.unlink()
    parts = assign_splits(convs, cfg, seed)
    for split in SPLITS:
        if parts[split]:
            write_parquet_shards(parts[split], data, prefix=split, rows_per_shard=rows_per_file)
    return {split: len(parts[split]) for split in SPLITS}


def per_key(convs: list[Conversation], key: str) -> dict[str, int]:
    """Accepted conversations per topic or country, sorted by name."""
    counts: dict[str, int] = defaultdict(int)
    for conv in convs:
        counts[getattr(conv, key)] += 1
    return dict(sorted(counts.items()))
