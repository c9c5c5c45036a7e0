"""The numbers in ``stats.json`` (and the card): counts, distributions, acceptance, throughput."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hiwar.config import RunConfig
from hiwar.generation.assemble import Assembled, per_key
from hiwar.generation.card import distribution, rejects_by_reason
from hiwar.generation.language import Detection, foreign_languages
from hiwar.generation.parse import REPAIR_KINDS
from hiwar.generation.validate import DUPLICATE, NEAR_DUPLICATE, NOT_ARABIC, REQUEST_FAILED


def not_arabic_languages(rejects: list[dict[str, Any]], min_confidence: float) -> dict[str, int]:
    """``not_arabic`` rejects per language detected in them (a reject with Persian and Urdu messages counts
    under both), most frequent first."""
    counts: Counter[str] = Counter()
    for rej in rejects:
        if NOT_ARABIC in rej["reasons"]:
            detections = [Detection(d["language"], d["confidence"]) for d in rej.get("languages") or []]
            counts.update(foreign_languages(detections, min_confidence))
    return dict(counts.most_common())


def parse_repairs(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """How often the parser looked past marker decoration: per kind, the outputs that needed it (count and share
    of all outputs) and the markers repaired."""
    n = len(rows)
    per_row = [r.get("parse_repairs") or {} for r in rows]
    by_kind = {}
    for kind in REPAIR_KINDS:
        outputs = sum(1 for rep in per_row if rep.get(kind))
        by_kind[kind] = {
            "outputs": outputs,
            "share": round(outputs / n, 4) if n else 0.0,
            "markers": int(sum(rep.get(kind) or 0 for rep in per_row)),
        }
    repaired = sum(1 for rep in per_row if any(rep.values()))
    return {"outputs": repaired, "share": round(repaired / n, 4) if n else 0.0, "by_kind": by_kind}


def build_stats(config: RunConfig, run: Assembled, splits: dict[str, int], result: Any, skipped: int) -> dict:
    """Everything ``stats.json`` holds."""
    from hiwar.generation.prompting import resolve_format
    from hiwar.lineage import code_version

    cfg = config.generation
    by_reason = rejects_by_reason(run.rejects)
    n = len(run.rows)
    turns = [sum(m["role"] == "assistant" for m in c.messages) for c in run.accepted]
    hist: dict[str, int] = {}
    for t in sorted(turns):
        hist[str(t)] = hist.get(str(t), 0) + 1
    secs = max(result.seconds, 1e-9)
    return {
        "dataset": "hiwar",
        "generator": {"engine": cfg.engine, "model": cfg.model, "sampling": cfg.sampling.model_dump()},
        "prompt_version": cfg.prompt_version,
        "prompt_format": resolve_format(cfg),
        "seed": config.seed,
        "code_version": code_version(),
        "counts": {
            "prompts": n,
            "request_errors": by_reason.get(REQUEST_FAILED, 0),
            "duplicates": by_reason.get(DUPLICATE, 0) + by_reason.get(NEAR_DUPLICATE, 0),
            "exact_duplicates": by_reason.get(DUPLICATE, 0),
            "near_duplicates": by_reason.get(NEAR_DUPLICATE, 0),
            "accepted": len(run.accepted),
            "rejected": len(run.rejects),
        },
        "acceptance_rate": round(len(run.accepted) / n, 4) if n else 0.0,
        "rejects_by_reason": by_reason,
        "not_arabic_languages": not_arabic_languages(run.rejects, cfg.validation.min_language_confidence),
        "parse_repairs": parse_repairs(run.rows),
        "accepted_per_topic": per_key(run.accepted, "topic"),
        "accepted_per_country": per_key(run.accepted, "country"),
        "turns": {**distribution(turns), "histogram": hist},
        "tokens": {
            "prompt": distribution([int(r["num_prompt_tokens"]) for r in run.rows]),
            "generated": distribution([int(r["num_generated_tokens"]) for r in run.rows]),
            "generated_accepted": distribution(
                [json.loads(c.to_row()["metadata"])["num_generated_tokens"] for c in run.accepted]
            ),
        },
        "throughput": {
            "rows_generated": result.rows,
            "shards_generated": result.shards,
            "shards_skipped": skipped,
            "seconds": round(result.seconds, 3),
            "rows_per_s": round(result.rows / secs, 3) if result.rows else 0.0,
            "generated_tokens_per_s": round(result.generated_tokens / secs, 2) if result.rows else 0.0,
        },
        "splits": splits,
        "split_config": cfg.splits.model_dump(),
    }
