"""What ``hiwar train`` trains: which models, on which data, and which of them are done already.

A model is done when its folder's ``hiwar_model.json`` holds the key it would be trained with now
(:func:`model_key`: the settings that decide its weights, the seed, the base model, the fingerprints of the dataset
and of the base model's folder, and the code version), by the completion rule of :mod:`hiwar.markers`. Ray Train's
checkpoints carry the same key, so a rerun resumes only from checkpoints made with the same settings and data.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiwar.config import RunConfig
from hiwar.dataset_layout import is_dataset_dir, read_split, resolve_split, split_files
from hiwar.errors import ConfigError, DataError
from hiwar.lineage import code_version, fingerprint, folder_stamp
from hiwar.models.spec import ModelSpec
from hiwar.record import Conversation
from hiwar.run_layout import RunLayout
from hiwar.training.config import TrainingConfig

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


# Training keys that say how the work runs (resources, checkpoints, logs), never which weights it makes.
RESOURCE_KEYS = frozenset(
    {
        "models",
        "storage_path",
        "save_steps",
        "num_to_keep",
        "max_failures",
        "logging_steps",
        "eval_steps",
        "per_device_eval_batch_size",
        "resources_per_worker",
        "accelerator_type",
        "torch_threads",
        "gradient_checkpointing",
        "max_unk_share",
    }
)


@dataclass
class TrainingData:
    """The conversations one ``hiwar train`` run learns from, and their lineage."""

    train: list[Conversation]
    validation: list[Conversation] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def _validation_files(dataset: Path, training: TrainingConfig) -> list[Path]:
    """The validation split's files; none for plain files, ``validation_split: null`` or a dataset without it."""
    split = training.validation_split
    if split is None or not is_dataset_dir(dataset):
        return []
    files = split_files(dataset, split)
    if not files:
        log.warning("%s: no '%s' split; training without validation loss", dataset, split)
    return files


def load_training_data(dataset: Path, training: TrainingConfig) -> TrainingData:
    """The train split (and validation, when the dataset has one) with their files' fingerprint.

    Raises:
        DataError: a missing dataset, no train split, or an empty one.
    """
    train_files = resolve_split(dataset, "train")
    train = read_split(dataset, "train")[: training.max_train_rows]
    validation_files = _validation_files(dataset, training)
    validation = []
    if validation_files:
        validation = read_split(dataset, training.validation_split)[: training.max_validation_rows]
    info = {
        "path": str(dataset),
        "fingerprint": fingerprint(train_files + validation_files),
        "files": [p.name for p in train_files + validation_files],
        "train_rows": len(train),
        "validation_rows": len(validation),
    }
    return TrainingData(train, validation, info)


def dataset_fingerprint(dataset: Path, training: TrainingConfig) -> str | None:
    """The fingerprint :func:`load_training_data` records, without reading the records; None without a dataset."""
    try:
        return fingerprint(resolve_split(dataset, "train") + _validation_files(dataset, training))
    except DataError:
        return None


def training_key(config: RunConfig, layout: RunLayout) -> dict[str, Any]:
    """What the pipeline's train stage depends on: every model's :func:`model_key` on the run's dataset."""
    data = dataset_fingerprint(layout.dataset, config.training)
    return {f"training.models ({spec.name})": model_key(config, spec, data) for spec in config.training.models}


def model_key(config: RunConfig, spec: ModelSpec, dataset: str | None) -> dict[str, Any]:
    """What a fine-tuned model depends on (its completion key, :mod:`hiwar.markers`): the settings that decide the
    weights, the seed, the base model, the dataset's and the base folder's fingerprints, and the code version."""
    from hiwar.markers import flatten

    settings = config.training.for_model(spec)
    base = spec.model_dump(mode="json", exclude={"name", "output_dir", "overrides"})
    return {
        **flatten(settings, "training", skip=RESOURCE_KEYS),
        **flatten(base, "base"),
        "seed": config.seed if settings.seed is None else settings.seed,
        "input dataset": dataset,
        "input base model folder": folder_stamp(spec.model),
        "hiwar": code_version()["hiwar"],
    }


def pending_models(
    config: RunConfig, specs: list[ModelSpec], data: TrainingData, force: bool = False
) -> list[ModelSpec]:
    """The models still to train, by the completion rule of :mod:`hiwar.markers`: a model folder or Ray Train run
    made with another key is an error naming what changed or, with ``force``, is deleted and trained anew."""
    from hiwar.markers import check

    layout, pending = RunLayout(config), []
    for spec in specs:
        key = model_key(config, spec, data.info["fingerprint"])
        model, run = check(layout.model_marker(spec), key), check(layout.train_run_marker(spec), key)
        if model.done:
            log.info("%s: already trained (%s); skipping", spec.name, model.marker)
            continue
        for verdict, folder in ((model, layout.model_dir(spec)), (run, layout.train_run(spec))):
            if verdict.stale and not force:
                raise verdict.refusal(f"training.models ({spec.name}): {folder}", "rerun with --force to train anew")
            if verdict.stale:
                log.warning(
                    "%s: %s made with other inputs (%s); deleting it", spec.name, folder, verdict.what_changed()
                )
                shutil.rmtree(folder, ignore_errors=True)
        pending.append(spec)
    return pending
