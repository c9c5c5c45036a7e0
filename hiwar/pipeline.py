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

This module holds the order and the completion decisions; what each stage runs and records is in
:mod:`hiwar.pipeline_stages`, the checks made before any stage starts in :mod:`hiwar.pipeline_preflight`.
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
from hiwar.errors import ConfigError, HiwarError
from hiwar.lineage import code_version
from hiwar.markers import Check
from hiwar.pipeline_preflight import preflight
from hiwar.pipeline_stages import STAGE_FUNCTIONS, files_under
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


def _ray_log_dir() -> str | None:
    try:
        from ray._private.worker import global_worker

        node = global_worker.node
        return f"{node.get_session_dir_path()}/logs" if node else None
    except Exception:  # noqa: BLE001 - logs are a convenience in the manifest, never a failure
        return None


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

    return export_key(config, layout.replies_files() or files_under(layout.dataset / "data"))


def _judge_key(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.judge.run import judge_key

    return judge_key(config, layout)


def _report_key(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    from hiwar.markers import digest, read_marker

    before = STAGES[: STAGES.index("report")]
    return {f"{s} stage": digest((read_marker(layout.manifest(s)) or {}).get("key")) for s in before}


# What each stage's output depends on: its key (hiwar/markers.py). Each stage module owns the config keys that
# decide its output.
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
                    warm = config.generation.warm_actors() if stage == "generate" else 0
                    session = connect(config.cluster, warm=warm)
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
