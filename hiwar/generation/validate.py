"""Validators of one generated conversation. Each failure has a stable reason name (see ``REASONS``).

A conversation is accepted only when :func:`validate` returns no reason; rejects keep every reason that
applies.
"""

from __future__ import annotations

import re

from hiwar.generation.arabic import arabic_letter_ratio, latin_ratio, normalize, words
from hiwar.generation.config import ValidationConfig
from hiwar.generation.language import Detection, arabic_share, identify_all
from hiwar.generation.parse import ASSISTANT_MARKER, USER_MARKER, Parsed

REQUEST_FAILED = "request_failed"  # the engine returned an error for the row
EMPTY_OUTPUT = "empty_output"  # nothing but whitespace was generated
NO_ROLE_MARKERS = "no_role_markers"  # no line starts with a role marker
TEXT_BEFORE_FIRST_TURN = "text_before_first_turn"  # preamble before the first marker
TRUNCATED = "truncated"  # generation used every allowed new token
STARTS_WITH_ASSISTANT = "starts_with_assistant"
ROLES_NOT_ALTERNATING = "roles_not_alternating"
ENDS_WITH_USER = "ends_with_user"
TOO_FEW_TURNS = "too_few_turns"
TOO_MANY_TURNS = "too_many_turns"
EMPTY_TURN = "empty_turn"  # a message shorter than min_message_chars
TURN_TOO_LONG = "turn_too_long"
TOO_SHORT = "too_short"  # all messages together
TOO_LONG = "too_long"
NEAR_IDENTICAL_TURNS = "near_identical_turns"
ASSISTANT_SPEAKS_FOR_USER = "assistant_speaks_for_user"  # the user marker inside an assistant message
USER_SPEAKS_FOR_ASSISTANT = "user_speaks_for_assistant"
TEMPLATE_LEAK = "template_leak"  # prompt-format tokens or markers left in the text
LOW_ARABIC_RATIO = "low_arabic_ratio"
NOT_ARABIC = "not_arabic"  # Arabic script, another language (Persian, Urdu, Pashto, Kurdish, ...)
LATIN_LEAKAGE = "latin_leakage"
NGRAM_REPETITION = "ngram_repetition"
DUPLICATE = "duplicate"  # dedup: same Arabic-normalised text as an earlier id
NEAR_DUPLICATE = "near_duplicate"  # dedup: MinHash LSH match with an earlier id

REASONS = (
    REQUEST_FAILED,
    EMPTY_OUTPUT,
    NO_ROLE_MARKERS,
    TEXT_BEFORE_FIRST_TURN,
    TRUNCATED,
    STARTS_WITH_ASSISTANT,
    ROLES_NOT_ALTERNATING,
    ENDS_WITH_USER,
    TOO_FEW_TURNS,
    TOO_MANY_TURNS,
    EMPTY_TURN,
    TURN_TOO_LONG,
    TOO_SHORT,
    TOO_LONG,
    NEAR_IDENTICAL_TURNS,
    ASSISTANT_SPEAKS_FOR_USER,
    USER_SPEAKS_FOR_ASSISTANT,
    TEMPLATE_LEAK,
    LOW_ARABIC_RATIO,
    NOT_ARABIC,
    LATIN_LEAKAGE,
    NGRAM_REPETITION,
    DUPLICATE,
    NEAR_DUPLICATE,
)

TEMPLATE_PATTERN = re.compile(
    r"\[\|(?:Human|AI)\|\]|###\s*(?:Instruction|Input|Response)|<\|[^|>]{1,30}\|>|</?s>|\[/?INST\]|"
    r"(?m:^[ \t]*النظام[ \t]*:)"
)


def char_ngrams(text: str, n: int = 3) -> set[str]:
    """Character n-grams of the normalised text (the whole text when shorter than n)."""
    key = normalize(text)
    return {key[i : i + n] for i in range(max(1, len(key) - n + 1))} if key else set()


def jaccard(a: set[str], b: set[str]) -> float:
    """Jaccard similarity of two sets (0 when both are empty)."""
    return len(a & b) / len(a | b) if a or b else 0.0


def repeated_ngram_share(text: str, n: int = 3) -> float:
    """Share of word n-grams that repeat an earlier one (0 for texts under 10 n-grams)."""
    tokens = words(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if len(grams) >= 10 else 0.0


def structure_reasons(messages: list[dict[str, str]], cfg: ValidationConfig) -> list[str]:
    """Role order and turn count."""
    reasons = []
    roles = [m["role"] for m in messages]
    if roles[0] != "user":
        reasons.append(STARTS_WITH_ASSISTANT)
    if any(a == b for a, b in zip(roles, roles[1:], strict=False)):
        reasons.append(ROLES_NOT_ALTERNATING)
    if roles[-1] == "user":
        reasons.append(ENDS_WITH_USER)
    turns = sum(r == "assistant" for r in roles)
    if turns < cfg.min_turns:
        reasons.append(TOO_FEW_TURNS)
    if turns > cfg.max_turns:
        reasons.append(TOO_MANY_TURNS)
    return reasons


def message_reasons(messages: list[dict[str, str]], cfg: ValidationConfig) -> list[str]:
    """Per-message length, near-identical pairs, and one role writing the other's lines."""
    reasons = []
    lengths = [len(m["content"]) for m in messages]
    if min(lengths) < cfg.min_message_chars:
        reasons.append(EMPTY_TURN)
    if max(lengths) > cfg.max_message_chars:
        reasons.append(TURN_TOO_LONG)
    grams = [char_ngrams(m["content"]) for m in messages]
    if any(
        jaccard(grams[i], grams[j]) >= cfg.max_turn_similarity
        for i in range(len(grams))
        for j in range(i + 1, len(grams))
        if grams[i] and grams[j]
    ):
        reasons.append(NEAR_IDENTICAL_TURNS)
    if any(m["role"] == "assistant" and USER_MARKER + ":" in m["content"].replace(" :", ":") for m in messages):
        reasons.append(ASSISTANT_SPEAKS_FOR_USER)
    if any(m["role"] == "user" and ASSISTANT_MARKER + ":" in m["content"].replace(" :", ":") for m in messages):
        reasons.append(USER_SPEAKS_FOR_ASSISTANT)
    return reasons


def content_reasons(text: str, cfg: ValidationConfig) -> list[str]:
    """Length, script, leakage and repetition of the conversation's text."""
    reasons = []
    if len(text) < cfg.min_total_chars:
        reasons.append(TOO_SHORT)
    if len(text) > cfg.max_total_chars:
        reasons.append(TOO_LONG)
    if TEMPLATE_PATTERN.search(text):
        reasons.append(TEMPLATE_LEAK)
    if arabic_letter_ratio(text) < cfg.min_arabic_ratio:
        reasons.append(LOW_ARABIC_RATIO)
    if latin_ratio(text) > cfg.max_latin_ratio:
        reasons.append(LATIN_LEAKAGE)
    if repeated_ngram_share(text) > cfg.max_ngram_repetition:
        reasons.append(NGRAM_REPETITION)
    return reasons


def language_units(parsed: Parsed, raw: str) -> list[str]:
    """The texts whose language is identified: each message, or the whole raw text when nothing parsed."""
    return [m["content"] for m in parsed.messages] if parsed.messages else [raw]


def language_reasons(languages: list[Detection], cfg: ValidationConfig) -> list[str]:
    """``not_arabic`` when too few confidently identified messages are Arabic."""
    share = arabic_share(languages, cfg.min_language_confidence)
    return [NOT_ARABIC] if share < cfg.min_arabic_message_share else []


def validate(
    parsed: Parsed,
    raw: str,
    cfg: ValidationConfig,
    error: str = "",
    truncated: bool = False,
    languages: list[Detection] | None = None,
) -> list[str]:
    """Every reason ``parsed`` (from ``raw``) fails, in ``REASONS`` order; empty when it is accepted.

    ``languages`` are the :func:`language_units`' detections, when the caller has them already.
    """
    if error:
        return [REQUEST_FAILED]
    if not raw.strip():
        return [EMPTY_OUTPUT]
    reasons = []
    if truncated and cfg.reject_truncated:
        reasons.append(TRUNCATED)
    if not parsed.messages:
        reasons.append(NO_ROLE_MARKERS)
    else:
        if parsed.preamble and not cfg.allow_preamble:
            reasons.append(TEXT_BEFORE_FIRST_TURN)
        reasons += structure_reasons(parsed.messages, cfg) + message_reasons(parsed.messages, cfg)
    body = "\n".join(m["content"] for m in parsed.messages) if parsed.messages else raw
    reasons += content_reasons(body, cfg)
    reasons += language_reasons(identify_all(language_units(parsed, raw)) if languages is None else languages, cfg)
    return sorted(set(reasons), key=REASONS.index)
