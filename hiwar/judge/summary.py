"""The numbers of a judge run: what was judged, retried and kept aside, and the scores per criterion.

Per criterion and for ``overall`` (the mean of an item's criterion scores): mean, standard deviation, a percentile
bootstrap 95% interval of the mean resampling conversations (the turns of one conversation are not independent;
:func:`hiwar.evaluation.raven.bootstrap_interval`), and the distribution over the scale; means per topic; the
same per model when items have one.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np

from hiwar.judge.config import OVERALL
from hiwar.judge.parse import reason_code
from hiwar.judge.rubric import Rubric


def item_scores(row: dict[str, Any], rubric: Rubric) -> dict[str, float]:
    """A judged item's scores per criterion plus ``overall``; empty for an item kept aside or a pairwise one."""
    if row["status"] != "ok" or not row["scores_json"]:
        return {}
    scores = {k: float(v) for k, v in json.loads(row["scores_json"]).items()}
    scores[OVERALL] = float(np.mean([scores[n] for n in rubric.names]))
    return scores


def counts(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Items, judged, kept aside, attempts per item, and failed attempts and kept-aside items by reason code."""
    attempts = Counter(int(r["attempts"]) for r in rows)
    return {
        "items": len(rows),
        "judged": sum(r["status"] == "ok" for r in rows),
        "kept_aside": sum(r["status"] != "ok" for r in rows),
        "retried": sum(int(r["attempts"]) > 1 for r in rows),
        "attempts": {str(k): attempts[k] for k in sorted(attempts)},
        "failed_attempts": sum(len(r["reasons"]) for r in rows),
        "failed_attempts_by_reason": dict(Counter(reason_code(x) for r in rows for x in r["reasons"]).most_common()),
        "kept_aside_by_reason": dict(
            Counter(reason_code(r["reason"]) for r in rows if r["status"] != "ok").most_common()
        ),
    }


def describe_scores(
    values: np.ndarray, groups: np.ndarray, scale: list[int] | None, samples: int, seed: int
) -> dict[str, Any]:
    """Mean, sd, n, bootstrap interval (over ``groups``) and, for integer scores, the distribution on ``scale``."""
    from hiwar.evaluation.raven.score import bootstrap_interval

    n = len(values)
    low, high = bootstrap_interval(values, groups, samples, seed) if n and samples else (None, None)
    out: dict[str, Any] = {
        "n": int(n),
        "mean": float(values.mean()) if n else None,
        "sd": float(values.std(ddof=1)) if n > 1 else None,
        "ci_low": low,
        "ci_high": high,
    }
    if scale is not None:
        out["distribution"] = {str(s): int((values == s).sum()) for s in scale}
    return out


def score_stats(rows: list[dict[str, Any]], rubric: Rubric, samples: int, seed: int) -> dict[str, Any]:
    """Per criterion and overall, over the judged items of ``rows``; and per topic means."""
    judged = [(r, s) for r in rows if (s := item_scores(r, rubric))]
    groups = np.array([r["conversation_id"] or r["item_id"] for r, _ in judged], dtype=object)
    topics = np.array([r["topic"] for r, _ in judged], dtype=object)
    out: dict[str, Any] = {"criteria": {}, "per_topic": {}}
    for name in [*rubric.names, OVERALL]:
        values = np.array([s[name] for _, s in judged], dtype=float)
        scale = None if name == OVERALL else rubric.scale
        stats = describe_scores(values, groups, scale, samples, seed)
        if name == OVERALL:
            out[OVERALL] = stats
        else:
            out["criteria"][name] = stats
    for topic in sorted(set(topics.tolist())):
        mask = topics == topic
        out["per_topic"][str(topic)] = {
            "n": int(mask.sum()),
            **{
                name: float(np.mean([s[name] for (_, s), m in zip(judged, mask, strict=True) if m]))
                for name in [*rubric.names, OVERALL]
            },
        }
    return out


def summarize(rows: list[dict[str, Any]], rubric: Rubric, samples: int, seed: int) -> dict[str, Any]:
    """Counts and score statistics of pointwise results, overall and per model (when items name one)."""
    point = [r for r in rows if r["kind"] != "pairwise"]
    out = {"counts": counts(point), **score_stats(point, rubric, samples, seed)}
    models = sorted({r["model"] for r in point if r["model"]})
    if len(models) > 1 or (models and any(r["kind"] == "reply" for r in point)):
        out["per_model"] = {
            m: {"counts": counts(sub), **score_stats(sub, rubric, samples, seed)}
            for m in models
            if (sub := [r for r in point if r["model"] == m])
        }
    return out
