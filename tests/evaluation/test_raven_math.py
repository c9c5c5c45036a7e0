"""RAVEN's arithmetic: cosine, clipping, the grouped bootstrap, per-topic means."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hiwar.evaluation.raven.score import bootstrap_interval, cosine_rows, summarize_raven, turn_scores


def test_cosine_of_toy_embeddings_by_hand() -> None:
    a = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
    b = np.array([[0.0, 2.0], [1.0, 0.0], [-1.0, 0.0], [1.0, 1.0], [4.0, 3.0]])
    expected = [0.0, 1 / math.sqrt(2), -1.0, 0.0, 24 / 25]
    assert cosine_rows(a, b) == pytest.approx(expected)
    assert turn_scores(cosine_rows(a, b)) == pytest.approx([0.0, 1 / math.sqrt(2), 0.0, 0.0, 24 / 25])


def test_summary_mean_topics_and_interval() -> None:
    cos = np.array([1.0, 0.5, -0.2, 0.8])
    scores = turn_scores(cos)
    summary = summarize_raven(
        scores, cos, np.array(["c1", "c1", "c2", "c3"]), np.array(["x", "x", "y", "x"]), samples=500, seed=3
    )
    assert summary["raven"] == pytest.approx((1.0 + 0.5 + 0.0 + 0.8) / 4)
    assert summary["mean_cosine"] == pytest.approx((1.0 + 0.5 - 0.2 + 0.8) / 4)
    assert summary["per_topic"] == {
        "x": {"raven": pytest.approx(2.3 / 3), "turns": 3},
        "y": {"raven": 0.0, "turns": 1},
    }
    assert summary["ci_low"] <= summary["raven"] <= summary["ci_high"]
    assert (summary["turns"], summary["conversations"]) == (4, 3)


def test_bootstrap_resamples_conversations_and_is_seeded() -> None:
    # Two conversations: one with 3 turns at 1.0, one with 1 turn at 0.0. A resample holds 0, 1 or 2 copies of
    # each; the only possible means are 0, 0.75 and 1 (turns weigh equally, as in RAVEN itself).
    scores, groups = np.array([1.0, 1.0, 1.0, 0.0]), np.array(["a", "a", "a", "b"])
    low, high = bootstrap_interval(scores, groups, samples=2000, seed=0)
    assert (low, high) == (0.0, 1.0)
    assert bootstrap_interval(scores, groups, 2000, seed=0) == bootstrap_interval(scores, groups, 2000, seed=0)
    assert bootstrap_interval(np.full(5, 0.7), np.arange(5), 100, seed=1) == pytest.approx((0.7, 0.7))
    assert all(math.isnan(v) for v in bootstrap_interval(scores, groups, samples=0, seed=0))
