"""Turn ``messages`` rows into prompt text with the model's chat template (hiwar's when it has none)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from hiwar.generation.engines.common import plain


@lru_cache(maxsize=4)
def load_tokenizer(model: str, trust_remote_code: bool = False) -> Any:
    """The model's tokenizer, loaded once per worker process."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model, trust_remote_code=trust_remote_code)


def prompt_text(tokenizer: Any, row: dict[str, Any]) -> str:
    """The row's ``prompt`` as is, or its ``messages`` through the chat template with a generation prompt."""
    from hiwar.prompts import render_messages

    prompt = row.get("prompt")
    if prompt:
        return str(prompt)
    messages = plain(row.get("messages"))
    if not messages:
        raise ValueError("row has neither 'prompt' nor 'messages'")
    return render_messages(tokenizer, messages, add_generation_prompt=True, fmt="chat_template")


class PromptFormatter:
    """A picklable row function that adds ``prompt`` (formatted text) to rows that only have ``messages``.

    Rows whose messages cannot be formatted get ``__format_error__`` so the engine skips them.
    """

    def __init__(self, model: str, trust_remote_code: bool) -> None:
        self.model = model
        self.trust_remote_code = trust_remote_code

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        tokenizer = load_tokenizer(self.model, self.trust_remote_code)
        out = dict(row)
        try:
            out["prompt"] = prompt_text(tokenizer, row)
            out["__format_error__"] = ""
        except Exception as err:  # noqa: BLE001 - one bad row must not stop the job
            from hiwar.generation.engines.common import first_line

            out["prompt"] = ""
            out["__format_error__"] = f"cannot format messages: {first_line(err)}"
        return out
