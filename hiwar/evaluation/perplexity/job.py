"""Perplexity and bits per byte of one model as a Ray Data batch job over an actor pool."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hiwar.atomic import atomic_path
from hiwar.evaluation.config import MODELS_WHERE, PerplexityConfig
from hiwar.models.spec import ModelSpec

log = logging.getLogger(__name__)


def score_conversations(spec: ModelSpec, rows: list[dict[str, Any]], cfg: PerplexityConfig) -> dict[str, Any]:
    """Per-conversation NLL, tokens, bytes and characters of ``rows`` (columns as a dict of lists)."""
    table = scored_dataset(spec, rows, cfg).to_pandas()
    return {col: table[col].to_numpy() for col in table.columns}


def scored_dataset(spec: ModelSpec, rows: list[dict[str, Any]], cfg: PerplexityConfig) -> Any:
    """The (lazy) Ray Dataset of ``rows`` through the scorer actor pool."""
    import ray

    from hiwar.evaluation.perplexity.stage import PerplexityScorer

    ds = ray.data.from_items(rows, override_num_blocks=cfg.blocks(len(rows)))
    return ds.map_batches(
        PerplexityScorer,
        fn_constructor_kwargs={
            "model": spec.ref(MODELS_WHERE),
            "mask": cfg.mask,
            "window": cfg.window,
            "stride": cfg.stride,
            "max_tokens_per_batch": cfg.max_tokens_per_batch,
            "dtype": cfg.dtype,
            "num_threads": cfg.threads(),
        },
        **cfg.ray_args(),
    )


def run_perplexity(
    spec: ModelSpec,
    rows: list[dict[str, Any]],
    cfg: PerplexityConfig,
    out_dir: Path,
    scores: Callable[[], dict[str, Any]] | None = None,
) -> dict:
    """Score ``rows`` with ``spec``; write ``conversations.parquet``; return the summary (also for the
    report).

    ``scores`` gives the scorer's columns when another job computed them (the model's one pool,
    ``hiwar.evaluation.model_worker``); by default this job scores ``rows`` in its own pool.
    """
    import numpy as np
    import pandas as pd

    from hiwar.evaluation.perplexity.metrics import summarize_perplexity

    cols = scores() if scores else score_conversations(spec, rows, cfg)
    frame = pd.DataFrame(cols).sort_values("id", kind="stable")
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["perplexity"] = np.where(frame["n_tokens"] > 0, np.exp(frame["nll"] / frame["n_tokens"]), np.nan)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "conversations.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    scored = frame[frame["n_tokens"] > 0]
    summary = summarize_perplexity(
        {c: scored[c].to_numpy() for c in ("topic", "nll", "n_tokens", "n_bytes", "n_chars")}
    )
    unscored = frame[frame["n_tokens"] == 0]
    summary["unscored"] = {str(k): int(v) for k, v in unscored["note"].value_counts().items()}
    log.info(
        "%s: perplexity %.4g, %.4g bits/byte over %d conversations",
        spec.name,
        summary["perplexity"],
        summary["bits_per_byte"],
        summary["conversations"],
    )
    return summary
