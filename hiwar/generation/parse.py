"""Generated transcript -> ``messages``, by strict rules that forgive formatting (see docs/generation.md).

1. Line endings become ``\\n``; a trailing end-of-text token is dropped; the text is stripped.
2. A message starts at a line whose first non-space text is a role marker, ``المستخدم:`` (user) or
   ``المساعد:`` (assistant); spaces before the colon and an Arabic or full-width colon are tolerated.
3. The message is the rest of that line plus every following line up to the next marker line, stripped; inner
   line breaks are kept.
4. Text before the first marker is the *preamble*; it is returned apart (the validators decide on it).
5. Nothing else is interpreted: a marker in the middle of a line stays text (a validator catches it).

Formatting that models put around a marker is forgiven, and counted by kind in ``Parsed.repairs``:

- ``bidi``: bidirectional controls (U+200E, U+200F, U+061C, U+202A-U+202E, U+2066-U+2069) before, inside or
  after the marker;
- ``diacritics``: harakat, tanween, shadda, sukun, superscript alef and Quranic marks inside the marker word
  (``المُستخدِم``);
- ``tatweel``: U+0640 inside the marker word (``المستـخدم``);
- ``emphasis``: Markdown ``**``, ``__``, ``*`` or ``_`` around the marker, closed before or after the colon
  (``**المستخدم:**``, ``**المستخدم**:``);
- ``bullet``: a list bullet before the marker (``- ``, ``* ``, ``+ ``, ``• ``, ``1. ``, ``1) ``).

Only the marker's decoration is dropped: the message text keeps everything else exactly as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

USER_MARKER = "المستخدم"
ASSISTANT_MARKER = "المساعد"
ROLE_OF = {USER_MARKER: "user", ASSISTANT_MARKER: "assistant"}
END_TOKENS = ("<|endoftext|>", "</s>", "<|im_end|>", "<|eot_id|>")
REPAIR_KINDS = ("bidi", "diacritics", "tatweel", "emphasis", "bullet")

_BIDI = "\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069"
_MARKS = "\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed"  # as hiwar.generation.arabic
_TATWEEL = "\u0640"
_B = f"[{_BIDI}]*"
_SPACE = f"(?:[ \\t]|[{_BIDI}])*"


def _word(word: str) -> str:
    """``word`` with any diacritics, tatweel or bidi controls allowed after each letter."""
    return "".join(re.escape(ch) + f"[{_MARKS}{_TATWEEL}{_BIDI}]*" for ch in word)


_EMPHASIS = r"\*\*|__|\*|_"
MARKER_LINE = re.compile(
    rf"^{_SPACE}(?P<bullet>(?:[-*+•]|[0-9٠-٩]{{1,3}}[.)])[ \t]+{_B})?"
    rf"(?P<open>{_EMPHASIS})?{_B}"
    rf"(?P<name>{_word(USER_MARKER)}|{_word(ASSISTANT_MARKER)})"
    rf"{_SPACE}(?:(?(open)(?P=open){_SPACE})[:：؛]|[:：؛]{_B}(?(open)(?P=open)))[ \t]?{_B}",
    re.MULTILINE,
)
_DECORATION = re.compile(f"[{_MARKS}{_TATWEEL}{_BIDI}]")


@dataclass
class Parsed:
    """A parsed transcript: its messages, any text before the first marker, and the marker repairs by kind."""

    messages: list[dict[str, str]] = field(default_factory=list)
    preamble: str = ""
    repairs: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REPAIR_KINDS, 0))


def marker_repairs(match: re.Match[str]) -> list[str]:
    """The kinds of decoration a marker match had to look past (see the module docstring)."""
    name, whole = match.group("name"), match.group(0)
    found = {
        "bidi": bool(re.search(f"[{_BIDI}]", whole)),
        "diacritics": bool(re.search(f"[{_MARKS}]", name)),
        "tatweel": _TATWEEL in name,
        "emphasis": bool(match.group("open")),
        "bullet": bool(match.group("bullet")),
    }
    return [kind for kind in REPAIR_KINDS if found[kind]]


def parse_transcript(text: str) -> Parsed:
    """Split ``text`` into messages at role-marker lines (see the module docstring)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    for token in END_TOKENS:
        if text.endswith(token):
            text = text[: -len(token)].rstrip()
    matches = list(MARKER_LINE.finditer(text))
    if not matches:
        return Parsed(messages=[], preamble=text)
    parsed = Parsed(preamble=text[: matches[0].start()].strip())
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        role = ROLE_OF[_DECORATION.sub("", match.group("name"))]
        parsed.messages.append({"role": role, "content": text[match.end() : end].strip()})
        for kind in marker_repairs(match):
            parsed.repairs[kind] += 1
    return parsed


def to_transcript(messages: list[dict[str, str]]) -> str:
    """The inverse of :func:`parse_transcript` for well-formed messages (used to build training targets)."""
    marker = {"user": USER_MARKER, "assistant": ASSISTANT_MARKER}
    return "\n".join(f"{marker[m['role']]}: {m['content']}" for m in messages if m["role"] in marker)
