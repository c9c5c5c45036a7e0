"""``generation.judge``: the judge as a data filter inside ``hiwar generate``.

After validation and dedup, every accepted conversation is judged on the rubric (one resumable judge job under
``<dataset>/work/judge/``). A conversation with any thresholded score below its threshold becomes a reject with
reason ``judge_below_threshold`` and its scores (the rejects' ``judge`` column, JSON); one the judge could not
score after ``max_attempts`` is rejected as ``judge_failed`` or kept unscored (``on_failure``). Kept conversations
carry their scores in ``metadata["judge"]``. ``stats.json`` gets a ``judge`` section with the score distributions
of the kept, the rejected and all judged conversations.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hiwar.config import RunConfig
from hiwar.judge.config import OVERALL, JudgeFilterConfig
from hiwar.judge.rubric import Rubric

log = logging.getLogger(__name__)

BELOW_THRESHOLD = "judge_below_threshold"
JUDGE_FAILED = "judge_failed"
KEY = "generation.judge"


def below(scores: dict[str, float], thresholds: dict[str, float]) -> list[str]:
    """The thresholded criteria (or ``overall``) whose score is under the threshold."""
    return [name for name, low in thresholds.items() if scores[name] < low]


def judge_record(row: dict[str, Any], scores: dict[str, float], cfg: JudgeFilterConfig) -> dict[str, Any]:
    """What a conversation keeps of its judgment (metadata of the kept, ``judge`` column of the rejects)."""
    from hiwar.judge.outputs import rationales

    if not scores:
        return {"status": "kept_aside", "reason": row["reason"], "attempts": row["attempts"], "model": cfg.model}
    return {
        "scores": {k: int(v) for k, v in scores.items() if k != OVERALL},
        OVERALL: scores[OVERALL],
        "rationales": rationales(row),
        "attempts": row["attempts"],
        "model": cfg.model,
        "prompt_version": cfg.prompt_version,
    }


def apply_judge_filter(config: RunConfig, dataset: Path, assembled: Any) -> dict[str, Any] | None:
    """Judge ``assembled.accepted`` and move those below a threshold (or unscored, per ``on_failure``) to
    ``assembled.rejects``; returns the ``judge`` section of ``stats.json`` (None when the filter is off).

    Raises:
        ConfigError: thresholds off the rubric. HiwarError: the judge cannot run. JobFailed: its Ray job failed.
    """
    from hiwar.generation.assemble import reject_row
    from hiwar.judge.items import conversation_items
    from hiwar.judge.job import judge_items
    from hiwar.judge.summary import item_scores

    cfg = config.generation.judge
    if not cfg.enabled:
        return None
    rubric = Rubric.from_human_eval(config.human_eval)
    rubric.check_thresholds(cfg.thresholds, f"{KEY}.thresholds")
    seed = cfg.seed if cfg.seed is not None else config.seed
    rows, stats = [], None
    if assembled.accepted:
        rows, stats = judge_items(
            conversation_items(assembled.accepted), cfg, rubric, dataset / "work" / "judge", seed, config.cluster, KEY
        )
    results = {r["item_id"]: r for r in rows}
    work = {r["id"]: r for r in assembled.rows}
    kept, verdicts = [], {"kept": [], "below": [], "failed": []}
    for conv in assembled.accepted:
        row = results[conv.id]
        scores = item_scores(row, rubric)
        record = judge_record(row, scores, cfg)
        low = below(scores, cfg.thresholds) if scores else []
        if scores and not low or not scores and cfg.on_failure == "keep":
            conv.metadata["judge"] = record
            kept.append(conv)
            verdicts["kept" if scores else "failed"].append(row)
            continue
        reason = BELOW_THRESHOLD if scores else JUDGE_FAILED
        reject = reject_row(work[conv.id], [reason])
        reject["judge"] = json.dumps({**record, "below": low}, ensure_ascii=False)
        assembled.rejects.append(reject)
        verdicts["below" if scores else "failed"].append(row)
    assembled.accepted = kept
    assembled.rejects.sort(key=lambda r: r["id"])
    log.info(
        "judge filter: %d kept, %d below threshold, %d unscored (%s)",
        len(verdicts["kept"]),
        len(verdicts["below"]),
        len(verdicts["failed"]),
        cfg.on_failure,
    )
    return filter_stats(config, rows, verdicts, rubric, stats, seed)


def filter_stats(
    config: RunConfig, rows: list[dict], verdicts: dict[str, list], rubric: Rubric, stats: Any, seed: int
) -> dict[str, Any]:
    """The ``judge`` section of ``stats.json``."""
    from hiwar.judge.run import judge_info
    from hiwar.judge.summary import counts, score_stats

    cfg = config.generation.judge
    samples = cfg.bootstrap_samples
    return {
        "judge": judge_info(cfg, rubric, seed),
        "thresholds": dict(cfg.thresholds),
        "on_failure": cfg.on_failure,
        "counts": {
            **counts(rows),
            "below_threshold": len(verdicts["below"]),
            "kept": len(verdicts["kept"]),
        },
        "accepted": score_stats(verdicts["kept"], rubric, samples, seed),
        "below_threshold": score_stats(verdicts["below"], rubric, samples, seed),
        "all": score_stats(rows, rubric, samples, seed),
        "throughput": stats.to_dict() if stats else {},
    }


def check_filter(config: RunConfig) -> None:
    """The judge filter's model and thresholds, checked before generation starts.

    Raises:
        HiwarError: naming the ``generation.judge`` key at fault.
    """
    from hiwar.judge.job import check_judge

    Rubric.from_human_eval(config.human_eval).check_thresholds(config.generation.judge.thresholds, f"{KEY}.thresholds")
    check_judge(config.generation.judge, KEY)
