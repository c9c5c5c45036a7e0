"""Pairwise judging: two models' replies to the same turn, judged in both orders, so position bias cancels.

For a pair (X, Y) and a turn both answered, the judge sees X's reply as A and Y's as B (order 1), then Y's as A
and X's as B (order 2). Each verdict gives X 1 (X better), 1/2 (tie) or 0; the turn's score for X is the mean of
its two verdicts, so a judge that always prefers the first position gives every turn 1/2. The turn is a win for
X above 1/2, a loss below and a tie at 1/2 (MT-Bench's rule: orders that disagree make a tie). A turn with an
order kept aside is left out and counted. The win rate counts ties as half; every rate has a bootstrap 95%
interval over conversations. Position bias: the share of decided verdicts (not ties) that chose the reply shown
first (1/2 for an unbiased judge), and how often both orders agreed.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import numpy as np

ORDERS = ("1", "2")  # 1: the pair's first model shown as A; 2: shown as B


def pair_names(models: list[str], pairs: list[list[str]]) -> list[tuple[str, str]]:
    """The configured pairs, or every pair of ``models`` in their order."""
    return [tuple(p) for p in pairs] if pairs else list(itertools.combinations(models, 2))  # type: ignore[misc]


def pairwise_items(
    replies: dict[str, dict[str, dict[str, Any]]], pairs: list[tuple[str, str]], max_turns: int | None, seed: int
) -> list[dict[str, Any]]:
    """Two items (both orders) per pair and shared turn.

    Args:
        replies: model -> turn key -> reply item (``context``, ``reply``, ``conversation_id``, ``topic``).
        pairs: (X, Y) model names. max_turns: a seeded sample of shared turns per pair. seed: its seed.
    """
    items = []
    for x, y in pairs:
        shared = sorted(set(replies.get(x, {})) & set(replies.get(y, {})))
        if max_turns is not None and len(shared) > max_turns:
            shared = sorted(random.Random(f"{seed}:{x}:{y}").sample(shared, max_turns))
        for turn in shared:
            base = replies[x][turn]
            for order, (first, second) in zip(ORDERS, ((x, y), (y, x)), strict=True):
                items.append(
                    {
                        "item_id": f"{x}~{y}::{turn}::{order}",
                        "kind": "pairwise",
                        "model": "",
                        "conversation_id": base["conversation_id"],
                        "topic": base["topic"],
                        "turn": turn,
                        "pair": f"{x}~{y}",
                        "order": order,
                        "first_model": first,
                        "second_model": second,
                        "context": base["context"],
                        "reply_a": replies[first][turn]["reply"],
                        "reply_b": replies[second][turn]["reply"],
                    }
                )
    return items


def verdict_for(row: dict[str, Any], model: str) -> float:
    """One verdict from ``model``'s side: 1 (its reply won), 0.5 (tie) or 0."""
    if row["winner"] == "tie":
        return 0.5
    chosen = row["first_model"] if row["winner"] == "A" else row["second_model"]
    return 1.0 if chosen == model else 0.0


def pair_summary(rows: list[dict[str, Any]], x: str, y: str, samples: int, seed: int) -> dict[str, Any]:
    """Win, tie and loss rates of ``x`` against ``y`` over turns judged in both orders, and the judge's position
    bias on this pair."""
    from hiwar.evaluation.raven.score import bootstrap_interval

    by_turn: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_turn.setdefault(row["turn"], {})[row["order"]] = row
    complete = {t: o for t, o in by_turn.items() if all(o.get(k, {}).get("status") == "ok" for k in ORDERS)}
    turns = sorted(complete)
    score = np.array([np.mean([verdict_for(complete[t][k], x) for k in ORDERS]) for t in turns], dtype=float)
    groups = np.array([complete[t]["1"]["conversation_id"] for t in turns], dtype=object)

    def rate(values: np.ndarray) -> dict[str, Any]:
        low, high = bootstrap_interval(values, groups, samples, seed) if len(values) and samples else (None, None)
        return {"value": float(values.mean()) if len(values) else None, "ci_low": low, "ci_high": high}

    verdicts = [r for r in rows if r["status"] == "ok"]
    decided = [r for r in verdicts if r["winner"] != "tie"]
    agree = [verdict_for(complete[t]["1"], x) == verdict_for(complete[t]["2"], x) for t in turns]
    return {
        "models": [x, y],
        "turns": len(turns),
        "incomplete_turns": len(by_turn) - len(turns),
        "win_rate": rate(score),
        "win": rate((score > 0.5).astype(float)),
        "tie": rate((score == 0.5).astype(float)),
        "loss": rate((score < 0.5).astype(float)),
        "position": {
            "verdicts": len(verdicts),
            "ties": len(verdicts) - len(decided),
            "first_preferred": (sum(r["winner"] == "A" for r in decided) / len(decided)) if decided else None,
            "orders_agree": (sum(agree) / len(agree)) if agree else None,
        },
    }


def summarize_pairs(rows: list[dict[str, Any]], pairs: list[tuple[str, str]], samples: int, seed: int) -> dict:
    """Every pair's summary, keyed ``X~Y``, and the judge's position bias over all pairs."""
    rows = [r for r in rows if r["kind"] == "pairwise"]
    out = {
        f"{x}~{y}": pair_summary([r for r in rows if r["pair"] == f"{x}~{y}"], x, y, samples, seed) for x, y in pairs
    }
    decided = [r for r in rows if r["status"] == "ok" and r["winner"] != "tie"]
    return {
        "pairs": out,
        "position_bias": {
            "decided_verdicts": len(decided),
            "first_preferred": (sum(r["winner"] == "A" for r in decided) / len(decided)) if decided else None,
        },
    }
