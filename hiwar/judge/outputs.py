"""A judge run's files: judgments (one row per judged item, a column per criterion) and the items kept aside::

<out>/judgments.parquet    status ok: score_<criterion>, overall, rationales (JSON), or winner and rationale
<out>/kept_aside.parquet   every attempt failed: the last raw text, its reason, and every attempt's reason
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hiwar.atomic import atomic_path
from hiwar.judge.rubric import Rubric
from hiwar.judge.summary import item_scores

JUDGMENTS = "judgments.parquet"
KEPT_ASIDE = "kept_aside.parquet"
_DROP = ("scores_json",)


def judgment_row(row: dict[str, Any], rubric: Rubric) -> dict[str, Any]:
    """A result as written: scores spread into ``score_<criterion>`` columns and ``overall`` (None when unscored)."""
    scores = item_scores(row, rubric)
    out = {k: v for k, v in row.items() if k not in _DROP}
    out.update({f"score_{n}": (int(scores[n]) if scores else None) for n in rubric.names})
    out["overall"] = scores.get("overall") if scores else None
    return out


def _table(rows: list[dict[str, Any]]) -> Any:
    import pyarrow as pa

    if rows:
        return pa.Table.from_pylist(rows)
    return pa.table({"item_id": pa.array([], pa.string()), "status": pa.array([], pa.string())})


def write_results(out: Path, rows: list[dict[str, Any]], rubric: Rubric) -> dict[str, Path]:
    """Write ``judgments.parquet`` and ``kept_aside.parquet`` (each possibly empty)."""
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    written = [judgment_row(r, rubric) for r in rows]
    paths = {"judgments": out / JUDGMENTS, "kept_aside": out / KEPT_ASIDE}
    for name, ok in (("judgments", True), ("kept_aside", False)):
        with atomic_path(paths[name]) as tmp:
            pq.write_table(_table([r for r in written if (r["status"] == "ok") == ok]), tmp)
    return paths


def read_judgments(path: Path) -> list[dict[str, Any]]:
    """The judged rows of a judge output folder or ``judgments.parquet`` file."""
    import pyarrow.parquet as pq

    file = path / JUDGMENTS if path.is_dir() else path
    return pq.read_table(file).to_pylist()


def rationales(row: dict[str, Any]) -> dict[str, str]:
    """A written row's rationales per criterion."""
    return json.loads(row["rationales_json"]) if row.get("rationales_json") else {}
