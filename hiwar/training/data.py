"""Conversations to token ids and labels, once, at data prep (training and perplexity share this module).

- The model's own chat template when it has one, else hiwar's template for base models
  (``HIWAR_CHAT_TEMPLATE``).
- Labels: assistant tokens only (``-100`` elsewhere) or every token. Templates with ``{% generation %}`` tags
  give the assistant character spans (the renderer behind ``apply_chat_template`` with
  ``return_assistant_tokens_mask``); for templates without them the spans are found by rendering prefixes.
  A token whose characters overlap a span carries the loss.
- A conversation longer than ``max_seq_len`` loses trailing turns: it is cut after the last assistant message
  that fits, never mid-turn. Nothing left (no assistant message fits): ``None``, counted and skipped by
  callers.
- Packing: several conversations per sequence (best-fit decreasing), ``position_ids`` restarting at 0 for
  each, so the attention masks of transformers keep each conversation to itself (see docs/training.md).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from hiwar.prompts import HIWAR_CHAT_TEMPLATE

IGNORE_INDEX = -100
MASK_MODES = ("assistant", "all")
_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


def chat_template_of(tokenizer: Any) -> tuple[str, str]:
    """The template conversations are formatted with, and its kind: ``chat_template`` or ``hiwar``."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, str) and template:
        return template, "chat_template"
    return HIWAR_CHAT_TEMPLATE, "hiwar"


def tokenize_conversation(
    tokenizer: Any,
    messages: Sequence[dict[str, str]],
    max_seq_len: int,
    mask: Literal["assistant", "all"] = "assistant",
) -> dict[str, list[int]] | None:
    """Token ids, labels and attention mask of one conversation, as training sees it.

    Args:
        tokenizer: a fast tokenizer; its chat template is used, or hiwar's when it has none.
        messages: OpenAI-style ``{role, content}`` messages.
        max_seq_len: the most tokens kept; trailing turns are dropped to fit.
        mask: ``"assistant"`` (loss on assistant replies and their end-of-turn token) or ``"all"``.

    Returns:
        ``{"input_ids", "labels", "attention_mask"}`` (lists of ints, ``-100`` in labels where no loss), or
        None when no assistant message fits (or there is none).
    """
    return encode_conversation(tokenizer, messages, max_seq_len, mask)[0]


def encode_conversation(
    tokenizer: Any,
    messages: Sequence[dict[str, str]],
    max_seq_len: int,
    mask: Literal["assistant", "all"] = "assistant",
) -> tuple[dict[str, list[int]] | None, int]:
    """:func:`tokenize_conversation` plus the number of messages kept (fewer than given when truncated)."""
    if mask not in MASK_MODES:
        raise ValueError(f"mask must be one of {', '.join(MASK_MODES)}, got {mask!r}")
    template, _ = chat_template_of(tokenizer)
    ends = [i + 1 for i, m in enumerate(messages) if m["role"] == "assistant"]
    fitting = _longest_fitting(tokenizer, messages, ends, max_seq_len, template)
    if fitting is None:
        return None, 0
    end, (ids, assistant) = fitting
    if not any(assistant):
        return None, 0
    labels = [tok if (mask == "all" or flag) else IGNORE_INDEX for tok, flag in zip(ids, assistant, strict=True)]
    return {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)}, end


def _longest_fitting(
    tokenizer: Any, messages: Sequence[dict[str, str]], ends: list[int], max_seq_len: int, template: str
) -> tuple[int, tuple[list[int], list[int]]] | None:
    """The longest prefix ``messages[:end]`` (``end`` in ``ends``) that fits in ``max_seq_len`` tokens, with its
    encoding; None when none fits.

    A prefix's token count grows with ``end``, so after the whole conversation (one encode: the usual case) a
    binary search finds the cut in about log2(len(ends)) encodes. Trying every end from the last down was
    quadratic: a 400-turn conversation took most of a minute.
    """
    if not ends:
        return None
    encoded = _encode(tokenizer, list(messages[: ends[-1]]), template)
    if len(encoded[0]) <= max_seq_len:
        return ends[-1], encoded
    best = None
    lo, hi = 0, len(ends) - 2  # ends[hi + 1:] are known not to fit
    while lo <= hi:
        mid = (lo + hi) // 2
        encoded = _encode(tokenizer, list(messages[: ends[mid]]), template)
        if len(encoded[0]) <= max_seq_len:
            best, lo = (ends[mid], encoded), mid + 1
        else:
            hi = mid - 1
    return best


def _encode(tokenizer: Any, messages: list[dict[str, str]], template: str) -> tuple[list[int], list[int]]:
    """Token ids and a 0/1 assistant flag per token."""
    if _GENERATION_TAG.search(template):
        text, spans = _render_with_generation_spans(tokenizer, messages, template)
    else:
        text, spans = _spans_by_prefixes(tokenizer, messages, template)
    return _flag_tokens(tokenizer, text, spans)


def _render_with_generation_spans(
    tokenizer: Any, messages: list[dict[str, str]], template: str
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered text and the character spans inside ``{% generation %}`` blocks.

    This is the renderer behind ``apply_chat_template(..., return_assistant_tokens_mask=True)``. Its token
    mask is not used as is: it maps a span's first character to a token and gives up on the whole conversation
    when that character is whitespace no token covers (as with hiwar's template, whose replies start with a
    space, under a tokenizer that splits on whitespace). Overlap of token offsets with the spans has no such
    gap.
    """
    from transformers.utils.chat_template_utils import render_jinja_template

    kwargs = {**tokenizer.special_tokens_map}
    rendered, spans = render_jinja_template(
        conversations=[messages], chat_template=template, return_assistant_tokens_mask=True, **kwargs
    )
    return rendered[0], [tuple(span) for span in spans[0]]


def _flag_tokens(tokenizer: Any, text: str, spans: Sequence[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Tokenize ``text``; a token is an assistant token when its characters overlap an assistant span."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    merged: list[list[int]] = []  # sorted, disjoint: a token overlaps one of them iff it overlaps a given span
    for s, e in sorted(spans):
        if merged and s < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    span_ends = [e for _, e in merged]
    flags = []
    for a, b in enc["offset_mapping"]:
        k = bisect.bisect_right(span_ends, a)  # the first span ending after the token starts
        flags.append(int(k < len(merged) and merged[k][0] < b))
    return list(enc["input_ids"]), flags


def _render(tokenizer: Any, messages: list[dict[str, str]], template: str, prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False, add_generation_prompt=prompt)


def _spans_by_prefixes(
    tokenizer: Any, messages: list[dict[str, str]], template: str
) -> tuple[str, list[tuple[int, int]]]:
    """Assistant spans for a template without generation tags.

    A reply starts where the rendering of the history with a generation prompt ends, and runs over its content
    plus the end-of-turn marker the template writes right after it (the text up to the next whitespace, e.g.
    ``<|im_end|>`` or the EOS token).
    """
    text = _render(tokenizer, messages, template)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_render(tokenizer, messages[:i], template, prompt=True))
        upto = _render(tokenizer, messages[: i + 1], template)
        if not text.startswith(upto) or not upto.startswith(text[:start]):
            raise ValueError(
                "chat template does not render prefixes of a conversation consistently; "
                "add {% generation %} tags around assistant replies"
            )
        found = upto.find(message["content"], start)
        end = found + len(message["content"]) if found >= 0 else len(upto)
        while end < len(upto) and not upto[end].isspace():
            end += 1
        spans.append((start, end))
    return text, spans


def _encode_by_prefixes(tokenizer: Any, messages: list[dict[str, str]], template: str) -> tuple[list[int], list[int]]:
    """Token ids and assistant flags from :func:`_spans_by_prefixes` (templates without generation tags)."""
    return _flag_tokens(tokenizer, *_spans_by_prefixes(tokenizer, messages, template))


@dataclass
class PrepStats:
    """Counters of one split's data prep."""

    conversations: int = 0
    examples: int = 0
    skipped_no_assistant: int = 0
    truncated: int = 0
    tokens: int = 0
    loss_tokens: int = 0
    sequences: int = 0
    packed_fill: float = 0.0
    unk_tokens: int = 0
    unk_share: float = 0.0
    unk_characters: dict[str, int] = field(default_factory=dict)  # characters the tokenizer could only read as <unk>

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)


@dataclass
class PreparedSplit:
    """Model-ready sequences of one split plus how they were made."""

    sequences: list[dict[str, list[int]]] = field(default_factory=list)
    stats: PrepStats = field(default_factory=PrepStats)


def prepare_split(
    tokenizer: Any,
    conversations: Iterable[Sequence[dict[str, str]]],
    max_seq_len: int,
    mask: Literal["assistant", "all"] = "assistant",
    packing: bool = False,
) -> PreparedSplit:
    """Tokenize every conversation (skipping those with no assistant token left) and optionally pack them."""
    stats = PrepStats()
    examples = []
    for messages in conversations:
        stats.conversations += 1
        example, kept = encode_conversation(tokenizer, messages, max_seq_len, mask)
        if example is None:
            stats.skipped_no_assistant += 1
            continue
        last_reply = max(i + 1 for i, m in enumerate(messages) if m["role"] == "assistant")
        stats.truncated += int(kept < last_reply)
        stats.tokens += len(example["input_ids"])
        stats.loss_tokens += sum(1 for t in example["labels"][1:] if t != IGNORE_INDEX)
        examples.append({"input_ids": example["input_ids"], "labels": example["labels"]})
        count_unknown(tokenizer, messages, example["input_ids"], stats)
    stats.examples = len(examples)
    stats.unk_share = stats.unk_tokens / stats.tokens if stats.tokens else 0.0
    sequences = pack_examples(examples, max_seq_len) if packing else examples
    stats.sequences = len(sequences)
    stats.packed_fill = stats.tokens / (len(sequences) * max_seq_len) if packing and sequences else 0.0
    return PreparedSplit(sequences=sequences, stats=stats)


def count_unknown(tokenizer: Any, messages: Sequence[dict[str, str]], ids: list[int], stats: PrepStats) -> None:
    """Count ``<unk>`` tokens, and (for the first conversations that have some) which characters became them:
    a tokenizer that reads diacritics as ``<unk>`` loses them without a word otherwise."""
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is None:
        return
    found = ids.count(unk)
    stats.unk_tokens += found
    if not found or len(stats.unk_characters) >= 20:
        return
    for message in messages:
        enc = tokenizer(message["content"], add_special_tokens=False, return_offsets_mapping=True)
        for tok, (a, b) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
            if tok == unk:
                text = message["content"][a:b].strip() or message["content"][a:b]
                stats.unk_characters[text] = stats.unk_characters.get(text, 0) + 1


def pack_examples(examples: Sequence[dict[str, list[int]]], max_seq_len: int) -> list[dict[str, list[int]]]:
    """Pack examples into sequences of at most ``max_seq_len`` tokens (best-fit decreasing, deterministic).

    Each packed sequence has ``input_ids``, ``labels`` (``-100`` on the first token of every conversation,
    which must not be predicted from the previous one) and ``position_ids`` restarting at 0 for every
    conversation.
    """
    order = sorted(range(len(examples)), key=lambda i: (-len(examples[i]["input_ids"]), i))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, bin index), sorted: best fit is the first with enough room
    for i in order:
        size = len(examples[i]["input_ids"])
        at = bisect.bisect_left(free, (size, -1))
        if at < len(free):
            room, b = free.pop(at)
        else:
            room, b = max_seq_len, len(bins)
            bins.append([])
        bins[b].append(i)
        bisect.insort(free, (room - size, b))
    return [_concat([examples[i] for i in members]) for members in bins]


def _concat(parts: Sequence[dict[str, list[int]]]) -> dict[str, list[int]]:
    input_ids: list[int] = []
    labels: list[int] = []
    position_ids: list[int] = []
    for part in parts:
        input_ids += part["input_ids"]
        labels += [IGNORE_INDEX] + list(part["labels"][1:])
        position_ids += list(range(len(part["input_ids"])))
    return {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}
