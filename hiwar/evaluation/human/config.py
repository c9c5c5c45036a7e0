"""The ``human_eval`` config section (owned by hiwar/evaluation/human/)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from hiwar.section import Section

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Criterion(Section):
    """One rating criterion: a column in every sheet, described in Arabic and English for the raters."""

    name: str = Field(..., description="Column name in the sheets: lower case letters, digits and '_'.")
    label_en: str = Field(..., min_length=1, description="Short English label.")
    label_ar: str = Field(..., min_length=1, description="Short Arabic label.")
    description_en: str = Field(..., min_length=1, description="What the rater judges, in English.")
    description_ar: str = Field(..., min_length=1, description="What the rater judges, in Arabic.")

    @field_validator("name")
    @classmethod
    def _column_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a column name (use lower case letters, digits and '_')")
        return value


def default_criteria() -> list[Criterion]:
    """Fluency, coherence, relevance, cultural appropriateness and overall quality."""
    return [
        Criterion(
            name="fluency",
            label_en="Fluency",
            label_ar="الطلاقة",
            description_en="Is the reply correct, natural Arabic: grammatical, well worded, with no "
            "foreign or garbled words out of place?",
            description_ar="هل الرد مكتوب بعربية سليمة وطبيعية: صحيح نحويًا، حسن الصياغة، خالٍ من الكلمات "
            "الأجنبية أو المشوهة في غير موضعها؟",
        ),
        Criterion(
            name="coherence",
            label_en="Coherence",
            label_ar="الترابط",
            description_en="Does the reply hold together logically and follow from the conversation so far, "
            "without contradicting earlier turns?",
            description_ar="هل الرد مترابط منطقيًا ومتسق مع ما سبق في المحادثة، دون أن يناقض ما قيل من قبل؟",
        ),
        Criterion(
            name="relevance",
            label_en="Relevance",
            label_ar="الصلة بالموضوع",
            description_en="Does the reply answer what the user last said and stay on the conversation's topic?",
            description_ar="هل يجيب الرد عمّا قاله المستخدم في رسالته الأخيرة ويبقى ضمن موضوع المحادثة؟",
        ),
        Criterion(
            name="cultural_appropriateness",
            label_en="Cultural appropriateness",
            label_ar="الملاءمة الثقافية",
            description_en="Is the reply respectful and suitable for Arabic-speaking users and their "
            "culture, free of offensive or culturally out-of-place content?",
            description_ar="هل الرد لائق ومناسب للمستخدمين الناطقين بالعربية وثقافتهم، وخالٍ من "
            "المحتوى المسيء أو الغريب عن ثقافتهم؟",
        ),
        Criterion(
            name="overall_quality",
            label_en="Overall quality",
            label_ar="الجودة العامة",
            description_en="All things considered, how good is this reply as an assistant's answer?",
            description_ar="بالنظر إلى كل ما سبق، ما مدى جودة هذا الرد بوصفه إجابة من مساعد؟",
        ),
    ]


class HumanEvalConfig(Section):
    """Blind rating sheets and agreement analysis."""

    criteria: list[Criterion] = Field(
        default_factory=default_criteria,
        min_length=1,
        description="Criteria rated for every reply (one sheet column each).",
    )
    scale_min: int = Field(1, description="Lowest score on the rating scale.")
    scale_max: int = Field(5, description="Highest score on the rating scale.")
    samples_per_model: int = Field(50, ge=1, description="Replies sampled per model (all of them if fewer).")
    stratify_by_topic: bool = Field(
        True,
        description="Spread each model's sample as evenly as possible over topics; off: a plain random sample.",
    )
    split: str = Field("test", description="Split read from a hiwar dataset folder.")
    max_context_messages: int | None = Field(
        None,
        ge=1,
        description="Show raters at most this many messages before the reply (default: the whole dialogue).",
    )
    seed: int | None = Field(None, description="Seed for sampling, codes and shuffles (default: the run seed).")
    raters: int = Field(2, ge=2, description="Number of raters (one sheet each).")
    output_dir: str | None = Field(None, description="Export folder (default: <run_dir>/human_eval).")
    bootstrap_samples: int = Field(
        1000,
        ge=0,
        description="Bootstrap resamples (over items) for kappa confidence intervals; 0 turns them off.",
    )
    confidence: float = Field(0.95, gt=0.0, lt=1.0, description="Confidence level of the bootstrap intervals.")
    min_interval_n: int = Field(
        10,
        ge=2,
        description="Fewest items scored by both raters for a kappa interval to be reported: resamples of a handful of "
        "items repeat the same few pairs, so their interval (of zero width at n=2) would read as certainty.",
    )
    plots: bool = Field(True, description="Write PNG plots (score distributions, confusion matrices).")
    allow_partial: bool = Field(
        False,
        description="Analyse the valid scores when some sheets have problems (the problems are listed in the report).",
    )

    @field_validator("criteria")
    @classmethod
    def _unique_criteria(cls, value: list[Criterion]) -> list[Criterion]:
        names = [c.name for c in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"criterion names must be unique (repeated: {', '.join(dupes)})")
        reserved = sorted(set(names) & {"item", "system", "topic", "context", "reply", "comment"})
        if reserved:
            raise ValueError(f"criterion names {', '.join(reserved)} are reserved for sheet columns")
        return value

    @model_validator(mode="after")
    def _scale(self) -> HumanEvalConfig:
        if self.scale_max <= self.scale_min:
            raise ValueError(f"scale_max ({self.scale_max}) must be greater than scale_min ({self.scale_min})")
        return self

    @property
    def scale(self) -> list[int]:
        """Every score on the scale, lowest first."""
        return list(range(self.scale_min, self.scale_max + 1))
