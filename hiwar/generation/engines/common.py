"""What every engine shares: the model check, the engine fields sent to actors, plain Python rows, per-row output
columns."""

from __future__ import annotations

from typing import Any

from hiwar.generation.config import EngineConfig


def check_model(cfg: EngineConfig) -> None:
    """Fail fast, on the driver, with one line when the model cannot run on the engine (the preflight of
    :mod:`hiwar.models.preflight`: folder or hub id, config, architecture on this engine, tokenizer, weights,
    context)."""
    from hiwar.models.preflight import require_runnable

    require_runnable(cfg.ref(), cfg.engine, max_model_len=cfg.max_model_len, max_tokens=cfg.sampling.max_tokens)


def engine_fields(cfg: EngineConfig) -> dict[str, Any]:
    """Only the EngineConfig part of ``cfg`` (a GenerationConfig carries more), as plain data for actors."""
    return cfg.model_dump(include=set(EngineConfig.model_fields))


def plain(value: Any) -> Any:
    """Arrow/numpy values as plain Python (lists, dicts, ints), so rows survive JSON and re-batching."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def with_outputs(row: dict[str, Any], text: str = "", n_prompt: int = 0, n_gen: int = 0, error: str = "") -> dict:
    """``row`` plus the four output columns."""
    out = dict(row)
    out.update(generated_text=text, num_prompt_tokens=int(n_prompt), num_generated_tokens=int(n_gen), error=error)
    return out
