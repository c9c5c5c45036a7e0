"""The engine section every model-running stage shares: which engine runs which model, with what sampling and
resources (generation, RAVEN replies, the judge). Kept on a low floor, apart from the generation section, so that
the sections built on it (generation's, evaluation's, the judge's) import it without cycles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from hiwar.models.options import LoadOptions
from hiwar.resources import RESOURCE_FIELDS, ActorResources
from hiwar.section import Section

if TYPE_CHECKING:
    from hiwar.models.loader import ModelRef


class SamplingConfig(Section):
    """Sampling parameters. Defaults follow the Jais-13b-chat model card."""

    temperature: float = Field(0.3, ge=0.0, description="0 means greedy decoding.")
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(-1, ge=-1, description="-1 disables top-k; otherwise keep the k most likely tokens (k >= 1).")
    repetition_penalty: float = Field(1.2, gt=0.0)
    max_tokens: int = Field(512, ge=1, description="New tokens per request.")

    @model_validator(mode="after")
    def _top_k(self) -> SamplingConfig:
        if self.top_k == 0:
            raise ValueError("top_k 0 keeps no token: use -1 (off) or a number >= 1")
        return self


# EngineConfig keys that say how fast or on what hardware an engine runs, never what it writes: a change to them
# leaves finished work current (see hiwar/markers.py).
ENGINE_RESOURCE_KEYS = RESOURCE_FIELDS | frozenset(
    {
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "api_key_env",
        "micro_batch_size",
        "vllm_runner",
        "request_timeout_s",
        "max_retries",
    }
)


class EngineConfig(ActorResources, LoadOptions):
    """Which engine runs which model, with what resources (the actor-pool keys of :class:`ActorResources`: one
    actor per engine replica). Shared by generation, RAVEN replies and the judge."""

    engine: Literal["vllm", "transformers", "openai"] = Field("transformers", description="Engine, by name.")
    model: str = Field("", description="Hub id or local folder of the model (for openai: the served model name).")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    max_model_len: int | None = Field(None, ge=16)
    dtype: str = Field("auto", description="'auto', 'float32', 'bfloat16', 'float16'.")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="Extra vLLM engine arguments.")
    prompt_format: Literal["auto", "jais", "chat_template", "hiwar"] = Field(
        "auto",
        description="How the prompt reaches the model: 'jais' (the Jais-13b-chat card's format), "
        "'chat_template' (the tokenizer's template; hiwar's when it has none), "
        "'hiwar' (hiwar's template always), "
        "'auto' (jais for Jais models, by model_type or name; else chat_template).",
    )
    jais_language: Literal["auto", "ar", "en"] = Field(
        "auto",
        description="The Jais card's instruction in Arabic or English; 'auto': Arabic when the first question is "
        "mostly Arabic script (the card pairs Arabic questions with its Arabic instruction).",
    )
    base_url: str | None = Field(
        None, description="openai engine: the server's base URL, e.g. http://127.0.0.1:8000/v1"
    )
    api_key_env: str = Field("OPENAI_API_KEY", description="openai engine: environment variable holding the key.")
    micro_batch_size: int = Field(
        8,
        ge=1,
        description="transformers engine: rows per HF generate call (a Ray "
        "batch of batch_size rows is cut into micro-batches).",
    )
    sort_by_length: bool = Field(
        True,
        description="transformers engine: sort each batch by prompt length before "
        "cutting micro-batches, so padding stays small.",
    )
    vllm_runner: Literal["auto", "in_actor", "ray_data_llm"] = Field(
        "auto",
        description="vllm engine: where each engine runs. 'in_actor': vLLM's offline engine inside the pool's actor "
        "(no engine-core process to start; tensor x pipeline parallel 1). 'ray_data_llm': Ray Data LLM's "
        "processor (an async engine in a process of its own; for GPUs and tensor/pipeline parallelism). "
        "'auto': in_actor when the engine runs on CPU with tensor x pipeline parallel 1, else ray_data_llm.",
    )
    request_timeout_s: float = Field(600.0, gt=0, description="openai engine: seconds per HTTP request.")
    max_retries: int = Field(
        3, ge=0, description="openai engine: retries of a request that failed to connect or got 429/5xx."
    )

    @model_validator(mode="after")
    def _runner_fits(self) -> EngineConfig:
        if self.vllm_runner == "in_actor" and self.tensor_parallel_size * self.pipeline_parallel_size > 1:
            raise ValueError(
                "vllm_runner 'in_actor' runs one engine in one actor: tensor_parallel_size x pipeline_parallel_size "
                "must be 1 (use ray_data_llm or auto)"
            )
        return self

    def gpus_per_actor(self) -> float:
        """A vLLM engine needs tensor x pipeline parallel GPUs (or num_gpus, if more); a served model none."""
        if self.engine == "openai":
            return 0.0
        if self.engine == "vllm":
            return max(float(self.tensor_parallel_size * self.pipeline_parallel_size), self.num_gpus)
        return self.num_gpus

    def warm_actors(self) -> int:
        """Actors of this engine that warm workers serve (:mod:`hiwar.cluster.warm_workers`): the transformers
        engine's, and vLLM's when it may run in the actor (asked before Ray says whether the cluster has GPUs, so
        on a GPU cluster with ``auto`` these workers go unused); Ray Data LLM's processor and the openai engine's
        clients start their own."""
        if self.engine == "vllm":
            return self.actors if self.vllm_in_actor_possible() else 0
        return self.actors if self.engine == "transformers" else 0

    def vllm_in_actor_possible(self) -> bool:
        """Whether the vllm engine may run in the pool's actors (the runner allows it and one engine fits one
        actor); with ``auto`` it then does so on CPU (:func:`hiwar.generation.engines.vllm_engine.generate_vllm`)."""
        return self.vllm_runner != "ray_data_llm" and self.tensor_parallel_size * self.pipeline_parallel_size == 1

    def ref(self, where: str = "generation") -> ModelRef:
        """The engine's model for :mod:`hiwar.models.loader`."""
        from hiwar.models.loader import model_ref

        return model_ref(self.model, self, where)
