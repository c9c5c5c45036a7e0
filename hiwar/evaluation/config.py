"""The ``evaluation`` config section (owned by the evaluation stage; see hiwar/evaluation/)."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from hiwar.engine_config import EngineConfig, SamplingConfig
from hiwar.judge.config import JudgeMetricConfig
from hiwar.models.options import LoadOptions
from hiwar.section import Section

if TYPE_CHECKING:
    from hiwar.models.loader import ModelRef

log = logging.getLogger(__name__)


class ModelSpec(LoadOptions):
    """One model under evaluation."""

    name: str = Field("", description="Short name in the report (default: derived from the path).")
    path: str = Field(..., min_length=1, description="Hub id or local folder (e.g. <run_dir>/models/aragpt2).")

    def ref(self) -> ModelRef:
        """This model for :mod:`hiwar.models.loader`."""
        from hiwar.models.loader import model_ref

        return model_ref(self.path, self, f"evaluation.models ({self.name})")

    @model_validator(mode="after")
    def _default_name(self) -> ModelSpec:
        if not self.name:
            self.name = default_name(self.path)
        return self


def default_name(path: str) -> str:
    """A readable, filesystem-safe name for a model path or hub id (``org/model`` -> ``org--model``)."""
    text = path.rstrip("/").replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".", "..")]
    tail = "--".join(parts[-2:]) if parts else "model"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", tail)


GREEDY = {"temperature": 0.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "max_tokens": 256}


def greedy_engine() -> EngineConfig:
    """The default reply engine: HF transformers, greedy decoding, no repetition penalty."""
    return EngineConfig(engine="transformers", sampling=SamplingConfig(**GREEDY))


class ActorConfig(Section):
    """An actor pool: how many actors, each with what resources, fed how many rows at a time."""

    actors: int = Field(1, ge=1, description="Actors in the pool; each loads the model once.")
    batch_size: int = Field(16, ge=1, description="Rows (conversations or turns) per batch sent to one actor.")
    num_cpus: float = Field(1.0, gt=0, description="CPUs per actor (also its torch thread count on CPU).")
    num_gpus: float = Field(0.0, ge=0, description="GPUs per actor; 0 runs on CPU.")
    dtype: str = Field(
        "auto", description="'auto' (float32 on CPU, bfloat16 on GPU), 'float32', 'bfloat16', 'float16'."
    )

    def ray_resources(self) -> dict[str, float]:
        """``map_batches`` resource arguments: GPUs only when asked for and the cluster has them."""
        import ray

        gpus = self.num_gpus if self.num_gpus > 0 and ray.cluster_resources().get("GPU", 0) >= self.num_gpus else 0
        if self.num_gpus > 0 and not gpus:
            log.warning("asked for %s GPU(s) per actor but the cluster has none; running on CPU", self.num_gpus)
        return {"num_cpus": self.num_cpus, "num_gpus": gpus}


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
    max_tokens_per_batch: int = Field(8192, ge=16, description="Padded tokens per forward pass inside an actor.")


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
        default_factory=list, description="Models: hub ids or folders, or {name, path, trust_remote_code}."
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
        description="(model, metric) jobs run at the same time, each a Ray Data job with its own actors; a job "
        "whose actors do not fit yet waits for resources, so this only overlaps work when the cluster has room "
        "(1: one at a time).",
    )

    @field_validator("models")
    @classmethod
    def _unique_names(cls, value: list[ModelSpec | str]) -> list[ModelSpec | str]:
        names = [m.name if isinstance(m, ModelSpec) else default_name(m) for m in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"model names must be unique (repeated: {', '.join(dupes)}); give each a 'name'")
        return value

    def model_specs(self) -> list[ModelSpec]:
        """The models as :class:`ModelSpec` (plain strings become specs named after their path)."""
        return [m if isinstance(m, ModelSpec) else ModelSpec(path=m) for m in self.models]
