"""Versioned judge prompts (``hiwar/assets/prompts/judge/<version>.yaml``), rendered per item as chat messages.

The judge gets a system and a user message; the engines format them for the judge model like any other
``messages`` row (its chat template, hiwar's, or the Jais card's format: ``prompt_format``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from hiwar.errors import ConfigError
from hiwar.judge.rubric import Rubric, pairwise_example, pointwise_example

KINDS = ("reply", "conversation", "pairwise")
_FIELDS = (
    "system",
    "user_label",
    "assistant_label",
    "system_label",
    "rationale_hint",
    *KINDS,
    "format_pointwise",
    "format_pairwise",
)


@dataclass(frozen=True)
class JudgePrompt:
    """One language of one judge prompt version."""

    version: str
    language: str
    texts: dict[str, str]

    def dialogue(self, messages: list[dict[str, str]]) -> str:
        """Messages as labelled paragraphs (``المستخدم: ...``)."""
        labels = {role: self.texts[f"{role}_label"] for role in ("user", "assistant", "system")}
        return "\n\n".join(f"{labels.get(m['role'], m['role'])}: {m['content']}" for m in messages)

    def rubric_text(self, rubric: Rubric) -> str:
        """One line per criterion: label (name): description, in the prompt's language."""
        if self.language == "ar":
            return "\n".join(f"- {c.label_ar} ({c.name}): {c.description_ar}" for c in rubric.criteria)
        return "\n".join(f"- {c.label_en} ({c.name}): {c.description_en}" for c in rubric.criteria)

    def anchors_text(self, rubric: Rubric) -> str:
        """The scale's labelled points."""
        return "\n".join(f"- {s}: {ar if self.language == 'ar' else en}" for s, ar, en in rubric.anchors)

    def messages(self, kind: str, rubric: Rubric, item: dict[str, Any]) -> list[dict[str, str]]:
        """The judge's system and user messages for one item.

        Args:
            kind: ``reply`` (``context`` messages and ``reply``), ``conversation`` (``context`` is the whole
                conversation) or ``pairwise`` (``context``, ``reply_a``, ``reply_b``).
            rubric: criteria and scale.
            item: the item's fields.
        """
        hint = self.texts["rationale_hint"]
        scale = {"scale_min": rubric.scale_min, "scale_max": rubric.scale_max}
        if kind == "pairwise":
            fmt = self.texts["format_pairwise"].format(example=pairwise_example(hint), **scale)
        else:
            fmt = self.texts["format_pointwise"].format(example=pointwise_example(rubric, hint), **scale)
        dialogue = self.dialogue(item["context"])
        text = self.texts[kind].format(
            rubric=self.rubric_text(rubric),
            anchors=self.anchors_text(rubric),
            context=dialogue,
            conversation=dialogue,
            reply=item.get("reply", ""),
            reply_a=item.get("reply_a", ""),
            reply_b=item.get("reply_b", ""),
            format=fmt,
            **scale,
        )
        return [{"role": "system", "content": self.texts["system"]}, {"role": "user", "content": text}]


def judge_versions() -> list[str]:
    """Judge prompt versions shipped with the package."""
    folder = resources.files("hiwar") / "assets" / "prompts" / "judge"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


@cache
def load_judge_prompt(version: str, language: str, key: str = "judge") -> JudgePrompt:
    """Load a shipped judge prompt in ``language``.

    Raises:
        ConfigError: unknown version, or a version without that language (naming ``key``).
    """
    if version not in judge_versions():
        raise ConfigError(
            f"{key}.prompt_version: unknown judge prompt version {version!r} (shipped: {', '.join(judge_versions())})"
        )
    path = resources.files("hiwar") / "assets" / "prompts" / "judge" / f"{version}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    texts = data.get(language)
    if not isinstance(texts, dict):
        raise ConfigError(f"{key}.language: judge prompt {version} has no {language!r} version")
    missing = [f for f in _FIELDS if not isinstance(texts.get(f), str)]
    if missing:
        raise ConfigError(f"judge prompt {version} ({language}): missing {', '.join(missing)}")
    return JudgePrompt(data["version"], language, {f: texts[f].strip() for f in _FIELDS})
