"""What each Ray Train worker runs: a Hugging Face ``Trainer`` on its share of the prepared sequences.

The driver (:mod:`hiwar.training.run`) tokenizes once and puts the sequences in Ray's object store; every
worker loads the model, wraps it (LoRA, gradient checkpointing, FSDP through ``TrainingArguments``), and
trains with ``RayTrainReportCallback`` so each Hugging Face checkpoint becomes a Ray Train checkpoint. On a
rerun the latest Ray Train checkpoint is handed to ``trainer.train(resume_from_checkpoint=...)``: the step
count, optimizer, scheduler and RNG states continue from it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hiwar.models.spec import ModelSpec
from hiwar.training.config import MODELS_WHERE, TrainingConfig

log = logging.getLogger(__name__)


def resolve_precision(settings: TrainingConfig) -> str:
    """``bf16``/``fp16``/``fp32`` for this worker: auto picks bf16 on GPUs that support it, fp32 on CPU."""
    import torch

    if not settings.use_gpu:
        return "fp32"
    if settings.precision != "auto":
        return settings.precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp16"


def load_tokenizer(spec: ModelSpec, chat_template: str) -> Any:
    """The base model's tokenizer with the chat template used for training, and its EOS and pad tokens."""
    from hiwar.models.loader import load_tokenizer as load

    return load(spec.ref(MODELS_WHERE), chat_template)


def load_model(spec: ModelSpec, settings: TrainingConfig, precision: str) -> Any:
    """The base model, wrapped in LoRA adapters when asked (only adapters train)."""
    import torch

    from hiwar.models.loader import load_causal_lm

    dtype = torch.float32
    if settings.lora.enabled and precision != "fp32":
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16  # frozen base in half
    kwargs = {"attn_implementation": settings.attn_implementation} if settings.attn_implementation else {}
    model = load_causal_lm(spec.ref(MODELS_WHERE), dtype, **kwargs)
    if not settings.lora.enabled:
        return model
    from peft import LoraConfig, get_peft_model

    lora = settings.lora
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def grouped(settings: TrainingConfig) -> bool:
    """Whether batches group sequences by length (``group_by_length``; default: with packing)."""
    return settings.packing if settings.group_by_length is None else settings.group_by_length


def training_arguments(settings: TrainingConfig, seed: int, output_dir: str, has_eval: bool, precision: str) -> Any:
    """``TrainingArguments`` from the config (checkpoints go to a local folder; Ray Train persists them)."""
    from transformers import TrainingArguments

    fsdp: dict[str, Any] = {}
    if settings.fsdp:
        # FULL_STATE_DICT: checkpoints and the final model are whole safetensors files that load anywhere.
        fsdp = {
            "fsdp": settings.fsdp_options,
            "fsdp_config": {
                "state_dict_type": "FULL_STATE_DICT",
                "activation_checkpointing": settings.gradient_checkpointing,
            },
        }
    eval_args = (
        {"eval_strategy": "steps", "eval_steps": settings.eval_steps or settings.save_steps}
        if has_eval
        else {"eval_strategy": "no"}
    )
    return TrainingArguments(
        output_dir=output_dir,
        per_device_train_batch_size=settings.per_device_train_batch_size,
        per_device_eval_batch_size=settings.per_device_eval_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler_type,
        warmup_steps=settings.warmup_steps,
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        num_train_epochs=settings.num_train_epochs,
        max_steps=settings.max_steps,
        seed=seed,
        logging_steps=settings.logging_steps,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=1,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not settings.use_gpu,
        gradient_checkpointing=settings.gradient_checkpointing and not settings.fsdp,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        ddp_find_unused_parameters=False,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if grouped(settings) else "random",
        report_to="none",
        logging_nan_inf_filter=False,  # a nan loss must reach the logs: StopOnNonFiniteLoss stops the run on it
        disable_tqdm=True,
        **eval_args,
        **fsdp,
    )


def _sft_trainer_class() -> type:
    """``Trainer`` whose evaluation batches have their own collator: token counts cover training only."""
    from transformers import Trainer

    class SFTTrainer(Trainer):
        eval_collator: Any = None

        def get_eval_dataloader(self, eval_dataset: Any = None) -> Any:
            train_collator, self.data_collator = self.data_collator, self.eval_collator or self.data_collator
            try:
                return super().get_eval_dataloader(eval_dataset)
            finally:
                self.data_collator = train_collator

    return SFTTrainer


class SequenceDataset:
    """Prepared sequences as a map-style dataset (``Trainer`` shards it with a distributed sampler)."""

    def __init__(self, sequences: list[dict[str, list[int]]]) -> None:
        self.sequences = sequences

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return self.sequences[index]


def _callbacks(cfg: dict[str, Any], collator: Any, world_size: int, resume_step: int) -> list[Any]:
    import ray.train
    from ray.train.huggingface.transformers import RayTrainReportCallback

    from hiwar.training.callbacks import JsonlMetricsCallback, StopOnNonFiniteLoss

    callbacks = [JsonlMetricsCallback(cfg["metrics_path"], collator, world_size, resume_step)]
    callbacks.append(StopOnNonFiniteLoss(cfg["spec"]["name"]))
    tb_dir = cfg.get("tensorboard_dir")
    if tb_dir and ray.train.get_context().get_world_rank() == 0:  # only rank 0 logs
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            try:
                from tensorboardX import SummaryWriter
            except ImportError:
                SummaryWriter = None  # noqa: N806 - TensorBoard is optional
        if SummaryWriter is not None:
            from transformers.integrations import TensorBoardCallback

            callbacks.append(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=tb_dir)))
    return callbacks + [RayTrainReportCallback()]


def _resume_point() -> tuple[str | None, int, bool]:
    """The Hugging Face checkpoint folder inside Ray Train's latest checkpoint, its global step, and whether it is
    the run's last step."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return None, 0, False
    folder = os.path.join(checkpoint.path, "checkpoint")  # local storage: the path itself, no copy
    if not os.path.isdir(folder):  # remote storage (s3://, gs://): download it once
        folder = os.path.join(checkpoint.to_directory(), "checkpoint")
    state = json.loads(Path(folder, "trainer_state.json").read_text())
    step, last = int(state["global_step"]), int(state.get("max_steps") or 0)
    return folder, step, 0 < last <= step


def _finished_run(trainer: Any, folder: str) -> Any:
    """The output of a run whose checkpoint ``folder`` is at its last step: that checkpoint's weights and state,
    and no training.

    Hugging Face's Trainer resumed from its last step still trains one step more whenever that step is not at an
    epoch's end (it enters the epoch and checks ``max_steps`` only after a step), so a run killed after its final
    checkpoint came back with one step too many (global step 41 of 40). The training loss is the mean of the
    logged losses (the Trainer's own running sum is not in a checkpoint).
    """
    from transformers import TrainerState
    from transformers.trainer_utils import TrainOutput

    trainer._load_from_checkpoint(folder)
    trainer.state = TrainerState.load_from_json(os.path.join(folder, "trainer_state.json"))
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    log.info("checkpoint at the last step (%d): nothing left to train", trainer.state.global_step)
    return TrainOutput(trainer.state.global_step, sum(losses) / len(losses) if losses else float("nan"), {})


def train_loop_per_worker(cfg: dict[str, Any]) -> dict[str, Any]:
    """Ray Train's worker function. Returns (from rank 0) the final metrics of the run."""
    import ray
    import ray.train
    import torch

    from hiwar.startup import defer_optional_imports

    defer_optional_imports(trainer=True)  # before the Trainer's imports: 1.9 s less per worker start (hiwar.startup)
    from ray.train.huggingface.transformers import prepare_trainer
    from transformers import set_seed

    from hiwar.training.collate import SFTCollator

    settings = TrainingConfig.model_validate(cfg["settings"])
    spec = ModelSpec.model_validate(cfg["spec"])
    context = ray.train.get_context()
    torch.set_num_threads(settings.torch_threads or max(1, int(settings.resources_per_worker.get("CPU", 1))))
    precision = resolve_precision(settings)
    set_seed(cfg["seed"])
    data = ray.get(cfg["data"])
    tokenizer = load_tokenizer(spec, cfg["chat_template"])
    model = load_model(spec, settings, precision)
    flash = "flash" in str(getattr(model.config, "_attn_implementation", ""))
    collator = SFTCollator(pad_id=tokenizer.pad_token_id, flatten=flash)
    resume_from, resume_step, finished = _resume_point()
    output_dir = tempfile.mkdtemp(prefix=f"hiwar-{spec.name}-rank{context.get_world_rank()}-")
    has_eval = bool(data.get("validation"))
    trainer = _sft_trainer_class()(
        model=model,
        args=training_arguments(settings, cfg["seed"], output_dir, has_eval, precision),
        train_dataset=SequenceDataset(data["train"]),
        eval_dataset=SequenceDataset(data["validation"]) if has_eval else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=_callbacks(cfg, collator, context.get_world_size(), resume_step),
    )
    trainer.eval_collator = SFTCollator(pad_id=tokenizer.pad_token_id, flatten=flash)
    trainer = prepare_trainer(trainer)
    output = _finished_run(trainer, resume_from) if finished else trainer.train(resume_from_checkpoint=resume_from)
    summary = _summary(trainer, output, collator, precision, resume_step)
    if cfg.get("final_dir"):  # local mode: Ray Train keeps no checkpoint, so save the final weights here
        trainer.save_model(cfg["final_dir"])
        trainer.state.save_to_json(os.path.join(cfg["final_dir"], "trainer_state.json"))
    shutil.rmtree(output_dir, ignore_errors=True)
    return summary


def _summary(trainer: Any, output: Any, collator: Any, precision: str, resume_step: int) -> dict[str, Any]:
    """Final metrics: step, losses, runtime, and tokens summed over all workers."""
    import torch
    import torch.distributed as dist

    counts = torch.tensor([collator.real_tokens, collator.pad_tokens], dtype=torch.float64, device=trainer.args.device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(counts)
    real, pad = (float(x) for x in counts.cpu())
    evals = [row["eval_loss"] for row in trainer.state.log_history if "eval_loss" in row]
    runtime = float(output.metrics.get("train_runtime", 0.0))
    model = trainer.model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "global_step": int(output.global_step),
        "resumed_from_step": resume_step,
        "train_loss": float(output.training_loss),
        "eval_loss": evals[-1] if evals else None,
        "train_runtime_s": runtime,
        "train_tokens": int(real),
        "padding_tokens": int(pad),
        "padding_share": pad / (real + pad) if real + pad else 0.0,
        "tokens_per_s": real / runtime if runtime else None,
        "precision": precision,
        "trainable_parameters": int(trainable),
        "world_size": trainer.args.world_size,
    }
