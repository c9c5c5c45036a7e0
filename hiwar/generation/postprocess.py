"""The Ray Data stage after the engine: parse and validate each generated text, identify each message's
language, count, keep raw text."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hiwar.generation.config import ValidationConfig
from hiwar.generation.language import identify_all
from hiwar.generation.parse import REPAIR_KINDS, parse_transcript
from hiwar.generation.validate import language_units, validate
from hiwar.record import utc_now


def parse_and_validate(batch: Any, validation: dict[str, Any], max_tokens: int) -> Any:
    """Ray Data batch function (pyarrow in, pyarrow out): adds ``messages_json``, ``reasons``, ``languages`` (one per
    message), ``parse_repairs`` (marker decorations forgiven, by kind) and ``created_at``; drops the prompt columns
    (they are rebuilt from the grid when needed)."""
    import pyarrow as pa

    from hiwar.generation import live_counters

    cfg = ValidationConfig.model_validate(validation)
    rows, tally, repairs, accepted, tokens = [], Counter(), Counter(), 0, 0
    for row in batch.to_pylist():
        text = row["generated_text"] or ""
        parsed = parse_transcript(text)
        truncated = int(row["num_generated_tokens"] or 0) >= max_tokens
        languages = identify_all(language_units(parsed, text)) if text.strip() and not row["error"] else []
        reasons = validate(parsed, text, cfg, row["error"] or "", truncated, languages)
        rows.append(
            {
                **row,
                "messages_json": json.dumps(parsed.messages, ensure_ascii=False),
                "reasons": reasons,
                "languages": [d._asdict() for d in languages],
                "parse_repairs": parsed.repairs,
                "created_at": utc_now(),
            }
        )
        accepted += not reasons
        tokens += int(row["num_generated_tokens"] or 0)
        if reasons:
            tally[reasons[0]] += 1
        repairs.update(kind for kind, n in parsed.repairs.items() if n)  # outputs with each kind
    live_counters.record(len(rows), accepted, dict(tally), tokens, dict(repairs))
    return pa.Table.from_pylist(rows, schema=WORK_SCHEMA)  # the schema keeps only the work columns


def grid_fields() -> list[tuple[str, Any]]:
    """Arrow fields of a grid row (``GridRow``), first in both the work shards and the rejects."""
    import pyarrow as pa

    return [
        ("id", pa.string()),
        ("topic", pa.string()),
        ("country", pa.string()),
        ("sample_index", pa.int64()),
        ("seed", pa.int64()),
        ("n_turns", pa.int64()),
    ]


def language_type() -> Any:
    """Arrow type of one message's language: ``{language, confidence}`` (see :mod:`hiwar.generation.language`)."""
    import pyarrow as pa

    return pa.struct([("language", pa.string()), ("confidence", pa.float64())])


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            *grid_fields(),
            ("shard", pa.int64()),
            ("request_id", pa.string()),
            ("generated_text", pa.string()),
            ("num_prompt_tokens", pa.int64()),
            ("num_generated_tokens", pa.int64()),
            ("error", pa.string()),
            ("messages_json", pa.string()),
            ("reasons", pa.list_(pa.string())),
            ("languages", pa.list_(language_type())),
            ("parse_repairs", pa.struct([(kind, pa.int64()) for kind in REPAIR_KINDS])),
            ("created_at", pa.string()),
        ]
    )


WORK_SCHEMA = _schema()
