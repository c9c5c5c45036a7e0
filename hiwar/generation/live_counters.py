"""Live counters exported with ``ray.util.metrics`` (Ray dashboard / Prometheus): prompts done, accepted,
rejected (by first reason), tokens generated, and outputs whose role markers needed a repair (by kind)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

PREFIX = "hiwar_generation_"


@lru_cache(maxsize=1)
def counters() -> dict[str, Any]:
    """The counters of this worker process (created once per process)."""
    from ray.util.metrics import Counter

    return {
        "prompts": Counter(PREFIX + "prompts_done", description="Prompts answered by the engine."),
        "accepted": Counter(PREFIX + "accepted", description="Conversations that passed validation."),
        "rejected": Counter(
            PREFIX + "rejected", description="Conversations rejected by validation.", tag_keys=("reason",)
        ),
        "tokens": Counter(PREFIX + "tokens_generated", description="New tokens generated."),
        "repairs": Counter(
            PREFIX + "parse_repairs",
            description="Outputs whose role markers the parser repaired (bidi, diacritics, tatweel, emphasis, bullet).",
            tag_keys=("kind",),
        ),
    }


def record(
    prompts: int,
    accepted: int,
    rejected_by_reason: dict[str, int],
    tokens: int,
    repaired_by_kind: dict[str, int] | None = None,
) -> None:
    """Add one batch's counts; metrics are best effort and never fail the job."""
    try:
        c = counters()
        c["prompts"].inc(prompts)
        if accepted:
            c["accepted"].inc(accepted)
        for reason, n in rejected_by_reason.items():
            c["rejected"].inc(n, tags={"reason": reason})
        if tokens:
            c["tokens"].inc(tokens)
        for kind, n in (repaired_by_kind or {}).items():
            c["repairs"].inc(n, tags={"kind": kind})
    except Exception:  # noqa: BLE001,S110 - no metrics (e.g. outside Ray) is not an error
        pass
