"""Grid rows -> engine requests: the shipped prompt, rendered per row, in the generator's format."""

from __future__ import annotations

from functools import cache
from typing import Any

from hiwar.errors import HiwarError
from hiwar.generation.config import EngineConfig, GenerationConfig
from hiwar.generation.grid import GridRow


def resolve_format(cfg: EngineConfig) -> str:
    """``auto`` -> ``jais`` for Jais models (``model_type: jais``, or a name with "jais" when the config cannot be
    read here, e.g. an openai-served model), else ``chat_template`` (hiwar's template when the tokenizer has none)."""
    if cfg.prompt_format != "auto":
        return cfg.prompt_format
    if "jais" in cfg.model.lower():
        return "jais"
    if cfg.engine == "openai":
        return "chat_template"
    from hiwar.models.loader import load_config

    try:
        model_type = getattr(load_config(cfg.ref()), "model_type", "")
    except HiwarError:
        return "chat_template"  # the preflight reports the model's problem
    return "jais" if model_type == "jais" else "chat_template"


@cache
def _names() -> tuple[dict[str, dict], dict[str, dict]]:
    from hiwar.assets import load_countries, load_topics

    return {t["id"]: t for t in load_topics()}, {c["iso2"]: c for c in load_countries()}


def instruction_messages(row: GridRow, prompt_version: str) -> list[dict[str, str]]:
    """The system and user messages that ask for one conversation."""
    from hiwar.prompts import load_prompt

    prompt = load_prompt(prompt_version)
    topics, countries = _names()
    text = prompt.render(topics[row.topic], countries[row.country], row.n_turns)
    return [{"role": "system", "content": prompt.system}, {"role": "user", "content": text}]


def request_rows(rows: list[GridRow], cfg: GenerationConfig) -> list[dict[str, Any]]:
    """Engine input rows: grid columns, ``request_id``, and ``prompt`` (jais, hiwar) or ``messages``."""
    from hiwar.prompts import jais_prompt, render_messages

    fmt = resolve_format(cfg)
    tokenizer = _hiwar_tokenizer(cfg) if fmt == "hiwar" else None
    out = []
    for row in rows:
        messages = instruction_messages(row, cfg.prompt_version)
        request = {**row.to_dict(), "request_id": row.id}
        if fmt == "jais":
            request["prompt"] = jais_prompt(messages, cfg.jais_language)
        elif fmt == "hiwar":
            request["prompt"] = render_messages(tokenizer, messages, add_generation_prompt=True, fmt="hiwar")
        else:
            request["messages"] = messages
        out.append(request)
    return out


def _hiwar_tokenizer(cfg: GenerationConfig) -> Any:
    """The generator's tokenizer (for its BOS/EOS tokens in hiwar's template)."""
    from hiwar.generation.engines.prompt_text import engine_tokenizer

    try:
        return engine_tokenizer(cfg.ref())
    except Exception as err:  # noqa: BLE001
        raise HiwarError(f"generation.prompt_format=hiwar: cannot load the tokenizer of {cfg.model!r} ({err})") from err
