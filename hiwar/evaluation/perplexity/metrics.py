"""Perplexity (within a model), bits per byte and bits per character (across models), from per-conversation
NLL."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

LN2 = math.log(2.0)


def corpus_perplexity(nll: float, tokens: int) -> float:
    """exp(total NLL in nats / total scored tokens); NaN when nothing was scored."""
    return math.exp(nll / tokens) if tokens > 0 else float("nan")


def bits_per_unit(nll: float, units: int) -> float:
    """Total NLL in bits divided by a count of bytes or characters; NaN when there are none."""
    return nll / LN2 / units if units > 0 else float("nan")


def _group_metrics(nll: np.ndarray, tokens: np.ndarray, n_bytes: np.ndarray, n_chars: np.ndarray) -> dict[str, Any]:
    total_nll, total_tokens = float(nll.sum()), int(tokens.sum())
    return {
        "conversations": int(len(nll)),
        "tokens": total_tokens,
        "bytes": int(n_bytes.sum()),
        "chars": int(n_chars.sum()),
        "nll_nats": total_nll,
        "perplexity": corpus_perplexity(total_nll, total_tokens),
        "bits_per_byte": bits_per_unit(total_nll, int(n_bytes.sum())),
        "bits_per_char": bits_per_unit(total_nll, int(n_chars.sum())),
    }


def summarize_perplexity(rows: dict[str, np.ndarray]) -> dict[str, Any]:
    """Corpus metrics, the spread of per-conversation perplexity, and per-topic metrics.

    Args:
        rows: columns ``topic``, ``nll``, ``n_tokens``, ``n_bytes``, ``n_chars`` of scored conversations
            (``n_tokens > 0``).
    """
    nll, tokens = np.asarray(rows["nll"], dtype=float), np.asarray(rows["n_tokens"], dtype=np.int64)
    n_bytes, n_chars = (
        np.asarray(rows["n_bytes"], dtype=np.int64),
        np.asarray(rows["n_chars"], dtype=np.int64),
    )
    summary = _group_metrics(nll, tokens, n_bytes, n_chars)
    per_conv = np.exp(nll / tokens) if len(nll) else np.array([])
    summary["per_conversation_perplexity"] = {
        "mean": float(per_conv.mean()) if len(per_conv) else float("nan"),
        "std": float(per_conv.std(ddof=1)) if len(per_conv) > 1 else float("nan"),
        "median": float(np.median(per_conv)) if len(per_conv) else float("nan"),
        "p10": float(np.percentile(per_conv, 10)) if len(per_conv) else float("nan"),
        "p90": float(np.percentile(per_conv, 90)) if len(per_conv) else float("nan"),
    }
    topics = np.asarray(rows["topic"], dtype=object)
    summary["per_topic"] = {
        str(topic): _group_metrics(nll[sel], tokens[sel], n_bytes[sel], n_chars[sel])
        for topic in sorted(set(topics.tolist()))
        for sel in [topics == topic]
    }
    return summary
