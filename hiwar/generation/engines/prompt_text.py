"""Turn ``messages`` rows into prompt text with the model's chat template (hiwar's when it has none)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from hiwar.generation.engines.common import plain

if TYPE_CHECKING:
    from hiwar.models.loader import ModelRef


def engine_tokenizer(ref: ModelRef) -> Any:
    """The model's tokenizer (through :mod:`hiwar.models.loader`), loaded once per worker process."""
    return _cached_tokenizer(ref.source, ref.options.model_dump_json(), ref.where)


@lru_cache(maxsize=4)
def _cached_tokenizer(source: str, options_json: str, where: str) -> Any:
    from hiwar.models.loader import ModelRef, load_tokenizer
    from hiwar.models.options import LoadOptions

    return load_tokenizer(ModelRef(source, LoadOptions.model_validate_json(options_json), where))


def prompt_text(tokenizer: Any, row: dict[str, Any], fmt: str = "chat_template", jais_language: str = "auto") -> str:
    """The row's ``prompt`` as is, or its ``messages`` in format ``fmt`` (the chat template, hiwar's, or the Jais
    card's) with a generation prompt."""
    from hiwar.prompts import render_messages

    prompt = row.get("prompt")
    if prompt:
        return str(prompt)
    messages = plain(row.get("messages"))
    if not messages:
        raise ValueError("row has neither 'prompt' nor 'messages'")
    return render_messages(tokenizer, messages, add_generation_prompt=True, fmt=fmt, jais_language=jais_language)


def prompt_ids(tokenizer: Any, row: dict[str, Any], fmt: str, jais_language: str) -> tuple[str, list[int]]:
    """The row's prompt text (:func:`prompt_text`) and its token ids, with no special tokens added: an engine that
    tokenized the text with special tokens would give a template that already starts with BOS (Llama 3, Cohere) two
    of them."""
    text = prompt_text(tokenizer, row, fmt, jais_language)
    return text, list(tokenizer(text, add_special_tokens=False)["input_ids"])
