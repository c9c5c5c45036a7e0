"""``evaluation.judge``: judge scores of every model's replies, beside perplexity, bits per byte and RAVEN.

The judge scores the replies each model wrote for RAVEN (``models/<name>/raven/replies.parquet``), every model in
one judge job (one engine start), and, with ``pairwise``, every pair of models' replies to the same turns in both
orders. Files::

    <evaluation>/judge/judgments.parquet, kept_aside.parquet, summary.json, work/

Each model's result gets a ``judge`` entry (status, counts, per criterion mean with a bootstrap 95% interval over
conversations, per topic), and the report a judge section and columns. A judge that cannot run marks every
model's ``judge`` as failed with the reason; the rest of the report is unaffected.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hiwar.config import RunConfig
from hiwar.errors import HiwarError
from hiwar.judge.rubric import Rubric

log = logging.getLogger(__name__)
KEY = "evaluation.judge"


def replies_path(out_dir: Path, name: str) -> Path:
    """Where ``hiwar evaluate`` saved a model's RAVEN replies."""
    return out_dir / "models" / name / "raven" / "replies.parquet"


def model_replies(out_dir: Path, results: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Model -> turn (``conversation#turn``) -> reply item, for every model whose replies exist; a model without
    them gets its ``judge`` marked failed with the reason."""
    from hiwar.judge.items import reply_items

    replies: dict[str, dict[str, dict[str, Any]]] = {}
    for result in results:
        path = replies_path(out_dir, result["name"])
        if not path.is_file():
            why = (result.get("raven") or {}).get("reason") or result.get("raven", {}).get("status")
            result["judge"] = {"status": "failed", "reason": f"no RAVEN replies to judge (RAVEN: {why})"}
            continue
        items, _ = reply_items(path)
        replies[result["name"]] = {it["item_id"].split("::", 1)[1]: it for it in items}
    return replies


def run_judge_metric(config: RunConfig, out_dir: Path, results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Judge every model's replies (and pairs); fills ``result["judge"]``; returns the pairwise summary (or None).

    Never raises for the judge's own failure: it becomes each model's ``judge`` status, with the reason.
    """
    cfg = config.evaluation.judge
    if not cfg.enabled:
        for result in results:
            result["judge"] = {"status": "disabled"}
        return None
    try:
        return _judge(config, out_dir, results)
    except Exception as err:  # noqa: BLE001 - the judge's failure must not cost the other metrics' report
        from hiwar.errors import describe_error

        reason = str(err) if isinstance(err, HiwarError) else describe_error(err)
        log.error("%s failed: %s", KEY, reason)
        for result in results:
            if (result.get("judge") or {}).get("status") != "failed":
                result["judge"] = {"status": "failed", "reason": reason}
        return {"status": "failed", "reason": reason} if cfg.pairwise.enabled else None


def _judge(config: RunConfig, out_dir: Path, results: list[dict[str, Any]]) -> dict[str, Any] | None:
    from hiwar.judge.job import judge_items
    from hiwar.judge.outputs import write_results
    from hiwar.judge.pairwise import pair_names, pairwise_items, summarize_pairs
    from hiwar.judge.report import write_summary
    from hiwar.judge.run import judge_info
    from hiwar.judge.summary import summarize

    cfg = config.evaluation.judge
    rubric = Rubric.from_human_eval(config.human_eval)
    seed = cfg.seed if cfg.seed is not None else config.seed
    replies = model_replies(out_dir, results)
    items = [it for by_turn in replies.values() for it in by_turn.values()]
    pairs = []
    if cfg.pairwise.enabled:
        pairs = pair_names(list(replies), cfg.pairwise.pairs)
        unknown = sorted({m for p in pairs for m in p} - set(replies))
        if unknown:
            raise HiwarError(
                f"{KEY}.pairwise.pairs: no replies for {', '.join(unknown)} (models: {', '.join(replies)})"
            )
        items += pairwise_items(replies, pairs, cfg.pairwise.max_turns, seed)
    if not items:
        return None
    folder = out_dir / "judge"
    rows, stats = judge_items(items, cfg, rubric, folder / "work", seed, config.cluster, KEY)
    write_results(folder, rows, rubric)
    summary = summarize(rows, rubric, cfg.bootstrap_samples, seed)
    for result in results:
        part = (summary.get("per_model") or {}).get(result["name"])
        if result["name"] in replies:
            result["judge"] = {"status": "ok", **part} if part else {"status": "failed", "reason": "no replies"}
    pairwise = summarize_pairs(rows, pairs, cfg.bootstrap_samples, seed) if pairs else None
    write_summary(
        folder, {"judge": judge_info(cfg, rubric, seed), **summary, "pairwise": pairwise, "throughput": stats.to_dict()}
    )
    return pairwise
