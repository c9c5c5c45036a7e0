"""Check filled sheets against the key and collect every problem at once, each with file, row and column."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiwar.errors import HiwarError
from hiwar.evaluation.human.sheets import SHEET_SUFFIXES, SheetRows, has_scores, read_sheet

# Raters may type Arabic-Indic or Persian digits; they mean the same scores.
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")


@dataclass
class Ratings:
    """Valid scores (rater -> item code -> criterion -> score), each rater's sheet, and every problem."""

    scores: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def matrix(self, raters: list[str], codes: list[str], criterion: str) -> Any:
        """Raters x items scores of one criterion (numpy), NaN where a rater has no valid score."""
        import numpy as np

        rows = [[self.scores.get(r, {}).get(c, {}).get(criterion, np.nan) for c in codes] for r in raters]
        return np.array(rows, dtype=float)


def parse_score(value: Any, lo: int, hi: int) -> tuple[int | None, str | None]:
    """A cell as a score on the scale ``lo..hi``, or None and why not."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, "blank score"
    if isinstance(value, bool):
        return None, f"{value!r} is not a score"
    number: float
    if isinstance(value, (int, float)):
        number = value
    else:
        text = str(value).strip().translate(_DIGITS)
        try:
            number = float(text)
        except ValueError:
            return None, f"{str(value).strip()!r} is not a number"
    if number != int(number):
        return None, f"{value!r} is not a whole number"
    if not lo <= number <= hi:
        return None, f"score {int(number)} is outside the scale {lo}-{hi}"
    return int(number), None


def _pick_sheet(sheets_dir: Path, rater: str, criteria: list[str], ratings: Ratings) -> SheetRows | None:
    """The one filled sheet of ``rater`` (CSV or JSONL), or None after recording why there is none."""
    found = [read_sheet(p) for p in (sheets_dir / f"{rater}{s}" for s in SHEET_SUFFIXES) if p.is_file()]
    if not found:
        ratings.problems.append(f"{sheets_dir / rater}.csv: sheet missing (expected {rater}.csv or {rater}.jsonl)")
        return None
    broken = [s for s in found if s.error]
    filled = [s for s in found if not s.error and has_scores(s, criteria)]
    if len(filled) > 1:
        ratings.problems.append(
            f"{filled[0].path} and {filled[1].path}: both have scores; keep only the one the rater filled in"
        )
        return None
    if filled:
        return filled[0]
    if broken:
        ratings.problems += [f"{s.path}: {s.error}" for s in broken]
        return None
    # A sheet without the rating columns is not a blank sheet: it is another file saved under the sheet's name.
    foreign = [(s, missing_columns(s, criteria)) for s in found if missing_columns(s, criteria)]
    if foreign:
        ratings.problems += [
            f"{s.path}: not a rating sheet: column(s) {', '.join(repr(c) for c in absent)} missing"
            for s, absent in foreign
        ]
    else:
        ratings.problems.append(f"{found[0].path}: no scores filled in")
    return None


def missing_columns(sheet: SheetRows, criteria: list[str]) -> list[str]:
    """The sheet's missing columns among ``item`` and the criteria."""
    return [c for c in ["item", *criteria] if c not in sheet.header]


def _check_rows(sheet: SheetRows, key: dict[str, Any], criteria: list[str], ratings: Ratings) -> dict[str, dict]:
    lo, hi = key["scale"]["min"], key["scale"]["max"]
    problems = ratings.problems
    first_row: dict[str, int] = {}
    scores: dict[str, dict[str, int]] = {}
    duplicated: set[str] = set()
    for number, row in sheet.rows:
        at = f"{sheet.path}: {sheet.where(number)}"
        code = str(row.get("item") if row.get("item") is not None else "").strip()
        if not code:
            problems.append(f"{at}, column 'item': blank item code")
            continue
        if code not in key["items"]:
            problems.append(f"{at}, column 'item': unknown item {code!r} (not in the key)")
            continue
        if code in first_row:
            problems.append(f"{at}, column 'item': item {code} duplicated (first at {sheet.where(first_row[code])})")
            duplicated.add(code)
            continue
        first_row[code] = number
        system = str(row.get("system") or "").strip()
        if system and system != key["items"][code]["system"]:
            problems.append(
                f"{at}, column 'system': {system} does not match the key's "
                f"{key['items'][code]['system']} for item {code} (rows shuffled, or a sheet from "
                "another export?)"
            )
            continue
        scores[code] = {}
        for criterion in criteria:
            score, problem = parse_score(row.get(criterion), lo, hi)
            if problem:
                problems.append(f"{at}, column '{criterion}': {problem}")
            else:
                scores[code][criterion] = score
    missing = [c for c in key["items"] if c not in first_row]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        problems.append(f"{sheet.path}: {len(missing)} item(s) of the key missing from the sheet: {shown}")
    return {c: s for c, s in scores.items() if c not in duplicated and s}


def validate_sheets(sheets_dir: Path, key: dict[str, Any]) -> Ratings:
    """Read each rater's filled sheet and keep the valid scores; list each problem (file, row, column)."""
    ratings = Ratings()
    criteria = key["criteria"]
    for path in sorted(sheets_dir.glob("rater-*")):
        if path.suffix in SHEET_SUFFIXES and path.stem not in key["raters"]:
            ratings.problems.append(f"{path}: not a sheet of this export (its key has {', '.join(key['raters'])})")
    for rater in key["raters"]:
        sheet = _pick_sheet(sheets_dir, rater, criteria, ratings)
        if sheet is None:
            continue
        absent = missing_columns(sheet, criteria)
        ratings.problems += [f"{sheet.path}: column '{c}' missing" for c in absent]
        if "item" in absent:
            continue
        ratings.scores[rater] = _check_rows(sheet, key, [c for c in criteria if c not in absent], ratings)
        ratings.files[rater] = str(sheet.path)
    return ratings


class SheetProblemsError(HiwarError):
    """Filled sheets with problems; the message lists each on its own line, ``problems`` holds them."""

    def __init__(self, sheets_dir: Path, problems: list[str]) -> None:
        self.problems = list(problems)
        head = (
            f"{len(problems)} problem(s) in the rating sheets in {sheets_dir}; fix them, or rerun with "
            "--allow-partial to analyse the valid scores only:"
        )
        super().__init__("\n".join([head, *(f"  {p}" for p in problems)]))
