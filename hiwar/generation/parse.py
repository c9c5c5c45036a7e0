"""Generated transcript -> ``messages``, by strict rules (documented in docs/generation.md).

1. Line endings become ``\\n``; a trailing end-of-text token is dropped; the text is stripped.
2. A message starts at a line whose first non-space text is a role marker, ``المستخدم:`` (user) or
   ``المساعد:`` (assistant); spaces before the colon and an Arabic or full-width colon are tolerated.
3. The message is the rest of that line plus every following line up to the next marker line, stripped; inner
   line breaks are kept.
4. Text before the first marker is the *preamble*; it is returned apart (the validators decide on it).
5. Nothing else is interpreted: a marker in the middle of a line stays text (a validator catches it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

USER_MARKER = "المستخدم"
ASSISTANT_MARKER = "المساعد"
MARKER_LINE = re.compile(rf"^[ \t]*({USER_MARKER}|{ASSISTANT_MARKER})[ \t]*[:：؛][ \t]?", re.MULTILINE)
ROLE_OF = {USER_MARKER: "user", ASSISTANT_MARKER: "assistant"}
END_TOKENS = ("<|endoftext|>", "</s>", "<|im_end|>", "<|eot_id|>")


@dataclass
class Parsed:
    """A parsed transcript: its messages and any text before the first marker."""

    messages: list[dict[str, str]] = field(default_factory=list)
    preamble: str = ""


def parse_transcript(text: str) -> Parsed:
    """Split ``text`` into messages at role-marker lines (see the module docstring)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    for token in END_TOKENS:
        if text.endswith(token):
            text = text[: -len(token)].rstrip()
    matches = list(MARKER_LINE.finditer(text))
    if not matches:
        return Parsed(messages=[], preamble=text)
    messages = []
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        messages.append({"role": ROLE_OF[match.group(1)], "content": text[match.end() : end].strip()})
    return Parsed(messages=messages, preamble=text[: matches[0].start()].strip())


def to_transcript(messages: list[dict[str, str]]) -> str:
    """The inverse of :func:`parse_transcript` for well-formed messages (used to build training targets)."""
    marker = {"user": USER_MARKER, "assistant": ASSISTANT_MARKER}
    return "\n".join(f"{marker[m['role']]}: {m['content']}" for m in messages if m["role"] in marker)
