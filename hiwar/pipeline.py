"""``hiwar pipeline``: generate -> train -> evaluate -> human-eval sheets -> judge -> report, in one run folder.

Each stage calls the same importable ``run_*`` function as its own command, then writes a manifest
``<run_dir>/manifests/<stage>.json`` (config fingerprint, inputs' fingerprints, model ids, seeds, code version, times,
log locations). A manifest with ``status: done`` is the stage's completion marker: a rerun skips the stage and says
so. A stage that was killed has no marker and reruns; the stage functions are themselves resumable (generation skips
written shards, training resumes from its latest Ray Train checkpoint, evaluation skips finished metrics).
``--from STAGE`` deletes that stage's outputs and markers, and those of every later stage, then reruns them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiwar.config import RunConfig, save_resolved, to_yaml
from hiwar.errors import ConfigError, DataError
from hiwar.lineage import code_version, fingerprint, write_json
from hiwar.record import utc_now

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


class RunPaths:
    """Where each stage writes, derived from the config (a stage's own ``output_dir`` wins)."""

    def __init__(self, config: RunConfig) -> None:
        self.run_dir = Path(config.run_dir)
        self.dataset = Path(config.generation.output_dir or self.run_dir / "dataset")
        self.models = self.run_dir / "models"
        self.evaluation = Path(config.evaluation.output_dir or self.run_dir / "evaluation")
        self.human_eval = Path(config.human_eval.output_dir or self.run_dir / "human_eval")
        self.judge = Path(config.judge.output_dir or self.run_dir / "judge")
        self.manifests = self.run_dir / "manifests"
        self.logs = self.run_dir / "logs"
        self.report = self.run_dir / "REPORT.md"

    def stage_outputs(self, stage: str, config: RunConfig) -> list[Path]:
        """The folders and files ``--from`` deletes for ``stage``."""
        if stage == "generate":
            return [self.dataset]
        if stage == "train":  # the model folders and their Ray Train runs (or a rerun would resume at the end)
            storage = Path(config.training.storage_path or self.run_dir / "train")
            return [
                p
                for m in config.training.models
                for p in (Path(m.output_dir) if m.output_dir else self.models / m.name, storage / m.name)
            ]
        if stage == "evaluate":
            return [self.evaluation]
        if stage == "human-eval":
            return [self.human_eval]
        if stage == "judge":
            return [self.judge]
        return [self.report]

    def manifest(self, stage: str) -> Path:
        """The stage's manifest (and completion marker)."""
        return self.manifests / f"{stage}.json"


def config_fingerprint(config: RunConfig) -> str:
    """SHA-256 of the resolved config's YAML (first 16 hex digits)."""
    return hashlib.sha256(to_yaml(config).encode("utf-8")).hexdigest()[:16]


def is_done(paths: RunPaths, stage: str) -> bool:
    """Whether ``stage`` finished in an earlier invocation."""
    path = paths.manifest(stage)
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("status") == "done"
    except json.JSONDecodeError:
        return False  # a torn manifest means the stage did not finish


def reset_from(paths: RunPaths, config: RunConfig, stage: str) -> None:
    """Delete markers and outputs of ``stage`` and every later stage."""
    if stage not in STAGES:
        raise ConfigError(f"--from {stage!r}: unknown stage (expected one of {', '.join(STAGES)})")
    redo = STAGES[STAGES.index(stage) :]
    # Markers first, so that a reset cut short still reruns every stage it was asked to redo.
    targets = [paths.manifest(name) for name in redo]
    targets += [t for name in reversed(redo) for t in paths.stage_outputs(name, config)]
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


def _stage_generate(config: RunConfig, paths: RunPaths) -> dict[str, Any]:
    from hiwar.generation.run import run_generate

    dataset = run_generate(config)
    files = _files_under(dataset / "data")
    return {
        "dataset": str(dataset),
        "dataset_fingerprint": fingerprint(files),
        "generator": config.generation.model,
        "seed": config.seed,
        "sampling": config.generation.sampling.model_dump(),
    }


def _stage_train(config: RunConfig, paths: RunPaths) -> dict[str, Any]:
    from hiwar.training.run import run_train

    if not config.training.models:
        return {"models": [], "note": "training.models is empty: nothing to fine-tune"}
    folders = run_train(config, dataset=str(paths.dataset))
    return {
        "models": [str(f) for f in folders],
        "base_models": [m.model for m in config.training.models],
        "dataset_fingerprint": fingerprint(_files_under(paths.dataset / "data")),
        "seed": config.training.seed if config.training.seed is not None else config.seed,
    }


def evaluation_targets(config: RunConfig, paths: RunPaths) -> list[Any]:
    """Fine-tuned models (from this run's training, named as in training) then the configured baselines."""
    from hiwar.evaluation.config import ModelSpec

    trained = [
        ModelSpec(
            name=m.name,
            path=str(Path(m.output_dir) if m.output_dir else paths.models / m.name),
            trust_remote_code=m.trust_remote_code,
        )
        for m in config.training.models
    ]
    taken = {spec.path for spec in trained} | {spec.name for spec in trained}
    return trained + [m for m in config.evaluation.model_specs() if m.path not in taken and m.name not in taken]


def _stage_evaluate(config: RunConfig, paths: RunPaths) -> dict[str, Any]:
    from hiwar.evaluation.run import run_evaluate

    targets = evaluation_targets(config, paths)
    config = config.model_copy(update={"evaluation": config.evaluation.model_copy(update={"models": targets})})
    report_dir = run_evaluate(config, dataset=str(paths.dataset))
    return {
        "report": str(report_dir / "report.md"),
        "models": {m.name: m.path for m in targets},
        "dataset_fingerprint": fingerprint(_files_under(paths.dataset / "data")),
    }


def replies_for_rating(paths: RunPaths) -> Path | None:
    """Every model's successful RAVEN replies in one file (the human-eval replies format); None if there are none."""
    import pandas as pd

    frames = [pd.read_parquet(p) for p in sorted(paths.evaluation.glob("*/raven/replies.parquet"))]
    frames = [f[(f["error"] == "") & (f["reply"].str.len() > 0)] for f in frames if "reply" in f.columns]
    if not frames or all(f.empty for f in frames):
        return None
    path = paths.evaluation / "replies_for_rating.parquet"
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)
    return path


def _stage_human_eval(config: RunConfig, paths: RunPaths) -> dict[str, Any]:
    from hiwar.evaluation.human.export import run_export

    replies = replies_for_rating(paths)
    # Without model replies (RAVEN off), raters score the generated dataset's own conversations.
    inputs = [str(replies)] if replies else [str(paths.dataset)]
    out = run_export(config, inputs=inputs, out_dir=str(paths.human_eval))
    return {"sheets": str(out), "inputs": inputs}


def _stage_judge(config: RunConfig, paths: RunPaths) -> dict[str, Any]:
    from hiwar.judge.run import run_judge

    if not config.judge.enabled:
        return {"note": "judge.enabled is false: nothing judged"}
    out = run_judge(config, [str(paths.human_eval)], out_dir=str(paths.judge))
    return {"judgments": str(out), "export": str(paths.human_eval), "judge": config.judge.model}


def _stage_report(config: RunConfig, paths: RunPaths) -> dict[str, Any]:
    from hiwar.run_report import write_run_report

    return {"report": str(write_run_report(config, paths))}


STAGE_FUNCTIONS: dict[str, Callable[[RunConfig, RunPaths], dict[str, Any]]] = {
    "generate": _stage_generate,
    "train": _stage_train,
    "evaluate": _stage_evaluate,
    "human-eval": _stage_human_eval,
    "judge": _stage_judge,
    "report": _stage_report,
}


def stages_to_run(paths: RunPaths, stages: tuple[str, ...], from_stage: str | None) -> list[str]:
    """The stages this invocation runs: those from ``from_stage`` on, and every other one not done yet."""
    redo = set(STAGES[STAGES.index(from_stage) :]) if from_stage in STAGES else set()
    return [s for s in stages if s in redo or not is_done(paths, s)]


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


def output_places(config: RunConfig, paths: RunPaths, pending: list[str]) -> list[tuple[str, Path]]:
    """Every folder the pending stages write, named by the config key that decides it."""
    from hiwar.evaluation.human.export import output_places as human_eval_places
    from hiwar.evaluation.run import output_places as evaluation_places
    from hiwar.generation.run import output_places as generation_places
    from hiwar.training.run import output_places as training_places

    places: list[tuple[str, Path]] = [("run_dir", paths.run_dir)]
    if "generate" in pending:
        places += generation_places(config)
    if "train" in pending and config.training.models:
        places += training_places(config, list(config.training.models))
    if "evaluate" in pending:
        places += evaluation_places(config)
    if "human-eval" in pending:
        places += human_eval_places(config)
    if "judge" in pending and config.judge.enabled:
        places.append(("judge.output_dir" if config.judge.output_dir else "run_dir", paths.judge))
    return places


def preflight(config: RunConfig, paths: RunPaths, pending: list[str]) -> None:
    """Check every pending stage's output folders and inputs (models, the dataset) before any stage runs.

    Raises:
        HiwarError: the first problem, on one line.
    """
    from hiwar.outdirs import check_output_dirs

    check_output_dirs(output_places(config, paths, pending))
    gen = config.generation
    if "generate" in pending:
        from hiwar.generation.grid import grid_pairs

        grid_pairs(gen.grid)  # known topics and countries, a size one run holds
        if gen.engine != "openai":  # a served model has no files to check; generation asks its server first
            from hiwar.generation.engines import runnable_engine

            engine = runnable_engine(gen)
            limits = {"max_model_len": engine.max_model_len, "max_tokens": engine.sampling.max_tokens}
            check_model_input(engine.ref(), engine.engine, **limits)
    elif {"train", "evaluate", "human-eval"} & set(pending) and not paths.dataset.exists():
        raise DataError(f"{paths.dataset}: no dataset (the generate stage is done, but its dataset is gone)")
    if "train" in pending:
        for i, spec in enumerate(config.training.models):
            check_model_input(spec.ref(i))
    if "evaluate" in pending:  # the models this run trains come first; they exist once training is done
        skip = len(config.training.models) if "train" in pending else 0
        for spec in evaluation_targets(config, paths)[skip:]:
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


def _run_stage(stage: str, config: RunConfig, paths: RunPaths) -> StageOutcome:
    started, t0 = utc_now(), time.perf_counter()
    log.info("stage %s: starting", stage)
    outputs = STAGE_FUNCTIONS[stage](config, paths)
    seconds = time.perf_counter() - t0
    write_json(
        paths.manifest(stage),
        {
            "stage": stage,
            "status": "done",
            "started_at": started,
            "finished_at": utc_now(),
            "seconds": round(seconds, 2),
            "outputs": outputs,
            "config_fingerprint": config_fingerprint(config),
            "seed": config.seed,
            "code_version": code_version(),
            "logs": {"pipeline": str(paths.logs / "pipeline.log"), "ray": _ray_log_dir()},
        },
    )
    log.info("stage %s: done in %.1f s", stage, seconds)
    return StageOutcome(stage, "done", seconds, outputs)


def _attach_log_file(paths: RunPaths) -> logging.Handler:
    paths.logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(paths.logs / "pipeline.log", encoding="utf-8")
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

    paths = RunPaths(config)
    if from_stage is not None and from_stage not in STAGES:
        raise ConfigError(f"--from {from_stage!r}: unknown stage (expected one of {', '.join(STAGES)})")
    preflight(config, paths, stages_to_run(paths, stages, from_stage))
    if from_stage is not None:
        reset_from(paths, config, from_stage)
    save_resolved(config, paths.run_dir)
    handler = _attach_log_file(paths)
    outcomes: list[StageOutcome] = []
    session = None
    try:
        for stage in stages:
            if is_done(paths, stage):
                outcome = StageOutcome(stage, "skipped", 0.0, {"manifest": str(paths.manifest(stage))})
            else:
                if session is None:  # one Ray session for every stage; none at all when nothing is left to do
                    session = connect(config.cluster)
                    if session.dashboard_url:
                        log.info("Ray dashboard: %s", session.dashboard_url)
                outcome = _run_stage(stage, config, paths)
            outcomes.append(outcome)
            if on_stage is not None:
                on_stage(outcome)
    finally:
        logging.getLogger("hiwar").removeHandler(handler)
        handler.close()
        if session is not None:
            shutdown(session)
    return PipelineResult(paths.run_dir, outcomes)
