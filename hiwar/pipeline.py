"""``hiwar pipeline``: generate -> train -> evaluate -> human-eval sheets -> judge -> report, in one run folder.

Each stage calls the same importable ``run_*`` function as its own command, and every path comes from
:mod:`hiwar.run_layout`. A finished stage writes its manifest ``<run_dir>/manifests/<stage>.json``: its *key* (the
config keys that decide its output, its inputs' fingerprints and, where it matters, the code version) and its
lineage (outputs, model ids, seeds, code version, times, log locations). Completion follows :mod:`hiwar.markers`:
a stage whose manifest holds the key it would write now is skipped, and says so; a stage finished with another key
stops the run before any stage starts, with one line that says what changed and which ``--from STAGE`` redoes it.
A stage that was killed has no manifest and reruns; the stage functions are themselves resumable (generation skips
written shards, training resumes from its latest Ray Train checkpoint, evaluation skips finished metrics).
``--from STAGE`` deletes that stage's outputs and markers, and those of every later stage, then reruns them.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiwar.config import RunConfig, save_resolved
from hiwar.errors import ConfigError, DataError, HiwarError
from hiwar.lineage import code_version, fingerprint
from hiwar.markers import Check
from hiwar.record import utc_now
from hiwar.run_layout import RunLayout

log = logging.getLogger(__name__)

# "judge" (optional: judge.enabled) scores the human-eval sheets' items, for `human-eval analyze --judge`.
STAGES = ("generate", "train", "evaluate", "human-eval", "judge", "report")


@dataclass
class StageOutcome:
    """What one stage did in this invocation."""

    stage: str
    status: str  # "done" (ran now) or "skipped" (already done)
    seconds: float
    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineResult:
    """Every stage's outcome, and where the run lives."""

    run_dir: Path
    outcomes: list[StageOutcome]

    @property
    def ran_nothing(self) -> bool:
        """True when every stage was already done."""
        return all(o.status == "skipped" for o in self.outcomes)


def reset_from(layout: RunLayout, stage: str) -> None:
    """Delete markers and outputs of ``stage`` and every later stage."""
    if stage not in STAGES:
        raise ConfigError(f"--from {stage!r}: unknown stage (expected one of {', '.join(STAGES)})")
    redo = STAGES[STAGES.index(stage) :]
    # Markers first, so that a reset cut short still reruns every stage it was asked to redo.
    targets = [layout.manifest(name) for name in redo]
    targets += [t for name in reversed(redo) for t in layout.stage_outputs(name)]
    for target in targets:
        if target.is_dir():
            log.info("--from %s: removing %s", stage, target)
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _files_under(folder: Path, pattern: str = "*.parquet") -> list[Path]:
    return sorted(folder.rglob(pattern)) if folder.is_dir() else []


def _ray_log_dir() -> str | None:
    try:
        from ray._private.worker import global_worker

        node = global_worker.node
        return f"{node.get_session_dir_path()}/logs" if node else None
    except Exception:  # noqa: BLE001 - logs are a convenience in the manifest, never a failure
        return None


def _stage_generate(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.generation.run import run_generate

    dataset = run_generate(config)
    return {
        "dataset": str(dataset),
        "dataset_fingerprint": fingerprint(_files_under(dataset / "data")),
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
        "dataset_fingerprint": fingerprint(_files_under(layout.dataset / "data")),
        "seed": config.training.seed if config.training.seed is not None else config.seed,
    }


def _stage_evaluate(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.evaluation.run import finished_targets, run_evaluate

    report_dir = run_evaluate(config)  # this run's fine-tuned models, then evaluation.models
    return {
        "report": str(report_dir / "report.md"),
        "models": {m.name: m.path for m in finished_targets(config, layout)},
        "dataset_fingerprint": fingerprint(_files_under(layout.eval_dataset / "data")),
    }


def replies_for_rating(layout: RunLayout) -> Path | None:
    """Every model's successful RAVEN replies in one file (the human-eval replies format); None if there are none."""
    import pandas as pd

    frames = [pd.read_parquet(p) for p in layout.replies_files()]
    frames = [f[(f["error"] == "") & (f["reply"].str.len() > 0)] for f in frames if "reply" in f.columns]
    if not frames or all(f.empty for f in frames):
        return None
    path = layout.replies_for_rating
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)
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


def _generate_key(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.generation.run import dataset_key

    return dataset_key(config)


def _train_key(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.training.plan import training_key

    return training_key(config, layout)


def _evaluate_key(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.evaluation.run import evaluation_key

    return evaluation_key(config, layout)


def _human_eval_key(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.evaluation.human.export import export_key

    return export_key(config, layout.replies_files() or _files_under(layout.dataset / "data"))


def _judge_key(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.judge.job import FINGERPRINT_KEYS
    from hiwar.markers import flatten

    cfg = config.judge
    export = layout.human_eval / "key.json"
    return {
        **flatten(cfg.model_dump(mode="json", include={*FINGERPRINT_KEYS, "enabled", "split"}), "judge"),
        "seed": cfg.seed if cfg.seed is not None else config.seed,
        "input export": fingerprint([export]) if export.is_file() else None,
        "hiwar": code_version()["hiwar"],
    }


def _report_key(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.markers import digest, read_marker

    before = STAGES[: STAGES.index("report")]
    return {f"{s} stage": digest((read_marker(layout.manifest(s)) or {}).get("key")) for s in before}


# What each stage's output depends on: its key (hiwar/markers.py). Each stage module owns the config keys that
# decide its output; the judge's come from hiwar.judge.job.FINGERPRINT_KEYS.
STAGE_KEYS: dict[str, Callable[[RunConfig, RunLayout], dict[str, Any]]] = {
    "generate": _generate_key,
    "train": _train_key,
    "evaluate": _evaluate_key,
    "human-eval": _human_eval_key,
    "judge": _judge_key,
    "report": _report_key,
}


def check_stage(stage: str, config: RunConfig, layout: RunLayout) -> Check:
    """The completion rule for one stage: its manifest against the key it would write now."""
    from hiwar.markers import check

    return check(layout.manifest(stage), STAGE_KEYS[stage](config, layout))


def stale_error(stage: str, verdict: Check) -> HiwarError:
    """The one line for a stage finished with other inputs."""
    return verdict.refusal(f"stage {stage}", f"rerun with --from {stage} to redo it and every later stage")


def stages_to_run(config: RunConfig, layout: RunLayout, stages: tuple[str, ...], from_stage: str | None) -> list[str]:
    """The stages this invocation runs: those from ``from_stage`` on, and every other one not finished.

    Raises:
        HiwarError: a stage outside ``--from`` was finished with other inputs (:func:`stale_error`).
    """
    redo = STAGES[STAGES.index(from_stage) :] if from_stage in STAGES else ()
    pending = []
    for stage in stages:
        verdict = None if stage in redo else check_stage(stage, config, layout)
        if verdict is not None and verdict.stale:
            raise stale_error(stage, verdict)
        if verdict is None or not verdict.done:
            pending.append(stage)
    return pending


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
            check_model_input(spec.ref(i))
    if "evaluate" in pending:  # the models this run trains come first; they exist once training is done
        from hiwar.evaluation.run import evaluation_targets

        skip = len(config.training.models) if "train" in pending else 0
        for spec in evaluation_targets(config, layout)[skip:]:
            check_model_input(spec.ref())
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


def _run_stage(stage: str, config: RunConfig, layout: RunLayout) -> StageOutcome:
    from hiwar.markers import write_marker

    started, t0 = utc_now(), time.perf_counter()
    log.info("stage %s: starting", stage)
    outputs = STAGE_FUNCTIONS[stage](config, layout)
    seconds = time.perf_counter() - t0
    write_marker(
        layout.manifest(stage),
        STAGE_KEYS[stage](config, layout),
        stage=stage,
        started_at=started,
        finished_at=utc_now(),
        seconds=round(seconds, 2),
        outputs=outputs,
        seed=config.seed,
        code_version=code_version(),
        logs={"pipeline": str(layout.pipeline_log), "ray": _ray_log_dir()},
    )
    log.info("stage %s: done in %.1f s", stage, seconds)
    return StageOutcome(stage, "done", seconds, outputs)


def _attach_log_file(layout: RunLayout) -> logging.Handler:
    layout.logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(layout.pipeline_log, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger("hiwar").addHandler(handler)
    logging.getLogger("hiwar").setLevel(min(logging.getLogger("hiwar").getEffectiveLevel(), logging.INFO))
    return handler


def run_pipeline(
    config: RunConfig,
    from_stage: str | None = None,
    stages: tuple[str, ...] = STAGES,
    on_stage: Callable[[StageOutcome], None] | None = None,
) -> PipelineResult:
    """Run every unfinished stage in order; return what each did.

    Args:
        config: the run config; everything lands under ``config.run_dir``.
        from_stage: redo this stage and every later one (their outputs are deleted first).
        stages: the stages to consider (default: all, in order).
        on_stage: called after each stage (the CLI prints progress with it).
    """
    from hiwar.cluster.session import connect, shutdown

    layout = RunLayout(config)
    if from_stage is not None and from_stage not in STAGES:
        raise ConfigError(f"--from {from_stage!r}: unknown stage (expected one of {', '.join(STAGES)})")
    preflight(config, layout, stages_to_run(config, layout, stages, from_stage))
    if from_stage is not None:
        reset_from(layout, from_stage)
    save_resolved(config, layout.run_dir)
    handler = _attach_log_file(layout)
    outcomes: list[StageOutcome] = []
    session = None
    try:
        for stage in stages:
            verdict = check_stage(stage, config, layout)  # again: a stage run just now may have changed its inputs
            if verdict.stale:
                raise stale_error(stage, verdict)
            if verdict.done:
                log.info("stage %s: done before with the same inputs (%s); skipping", stage, verdict.marker)
                outcome = StageOutcome(stage, "skipped", 0.0, {"manifest": str(layout.manifest(stage))})
            else:
                if session is None:  # one Ray session for every stage; none at all when nothing is left to do
                    session = connect(config.cluster)
                    if session.dashboard_url:
                        log.info("Ray dashboard: %s", session.dashboard_url)
                outcome = _run_stage(stage, config, layout)
            outcomes.append(outcome)
            if on_stage is not None:
                on_stage(outcome)
    finally:
        logging.getLogger("hiwar").removeHandler(handler)
        handler.close()
        if session is not None:
            shutdown(session)
    return PipelineResult(layout.run_dir, outcomes)
