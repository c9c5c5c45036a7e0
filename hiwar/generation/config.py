"""The ``generation`` config section (owned by the generation stage; see hiwar/generation/)."""

from __future__ import annotations

from pydantic import Field, model_validator

from hiwar.engine_config import ENGINE_RESOURCE_KEYS, EngineConfig, SamplingConfig
from hiwar.generation.language import DEFAULT_MIN_CONFIDENCE
from hiwar.judge.config import JudgeFilterConfig
from hiwar.section import Section

__all__ = ["ENGINE_RESOURCE_KEYS", "EngineConfig", "GenerationConfig", "SamplingConfig"]  # engine keys re-exported


class GridConfig(Section):
    """The prompt grid: topics x countries x samples per pair."""

    topics: list[str] = Field(default_factory=list, description="Topic ids to use (empty: all 93).")
    countries: list[str] = Field(default_factory=list, description="ISO 3166 alpha-2 codes to use (empty: all 151).")
    per_pair: int = Field(1, ge=1, description="Conversations per topic-country pair (ignored with target_total).")
    target_total: int | None = Field(
        None,
        ge=1,
        description="Total conversations, spread evenly and "
        "deterministically over the pairs (paper: 43316 over 93 x 151).",
    )
    limit: int | None = Field(
        None,
        ge=1,
        description="Keep only the first N rows of the grid (in grid order: "
        "sample index, then id), e.g. for a smoke run.",
    )
    min_turns: int = Field(3, ge=1, description="Fewest user-assistant exchanges asked for in a prompt.")
    max_turns: int = Field(5, ge=1, description="Most exchanges asked for; each row draws from [min, max] by seed.")

    @model_validator(mode="after")
    def _turn_range(self) -> GridConfig:
        if self.min_turns > self.max_turns:
            raise ValueError(f"min_turns ({self.min_turns}) is above max_turns ({self.max_turns})")
        return self


_VALIDATION_RANGES = (
    ("min_turns", "max_turns"),
    ("min_message_chars", "max_message_chars"),
    ("min_total_chars", "max_total_chars"),
)


class ValidationConfig(Section):
    """Thresholds of the conversation validators (see docs/generation.md for each reject reason)."""

    min_turns: int = Field(2, ge=1, description="Fewest user-assistant exchanges accepted.")
    max_turns: int = Field(10, ge=1, description="Most exchanges accepted.")
    allow_preamble: bool = Field(False, description="Accept text before the first role marker (it is dropped).")
    min_message_chars: int = Field(2, ge=1, description="Shortest message (characters, stripped).")
    max_message_chars: int = Field(2000, ge=1, description="Longest message.")
    min_total_chars: int = Field(40, ge=0, description="Shortest conversation (characters of all messages).")
    max_total_chars: int = Field(12000, ge=1, description="Longest conversation.")
    min_arabic_ratio: float = Field(0.85, ge=0, le=1, description="Arabic-script share of all letters.")
    max_latin_ratio: float = Field(0.02, ge=0, le=1, description="Latin share of all letters (Latin/Arabizi leakage).")
    min_language_confidence: float = Field(
        DEFAULT_MIN_CONFIDENCE,
        ge=0,
        le=1,
        description="A message's language counts only when identified with at least this probability "
        "(fastText lid.176; see docs/generation.md, 'Language').",
    )
    min_arabic_message_share: float = Field(
        1.0,
        ge=0,
        le=1,
        description="Least share of Arabic among the messages whose language counts; below it: not_arabic "
        "(1.0: no message may be confidently Persian, Urdu, Pashto, Kurdish or any other language).",
    )
    max_turn_similarity: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Two messages at or above this similarity "
        "(character 3-gram Jaccard of normalised text) are near-identical.",
    )
    max_ngram_repetition: float = Field(
        0.3, gt=0, le=1, description="Highest share of repeated word 3-grams within the conversation."
    )
    reject_truncated: bool = Field(True, description="Reject generations that used all of sampling.max_tokens.")

    @model_validator(mode="after")
    def _ranges(self) -> ValidationConfig:
        for low, high in _VALIDATION_RANGES:
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} ({getattr(self, low)}) is above {high} ({getattr(self, high)})")
        return self


class DedupConfig(Section):
    """Duplicate removal across the whole run (kept: the first by id)."""

    exact: bool = Field(True, description="Drop conversations whose Arabic-normalised text is identical.")
    near: bool = Field(True, description="Drop near-duplicates found by MinHash LSH.")
    threshold: float = Field(
        0.85,
        gt=0,
        lt=1,
        description="Estimated Jaccard similarity of word 3-gram "
        "shingles at which two conversations are near-duplicates.",
    )
    num_perm: int = Field(128, ge=16, description="MinHash permutations.")
    shingle_words: int = Field(3, ge=1, description="Words per shingle.")


class SplitConfig(Section):
    """Deterministic train/validation/test splits."""

    train: float = Field(0.9, ge=0, le=1)
    validation: float = Field(0.05, ge=0, le=1)
    test: float = Field(0.05, ge=0, le=1)
    by_pair: bool = Field(False, description="Keep every topic-country pair inside one split (no pair leaks).")

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must be 1.0, got {total:g}")
        return self


class GenerationConfig(EngineConfig):
    """How conversations are generated: an engine plus the prompt grid, validation, dedup, an optional judge
    filter, and splits."""

    prompt_version: str = Field("v1", description="Prompt template version (hiwar/assets/prompts).")
    output_dir: str | None = Field(None, description="Dataset folder (default: <run_dir>/dataset).")
    shard_size: int = Field(
        256,
        ge=1,
        description="Prompts per work shard: the unit of resume (a finished shard is never redone).",
    )
    rows_per_file: int = Field(10_000, ge=1, description="Conversations per output Parquet file.")
    grid: GridConfig = Field(default_factory=GridConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    splits: SplitConfig = Field(default_factory=SplitConfig)
    judge: JudgeFilterConfig = Field(
        default_factory=JudgeFilterConfig,
        description="LLM judge as a data filter: accepted conversations scored on the human-eval rubric, those "
        "below the thresholds rejected (docs/judge.md).",
    )
