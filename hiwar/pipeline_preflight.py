"""``hiwar pipeline``'s preflight: every pending stage's output folders and models, checked before any stage runs.

A typo in a training model or a judge that cannot run must not cost a generation run first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hiwar.config import RunConfig
from hiwar.errors import DataError
from hiwar.run_layout import RunLayout


def check_model_input(ref: Any, engine: str = "transformers", **limits: Any) -> None:
    """The pipeline's one question, "can this model run on this engine?", asked of every stage's models before
    the first stage starts (a typo in a training model must not cost a generation run).

    Args:
        ref: the model, as its config entry names it (``spec.ref()``), so the message names the key.
        engine: the engine that will run it.
        limits: ``max_model_len`` and ``max_tokens``, for generation.

    Raises:
        HiwarError: one line naming the key, the model and why it cannot run.
    """
    from hiwar.models.preflight import require_runnable

    require_runnable(ref, engine, **limits)


def output_places(layout: RunLayout, pending: list[str]) -> list[tuple[str, Path]]:
    """Every folder the pending stages write, named by the config key that decides it."""
    return [("run_dir", layout.run_dir)] + [place for stage in pending for place in layout.output_places(stage)]


def preflight(config: RunConfig, layout: RunLayout, pending: list[str]) -> None:
    """Check every pending stage's output folders and inputs (models, the dataset) before any stage runs.

    Raises:
        HiwarError: the first problem, on one line.
    """
    from hiwar.outdirs import check_output_dirs

    check_output_dirs(output_places(layout, pending))
    gen = config.generation
    if "generate" in pending:
        from hiwar.generation.grid import grid_pairs

        grid_pairs(gen.grid)  # known topics and countries, a size one run holds
        if gen.engine != "openai":  # a served model has no files to check; generation asks its server first
            from hiwar.generation.engines import runnable_engine

            engine = runnable_engine(gen)
            limits = {"max_model_len": engine.max_model_len, "max_tokens": engine.sampling.max_tokens}
            check_model_input(engine.ref(), engine.engine, **limits)
    elif {"train", "evaluate", "human-eval"} & set(pending) and not layout.dataset.exists():
        raise DataError(f"{layout.dataset}: no dataset (the generate stage is done, but its dataset is gone)")
    if "train" in pending:
        for i, spec in enumerate(config.training.models):
            check_model_input(spec.ref(f"training.models[{i}]"))
    if "evaluate" in pending:  # the models this run trains come first; they exist once training is done
        from hiwar.evaluation.run import evaluation_targets

        skip = len(config.training.models) if "train" in pending else 0
        for spec in evaluation_targets(config, layout)[skip:]:
            check_model_input(spec.ref("evaluation.models"))
    _check_judges(config, pending)


def _check_judges(config: RunConfig, pending: list[str]) -> None:
    """The judge models of the pending stages that use one (generation filter, evaluation metric, judge stage)."""
    from hiwar.judge.job import check_judge

    judges = [
        ("generate", config.generation.judge, "generation.judge"),
        ("evaluate", config.evaluation.judge, "evaluation.judge"),
        ("judge", config.judge, "judge"),
    ]
    for stage, cfg, key in judges:
        if stage in pending and cfg.enabled:
            check_judge(cfg, key)
