"""Test helpers: tiny conversations for two models, and filling sheets like a rater would."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

from hiwar.record import Conversation, Generator

MODELS = ("jais-13b-chat-test", "aragpt2-mega-test")
TOPICS = ("health", "travel", "food")


def conversation(model: str, n: int, topic: str) -> Conversation:
    """A two-exchange Arabic conversation whose id and text do not name the model."""
    return Conversation(
        id=f"c{n:03d}",
        topic=topic,
        country="EG",
        generator=Generator(model=model, engine="transformers", prompt_version="v1"),
        messages=[
            {"role": "user", "content": f"مرحبا، عندي سؤال رقم {n} عن {topic}"},
            {"role": "assistant", "content": "أهلا بك، تفضل بسؤالك."},
            {"role": "user", "content": "ما أفضل نصيحة لديك؟"},
            {"role": "assistant", "content": f"نصيحتي رقم {n}: خذ الأمور بهدوء."},
        ],
    )


Scorer = Callable[[str, dict, str], object]


def fill_sheets(export: Path, scorer: Scorer, fmt: str = "csv") -> dict[str, Path]:
    """Fill every rater's sheet: ``scorer(rater, key_item, criterion)`` gives each cell (CSV or JSONL)."""
    key = json.loads((export / "key.json").read_text(encoding="utf-8"))
    filled = {}
    for rater in key["raters"]:
        path = export / "sheets" / f"{rater}.{fmt}"
        if fmt == "csv":
            with path.open(encoding="utf-8-sig", newline="") as fh:
                reader = csv.DictReader(fh)
                header, rows = reader.fieldnames, list(reader)
            for row in rows:
                row.update({c: scorer(rater, key["items"][row["item"]], c) for c in key["criteria"]})
            with path.open("w", encoding="utf-8-sig", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=header)
                writer.writeheader()
                writer.writerows(rows)
        else:
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            for row in rows:
                row.update({c: scorer(rater, key["items"][row["item"]], c) for c in key["criteria"]})
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        filled[rater] = path
    return filled
