"""The Ray Data stage after the engine: parse each judge answer strictly and count what failed, and why."""

from __future__ import annotations

import json
from typing import Any

from hiwar.judge.parse import parse_judgment, request_error
from hiwar.judge.rubric import Rubric

# What a judged attempt keeps (the prompt's messages and schema are rebuilt from the item when needed).
ATTEMPT_COLUMNS = (
    "item_id",
    "attempt",
    "seed",
    "generated_text",
    "num_prompt_tokens",
    "num_generated_tokens",
    "reason",
    "scores_json",
    "rationales_json",
    "winner",
    "rationale",
)


def attempt_schema() -> Any:
    """Arrow schema of a judged attempt (the same types in every batch, whatever the answers)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("item_id", pa.string()),
            ("attempt", pa.int64()),
            ("seed", pa.int64()),
            ("generated_text", pa.string()),
            ("num_prompt_tokens", pa.int64()),
            ("num_generated_tokens", pa.int64()),
            ("reason", pa.string()),
            ("scores_json", pa.string()),
            ("rationales_json", pa.string()),
            ("winner", pa.string()),
            ("rationale", pa.string()),
        ]
    )


def rubric_from_dict(data: dict[str, Any]) -> Rubric:
    """A rubric from :meth:`Rubric.to_dict` (how it reaches Ray workers)."""
    from hiwar.evaluation.human.config import Criterion

    criteria = tuple(Criterion.model_validate(c) for c in data["criteria"])
    return Rubric(criteria, data["scale"]["min"], data["scale"]["max"], ())


def parse_batch(batch: Any, rubric: dict[str, Any], max_tokens: int) -> Any:
    """Ray Data batch function (pyarrow in and out): one parsed attempt per engine row, in :func:`attempt_schema`.

    An answer that used all of ``max_tokens`` and does not parse is reported as truncated.
    """
    import pyarrow as pa

    judge_rubric = rubric_from_dict(rubric)
    rows = []
    for row in batch.to_pylist():
        text = row.get("generated_text") or ""
        truncated = int(row.get("num_generated_tokens") or 0) >= max_tokens
        error = request_error(row.get("error") or "", bool(row.get("json_schema")))
        judgment = parse_judgment(row["kind"], text, error, truncated, judge_rubric)
        rows.append(
            {
                **{k: row.get(k) for k in ATTEMPT_COLUMNS[:6]},
                "generated_text": text,
                "reason": judgment.reason,
                "scores_json": json.dumps(judgment.scores) if judgment.scores else "",
                "rationales_json": json.dumps(judgment.rationales, ensure_ascii=False) if judgment.scores else "",
                "winner": judgment.winner,
                "rationale": judgment.rationale,
            }
        )
    return pa.Table.from_pylist(rows, schema=attempt_schema())
