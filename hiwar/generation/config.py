"""The ``generation`` config section (owned by the generation stage; see hiwar/generation/)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from hiwar.generation.language import DEFAULT_MIN_CONFIDENCE
from hiwar.models.options import LoadOptions
from hiwar.section import Section

if TYPE_CHECKING:
    from hiwar.models.loader import ModelRef


class SamplingConfig(Section):
    """Sampling parameters. Defaults follow the Jais-13b-chat model card."""

    temperature: float = Field(0.3, ge=0.0, description="0 means greedy decoding.")
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(-1, ge=-1, description="-1 disables top-k; otherwise keep the k most likely tokens (k >= 1).")
    repetition_penalty: float = Field(1.2, gt=0.0)
    max_tokens: int = Field(512, ge=1, description="New tokens per request.")

    @model_validator(mode="after")
    def _top_k(self) -> SamplingConfig:
        if self.top_k == 0:
            raise ValueError("top_k 0 keeps no token: use -1 (off) or a number >= 1")
        return self


# EngineConfig keys that say how fast or on what hardware an engine runs, never what it writes: a change to them
# leaves finished work current (see hiwar/markers.py).
ENGINE_RESOURCE_KEYS = frozenset(
    {
        "replicas",
        "batch_size",
        "num_cpus_per_replica",
        "num_gpus_per_replica",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "accelerator_type",
        "api_key_env",
        "micro_batch_size",
        "request_timeout_s",
        "max_retries",
    }
)


class EngineConfig(LoadOptions):
    """Which engine runs which model, with what resources. Shared by generation and RAVEN replies."""

    engine: Literal["vllm", "transformers", "openai"] = Field("transformers", description="Engine, by name.")
    model: str = Field("", description="Hub id or local folder of the model (for openai: the served model name).")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    replicas: int = Field(1, ge=1, description="Engine actors (vLLM engines or HF generate actors).")
    batch_size: int = Field(16, ge=1, description="Rows per batch sent to one actor.")
    num_cpus_per_replica: float = Field(1.0, gt=0)
    num_gpus_per_replica: float = Field(0.0, ge=0)
    tensor_parallel_size: int = Field(1, ge=1)
    pipeline_parallel_size: int = Field(1, ge=1)
    accelerator_type: str | None = Field(None, description="Ray accelerator type, e.g. 'A100' or 'H100'.")
    max_model_len: int | None = Field(None, ge=16)
    dtype: str = Field("auto", description="'auto', 'float32', 'bfloat16', 'float16'.")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="Extra vLLM engine arguments.")
    prompt_format: Literal["auto", "jais", "chat_template", "hiwar"] = Field(
        "auto",
        description="How the prompt reaches the model: 'jais' (the Jais-13b-chat card's format), "
        "'chat_template' (the tokenizer's template; hiwar's when it has none), "
        "'hiwar' (hiwar's template always), "
        "'auto' (jais for Jais models, by model_type or name; else chat_template).",
    )
    jais_language: Literal["auto", "ar", "en"] = Field(
        "auto",
        description="The Jais card's instruction in Arabic or English; 'auto': Arabic when the first question is "
        "mostly Arabic script (the card pairs Arabic questions with its Arabic instruction).",
    )
    base_url: str | None = Field(
        None, description="openai engine: the server's base URL, e.g. http://127.0.0.1:8000/v1"
    )
    api_key_env: str = Field("OPENAI_API_KEY", description="openai engine: environment variable holding the key.")
    micro_batch_size: int = Field(
        8,
        ge=1,
        description="transformers engine: rows per HF generate call (a Ray "
        "batch of batch_size rows is cut into micro-batches).",
    )
    sort_by_length: bool = Field(
        True,
        description="transformers engine: sort each batch by prompt length before "
        "cutting micro-batches, so padding stays small.",
    )
    request_timeout_s: float = Field(600.0, gt=0, description="openai engine: seconds per HTTP request.")
    max_retries: int = Field(
        3, ge=0, description="openai engine: retries of a request that failed to connect or got 429/5xx."
    )

    def ref(self, where: str = "generation") -> ModelRef:
        """The engine's model for :mod:`hiwar.models.loader`."""
        from hiwar.models.loader import model_ref

        return model_ref(self.model, self, where)


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


# The judge's sections build on EngineConfig (above), so they are imported once it exists (see hiwar/judge/__init__.py).
from hiwar.judge.config import JudgeFilterConfig  # noqa: E402


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
