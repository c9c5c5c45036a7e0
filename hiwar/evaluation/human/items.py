"""What raters score: one reply by one model, given the dialogue before it.

Two loaders build the generic items table from hiwar's outputs:

- conversation records (a dataset folder's split, or Parquet/JSONL of records): the item is the conversation's
  last assistant turn, its context the messages before it, its model ``generator.model`` (or a given name);
- a replies file written by ``hiwar evaluate`` (Parquet or JSONL) with the columns ``model``,
  ``conversation_id``, ``topic``, ``context`` (a messages list, or that list as a JSON string) and ``reply``;
  optional ``reference`` (the dataset's own reply) and ``turn`` (when one conversation gives several items).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from hiwar.dataset_layout import is_dataset_dir, read_split
from hiwar.errors import DataError
from hiwar.record import ROLES, Conversation
from hiwar.records_io import data_files, read_records
from hiwar.textfiles import iter_lines

REPLY_COLUMNS = ("model", "conversation_id", "context", "reply")


@dataclass
class RatingItem:
    """One (model, reply) pair to rate; ``item_id`` is unique within a model."""

    model: str
    item_id: str
    context: list[dict[str, str]]
    reply: str
    topic: str = ""
    reference: str | None = None
    source: str = ""


def items_from_conversations(records: list[Conversation], model_name: str | None, source: str) -> list[RatingItem]:
    """Rate each conversation's last assistant turn given the messages before it.

    Raises:
        DataError: a conversation without an assistant turn, or no model name (neither given nor recorded).
    """
    items = []
    for record in records:
        turns = [i for i, m in enumerate(record.messages) if m["role"] == "assistant"]
        if not turns:
            raise DataError(f"{source}: conversation {record.id!r} has no assistant turn to rate")
        model = model_name or record.generator.model
        if not model:
            raise DataError(
                f"{source}: conversation {record.id!r} records no generator.model; name the model with --model"
            )
        last = turns[-1]
        items.append(
            RatingItem(
                model=model,
                item_id=record.id,
                context=record.messages[:last],
                reply=record.messages[last]["content"],
                topic=record.topic,
                source=source,
            )
        )
    return items


def _parse_context(value: Any) -> list[dict[str, str]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(f"'context' is not valid JSON ({err.msg})") from err
    if not isinstance(value, list):
        raise ValueError(f"'context' must be a list of messages, got {type(value).__name__}")
    messages = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict) or not isinstance(msg.get("content"), str) or msg.get("role") not in ROLES:
            raise ValueError(f"context[{i}] must be {{role: {'|'.join(ROLES)}, content: text}}")
        messages.append({"role": msg["role"], "content": msg["content"]})
    return messages


def _reply_item(row: dict[str, Any], source: str) -> RatingItem:
    for key in REPLY_COLUMNS:
        if row.get(key) is None:
            raise ValueError(f"missing value for '{key}'")
    for key in ("model", "conversation_id", "reply"):
        if not isinstance(row[key], str):
            raise ValueError(f"'{key}' must be text, got {type(row[key]).__name__}")
    if not row["model"] or not row["conversation_id"]:
        raise ValueError("'model' and 'conversation_id' must not be empty")
    item_id = row["conversation_id"]
    if row.get("turn") is not None:
        item_id = f"{item_id}#{row['turn']}"
    reference = row.get("reference")
    return RatingItem(
        model=row["model"],
        item_id=item_id,
        context=_parse_context(row["context"]),
        reply=row["reply"],
        topic=str(row.get("topic") or ""),
        reference=reference if isinstance(reference, str) else None,
        source=source,
    )


def _rows(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    rows = []
    for line_no, line in iter_lines(path):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: line {line_no}: not valid JSON ({err.msg})") from err
    return rows


def items_from_replies(path: Path) -> list[RatingItem]:
    """Items from one replies file (Parquet or JSONL with the columns in this module's docstring).

    Raises:
        DataError: naming the file, the row (0-based for Parquet, 1-based line for JSONL) and the problem.
    """
    items = []
    for index, row in enumerate(_rows(path)):
        where = f"line {index + 1}" if path.suffix == ".jsonl" else f"row {index}"
        try:
            items.append(_reply_item(row, str(path)))
        except ValueError as err:
            raise DataError(f"{path}: {where}: {err}") from err
    return items


def _is_replies_file(path: Path) -> bool:
    """Whether a data file holds model replies (a ``reply`` column) rather than conversation records."""
    if path.suffix == ".parquet":
        try:
            return "reply" in pq.read_schema(path).names
        except (pa.ArrowInvalid, OSError) as err:
            raise DataError(f"{path}: not a readable Parquet file ({err})") from err
    for _, line in iter_lines(path):
        if line.strip():
            try:
                first = json.loads(line)
            except json.JSONDecodeError:
                return False  # read_records reports the bad line
            return isinstance(first, dict) and "reply" in first
    return False


def load_items(inputs: list[str], model_name: str | None = None, split: str = "test") -> list[RatingItem]:
    """Items from every input: dataset folders (their ``split``), conversation files or replies files.

    Raises:
        DataError: a missing or malformed input, or the same (model, item) twice.
    """
    if not inputs:
        raise DataError("no inputs: give a dataset folder, a conversations file or a replies file")
    items: list[RatingItem] = []
    for text in inputs:
        path = Path(text)
        if is_dataset_dir(path):
            items += items_from_conversations(read_split(path, split), model_name, str(path))
            continue
        for file in data_files(path):
            if _is_replies_file(file):
                items += items_from_replies(file)
            else:
                items += items_from_conversations(read_records(file), model_name, str(file))
    seen: dict[tuple[str, str], str] = {}
    for item in items:
        key = (item.model, item.item_id)
        if key in seen:
            raise DataError(
                f"{item.source}: model {item.model!r} has item {item.item_id!r} twice (also in "
                f"{seen[key]}); give replies files a 'turn' column when a conversation has several"
            )
        seen[key] = item.source
    return items
