"""Helpers of the evaluation tests."""

from __future__ import annotations


def conversation(conv_id: str, topic: str, *contents: str) -> object:
    """A Conversation with alternating user/assistant messages from ``contents``."""
    from hiwar.record import Conversation

    roles = ["user", "assistant"]
    return Conversation(
        id=conv_id,
        topic=topic,
        country="EG",
        messages=[{"role": roles[i % 2], "content": c} for i, c in enumerate(contents)],
    )
