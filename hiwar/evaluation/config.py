"""The ``evaluation`` config section (owned by the evaluation stage; see hiwar/evaluation/)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from hiwar.engine_config import ENGINE_RESOURCE_KEYS, EngineConfig, SamplingConfig
from hiwar.judge.config import JudgeMetricConfig
from hiwar.models.spec import TRAINING_KEYS, ModelSpec, default_name
from hiwar.resources import ActorResources
from hiwar.section import Section

# Where evaluation's models sit in the config, for messages about one of them (ModelSpec.ref).
MODELS_WHERE = "evaluation.models"

GREEDY = {"temperature": 0.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "max_tokens": 256}


def greedy_engine() -> EngineConfig:
    """The default reply engine: HF transformers, greedy decoding, no repetition penalty."""
    return EngineConfig(engine="transformers", sampling=SamplingConfig(**GREEDY))


class ActorConfig(ActorResources):
    """An actor pool (:class:`ActorResources`) and the precision its model runs in."""

    dtype: str = Field(
        "auto", description="'auto' (float32 on CPU, bfloat16 on GPU), 'float32', 'bfloat16', 'float16'."
    )


class PerplexityConfig(ActorConfig):
    """Perplexity and bits per byte: formatting, mask and sliding window."""

    enabled: bool = Field(True, description="Compute perplexity and bits per byte.")
    mask: Literal["assistant", "all"] = Field(
        "assistant", description="Score assistant tokens only (as training) or every token."
    )
    window: int | None = Field(None, ge=2, description="Tokens per forward pass (default: the model's context).")
    stride: int | None = Field(
        None,
        ge=1,
        description="New tokens scored per window step (default: window/2; "
        "at most window-1 so each scored token has context).",
    )
    max_tokens_per_batch: int | None = Field(
        None,
        ge=16,
        description="Padded tokens per forward pass inside an actor; null: 2048 on CPU (smaller passes stay in the "
        "caches: 1.2-1.25x faster than 8192 here), 8192 on a GPU.",
    )


class RavenConfig(ActorConfig):
    """RAVEN: replies by the model under test, embedded with a multilingual sentence encoder, cosine to
    reference."""

    enabled: bool = Field(True, description="Compute RAVEN (needs reply generation and the encoder).")
    encoder: str = Field(
        "sentence-transformers/paraphrase-multilingual-mpnet-base-v2", description="Encoder hub id or folder."
    )
    encoder_trust_remote_code: bool = Field(False, description="Run the encoder's own code.")
    pooling: Literal["mean", "cls"] = Field(
        "mean", description="Mean over tokens (attention-masked) or the first token's state."
    )
    backend: Literal["auto", "transformers", "sentence-transformers"] = Field(
        "auto",
        description="'auto': sentence-transformers when installed and the encoder is one, else transformers.",
    )
    text_prefix: str = Field("", description="Prefix for both texts before encoding (e5 models want 'query: ').")
    max_length: int = Field(512, ge=8, description="Encoder tokens per text (longer texts are truncated).")
    turns: Literal["all", "last", "sample"] = Field(
        "all", description="Which assistant turns of a conversation are scored."
    )
    max_turns: int | None = Field(
        None, ge=1, description="At most this many scored turns per conversation (sampled with the seed)."
    )
    max_conversations: int | None = Field(
        None, ge=1, description="Score a seeded sample of this many conversations (default: all)."
    )
    bootstrap_samples: int = Field(
        1000,
        ge=0,
        description="Bootstrap resamples (over conversations) for the 95% interval; 0 turns it off.",
    )
    seed: int | None = Field(
        None, description="Seed for turn sampling, reply seeds and the bootstrap (default: the run seed)."
    )
    engine: EngineConfig = Field(
        default_factory=greedy_engine,
        description="Reply engine; 'model' and "
        "'trust_remote_code' are set per model under test. Sampling keys not given "
        "stay greedy.",
    )

    @field_validator("engine", mode="before")
    @classmethod
    def _greedy_unless_told(cls, value: object) -> object:
        # A partial `engine:` mapping must not fall back to the generation defaults (temperature 0.3).
        if isinstance(value, dict):
            sampling = value.get("sampling") or {}
            if isinstance(sampling, dict):
                value = {**value, "sampling": {**GREEDY, **sampling}}
        return value


class EvaluationConfig(Section):
    """Which models are scored, on what, and how."""

    models: list[ModelSpec | str] = Field(
        default_factory=list,
        description="Models: hub ids or folders, or {name, model (or path), trust_remote_code, ...loading keys}.",
    )
    dataset: str | None = Field(None, description="Dataset folder or Parquet/JSONL file (default: <run_dir>/dataset).")
    split: str = Field("test", description="Split of a hiwar dataset folder to score.")
    perplexity: PerplexityConfig = Field(default_factory=PerplexityConfig)
    raven: RavenConfig = Field(default_factory=RavenConfig)
    judge: JudgeMetricConfig = Field(
        default_factory=JudgeMetricConfig,
        description="LLM judge scores of every model's RAVEN replies on the human-eval rubric, and pairwise "
        "comparisons (docs/judge.md).",
    )
    output_dir: str | None = Field(None, description="Report folder (default: <run_dir>/evaluation).")
    concurrent_jobs: int = Field(
        2,
        ge=1,
        description="Evaluation jobs run at the same time (a model's one-pool job, or one per metric), each a Ray "
        "Data job with its own actors; a job "
        "whose actors do not fit yet waits for resources, so this only overlaps work when the cluster has room "
        "(1: one at a time).",
    )

    @field_validator("models")
    @classmethod
    def _entries(cls, value: list[ModelSpec | str]) -> list[ModelSpec | str]:
        # A training key here would be silently ignored: the entry was likely meant for training.models.
        for index, entry in enumerate(value):
            keys = entry.training_keys_set() if isinstance(entry, ModelSpec) else []
            if keys:
                raise ValueError(
                    f"models[{index}] ({entry.name}): '{keys[0]}' is a training key (training.models); an "
                    "evaluation entry takes name, model (or path) and the loading keys"
                )
        names = [m.name if isinstance(m, ModelSpec) else default_name(m) for m in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique (repeated: {', '.join(dupes)}); give each a 'name'")
        return value

    def model_specs(self) -> list[ModelSpec]:
        """The models as :class:`ModelSpec` (plain strings become specs named after their path)."""
        return [m if isinstance(m, ModelSpec) else ModelSpec(model=m) for m in self.models]


# Evaluation keys that say how the work runs or where it reads and writes, never what is scored or how.
RESOURCE_KEYS = ENGINE_RESOURCE_KEYS | {"max_tokens_per_batch", "concurrent_jobs", "output_dir", "dataset", "models"}


def model_key(spec: ModelSpec) -> dict[str, Any]:
    """The model's part of every evaluation key: its name, its ``path`` (the key evaluation markers have always
    written) and its loading keys."""
    return {**spec.model_dump(exclude={"model", *TRAINING_KEYS}), "path": spec.model}
