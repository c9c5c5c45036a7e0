"""Held-out conversations to the rows each metric's job scores, with the reasons rows are skipped."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hiwar.record import Conversation


@dataclass
class Skipped:
    """Conversations left out, by reason (counts) with a few example ids per reason."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, conv_id: str) -> None:
        """Count one skipped conversation."""
        self.counts[reason] += 1
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < 5:
            self.examples[reason].append(conv_id)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{reason: {"count": n, "examples": [ids]}}``."""
        return {r: {"count": n, "examples": self.examples[r]} for r, n in sorted(self.counts.items())}


def assistant_turns(messages: list[dict[str, str]]) -> list[int]:
    """Indices of assistant messages that have a non-empty reply and something before them."""
    return [i for i, m in enumerate(messages) if m["role"] == "assistant" and i > 0 and m["content"].strip()]


def skip_reason(conv: Conversation) -> str | None:
    """Why a conversation cannot be scored at all, or None."""
    if not any(m["role"] == "assistant" for m in conv.messages):
        return "no assistant turn"
    if not assistant_turns(conv.messages):
        return "no non-empty assistant turn after a user turn"
    return None


def perplexity_rows(convs: list[Conversation]) -> tuple[list[dict[str, Any]], Skipped]:
    """One row per scorable conversation, longest first (similar lengths share batches: less padding)."""
    rows, skipped = [], Skipped()
    for conv in convs:
        reason = skip_reason(conv)
        if reason:
            skipped.add(reason, conv.id)
            continue
        text = json.dumps(conv.messages, ensure_ascii=False)
        rows.append({"id": conv.id, "topic": conv.topic, "messages_json": text, "n_chars_total": len(text)})
    rows.sort(key=lambda r: -r["n_chars_total"])
    return rows, skipped


def stable_seed(*parts: object) -> int:
    """A 31-bit seed from any values, identical across processes and runs (Python's hash() is salted)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def pick_turns(messages: list[dict[str, str]], mode: str, max_turns: int | None, seed: int) -> list[int]:
    """Assistant turns scored by RAVEN: all, the last, or a seeded sample; at most ``max_turns`` (seeded)."""
    turns = assistant_turns(messages)
    if mode == "last":
        turns = turns[-1:]
    elif mode == "sample":
        turns = [random.Random(seed).choice(turns)] if turns else []
    if max_turns is not None and len(turns) > max_turns:
        turns = sorted(random.Random(seed).sample(turns, max_turns))
    return turns


def raven_rows(
    convs: list[Conversation], mode: str, max_turns: int | None, max_conversations: int | None, seed: int
) -> tuple[list[dict[str, Any]], Skipped]:
    """One row per scored turn: the dialogue so far (``messages``), the reference reply, ids and a reply
    seed."""
    usable, skipped = [], Skipped()
    for conv in convs:
        reason = skip_reason(conv)
        if reason:
            skipped.add(reason, conv.id)
        else:
            usable.append(conv)
    if max_conversations is not None and len(usable) > max_conversations:
        usable = random.Random(seed).sample(usable, max_conversations)
    rows = []
    for conv in usable:
        for turn in pick_turns(conv.messages, mode, max_turns, stable_seed(seed, conv.id)):
            rows.append(
                {
                    "request_id": f"{conv.id}#{turn}",
                    "conversation_id": conv.id,
                    "turn": turn,
                    "topic": conv.topic,
                    "seed": stable_seed(seed, conv.id, turn),
                    "messages": [dict(m) for m in conv.messages[:turn]],
                    "reference": conv.messages[turn]["content"],
                }
            )
    return rows, skipped
