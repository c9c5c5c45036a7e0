"""Rating sheets on disk: one CSV (UTF-8 with a BOM, so spreadsheets show Arabic) and one JSONL per rater.

Columns, in order: ``item`` (blind code), ``system`` (blind model code), ``topic``, ``context`` (the dialogue
before the reply), ``reply``, one column per criterion (left blank for the rater), ``comment``.
In the CSV the context is text, one ``role: content`` paragraph per message; in the JSONL it is the list of
messages. Rows are numbered as a spreadsheet shows them: the header is row 1, the first item row 2.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hiwar.atomic import atomic_open
from hiwar.errors import HiwarError
from hiwar.textfiles import read_text

ROLE_LABELS = {"user": "المستخدم (user)", "assistant": "المساعد (assistant)", "system": "النظام (system)"}
BASE_COLUMNS = ("item", "system", "topic", "context", "reply")
SHEET_SUFFIXES = (".csv", ".jsonl")


def sheet_name(rater: int) -> str:
    """File stem of rater ``rater``'s sheet (1-based): ``rater-1``."""
    return f"rater-{rater}"


def columns(criteria: list[str]) -> list[str]:
    """Every sheet column, in order."""
    return [*BASE_COLUMNS, *criteria, "comment"]


def render_context(messages: list[dict[str, str]]) -> str:
    """The dialogue as plain text for a spreadsheet cell: one labelled paragraph per message."""
    return "\n\n".join(f"{ROLE_LABELS.get(m['role'], m['role'])}: {m['content']}" for m in messages)


def write_sheet(rows: list[dict[str, Any]], criteria: list[str], stem: Path) -> list[Path]:
    """Write ``<stem>.csv`` and ``<stem>.jsonl``; criterion cells are blank (``null`` in JSONL)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    cols = columns(criteria)
    blank = {c: None for c in [*criteria, "comment"]}
    csv_path, jsonl_path = stem.with_suffix(".csv"), stem.with_suffix(".jsonl")
    with atomic_open(csv_path, encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "context": render_context(row["context"]), **{c: "" for c in blank}})
    with atomic_open(jsonl_path) as fh:
        for row in rows:
            fh.write(json.dumps({**row, **blank}, ensure_ascii=False) + "\n")
    return [csv_path, jsonl_path]


@dataclass
class SheetRows:
    """A sheet as read back: its header and its rows, each with the number a user sees (row or line)."""

    path: Path
    header: list[str]
    rows: list[tuple[int, dict[str, Any]]]
    error: str | None = None

    def where(self, number: int) -> str:
        """``row N`` for CSV (as a spreadsheet numbers it), ``line N`` for JSONL."""
        return f"line {number}" if self.path.suffix == ".jsonl" else f"row {number}"


def _read_csv(path: Path) -> SheetRows:
    try:
        text = read_text(path, hint="save it as 'CSV UTF-8' from the spreadsheet")
    except HiwarError as err:
        return SheetRows(path, [], [], str(err).removeprefix(f"{path}: "))
    first = text.split("\n", 1)[0]
    # Spreadsheets in some locales save CSV with ';' or tabs: take the header's delimiter.
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in next(reader, [])]
    rows = []
    for number, cells in enumerate(reader, start=2):
        if not any(c.strip() for c in cells):
            continue  # blank lines that spreadsheets leave at the end
        # A short row (trailing cells dropped by the spreadsheet) simply lacks those columns.
        rows.append((number, dict(zip(header, cells, strict=False))))
    return SheetRows(path, header, rows)


def _read_jsonl(path: Path) -> SheetRows:
    rows, header = [], []
    try:
        lines = read_text(path).splitlines()
    except HiwarError as err:
        return SheetRows(path, [], [], str(err).removeprefix(f"{path}: "))
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            return SheetRows(path, header, rows, f"line {number}: not valid JSON ({err.msg})")
        if not isinstance(row, dict):
            return SheetRows(path, header, rows, f"line {number}: expected a JSON object")
        header += [k for k in row if k not in header]
        rows.append((number, row))
    return SheetRows(path, header, rows)


def read_sheet(path: Path) -> SheetRows:
    """Read a filled sheet (CSV or JSONL); an unreadable file comes back with ``error`` set."""
    return _read_jsonl(path) if path.suffix == ".jsonl" else _read_csv(path)


def has_scores(sheet: SheetRows, criteria: list[str]) -> bool:
    """Whether any criterion cell of the sheet is filled in."""
    return any(str(row.get(c) if row.get(c) is not None else "").strip() for _, row in sheet.rows for c in criteria)
