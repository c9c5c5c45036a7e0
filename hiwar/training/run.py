"""``hiwar train``: fine-tune every model of the config on a hiwar dataset with Ray Train, resumably.

For each model: load its tokenizer (and the chat template: its own, else hiwar's), turn conversations into
sequences and labels once (:mod:`hiwar.training.data`), put them in Ray's object store, run a ``TorchTrainer``
whose workers each run a Hugging Face ``Trainer`` (:mod:`hiwar.training.worker`), then write the model folder
from the last checkpoint (:mod:`hiwar.training.export`). Every path comes from :mod:`hiwar.run_layout`.

Which models are trained, on what, and which are done already: :mod:`hiwar.training.plan`. A finished model is
skipped; the others resume from the latest Ray Train checkpoint (``<storage>/<name>/``) made with the same key.
Work made with another key is an error that says what changed, or, with ``force``, is deleted and trained anew.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hiwar.config import RunConfig
from hiwar.errors import ConfigError, DataError, HiwarError, JobFailed, describe_error
from hiwar.lineage import code_version
from hiwar.models.spec import ModelSpec
from hiwar.record import utc_now
from hiwar.run_layout import MODEL_MARKER, RunLayout
from hiwar.training.config import MODELS_WHERE, TrainingConfig
from hiwar.training.export import export_model
from hiwar.training.plan import TrainingData, load_training_data, model_key, pending_models, select_models

log = logging.getLogger(__name__)

# Ray Train's controller sees its workers start, report and finish only when it polls them, every
# RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s by default, sized for long multi-node runs), so every run waited up to a
# poll at each step and at its end. A poll is one small call per worker. Ray Train hands the driver's value to its
# controller and workers. Measured on `hiwar train` of the demo's student (2 CPU workers), whole processes: median
# 34.6 s at 0.25 s against 37.4 s at 2 s (docs/training.md). A value the user exported wins.
POLL_INTERVAL_ENV, POLL_INTERVAL_S = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.25"


def _prepare_tokenizer(spec: ModelSpec, index: int = 0) -> tuple[Any, str]:
    """The base model's tokenizer with the training chat template set, and the template's kind (after the
    preflight: the model, its weights and its tokenizer load, before any Ray worker starts)."""
    from hiwar.models.loader import load_tokenizer
    from hiwar.models.preflight import require_runnable
    from hiwar.training.data import chat_template_of

    ref = spec.ref(f"{MODELS_WHERE}[{index}]")
    require_runnable(ref, "transformers")
    tokenizer = load_tokenizer(ref)
    if not getattr(tokenizer, "is_fast", False):
        raise ref.fail("has no fast tokenizer (tokenizer.json); hiwar needs one for its assistant masks")
    template, kind = chat_template_of(tokenizer)
    tokenizer.chat_template = template
    return tokenizer, kind


def fit_max_seq_len(config: RunConfig, spec: ModelSpec) -> TrainingConfig:
    """The model's settings with ``max_seq_len`` at most its positions: the default is capped (said in the log);
    a value the user set above them is an error."""
    from hiwar.models.loader import load_config, model_positions

    settings = config.training.for_model(spec)
    positions = model_positions(load_config(spec.ref(MODELS_WHERE)))
    if not positions or settings.max_seq_len <= positions:
        return settings
    explicit = "max_seq_len" in config.training.model_fields_set or "max_seq_len" in spec.overrides
    if explicit:
        raise ConfigError(
            f"training.max_seq_len={settings.max_seq_len}: above {spec.name}'s {positions} positions "
            f"(model {spec.model!r}); set it to at most {positions}"
        )
    log.info("%s: max_seq_len %d capped to the model's %d positions", spec.name, settings.max_seq_len, positions)
    return settings.model_copy(update={"max_seq_len": positions})


def warn_unknown(spec: ModelSpec, stats: Any, limit: float) -> None:
    """Say so when the tokenizer reads more of the training text as ``<unk>`` than ``limit`` allows."""
    if stats.unk_share <= limit:
        return
    chars = ", ".join(f"{c!r} ({n})" for c, n in sorted(stats.unk_characters.items(), key=lambda kv: -kv[1])[:8])
    log.warning(
        "%s: %.2f%% of training tokens are <unk> (above training.max_unk_share=%g); the tokenizer cannot read: %s",
        spec.name,
        100 * stats.unk_share,
        limit,
        chars or "?",
    )


def _trainer(work: Path, spec: ModelSpec, settings: TrainingConfig, loop_config: dict[str, Any]) -> Any:
    """Ray Train's trainer for one model; ``work`` is its run folder (:meth:`RunLayout.train_run`)."""
    from ray.train import CheckpointConfig, FailureConfig, ScalingConfig
    from ray.train import RunConfig as RayRunConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from hiwar.training.worker import train_loop_per_worker

    scaling = ScalingConfig(
        num_workers=settings.num_workers,
        use_gpu=settings.use_gpu,
        resources_per_worker=dict(settings.resources_per_worker),
        accelerator_type=settings.accelerator_type,
    )
    run_config = RayRunConfig(
        name=work.name,
        storage_path=str(work.parent),
        checkpoint_config=CheckpointConfig(num_to_keep=settings.num_to_keep),
        failure_config=FailureConfig(max_failures=settings.max_failures),
    )
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config=loop_config,
        scaling_config=scaling,
        run_config=run_config,
        torch_config=TorchConfig(backend="nccl" if settings.use_gpu else "gloo"),
    )


def _fit(trainer: Any, spec: ModelSpec, settings: TrainingConfig, work: Path) -> Any:
    """``trainer.fit()``; a run whose workers failed more than ``max_failures`` times becomes one line."""
    from ray.train import TrainingFailedError

    from hiwar.training.callbacks import NonFiniteLossError

    try:
        with _poll_interval():
            return trainer.fit()
    except NonFiniteLossError as err:  # local mode: the worker function ran in this process
        raise _diverged(str(err), settings, work) from err
    except TrainingFailedError as err:
        failures = getattr(err, "worker_failures", None) or {}
        cause = next(iter(failures.values()), getattr(err, "controller_failure", err))
        kind, _, message = describe_error(cause).partition(": ")
        if kind == NonFiniteLossError.__name__:  # the user's settings, not the cluster: exit status 2
            log.debug("%s", err)
            raise _diverged(message, settings, work) from err
        log.error("%s", err)  # Ray's account of every worker's failure, for the log
        rerun = (
            "it starts over (local mode keeps no checkpoint)"
            if settings.num_workers == 0
            else f"it resumes from the latest checkpoint in {work}"
        )
        raise JobFailed(
            f"training.models ({spec.name}): training failed after training.max_failures={settings.max_failures} "
            f"restart(s): {describe_error(cause)}; fix the cause and rerun the same command, {rerun}"
        ) from err


@contextlib.contextmanager
def _poll_interval() -> Iterator[None]:
    """Ray Train's controller polls every :data:`POLL_INTERVAL_S` during the block, unless the user set it."""
    if POLL_INTERVAL_ENV in os.environ:
        yield
        return
    os.environ[POLL_INTERVAL_ENV] = POLL_INTERVAL_S
    try:
        yield
    finally:
        os.environ.pop(POLL_INTERVAL_ENV, None)


def _diverged(message: str, settings: TrainingConfig, work: Path) -> HiwarError:
    """The one line for a run stopped by :class:`~hiwar.training.callbacks.StopOnNonFiniteLoss`."""
    if settings.num_workers == 0:
        return HiwarError(f"{message}; lower training.learning_rate and train again (local mode keeps no checkpoint)")
    return HiwarError(
        f"{message}; the checkpoints made before it (if any) are kept in {work}: lower training.learning_rate and "
        "rerun with --force (it deletes them; a plain rerun would resume from them)"
    )


def _prepare_splits(tokenizer: Any, spec: ModelSpec, settings: TrainingConfig, data: TrainingData) -> dict[str, Any]:
    """Sequences and labels of both splits, made once here (the workers only pad)."""
    from hiwar.training.data import prepare_split

    prep = {
        name: prepare_split(
            tokenizer, [c.messages for c in rows], settings.max_seq_len, settings.mask, settings.packing
        )
        for name, rows in (("train", data.train), ("validation", data.validation))
    }
    if not prep["train"].sequences:
        raise DataError(
            f"{data.info['path']}: no training conversation has an assistant reply within "
            f"training.max_seq_len={settings.max_seq_len} tokens"
        )
    log.info("%s: %s", spec.name, {name: p.stats.as_dict() for name, p in prep.items()})
    warn_unknown(spec, prep["train"].stats, settings.max_unk_share)
    return prep


def _loop_config(
    spec: ModelSpec, settings: TrainingConfig, seed: int, tokenizer: Any, prep: dict[str, Any], work: Path
) -> dict[str, Any]:
    """What every Ray Train worker gets: settings, the prepared sequences (in the object store) and where to log."""
    import ray

    loop_config = {
        "spec": spec.model_dump(mode="json"),
        "settings": settings.model_dump(mode="json"),
        "seed": seed,
        "chat_template": tokenizer.chat_template,
        "data": ray.put({name: p.sequences for name, p in prep.items()}),
        "metrics_path": str(work / "metrics.jsonl"),
        "tensorboard_dir": str(work / "tensorboard"),
    }
    if settings.num_workers == 0:
        # Ray Train's local mode runs the function in this process and persists no checkpoint (the one the
        # report callback makes is a temporary folder), so the worker saves the final weights itself.
        shutil.rmtree(work / "local-final", ignore_errors=True)
        loop_config["final_dir"] = str(work / "local-final")
    return loop_config


def _final_checkpoint(result: Any, spec: ModelSpec, settings: TrainingConfig, work: Path) -> Path:
    """The Hugging Face checkpoint folder to export: Ray Train's last one, or local mode's final weights."""
    if settings.num_workers == 0:
        return work / "local-final"
    if result.checkpoint is None:
        raise HiwarError(f"training.models ({spec.name}): training ended without a checkpoint (see {work})")
    return Path(result.checkpoint.path) / "checkpoint"


def _manifest(
    spec: ModelSpec, settings: TrainingConfig, seed: int, tokenizer: tuple[Any, str], summary: dict, work: Path
) -> dict[str, Any]:
    """The lineage written into the model folder's ``hiwar_model.json`` (beside its completion key)."""
    tokenizer, template_kind = tokenizer
    return {
        "name": spec.name,
        "base_model": spec.model,
        "trust_remote_code": spec.trust_remote_code,
        "template": template_kind,
        "chat_template_sha256": hashlib.sha256(tokenizer.chat_template.encode()).hexdigest()[:16],
        "mask": settings.mask,
        "packing": settings.packing,
        "max_seq_len": settings.max_seq_len,
        "lora": settings.lora.enabled,
        "precision": summary.get("precision"),
        "seed": seed,
        "global_step": summary.get("global_step"),
        "ray_train_run": str(work),
        "code_version": code_version(),
        "created_at": utc_now(),
    }


def train_one(
    config: RunConfig,
    spec: ModelSpec,
    tokenizer: tuple[Any, str],
    data: TrainingData,
    settings: TrainingConfig | None = None,
) -> Path:
    """Fine-tune one model and write its folder.

    Args:
        tokenizer: from :func:`_prepare_tokenizer` (the tokenizer and its template's kind).
        data: from :func:`load_training_data`.
        settings: from :func:`fit_max_seq_len` (computed here when None).
    """
    from hiwar.markers import write_marker

    layout = RunLayout(config)
    settings = settings or fit_max_seq_len(config, spec)
    seed = config.seed if settings.seed is None else settings.seed
    prep = _prepare_splits(tokenizer[0], spec, settings, data)
    work, key = layout.train_run(spec), model_key(config, spec, data.info["fingerprint"])
    write_marker(layout.train_run_marker(spec), key)  # what the checkpoints about to be made depend on
    loop_config = _loop_config(spec, settings, seed, tokenizer[0], prep, work)
    result = _fit(_trainer(work, spec, settings, loop_config), spec, settings, work)
    summary = dict(result.return_value or {})
    out = export_model(
        _final_checkpoint(result, spec, settings, work),
        layout.model_dir(spec),
        tokenizer=tokenizer[0],
        lora=settings.lora.enabled,
        base_model=spec.ref(MODELS_WHERE),
        config=config,
        files={
            "dataset.json": data.info,
            "data_stats.json": {name: p.stats.as_dict() for name, p in prep.items()},
            "metrics.json": summary,
        },
        manifest={**_manifest(spec, settings, seed, tokenizer, summary, work), "dataset": data.info},
        key=key,
        metrics_log=work / "metrics.jsonl",
    )
    log.info("%s: model written to %s (%s)", spec.name, out, MODEL_MARKER)
    return out


def run_train(
    config: RunConfig, dataset: str | None = None, only: str | None = None, force: bool = False
) -> list[Path]:
    """Fine-tune each model of ``config.training.models`` (or those named in ``only``); return their folders.

    Args:
        config: the run config; ``training`` holds the models and hyperparameters.
        dataset: a hiwar dataset folder (train split, and validation when present) or any Parquet/JSONL file
            or folder of conversation records. Default: the run's dataset (:mod:`hiwar.run_layout`).
        only: comma-separated model names to train (default: all).
        force: retrain models (and drop checkpoints) made with other settings or data instead of stopping.

    Raises:
        HiwarError: no models, unknown names, a missing or empty dataset, a model that cannot be loaded, a model
            folder or checkpoints made with other inputs (without ``force``).
    """
    from hiwar.cluster.session import connect_during, shutdown
    from hiwar.models.loader import local_folder
    from hiwar.outdirs import check_output_dirs

    layout = RunLayout(config)
    specs = select_models(config.training, only)
    check_output_dirs(layout.output_places("train", specs))
    data = load_training_data(Path(dataset) if dataset else layout.dataset, config.training)
    pending = pending_models(config, specs, data, force)
    if not pending:
        return [layout.model_dir(spec) for spec in specs]
    for spec in pending:  # a mistyped folder costs a second, not a Ray start
        local_folder(spec.ref(f"{MODELS_WHERE}[{config.training.models.index(spec)}]"))

    def prepare() -> tuple[dict[str, Any], dict[str, TrainingConfig]]:
        # Every model must load (preflight, tokenizer, positions) before any worker starts; meanwhile Ray starts.
        tokenizers = {spec.name: _prepare_tokenizer(spec, config.training.models.index(spec)) for spec in pending}
        return tokenizers, {spec.name: fit_max_seq_len(config, spec) for spec in pending}

    session, (tokenizers, settings) = connect_during(config.cluster, prepare)
    try:
        for spec in pending:
            train_one(config, spec, tokenizers[spec.name], data, settings[spec.name])
    finally:
        shutdown(session)
    return [layout.model_dir(spec) for spec in specs]
