"""Live counters exported with ``ray.util.metrics`` (Ray dashboard / Prometheus): prompts done, accepted,
rejected (by first reason) and tokens generated."""

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
    }


def record(prompts: int, accepted: int, rejected_by_reason: dict[str, int], tokens: int) -> None:
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
    except Exception:  # noqa: BLE001,S110 - no metrics (e.g. outside Ray) is not an error
        pass
