"""The ``generation`` config section (owned by the generation stage; see hiwar/generation/)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from hiwar.section import Section


class SamplingConfig(Section):
    """Sampling parameters. Defaults follow the Jais-13b-chat model card."""

    temperature: float = Field(0.3, ge=0.0, description="0 means greedy decoding.")
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(-1, description="-1 disables top-k.")
    repetition_penalty: float = Field(1.2, gt=0.0)
    max_tokens: int = Field(512, ge=1, description="New tokens per request.")


class EngineConfig(Section):
    """Which engine runs which model, with what resources. Shared by generation and RAVEN replies."""

    engine: Literal["vllm", "transformers", "openai"] = Field("transformers", description="Engine, by name.")
    model: str = Field("", description="Hub id or local folder of the model (for openai: the served model name).")
    trust_remote_code: bool = Field(False, description="Needed by Jais models; off unless asked for.")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    replicas: int = Field(1, ge=1, description="Engine actors (vLLM engines or HF generate actors).")
    batch_size: int = Field(16, ge=1, description="Rows per batch sent to one actor.")
    num_cpus_per_replica: float = Field(1.0, gt=0)
    num_gpus_per_replica: float = Field(0.0, ge=0)
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    accelerator_type: str | None = Field(None, description="Ray accelerator type, e.g. 'A100' or 'H100'.")
    max_model_len: int | None = Field(None, ge=16)
    dtype: str = Field("auto", description="'auto', 'float32', 'bfloat16', 'float16'.")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="Extra vLLM engine arguments.")
    base_url: str | None = Field(None, description="openai engine: the server's base URL, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = Field("OPENAI_API_KEY", description="openai engine: environment variable holding the key.")


class GenerationConfig(EngineConfig):
    """How conversations are generated: an engine plus the prompt grid, validation, dedup and splits."""

    prompt_version: str = Field("v1", description="Prompt template version (hiwar/assets/prompts).")
    output_dir: str | None = Field(None, description="Dataset folder (default: <run_dir>/dataset).")
