"""The judge's config: ``judge`` (``hiwar judge`` and the pipeline stage), ``generation.judge`` (the data filter)
and ``evaluation.judge`` (the metric). Each is an engine (the same keys as ``generation``: model, engine,
sampling, resources) plus how the judge is asked and retried."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from hiwar.engine_config import EngineConfig, SamplingConfig
from hiwar.section import Section

# The judge's sampling unless told otherwise: greedy first tries, no repetition penalty (a JSON object repeats
# its keys by design), room for one short rationale per criterion.
JUDGE_SAMPLING = {"temperature": 0.0, "top_p": 1.0, "top_k": -1, "repetition_penalty": 1.0, "max_tokens": 1024}
OVERALL = "overall"
# Engines that take a per-request JSON schema: vLLM's guided decoding, an OpenAI-compatible response_format.
GUIDED_ENGINES = ("vllm", "openai")


def judge_sampling() -> SamplingConfig:
    """The judge's default sampling (:data:`JUDGE_SAMPLING`)."""
    return SamplingConfig(**JUDGE_SAMPLING)


class JudgeConfig(EngineConfig):
    """A judge model on one of hiwar's engines, its prompt, and its retries."""

    sampling: SamplingConfig = Field(
        default_factory=judge_sampling,
        description="Judge sampling; keys not given stay greedy (temperature 0, no repetition penalty, 1024 tokens).",
    )
    prompt_version: str = Field("v1", description="Judge prompt version (hiwar/assets/prompts/judge/<version>.yaml).")
    language: Literal["ar", "en"] = Field(
        "ar", description="The prompt's language: the rubric's Arabic or English descriptions and instructions."
    )
    structured_output: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Each request carries the judgment's JSON schema: vllm as guided decoding, openai as "
        "response_format (json_schema, strict); 'auto' = on for both, off for transformers (which has none). "
        "The strict parser checks every answer either way; 'off' for a server that rejects response_format.",
    )
    max_attempts: int = Field(
        3,
        ge=1,
        description="Tries per item, the first included; a malformed or out-of-scale judgment is retried with a new "
        "seed, then kept aside with its raw text and reason.",
    )
    retry_temperature: float = Field(
        0.7,
        gt=0.0,
        description="Temperature of retries when sampling.temperature is 0 (a greedy retry would repeat itself).",
    )
    rationale_max_chars: int = Field(300, ge=10, description="Longest rationale per criterion (characters).")
    shard_size: int = Field(256, ge=1, description="Items per work shard: the unit of resume.")
    seed: int | None = Field(None, description="Seed of the judge's per-item seeds (default: the run seed).")
    bootstrap_samples: int = Field(
        1000, ge=0, description="Bootstrap resamples (over conversations) for 95% intervals; 0 turns them off."
    )

    @field_validator("sampling", mode="before")
    @classmethod
    def _greedy_unless_told(cls, value: object) -> object:
        # A partial `sampling:` mapping must not fall back to the generation defaults (temperature 0.3).
        return {**JUDGE_SAMPLING, **value} if isinstance(value, dict) else value

    @field_validator("structured_output", mode="before")
    @classmethod
    def _yaml_booleans(cls, value: object) -> object:
        # YAML reads on/off (and the older true/false of this key) as booleans.
        return ("on" if value else "off") if isinstance(value, bool) else value

    @property
    def guided(self) -> bool:
        """Whether each request carries the judgment's JSON schema (``structured_output`` on this engine; 'on' with
        an engine that takes none is refused before the job starts)."""
        return self.structured_output != "off" and self.engine in GUIDED_ENGINES


class JudgeRunConfig(JudgeConfig):
    """``hiwar judge`` and the pipeline's judge stage (which scores the human-eval export's items)."""

    enabled: bool = Field(False, description="Run the pipeline's judge stage.")
    output_dir: str | None = Field(None, description="Judgments folder (default: <run_dir>/judge).")
    split: str = Field("test", description="Split judged when an input is a hiwar dataset folder.")


class JudgeFilterConfig(JudgeConfig):
    """``generation.judge``: accepted conversations below a threshold become rejects (``judge_below_threshold``)."""

    enabled: bool = Field(False, description="Judge every accepted conversation and apply the thresholds.")
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Lowest score kept, per criterion name or 'overall' (the mean of an item's criterion "
        "scores); a conversation below any one is rejected.",
    )
    on_failure: Literal["reject", "keep"] = Field(
        "reject",
        description="A conversation the judge could not score after max_attempts: 'reject' (reason judge_failed) "
        "or 'keep' (unscored, marked in its metadata).",
    )


class PairwiseConfig(Section):
    """Two models' replies to the same turn, judged in both orders (position bias measured and cancelled)."""

    enabled: bool = Field(False, description="Judge every pair of models (or the listed pairs) head to head.")
    pairs: list[list[str]] = Field(
        default_factory=list, description="Model-name pairs, e.g. [[finetuned, base]] (default: every pair)."
    )
    max_turns: int | None = Field(
        None, ge=1, description="Judge at most this many shared turns per pair (a seeded sample; default: all)."
    )

    @field_validator("pairs")
    @classmethod
    def _two_names(cls, value: list[list[str]]) -> list[list[str]]:
        for pair in value:
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ValueError(f"{pair}: a pair is two different model names")
        return value


class JudgeMetricConfig(JudgeConfig):
    """``evaluation.judge``: judge scores of every model's RAVEN replies, beside perplexity and RAVEN."""

    enabled: bool = Field(False, description="Judge every model's replies (needs evaluation.raven.enabled).")
    pairwise: PairwiseConfig = Field(default_factory=PairwiseConfig)

    @model_validator(mode="after")
    def _nothing_without_enabled(self) -> JudgeMetricConfig:
        if self.pairwise.enabled and not self.enabled:
            raise ValueError("pairwise.enabled needs enabled: true (the same judge runs both)")
        return self
