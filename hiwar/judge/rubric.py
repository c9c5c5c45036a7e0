"""The judge's rubric: the human raters' criteria and scale (``human_eval``), and the JSON a judgment must be.

One rubric for raters and judge: the same criterion names, Arabic and English labels and descriptions, and the same
integer scale, so judge and rater scores are comparable item by item (see :mod:`hiwar.judge.calibration`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hiwar.errors import ConfigError
from hiwar.evaluation.human.config import Criterion, HumanEvalConfig
from hiwar.judge.config import OVERALL

WINNERS = ("A", "B", "tie")  # pairwise verdicts: the reply shown first (A), second (B), or neither


@dataclass(frozen=True)
class Rubric:
    """Criteria in order, and the integer scale ``scale_min..scale_max``."""

    criteria: tuple[Criterion, ...]
    scale_min: int
    scale_max: int
    anchors: tuple[tuple[int, str, str], ...]  # (score, Arabic label, English label)

    @classmethod
    def from_human_eval(cls, cfg: HumanEvalConfig) -> Rubric:
        """The raters' rubric, as ``human_eval`` configures it."""
        from hiwar.evaluation.human.instructions import _anchors  # the one owner of the scale's labels

        return cls(tuple(cfg.criteria), cfg.scale_min, cfg.scale_max, tuple(_anchors(cfg)))

    @property
    def names(self) -> list[str]:
        """Criterion names, in order."""
        return [c.name for c in self.criteria]

    @property
    def scale(self) -> list[int]:
        """Every score, lowest first."""
        return list(range(self.scale_min, self.scale_max + 1))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (for fingerprints and summaries)."""
        return {
            "criteria": [c.model_dump() for c in self.criteria],
            "scale": {"min": self.scale_min, "max": self.scale_max},
        }

    def check_thresholds(self, thresholds: dict[str, float], key: str) -> None:
        """Thresholds name criteria (or ``overall``) and lie on the scale.

        Raises:
            ConfigError: naming ``key``, the threshold and what was expected.
        """
        for name, value in thresholds.items():
            if name != OVERALL and name not in self.names:
                raise ConfigError(f"{key}.{name}: not a criterion (criteria: {', '.join(self.names)}, or '{OVERALL}')")
            if not self.scale_min <= value <= self.scale_max:
                raise ConfigError(f"{key}.{name}: {value:g} is off the scale {self.scale_min}-{self.scale_max}")


def pointwise_schema(rubric: Rubric, rationale_max_chars: int) -> dict[str, Any]:
    """The JSON schema of a judgment: per criterion, a short ``rationale`` then an integer ``score`` on the scale.

    The rationale comes first so a model reasons before it scores; the scale is an ``enum`` (every guided-decoding
    backend supports it); lengths are bounded so a guided model cannot run past ``max_tokens``.
    """
    entry = {
        "type": "object",
        "properties": {
            "rationale": {"type": "string", "minLength": 1, "maxLength": rationale_max_chars},
            "score": {"type": "integer", "enum": rubric.scale},
        },
        "required": ["rationale", "score"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {name: entry for name in rubric.names},
        "required": rubric.names,
        "additionalProperties": False,
    }


def pairwise_schema(rationale_max_chars: int) -> dict[str, Any]:
    """The JSON schema of a pairwise verdict: a short ``rationale`` then ``winner`` (A, B or tie)."""
    return {
        "type": "object",
        "properties": {
            "rationale": {"type": "string", "minLength": 1, "maxLength": rationale_max_chars},
            "winner": {"type": "string", "enum": list(WINNERS)},
        },
        "required": ["rationale", "winner"],
        "additionalProperties": False,
    }


def pointwise_example(rubric: Rubric, rationale_hint: str) -> str:
    """The answer's shape, shown in the prompt: ``{"<criterion>": {"rationale": "...", "score": <n>}, ...}``."""
    lo, hi = rubric.scale_min, rubric.scale_max
    body = {name: {"rationale": rationale_hint, "score": f"<{lo}-{hi}>"} for name in rubric.names}
    return json.dumps(body, ensure_ascii=False, indent=1).replace(f'"<{lo}-{hi}>"', f"<{lo}-{hi}>")


def pairwise_example(rationale_hint: str) -> str:
    """The pairwise answer's shape, shown in the prompt."""
    return json.dumps({"rationale": rationale_hint, "winner": "A | B | tie"}, ensure_ascii=False)
