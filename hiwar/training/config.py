"""The ``training`` config section (owned by the training stage; see hiwar/training/ and docs/training.md).

One section holds the hyperparameters shared by every model, and ``models`` lists the base models to fine-tune
(the paper fine-tunes two). A model may override any shared key in its ``overrides`` mapping; a nested section
given there (``lora``) replaces the shared one as a whole, its missing keys taking their defaults.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from hiwar.models.spec import ModelSpec, default_name
from hiwar.section import Section

# Where training's models sit in the config, for messages about one of them (ModelSpec.ref).
MODELS_WHERE = "training.models"
# A model's name is its folder and its Ray Train run's name.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


class LoraSettings(Section):
    """LoRA adapters (peft): only the adapters train; the merged model is saved too."""

    enabled: bool = Field(False, description="Train LoRA adapters instead of every weight.")
    r: int = Field(16, ge=1, description="Adapter rank.")
    alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: str | list[str] = Field(
        "all-linear",
        description="Module names to adapt, or 'all-linear' (every linear layer but the LM head).",
    )


class TrainingConfig(Section):
    """How models are fine-tuned: data prep, optimisation, precision and sharding, Ray Train scaling."""

    models: list[ModelSpec] = Field(default_factory=list, description="Base models to fine-tune, in order.")

    # Data prep (labels are computed once, here; see hiwar.training.data).
    max_seq_len: int = Field(1024, ge=8, description="Tokens per sequence; longer conversations lose trailing turns.")
    mask: Literal["assistant", "all"] = Field("assistant", description="Which tokens carry the loss.")
    packing: bool = Field(False, description="Pack several conversations into one sequence (attention kept apart).")
    group_by_length: bool | None = Field(
        None,
        description="Batch sequences of similar length (HF's LengthGroupedSampler: random mega-batches, sorted "
        "inside) so that little padding is left; null: on with packing (packed sequences differ only by their "
        "unfilled tails), off without it.",
    )
    validation_split: str | None = Field("validation", description="Split for validation loss; null disables it.")
    max_train_rows: int | None = Field(None, ge=1, description="Use only the first N training conversations.")
    max_validation_rows: int | None = Field(None, ge=1, description="Use only the first N validation conversations.")
    max_unk_share: float = Field(
        0.001,
        ge=0.0,
        le=1.0,
        description="Warn when more than this share of training tokens are <unk> (the data stats name the "
        "characters, e.g. diacritics an AraNizer SentencePiece tokenizer cannot read).",
    )

    # Optimisation.
    learning_rate: float = Field(5.0e-5, gt=0.0)
    lr_scheduler_type: str = Field("cosine", description="Any transformers scheduler name: linear, cosine, constant.")
    warmup_steps: float = Field(0.03, ge=0.0, description="Warmup: steps (>= 1) or a ratio of all steps (< 1).")
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    num_train_epochs: float = Field(1.0, gt=0.0)
    max_steps: int = Field(-1, ge=-1, description="Optimizer steps; overrides epochs when > 0.")
    per_device_train_batch_size: int = Field(4, ge=1, description="Sequences per worker per micro-batch.")
    per_device_eval_batch_size: int = Field(8, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    seed: int | None = Field(None, description="Training seed (default: the run's seed).")
    logging_steps: int = Field(10, ge=1, description="Log loss, learning rate and throughput every N steps.")
    eval_steps: int | None = Field(
        200, ge=1, description="Validation loss every N steps (and at the end); null: every save_steps."
    )
    save_steps: int = Field(200, ge=1, description="Checkpoint every N steps (and at the end).")
    num_to_keep: int = Field(2, ge=1, description="Ray Train checkpoints kept (the latest is always kept).")

    # Precision, memory and sharding.
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto: bf16 on GPUs that support it, else fp16 on GPUs, fp32 on CPU."
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward to save memory.")
    fsdp: bool = Field(False, description="Shard parameters, gradients and optimizer state (FSDP); GPUs only.")
    fsdp_options: str = Field("full_shard auto_wrap", description="transformers TrainingArguments.fsdp value.")
    attn_implementation: str | None = Field(
        None, description="'sdpa', 'eager' or 'flash_attention_2' (packing then flattens each batch)."
    )
    lora: LoraSettings = Field(default_factory=LoraSettings)

    # Ray Train.
    num_workers: int = Field(
        2,
        ge=0,
        description="Ray Train workers (one process each; one GPU each with use_gpu). 0: Ray Train's local mode, "
        "the training function runs in this process (no worker start-up, no checkpoints to resume from).",
    )
    use_gpu: bool = Field(False, description="Give each worker a GPU (NCCL); off: CPU workers (gloo).")
    resources_per_worker: dict[str, float] = Field(
        default_factory=lambda: {"CPU": 1.0}, description="Ray resources per worker, e.g. {CPU: 8, GPU: 1}."
    )
    accelerator_type: str | None = Field(None, description="Ray accelerator type for workers, e.g. 'A100'.")
    torch_threads: int | None = Field(None, ge=1, description="torch threads per worker (default: its CPUs).")
    max_failures: int = Field(0, ge=-1, description="Worker-group restarts within one run (-1: no limit).")
    storage_path: str | None = Field(None, description="Ray Train storage (default: <run_dir>/train); shared FS.")

    @model_validator(mode="after")
    def _check(self) -> TrainingConfig:
        for index, spec in enumerate(self.models):
            if not re.fullmatch(NAME_PATTERN, spec.name):
                derived = f" (derived from model {spec.model!r})" if spec.name == default_name(spec.model) else ""
                raise ValueError(
                    f"models[{index}]: name {spec.name!r}{derived} is not a folder name: letters, digits, '_', '.', "
                    "'-', starting with a letter or digit; give the entry a 'name'"
                )
        names = [spec.name for spec in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"models: duplicate name(s) {', '.join(duplicates)}")
        for index, spec in enumerate(self.models):
            try:
                settings = self.for_model(spec)
            except ValidationError as err:
                first = err.errors()[0]
                key = ".".join(str(p) for p in first["loc"])
                where = f"models[{index}] ({spec.name})" + (f".overrides.{key}" if key else "")
                raise ValueError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None
            settings.check_devices(where=f"models[{index}] ({spec.name}): ")
        if not self.models:
            self.check_devices()
        return self

    def for_model(self, spec: ModelSpec) -> TrainingConfig:
        """The settings one model trains with: these, then its ``overrides``."""
        if not spec.overrides:
            return self.model_copy(update={"models": []})
        unknown = sorted(set(spec.overrides) - (set(type(self).model_fields) - {"models"}))
        if unknown:
            raise ValueError(f"models ({spec.name}).overrides: unknown key(s) {', '.join(unknown)}")
        data = {**self.model_dump(exclude={"models"}), **spec.overrides}
        return type(self).model_validate(data)

    def check_devices(self, where: str = "") -> None:
        """Reject CPU runs that ask for GPU-only features (FSDP, half precision), and FSDP in local mode."""
        if self.fsdp and self.num_workers == 0:
            raise ValueError(f"{where}fsdp shards across Ray Train workers; it needs num_workers >= 1")
        if self.use_gpu:
            return
        if self.fsdp:
            raise ValueError(f"{where}fsdp needs GPU workers (use_gpu: true); on CPU use plain data parallel or LoRA")
        if self.precision in ("bf16", "fp16"):
            raise ValueError(f"{where}precision {self.precision} needs GPU workers (use_gpu: true); CPU trains fp32")
