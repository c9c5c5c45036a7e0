"""``hiwar train``: fine-tune every model of the config on a hiwar dataset with Ray Train, resumably.

For each model: load its tokenizer (and the chat template: its own, else hiwar's), turn conversations into
sequences and labels once (:mod:`hiwar.training.data`), put them in Ray's object store, run a ``TorchTrainer``
whose workers each run a Hugging Face ``Trainer`` (:mod:`hiwar.training.worker`), then write the model folder
from the last checkpoint (:mod:`hiwar.training.export`).

Resume: Ray Train keeps checkpoints under ``<storage>/<name>/`` (``storage`` = ``training.storage_path`` or
``<run_dir>/train``); rerunning with the same config continues from the latest one. A model whose folder has
its ``hiwar_model.json`` manifest is finished and skipped.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

from hiwar.config import RunConfig
from hiwar.dataset_layout import is_dataset_dir, read_split, resolve_split, split_files
from hiwar.errors import ConfigError, DataError, HiwarError, JobFailed
from hiwar.failures import describe_error
from hiwar.lineage import code_version, fingerprint
from hiwar.record import Conversation, utc_now
from hiwar.training.config import ModelSpec, TrainingConfig
from hiwar.training.export import MANIFEST, export_model, is_finished

log = logging.getLogger(__name__)


def select_models(training: TrainingConfig, only: str | None) -> list[ModelSpec]:
    """The models to train: all, or those named in ``only`` (comma-separated)."""
    if not training.models:
        raise ConfigError("training.models: no models to fine-tune (add at least one {name, model})")
    if not only:
        return list(training.models)
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    known = {spec.name: spec for spec in training.models}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ConfigError(
            f"--only {only}: unknown model name(s) {', '.join(unknown)} (training.models has {', '.join(known)})"
        )
    return [known[name] for name in wanted]


def output_dir(config: RunConfig, spec: ModelSpec) -> Path:
    """Where a model's folder goes: its ``output_dir``, else ``<run_dir>/models/<name>``."""
    return Path(spec.output_dir) if spec.output_dir else Path(config.run_dir) / "models" / spec.name


def storage_path(config: RunConfig) -> Path:
    """Ray Train's storage folder (absolute, as Ray requires)."""
    return Path(config.training.storage_path or Path(config.run_dir) / "train").resolve()


def output_places(config: RunConfig, specs: list[ModelSpec]) -> list[tuple[str, Path]]:
    """Where ``hiwar train`` writes (each model's folder, Ray Train's storage), named by the deciding key."""
    places = [
        (
            f"training.models[{config.training.models.index(s)}].output_dir" if s.output_dir else "run_dir",
            output_dir(config, s),
        )
        for s in specs
    ]
    return places + [("training.storage_path" if config.training.storage_path else "run_dir", storage_path(config))]


def _load_validation(dataset: Path, training: TrainingConfig) -> tuple[list[Conversation], list[Path]]:
    """The validation conversations and their files; none for plain files or a dataset without the split."""
    split = training.validation_split
    if split is None or not is_dataset_dir(dataset):
        return [], []
    files = split_files(dataset, split)
    if not files:
        log.warning("%s: no '%s' split; training without validation loss", dataset, split)
        return [], []
    return read_split(dataset, split)[: training.max_validation_rows], files


def _prepare_tokenizer(spec: ModelSpec, index: int = 0) -> tuple[Any, str]:
    """The base model's tokenizer with the training chat template set, and the template's kind (after the
    preflight: the model, its weights and its tokenizer load, before any Ray worker starts)."""
    from hiwar.models.loader import load_tokenizer
    from hiwar.models.preflight import require_runnable
    from hiwar.training.data import chat_template_of

    ref = spec.ref(index)
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
    positions = model_positions(load_config(spec.ref()))
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


def _trainer(config: RunConfig, spec: ModelSpec, settings: TrainingConfig, loop_config: dict[str, Any]) -> Any:
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
        name=spec.name,
        storage_path=str(storage_path(config)),
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


def _diverged(message: str, settings: TrainingConfig, work: Path) -> HiwarError:
    """The one line for a run stopped by :class:`~hiwar.training.callbacks.StopOnNonFiniteLoss`."""
    if settings.num_workers == 0:
        return HiwarError(f"{message}; lower training.learning_rate and train again (local mode keeps no checkpoint)")
    return HiwarError(
        f"{message}; the checkpoints made before it (if any) are kept in {work}: to train again with a lower "
        "training.learning_rate, delete that folder first (a rerun resumes from them)"
    )


def train_one(
    config: RunConfig,
    spec: ModelSpec,
    tokenizer: tuple[Any, str],
    train: list[Conversation],
    validation: list[Conversation],
    dataset_info: dict[str, Any],
    settings: TrainingConfig | None = None,
) -> Path:
    """Fine-tune one model (``tokenizer``: from :func:`_prepare_tokenizer`; ``settings``: from
    :func:`fit_max_seq_len`) and write its folder."""
    import ray

    from hiwar.training.data import prepare_split

    settings = settings or fit_max_seq_len(config, spec)
    seed = config.seed if settings.seed is None else settings.seed
    tokenizer, template_kind = tokenizer
    prep = {
        name: prepare_split(
            tokenizer, [c.messages for c in rows], settings.max_seq_len, settings.mask, settings.packing
        )
        for name, rows in (("train", train), ("validation", validation))
    }
    if not prep["train"].sequences:
        raise DataError(
            f"{dataset_info['path']}: no training conversation has an assistant reply within "
            f"training.max_seq_len={settings.max_seq_len} tokens"
        )
    stats = {name: p.stats.as_dict() for name, p in prep.items()}
    log.info("%s: %s", spec.name, stats)
    warn_unknown(spec, prep["train"].stats, settings.max_unk_share)
    work = storage_path(config) / spec.name
    loop_config = {
        "spec": spec.model_dump(mode="json"),
        "settings": settings.model_dump(mode="json"),
        "seed": seed,
        "chat_template": tokenizer.chat_template,
        "data": ray.put({name: p.sequences for name, p in prep.items()}),
        "metrics_path": str(work / "metrics.jsonl"),
        "tensorboard_dir": str(work / "tensorboard"),
    }
    local = settings.num_workers == 0
    if local:
        # Ray Train's local mode runs the function in this process and persists no checkpoint (the one the
        # report callback makes is a temporary folder), so the worker saves the final weights itself.
        final = work / "local-final"
        shutil.rmtree(final, ignore_errors=True)
        loop_config["final_dir"] = str(final)
    result = _fit(_trainer(config, spec, settings, loop_config), spec, settings, work)
    if result.checkpoint is None and not local:
        raise HiwarError(f"training.models ({spec.name}): training ended without a checkpoint (see {work})")
    checkpoint = final if local else Path(result.checkpoint.path) / "checkpoint"
    summary = dict(result.return_value or {})
    manifest = {
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
        "dataset": dataset_info,
        "ray_train_run": str(work),
        "code_version": code_version(),
        "created_at": utc_now(),
    }
    out = export_model(
        checkpoint,
        output_dir(config, spec),
        tokenizer=tokenizer,
        lora=settings.lora.enabled,
        base_model=spec.ref(),
        config=config,
        files={"dataset.json": dataset_info, "data_stats.json": stats, "metrics.json": summary},
        manifest=manifest,
        metrics_log=work / "metrics.jsonl",
    )
    log.info("%s: model written to %s (%s)", spec.name, out, MANIFEST)
    return out


def run_train(config: RunConfig, dataset: str | None = None, only: str | None = None) -> list[Path]:
    """Fine-tune each model of ``config.training.models`` (or those named in ``only``); return their folders.

    Args:
        config: the run config; ``training`` holds the models and hyperparameters.
        dataset: a hiwar dataset folder (train split, and validation when present) or any Parquet/JSONL file
            or folder of conversation records. Default: ``<run_dir>/dataset``.
        only: comma-separated model names to train (default: all).

    Raises:
        HiwarError: no models, unknown names, a missing or empty dataset, a model that cannot be loaded.
    """
    from hiwar.cluster.session import connect, shutdown
    from hiwar.outdirs import check_output_dirs

    specs = select_models(config.training, only)
    check_output_dirs(output_places(config, specs))
    dataset_path = Path(dataset) if dataset else Path(config.run_dir) / "dataset"
    outputs = {spec.name: output_dir(config, spec) for spec in specs}
    pending = [spec for spec in specs if not is_finished(outputs[spec.name])]
    for spec in specs:
        if spec not in pending:
            log.info("%s: already trained (%s has %s); skipping", spec.name, outputs[spec.name], MANIFEST)
    if not pending:
        return list(outputs.values())
    train_files = resolve_split(dataset_path, "train")
    train = read_split(dataset_path, "train")[: config.training.max_train_rows]
    validation, validation_files = _load_validation(dataset_path, config.training)
    dataset_info = {
        "path": str(dataset_path),
        "fingerprint": fingerprint(train_files + validation_files),
        "files": [p.name for p in train_files + validation_files],
        "train_rows": len(train),
        "validation_rows": len(validation),
    }
    # Every model must load before Ray starts: a typo should cost a second, not a cluster start.
    tokenizers = {spec.name: _prepare_tokenizer(spec, config.training.models.index(spec)) for spec in pending}
    settings = {spec.name: fit_max_seq_len(config, spec) for spec in pending}
    session = connect(config.cluster)
    try:
        for spec in pending:
            train_one(config, spec, tokenizers[spec.name], train, validation, dataset_info, settings[spec.name])
    finally:
        shutdown(session)
    return list(outputs.values())
