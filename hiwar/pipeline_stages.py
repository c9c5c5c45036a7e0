"""What each stage of ``hiwar pipeline`` runs and what its manifest records as lineage (outputs, models, seeds).

Each function calls the stage's own importable ``run_*`` (the same one its command calls), with every path from
:mod:`hiwar.run_layout`; :mod:`hiwar.pipeline` decides the order and which stages are done.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hiwar.atomic import atomic_path
from hiwar.config import RunConfig
from hiwar.lineage import fingerprint
from hiwar.run_layout import RunLayout


def files_under(folder: Path, pattern: str = "*.parquet") -> list[Path]:
    """Every file under ``folder`` matching ``pattern``, sorted (none when the folder is missing)."""
    return sorted(folder.rglob(pattern)) if folder.is_dir() else []


def _stage_generate(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.generation.run import run_generate

    dataset = run_generate(config)
    return {
        "dataset": str(dataset),
        "dataset_fingerprint": fingerprint(files_under(dataset / "data")),
        "generator": config.generation.model,
        "seed": config.seed,
        "sampling": config.generation.sampling.model_dump(),
    }


def _stage_train(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.training.run import run_train

    if not config.training.models:
        return {"models": [], "note": "training.models is empty: nothing to fine-tune"}
    folders = run_train(config)
    return {
        "models": [str(f) for f in folders],
        "base_models": [m.model for m in config.training.models],
        "dataset_fingerprint": fingerprint(files_under(layout.dataset / "data")),
        "seed": config.training.seed if config.training.seed is not None else config.seed,
    }


def _stage_evaluate(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.evaluation.run import finished_targets, run_evaluate

    report_dir = run_evaluate(config)  # this run's fine-tuned models, then evaluation.models
    return {
        "report": str(report_dir / "report.md"),
        "models": {m.name: m.model for m in finished_targets(config, layout)},
        "dataset_fingerprint": fingerprint(files_under(layout.eval_dataset / "data")),
    }


def replies_for_rating(layout: RunLayout) -> Path | None:
    """Every model's successful RAVEN replies in one file (the human-eval replies format); None if there are none."""
    import pandas as pd

    frames = [pd.read_parquet(p) for p in layout.replies_files()]
    frames = [f[(f["error"] == "") & (f["reply"].str.len() > 0)] for f in frames if "reply" in f.columns]
    if not frames or all(f.empty for f in frames):
        return None
    path = layout.replies_for_rating
    with atomic_path(path) as tmp:
        pd.concat(frames, ignore_index=True).to_parquet(tmp, index=False)
    return path


def _stage_human_eval(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.evaluation.human.export import run_export

    replies = replies_for_rating(layout)
    # Without model replies (RAVEN off), raters score the generated dataset's own conversations.
    inputs = [str(replies)] if replies else [str(layout.dataset)]
    out = run_export(config, inputs=inputs, out_dir=str(layout.human_eval))
    return {"sheets": str(out), "inputs": inputs}


def _stage_judge(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.judge.run import run_judge

    if not config.judge.enabled:
        return {"note": "judge.enabled is false: nothing judged"}
    out = run_judge(config, [str(layout.human_eval)], out_dir=str(layout.judge))
    return {"judgments": str(out), "export": str(layout.human_eval), "judge": config.judge.model}


def _stage_report(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.run_report import write_run_report

    return {"report": str(write_run_report(config, layout))}


STAGE_FUNCTIONS: dict[str, Callable[[RunConfig, RunLayout], dict[str, Any]]] = {
    "generate": _stage_generate,
    "train": _stage_train,
    "evaluate": _stage_evaluate,
    "human-eval": _stage_human_eval,
    "judge": _stage_judge,
    "report": _stage_report,
}
