"""What the judge scores: items built from hiwar's outputs, one dict each.

- a dataset folder (its split) or conversation files: one ``conversation`` item per conversation (every assistant
  turn judged together), item id = conversation id, model = ``generator.model``;
- a replies file written by ``hiwar evaluate`` (``replies.parquet`` or ``turns.parquet``, or any file in the
  human-eval replies format): one ``reply`` item per reply that has no generation error;
- a human-eval export folder (``key.json`` and ``sheets/``): one ``reply`` item per blind item, item id = its code,
  read from a rater's sheet (the judge sees what the raters see: context and reply, no model name).

Every item has ``item_id``, ``kind``, ``model``, ``conversation_id``, ``topic``, ``context`` (messages) and, for
replies, ``reply``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hiwar.errors import DataError

ITEM_FIELDS = ("item_id", "kind", "model", "conversation_id", "topic")


def conversation_items(records: list[Any]) -> list[dict[str, Any]]:
    """One item per conversation record."""
    return [
        {
            "item_id": rec.id,
            "kind": "conversation",
            "model": rec.generator.model,
            "conversation_id": rec.id,
            "topic": rec.topic,
            "context": [dict(m) for m in rec.messages],
        }
        for rec in records
    ]


def reply_items(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Items from a replies file, and how many rows were left out for a generation error.

    Raises:
        DataError: the file is not in the replies format (naming the row and the problem).
    """
    import pyarrow.parquet as pq

    from hiwar.evaluation.human.items import items_from_replies

    rated = items_from_replies(path)  # the replies format's one reader (human-eval's)
    errors = [""] * len(rated)
    if path.suffix == ".parquet" and "error" in pq.read_schema(path).names:
        errors = [e or "" for e in pq.read_table(path, columns=["error"]).column("error").to_pylist()]
    items = [
        {
            "item_id": f"{it.model}::{it.item_id}",
            "kind": "reply",
            "model": it.model,
            "conversation_id": it.item_id.split("#", 1)[0],
            "topic": it.topic,
            "context": it.context,
            "reply": it.reply,
        }
        for it, err in zip(rated, errors, strict=True)
        if not err
    ]
    return items, len(rated) - len(items)


def export_items(folder: Path) -> tuple[list[dict[str, Any]], str]:
    """The blind items of a human-eval export (item id = code), and the export's id.

    Raises:
        DataError: no key or no readable sheet, or a sheet that lacks an item of the key.
    """
    from hiwar.evaluation.human.analyze import load_key
    from hiwar.evaluation.human.export import KEY_NAME, SHEETS_DIR
    from hiwar.evaluation.human.items import _parse_context
    from hiwar.evaluation.human.sheets import read_sheet

    key = load_key(folder / KEY_NAME)
    sheet = read_sheet(folder / SHEETS_DIR / f"{key['raters'][0]}.jsonl")
    if sheet.error:
        raise DataError(f"{sheet.path}: {sheet.error}")
    rows = {row.get("item"): row for _, row in sheet.rows}
    items = []
    for code, meta in sorted(key["items"].items()):
        row = rows.get(code)
        if row is None:
            raise DataError(f"{sheet.path}: item {code} of the key is missing")
        items.append(
            {
                "item_id": code,
                "kind": "reply",
                "model": meta["model"],
                "conversation_id": meta["item_id"].split("#", 1)[0],
                "topic": meta["topic"],
                "context": _parse_context(row["context"]),
                "reply": str(row["reply"]),
            }
        )
    return items, str(key["export_id"])


def is_export_dir(path: Path) -> bool:
    """Whether ``path`` is a human-eval export folder (a key and a sheets folder)."""
    from hiwar.evaluation.human.export import KEY_NAME, SHEETS_DIR

    return (path / KEY_NAME).is_file() and (path / SHEETS_DIR).is_dir()


def load_inputs(inputs: list[str], split: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Items from every input, and what they came from (files, skipped error rows, the export id).

    Raises:
        DataError: a missing or malformed input, or the same item id twice.
    """
    from hiwar.dataset_layout import is_dataset_dir, read_split
    from hiwar.records_io import data_files, read_records

    if not inputs:
        raise DataError("no inputs: give a dataset folder, a conversations file, a replies file or a human-eval export")
    items: list[dict[str, Any]] = []
    info: dict[str, Any] = {"inputs": [str(p) for p in inputs], "skipped_error_replies": 0}
    for text in inputs:
        path = Path(text)
        if is_export_dir(path):
            found, info["export_id"] = export_items(path)
            items += found
        elif is_dataset_dir(path):
            items += conversation_items(read_split(path, split))
        else:
            for file in data_files(path):
                if _has_reply_column(file):
                    found, skipped = reply_items(file)
                    items += found
                    info["skipped_error_replies"] += skipped
                else:
                    items += conversation_items(read_records(file))
    _check_unique(items)
    return items, info


def _has_reply_column(path: Path) -> bool:
    from hiwar.evaluation.human.items import _is_replies_file

    return _is_replies_file(path)


def _check_unique(items: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for item in items:
        if item["item_id"] in seen:
            raise DataError(f"item {item['item_id']!r} is given twice (the same input twice?)")
        seen.add(item["item_id"])


def context_json(item: dict[str, Any]) -> str:
    """An item's messages as JSON text (how items travel in Arrow rows)."""
    return json.dumps(item["context"], ensure_ascii=False)
