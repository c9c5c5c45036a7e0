"""Text generation engines over a Ray Dataset, picked by name: ``vllm``, ``transformers``, ``openai``.

:func:`generate_texts` is the one entry point (generation and RAVEN replies both use it). Input rows carry
``request_id`` (str), ``seed`` (int) and either ``prompt`` (formatted text) or ``messages`` (OpenAI-style
list, formatted with the model's chat template, or hiwar's when the tokenizer has none), and may carry
``json_schema`` (JSON text) and ``json_schema_name``: vllm guides that row's decoding by the schema, openai sends
it as a strict ``response_format``, transformers has no guided decoding (the judge's strict parser checks every
answer anyway). Output rows keep
every input column and add ``generated_text``, ``num_prompt_tokens``, ``num_generated_tokens`` and ``error``
("" when fine). A failed request becomes a row with ``error`` set; it never stops the job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from hiwar.errors import ConfigError
from hiwar.generation.config import EngineConfig

if TYPE_CHECKING:
    import ray.data

log = logging.getLogger(__name__)

OUTPUT_COLUMNS = ("generated_text", "num_prompt_tokens", "num_generated_tokens", "error")


def _vllm(ds: ray.data.Dataset, cfg: EngineConfig) -> ray.data.Dataset:
    from hiwar.generation.engines.vllm_engine import generate_vllm

    return generate_vllm(ds, cfg)


def _transformers(ds: ray.data.Dataset, cfg: EngineConfig) -> ray.data.Dataset:
    from hiwar.generation.engines.hf_engine import generate_hf

    return generate_hf(ds, cfg)


def _openai(ds: ray.data.Dataset, cfg: EngineConfig) -> ray.data.Dataset:
    from hiwar.generation.engines.openai_engine import generate_openai

    return generate_openai(ds, cfg)


ENGINES: dict[str, Callable[[ray.data.Dataset, EngineConfig], ray.data.Dataset]] = {
    "vllm": _vllm,
    "transformers": _transformers,
    "openai": _openai,
}


def runnable_engine(cfg: EngineConfig) -> EngineConfig:
    """``cfg``, with the ``transformers`` engine instead of ``vllm`` for a model that vLLM cannot serve (AraGPT2):
    said once in the log, so a paper config that names vllm for every model still runs."""
    if cfg.engine != "vllm" or not cfg.model:
        return cfg
    from hiwar.models.loader import load_config
    from hiwar.models.preflight import NOT_ON_VLLM

    reason = NOT_ON_VLLM.get(getattr(load_config(cfg.ref()), "model_type", ""))
    if not reason:
        return cfg
    log.warning("%s: %s; using the transformers engine for it", cfg.model, reason)
    return cfg.model_copy(update={"engine": "transformers"})


def generate_texts(ds: ray.data.Dataset, cfg: EngineConfig) -> ray.data.Dataset:
    """Add ``generated_text``, ``num_prompt_tokens``, ``num_generated_tokens`` and ``error`` to every row.

    Args:
        ds: rows with ``request_id``, ``seed`` and ``prompt`` or ``messages``.
        cfg: engine, model, sampling (temperature 0 = greedy) and resources.

    Raises:
        HiwarError: unknown engine, missing model, missing optional package (one line each).
    """
    cfg = prepared_engine(cfg)
    return ENGINES[cfg.engine](ds, cfg)


def prepared_engine(cfg: EngineConfig) -> EngineConfig:
    """``cfg`` as the engine runs it: the engine that can serve the model (:func:`runnable_engine`) and the prompt
    format resolved (``auto`` -> ``jais`` or ``chat_template``).

    Raises:
        ConfigError: unknown engine.
    """
    if cfg.engine not in ENGINES:
        raise ConfigError(f"generation.engine: unknown engine {cfg.engine!r} (expected one of {', '.join(ENGINES)})")
    from hiwar.generation.prompting import resolve_format

    cfg = runnable_engine(cfg)
    # Resolved once, here: the actors format every row the same way without reading the model's config.
    return cfg.model_copy(update={"prompt_format": resolve_format(cfg)})
