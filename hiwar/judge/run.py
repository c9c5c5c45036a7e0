"""``hiwar judge``: a judge model scores conversations, model replies or a human-eval export on the rubric.

    <out>/judgments.parquet, kept_aside.parquet   (see :mod:`hiwar.judge.outputs`)
    <out>/summary.json                             counts, retries, reasons, scores per criterion, topic and model
    <out>/report.md                                the same, to read
    <out>/work/<fingerprint>/shards/               finished work shards (the unit of resume)
    <out>/config.resolved.yaml

Rerun the same command after a kill: finished shards are kept and the rest are judged with the same seeds.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hiwar.config import RunConfig, save_resolved
from hiwar.errors import DataError
from hiwar.judge.config import JudgeConfig
from hiwar.judge.rubric import Rubric
from hiwar.run_layout import RunLayout

log = logging.getLogger(__name__)


def judge_dir(config: RunConfig, out_dir: str | None = None) -> Path:
    """Where ``hiwar judge`` writes: ``--out``, else the run layout's judge folder (``judge.output_dir``, else
    ``<run_dir>/judge``)."""
    from hiwar.run_layout import RunLayout

    return Path(out_dir) if out_dir else RunLayout(config).judge


def output_places(config: RunConfig, out_dir: str | None = None) -> list[tuple[str, Path]]:
    """Where ``hiwar judge`` writes, named by the option or key that decides it."""
    from hiwar.run_layout import RunLayout

    return [("--out", Path(out_dir))] if out_dir else [(RunLayout(config).judge_key, RunLayout(config).judge)]


def judge_seed(cfg: JudgeConfig, config: RunConfig) -> int:
    """The base of the judge's per-item seeds: its own seed, else the run seed."""
    return cfg.seed if cfg.seed is not None else config.seed


def judge_info(cfg: JudgeConfig, rubric: Rubric, seed: int) -> dict[str, Any]:
    """Who judged, how: recorded in every summary."""
    return {
        "model": cfg.model,
        "engine": cfg.engine,
        "prompt_version": cfg.prompt_version,
        "language": cfg.language,
        "structured_output": cfg.guided,
        "sampling": cfg.sampling.model_dump(),
        "max_attempts": cfg.max_attempts,
        "retry_temperature": cfg.retry_temperature,
        "seed": seed,
        "rubric": rubric.to_dict(),
    }


def judge_key(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    """What the pipeline's judge stage depends on (:mod:`hiwar.markers`): the keys that decide the judgments
    (:data:`hiwar.judge.job.FINGERPRINT_KEYS`, ``enabled``, ``split``), the seed, the human-eval export it judges
    and the code version."""
    from hiwar.evaluation.human.export import KEY_NAME
    from hiwar.judge.job import FINGERPRINT_KEYS
    from hiwar.lineage import code_version, fingerprint
    from hiwar.markers import flatten

    cfg = config.judge
    export = layout.human_eval / KEY_NAME
    return {
        **flatten(cfg.model_dump(mode="json", include={*FINGERPRINT_KEYS, "enabled", "split"}), "judge"),
        "seed": judge_seed(cfg, config),
        "input export": fingerprint([export]) if export.is_file() else None,
        "hiwar": code_version()["hiwar"],
    }


def summary_text(out: Path) -> str:
    """``hiwar judge``'s console summary of a finished judge folder (its ``summary.json``)."""
    import json

    from hiwar.judge.report import SUMMARY
    from hiwar.judge.report import summary_text as render

    return render(json.loads((out / SUMMARY).read_text(encoding="utf-8")), out)


def run_judge(config: RunConfig, inputs: list[str], out_dir: str | None = None) -> Path:
    """Judge every item of ``inputs`` with ``config.judge`` on the ``human_eval`` rubric; returns the folder.

    Args:
        config: the run config (``judge``: the judge; ``human_eval``: criteria and scale; ``cluster``).
        inputs: dataset folders, conversation files, replies files, human-eval export folders.
        out_dir: output folder (default ``judge.output_dir``, else ``<run_dir>/judge``).

    Raises:
        DataError: no items. HiwarError: the judge cannot run. JobFailed: the Ray job failed (shards kept).
    """
    from hiwar.judge.items import load_inputs
    from hiwar.judge.job import judge_items
    from hiwar.judge.outputs import write_results
    from hiwar.judge.report import write_summary
    from hiwar.judge.summary import summarize
    from hiwar.outdirs import check_output_dirs

    cfg = config.judge
    check_output_dirs(output_places(config, out_dir))
    out = judge_dir(config, out_dir)
    rubric = Rubric.from_human_eval(config.human_eval)
    items, sources = load_inputs(inputs, cfg.split)
    if not items:
        raise DataError(f"{', '.join(inputs)}: nothing to judge (no conversations or replies)")
    seed = judge_seed(cfg, config)
    rows, stats = judge_items(items, cfg, rubric, out / "work", seed, config.cluster, "judge")
    write_results(out, rows, rubric)
    summary = {
        "judge": judge_info(cfg, rubric, seed),
        "sources": sources,
        **summarize(rows, rubric, cfg.bootstrap_samples, seed),
        "throughput": stats.to_dict(),
    }
    write_summary(out, summary)
    save_resolved(config, out)
    return out
