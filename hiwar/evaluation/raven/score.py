"""RAVEN: the mean cosine similarity between a model's replies and the reference replies, in sentence-embedding space,
with a bootstrap 95% interval (resampling conversations) and per-topic means.

Per scored turn: ``score = max(0, cos(E(reply), E(reference)))``. Cosine lies in [-1, 1]; negative similarity
means "unrelated" as much as 0 does, so it is clipped to 0 and RAVEN lies in [0, 1]. An empty reply scores 0.
The unclipped mean cosine is reported beside it.

Beside RAVEN, each reply's language is identified with the generation validators' rule
(:mod:`hiwar.generation.language`): a reply in Persian or Urdu can sit close to an Arabic reference in a
multilingual encoder's space, so the share of replies that are not Arabic is reported next to the score.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from hiwar.generation.language import DEFAULT_MIN_CONFIDENCE, Detection, is_foreign


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity; 0 where either vector is all zeros."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.einsum("ij,ij->i", a, b)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, np.clip(dots / np.where(norms > 0, norms, 1.0), -1.0, 1.0), 0.0)


def turn_scores(cosines: np.ndarray) -> np.ndarray:
    """Per-turn RAVEN scores: cosine clipped to [0, 1]."""
    return np.clip(np.asarray(cosines, dtype=np.float64), 0.0, 1.0)


def bootstrap_interval(
    scores: np.ndarray, groups: np.ndarray, samples: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean score, resampling whole groups (conversations) with
    replacement.

    Turns of one conversation are not independent, so conversations, not turns, are the resampled unit; each
    resample's statistic is the mean over all turns of the drawn conversations (the same estimator as RAVEN).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if samples <= 0 or len(scores) == 0:
        return float("nan"), float("nan")
    _, group_index = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    sums = np.bincount(group_index, weights=scores)
    counts = np.bincount(group_index).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sums), size=(samples, len(sums)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def summarize_raven(
    scores: np.ndarray,
    cosines: np.ndarray,
    conversations: np.ndarray,
    topics: np.ndarray,
    samples: int,
    seed: int,
) -> dict[str, Any]:
    """RAVEN, its 95% interval, the raw mean cosine, and per-topic RAVEN (mean and turn count)."""
    scores, topics = np.asarray(scores, dtype=np.float64), np.asarray(topics, dtype=object)
    low, high = bootstrap_interval(scores, conversations, samples, seed)
    return {
        "raven": float(scores.mean()) if len(scores) else float("nan"),
        "ci_low": low,
        "ci_high": high,
        "mean_cosine": float(np.mean(cosines)) if len(cosines) else float("nan"),
        "turns": int(len(scores)),
        "conversations": int(len(set(np.asarray(conversations, dtype=object).tolist()))),
        "per_topic": {
            str(t): {"raven": float(scores[topics == t].mean()), "turns": int((topics == t).sum())}
            for t in sorted(set(topics.tolist()))
        },
    }


def reply_languages(
    replies: list[str], detections: list[Detection], min_confidence: float = DEFAULT_MIN_CONFIDENCE
) -> dict[str, Any]:
    """The share of non-empty replies confidently identified as another language than Arabic, their count, and
    the non-empty replies per detected language (``und``: too short to tell)."""
    live = [d for reply, d in zip(replies, detections, strict=True) if reply.strip()]
    foreign = sum(is_foreign(d, min_confidence) for d in live)
    return {
        "non_arabic_share": foreign / len(live) if live else float("nan"),
        "non_arabic_replies": int(foreign),
        "reply_languages": dict(Counter(d.language for d in live).most_common()),
    }
