"""``hiwar evaluate``: score every model on a held-out split (perplexity, bits per byte, RAVEN) and write one
report.

Layout of the output folder::

    <output_dir>/report.{md,json,csv}, plots/*.png, config.resolved.yaml
    <output_dir>/models/<name>/perplexity/{conversations.parquet, summary.json (+ .done.json)}
    <output_dir>/models/<name>/raven/{replies.parquet, turns.parquet, summary.json (+ .done.json)}

Each (model, metric) result has a completion marker, so a rerun skips what is finished. A model that fails is
recorded as failed with its reason and the other models are still evaluated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from hiwar.config import RunConfig, save_resolved
from hiwar.errors import ConfigError, DataError, HiwarError
from hiwar.evaluation.config import RESOURCE_KEYS
from hiwar.evaluation.model_evaluation import ModelEvaluation
from hiwar.lineage import folder_stamp
from hiwar.models.spec import ModelSpec
from hiwar.run_layout import RunLayout

log = logging.getLogger(__name__)


def evaluation_targets(config: RunConfig, layout: RunLayout) -> list[ModelSpec]:
    """This run's fine-tuned models (``training.models``, in their layout folders), then ``evaluation.models``
    (a baseline that names a trained model's folder or name is that model)."""
    trained = [
        ModelSpec(name=m.name, model=str(layout.model_dir(m)), trust_remote_code=m.trust_remote_code)
        for m in config.training.models
    ]
    taken = {spec.model for spec in trained} | {spec.name for spec in trained}
    baselines = config.evaluation.model_specs()
    return trained + [m for m in baselines if m.model not in taken and m.name not in taken]


def finished_targets(config: RunConfig, layout: RunLayout) -> list[ModelSpec]:
    """:func:`evaluation_targets` less the fine-tuned models not trained yet (said in the log)."""
    untrained = {str(layout.model_dir(m)): layout.model_marker(m) for m in config.training.models}
    targets = []
    for spec in evaluation_targets(config, layout):
        if spec.model in untrained and not untrained[spec.model].is_file():
            log.warning("%s: not trained yet (no %s); not evaluated", spec.name, untrained[spec.model])
        else:
            targets.append(spec)
    return targets


def evaluation_key(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    """What the evaluation report depends on (the pipeline's evaluate stage, :mod:`hiwar.markers`): the metric
    settings, each model and its local folder's stamp, the scored split's fingerprint, the seed and the code."""
    from hiwar.dataset_layout import resolve_split
    from hiwar.lineage import code_version, fingerprint
    from hiwar.markers import flatten

    try:
        data = fingerprint(resolve_split(layout.eval_dataset, config.evaluation.split))
    except DataError:
        data = None  # no dataset yet: a marker made from one is out of date
    models = {
        s.name: {"path": s.model, "trust_remote_code": s.trust_remote_code, "folder": folder_stamp(s.model)}
        for s in evaluation_targets(config, layout)
    }
    return {
        **flatten(config.evaluation, "evaluation", skip=RESOURCE_KEYS),
        "evaluation models": models,
        "seed": config.seed,
        "input dataset": data,
        "hiwar": code_version()["hiwar"],
    }


def resolve_models(config: RunConfig, models: list[str] | None) -> list[ModelSpec]:
    """The models to score: ``models`` (paths or ids) when given, else this run's trained models and
    ``evaluation.models``; names made unique."""
    if models:
        specs = [ModelSpec(model=m) for m in models]
    else:
        specs = [m.model_copy() for m in finished_targets(config, RunLayout(config))]
    if not specs:
        raise ConfigError(
            "evaluation.models: no models to evaluate (set evaluation.models, train training.models or pass --model)"
        )
    seen: dict[str, int] = {}
    for spec in specs:
        count = seen.get(spec.name, 0)
        seen[spec.name] = count + 1
        if count:
            spec.name = f"{spec.name}-{count + 1}"
    return specs


def load_dataset(path: str, split: str) -> tuple[list[Any], dict[str, Any]]:
    """The split's conversations and the dataset's lineage (path, split, files, fingerprint)."""
    from hiwar.dataset_layout import resolve_split
    from hiwar.lineage import fingerprint
    from hiwar.records_io import read_records

    files = resolve_split(path, split)
    convs = [c for f in files for c in read_records(f)]
    info = {
        "path": str(path),
        "split": split,
        "files": [str(f) for f in files],
        "fingerprint": fingerprint(files),
        "conversations": len(convs),
    }
    if not convs:
        raise DataError(f"{path}: split '{split}' holds no conversations")
    return convs, info


def log_skipped(convs: list[Any]) -> None:
    """One warning line per reason a conversation cannot be scored (the report lists them too)."""
    from hiwar.evaluation.examples import perplexity_rows

    for reason, info in perplexity_rows(convs)[1].to_dict().items():
        log.warning("skipping %d conversation(s): %s (e.g. %s)", info["count"], reason, ", ".join(info["examples"]))


def resolve_transformers_names() -> None:
    """Resolve, on the calling thread, the top-level transformers names that the evaluation threads import.

    transformers 5 resolves them lazily (``_LazyModule``); threads resolving them at once can be handed a
    half-imported module and fail with "cannot import name 'AutoConfig' from 'transformers'". A fresh
    ``hiwar pipeline --from evaluate`` on the demo's run folder lost the teacher's RAVEN so on 3 runs of 3; vLLM's
    CLI and others met the same race.
    """
    import transformers.utils.chat_template_utils  # noqa: F401 - training.data renders templates with it
    from transformers import AutoConfig, AutoTokenizer  # noqa: F401

    from hiwar.models import register_architectures

    register_architectures()


def run_in_threads(calls: dict[Any, Callable[[], Any]], max_workers: int) -> dict[Any, Any]:
    """Run ``calls`` (started in their order) on at most ``max_workers`` threads; their results, by key.

    Ray jobs are driven from these threads, so they overlap; transformers' names are resolved here first.
    """
    resolve_transformers_names()
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(calls))), thread_name_prefix="eval") as pool:
        futures = {key: pool.submit(call) for key, call in calls.items()}
        return {key: future.result() for key, future in futures.items()}


def run_evaluate(config: RunConfig, models: list[str] | None = None, dataset: str | None = None) -> Path:
    """Evaluate every model on the held-out split and write the report; return the report folder.

    Args:
        config: the run config (its ``evaluation`` section says what and how).
        models: hub ids or folders to evaluate instead of ``evaluation.models``.
        dataset: dataset folder or file instead of ``evaluation.dataset`` (default: the run's dataset,
            :mod:`hiwar.run_layout`).

    Raises:
        ConfigError: no models. DataError: the dataset or split is missing or empty.
        HiwarError: no model could be evaluated at all (the report is still written).
    """
    from hiwar.cluster import warm_workers
    from hiwar.cluster.session import connect_during, shutdown
    from hiwar.evaluation.report import write_report
    from hiwar.judge.metric import run_judge_metric
    from hiwar.lineage import code_version
    from hiwar.outdirs import check_output_dirs

    ev, layout = config.evaluation, RunLayout(config)
    specs = resolve_models(config, models)
    check_output_dirs(layout.output_places("evaluate"))
    out_dir = layout.evaluation
    data_path = dataset or str(layout.eval_dataset)
    save_resolved(config, out_dir)
    try:
        convs, data = load_dataset(data_path, ev.split)
    except DataError as err:  # the report says why nothing was scored
        write_report(
            out_dir,
            [],
            {"path": str(data_path), "split": ev.split, "error": str(err)},
            config,
            code_version(),
        )
        raise
    log_skipped(convs)

    def prepare() -> list[ModelEvaluation]:  # each checks its model (preflight) while Ray starts
        return [ModelEvaluation(s, convs, ev, config.seed, data, layout.evaluation_model(s.name)) for s in specs]

    session, evals = connect_during(config.cluster, prepare)
    # A model's jobs (both metrics over one pool, or one per metric: ModelEvaluation.jobs) and other models' are
    # independent: overlapping them hides each job's actor start-up (importing torch and loading the model), which
    # dominates on small data. Results keep the config's order. Jobs with RAVEN come first: they are the longer
    # ones, so the short ones fill in after. The first ones' actors get warm workers, asked for now.
    try:
        jobs = [((i, metrics), call) for i, e in enumerate(evals) for metrics, call in e.jobs().items()]
        jobs.sort(key=lambda job: "raven" not in job[0][1])
        warm_workers.ensure(sum(evals[i].warm_actors(metrics) for (i, metrics), _ in jobs[: ev.concurrent_jobs]))
        done = run_in_threads(dict(jobs), ev.concurrent_jobs)
        results = [
            e.result({m: r for (j, _), out in done.items() if j == i for m, r in out.items()})
            for i, e in enumerate(evals)
        ]
        pairwise = run_judge_metric(config, out_dir, results)  # evaluation.judge: scores the RAVEN replies
    finally:
        shutdown(session)
    write_report(out_dir, results, data, config, code_version(), pairwise)
    if not any(r[m]["status"] == "ok" for r in results for m in ("perplexity", "raven")):
        reasons = "; ".join(
            f"{r['name']}: {r[m].get('reason', r[m]['status'])}" for r in results for m in ("perplexity", "raven")
        )
        raise HiwarError(f"nothing could be evaluated ({reasons}); see {out_dir / 'report.md'}")
    return out_dir


def summary_text(out_dir: Path) -> str:
    """A short console summary of a written report: the main table and where the files are."""
    from hiwar.evaluation.report import markdown_table

    report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    columns = [
        "model",
        "perplexity_within_model",
        "bits_per_byte",
        "raven",
        "raven_ci_low",
        "raven_ci_high",
        "perplexity_status",
        "raven_status",
    ]
    return f"{markdown_table(report['table'], columns)}\nreport: {out_dir / 'report.md'}"
