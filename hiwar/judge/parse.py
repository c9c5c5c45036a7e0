"""The strict judgment parser: a judge's text is either a complete judgment on the rubric or a reason why not.

Accepted: exactly one JSON object, alone (surrounding whitespace and one Markdown code fence are forgiven), with
exactly the rubric's criteria, each ``{"rationale": <non-empty text>, "score": <whole number on the scale>}``;
for a pairwise verdict ``{"rationale": <text>, "winner": "A" | "B" | "tie"}``. Nothing is guessed: a score of
``4.0``, ``"4"`` or ``6`` on a 1-5 scale, a missing criterion or prose around the object is a malformed judgment
(retried, then kept aside with the reason); it never becomes a default score. The one leniency: raw control
characters inside a string (a rationale), which guided decoders emit and which change no score.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from hiwar.judge.rubric import WINNERS, Rubric

# Reason codes (the part before the first ':' of a reason), in the order they are checked.
REQUEST_ERROR = "request_error"
EMPTY = "empty_output"
NO_JSON = "no_json"
INVALID_JSON = "invalid_json"
TEXT_AROUND = "text_around_json"
NOT_OBJECT = "not_an_object"
MISSING = "missing_criteria"
UNKNOWN = "unknown_keys"
BAD_ENTRY = "bad_entry"
NOT_INTEGER = "not_integer"
OUT_OF_SCALE = "out_of_scale"
NO_RATIONALE = "empty_rationale"
BAD_WINNER = "bad_winner"
TRUNCATED = "truncated"

# Control characters inside a string (a tab or a stray byte in a rationale) are allowed: guided decoders emit them
# and they change nothing a judgment says. Everything else is standard JSON.
_DECODER = json.JSONDecoder(strict=False)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)


@dataclass
class Judgment:
    """A parsed judgment, or the reason it is not one (``reason`` set, ``ok`` false)."""

    reason: str = ""
    scores: dict[str, int] = field(default_factory=dict)
    rationales: dict[str, str] = field(default_factory=dict)
    winner: str = ""
    rationale: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


def reason_code(reason: str) -> str:
    """The code of a reason (``out_of_scale: fluency is 7...`` -> ``out_of_scale``)."""
    return reason.split(":", 1)[0].strip()


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def load_object(text: str) -> tuple[Any, str]:
    """The one JSON value of ``text`` and ``""``, or None and the reason."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if not body:
        return None, f"{EMPTY}: the judge wrote nothing"
    start = body.find("{")
    if start < 0:
        return None, f"{NO_JSON}: no JSON object in {_clip(body)!r}"
    try:
        value, end = _DECODER.raw_decode(body, start)
    except json.JSONDecodeError as err:
        return None, f"{INVALID_JSON}: {err.msg} at character {err.pos}"
    if start > 0 or body[end:].strip():
        extra = body[:start].strip() or body[end:].strip()
        return None, f"{TEXT_AROUND}: text outside the JSON object ({_clip(extra)!r})"
    return value, ""


def _rationale(value: Any, where: str) -> tuple[str, str]:
    if not isinstance(value, str) or not value.strip():
        return "", f"{NO_RATIONALE}: {where} has no rationale text"
    return value.strip(), ""


def _score(value: Any, name: str, rubric: Rubric) -> tuple[int | None, str]:
    if isinstance(value, bool) or not isinstance(value, int):
        return (
            None,
            f"{NOT_INTEGER}: {name}'s score is {json.dumps(value, ensure_ascii=False)[:40]}, not a whole number",
        )
    if not rubric.scale_min <= value <= rubric.scale_max:
        return None, f"{OUT_OF_SCALE}: {name}'s score {value} is off the scale {rubric.scale_min}-{rubric.scale_max}"
    return value, ""


def parse_pointwise(text: str, rubric: Rubric) -> Judgment:
    """A judgment with one score and rationale per criterion, or the first reason it is not one."""
    value, reason = load_object(text)
    if reason:
        return Judgment(reason)
    if not isinstance(value, dict):
        return Judgment(f"{NOT_OBJECT}: the JSON is a {type(value).__name__}, not an object")
    missing = [n for n in rubric.names if n not in value]
    if missing:
        return Judgment(f"{MISSING}: {', '.join(missing)}")
    unknown = [k for k in value if k not in rubric.names]
    if unknown:
        return Judgment(f"{UNKNOWN}: {', '.join(_clip(str(k), 30) for k in unknown)}")
    out = Judgment()
    for name in rubric.names:
        entry = value[name]
        if not isinstance(entry, dict) or set(entry) != {"rationale", "score"}:
            return Judgment(f"{BAD_ENTRY}: {name} must be {{rationale, score}}")
        score, reason = _score(entry["score"], name, rubric)
        if reason:
            return Judgment(reason)
        rationale, reason = _rationale(entry["rationale"], name)
        if reason:
            return Judgment(reason)
        out.scores[name], out.rationales[name] = int(score), rationale  # type: ignore[arg-type]
    return out


def parse_pairwise(text: str) -> Judgment:
    """A verdict (``A``, ``B`` or ``tie``) with its rationale, or the first reason it is not one."""
    value, reason = load_object(text)
    if reason:
        return Judgment(reason)
    if not isinstance(value, dict):
        return Judgment(f"{NOT_OBJECT}: the JSON is a {type(value).__name__}, not an object")
    if set(value) != {"rationale", "winner"}:
        return Judgment(f"{BAD_ENTRY}: a verdict is {{rationale, winner}}, got keys {sorted(map(str, value))}")
    if value["winner"] not in WINNERS:
        return Judgment(f"{BAD_WINNER}: winner is {json.dumps(value['winner'], ensure_ascii=False)[:40]}")
    rationale, reason = _rationale(value["rationale"], "the verdict")
    if reason:
        return Judgment(reason)
    return Judgment(winner=value["winner"], rationale=rationale)


def request_error(error: str, guided: bool) -> str:
    """A request's error, saying so when the server refused the judgment's JSON schema (HTTP 400 naming
    ``response_format``): the fix is the judge's ``structured_output: off``, not more attempts."""
    if guided and error.startswith("HTTP 400") and "response_format" in error:
        return f"the server rejected response_format (set the judge's structured_output: off for it); {error}"
    return error


def parse_judgment(kind: str, text: str, error: str, truncated: bool, rubric: Rubric) -> Judgment:
    """The engine's answer for one item of ``kind`` as a judgment (the request's own error comes first)."""
    if error:
        return Judgment(f"{REQUEST_ERROR}: {error}")
    judgment = parse_pairwise(text) if kind == "pairwise" else parse_pointwise(text, rubric)
    if not judgment.ok and truncated:
        return Judgment(f"{TRUNCATED}: the judge used all of sampling.max_tokens ({judgment.reason})")
    return judgment
