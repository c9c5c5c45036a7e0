"""Conversations to (input ids, labels) exactly as training formats them, without truncation.

Perplexity must score the same text with the same mask as training, so this module calls
``hiwar.training.data.tokenize_conversation`` with a length limit no conversation reaches; long sequences are
then scored with the sliding window of :mod:`hiwar.evaluation.perplexity.nll`.
"""

from __future__ import annotations

from typing import Any

# Far above any real conversation: sequences stay whole here and are windowed at scoring time.
NO_TRUNCATION = 10_000_000


def encode_for_scoring(tokenizer: Any, messages: list[dict[str, str]], mask: str) -> tuple[list[int], list[int]] | None:
    """(input ids, labels) of a whole conversation with training's formatting and mask, or None if unusable.

    Args:
        tokenizer: the model's tokenizer (training gives base models hiwar's chat template).
        messages: OpenAI-style messages.
        mask: ``"assistant"`` (labels only on assistant tokens, as training) or ``"all"``.
    """
    from hiwar.training.data import tokenize_conversation

    encoded = tokenize_conversation(tokenizer, messages, NO_TRUNCATION, mask=mask)
    if encoded is None:
        return None
    return list(encoded["input_ids"]), list(encoded["labels"])


def scored_contents(messages: list[dict[str, str]], mask: str) -> list[str]:
    """The message contents whose tokens are scored: the assistant contents, or for ``mask="all"`` every message up to
    the last assistant one (training drops messages after it).

    Bits per byte and per character divide the NLL by the UTF-8 bytes and the characters of exactly these
    strings (template markup and end-of-turn tokens add NLL but no bytes; see docs/evaluation.md).
    """
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    return [m["content"] for i, m in enumerate(messages[: last + 1]) if mask == "all" or m["role"] == "assistant"]


def text_size(texts: list[str]) -> tuple[int, int]:
    """(UTF-8 bytes, Unicode code points) of ``texts`` together."""
    return sum(len(t.encode("utf-8")) for t in texts), sum(len(t) for t in texts)
