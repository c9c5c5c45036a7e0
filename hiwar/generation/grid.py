"""The prompt grid: topics x countries x samples, with deterministic ids, seeds and turn counts.

- A pair (topic, country) gets ``per_pair`` samples, or, with ``target_total``, ``target_total // pairs`` plus
  one more for ``target_total % pairs`` pairs spread evenly over the pair order (topics, then countries, in
  asset order), so the total is exact.
- A row's id hashes (prompt version, topic, country, sample index): it does not depend on the grid's size,
  filters or the run seed, so the same cell has the same id in every run. Its seed hashes (run seed, id); its
  requested turn count is drawn from ``[min_turns, max_turns]`` by that seed.
- Rows are ordered by (sample index, id): ``limit`` then takes first samples spread over many pairs.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from hiwar.errors import ConfigError
from hiwar.generation.config import GridConfig


@dataclass(frozen=True)
class GridRow:
    """One prompt of the grid."""

    id: str
    topic: str
    country: str
    sample_index: int
    seed: int
    n_turns: int

    def to_dict(self) -> dict[str, Any]:
        """As a plain dict (a Ray Data row)."""
        return asdict(self)


def row_id(prompt_version: str, topic: str, country: str, sample_index: int) -> str:
    """Deterministic conversation id for one grid cell."""
    digest = hashlib.sha256(f"{prompt_version}|{topic}|{country}|{sample_index}".encode()).hexdigest()
    return f"hw-{digest[:16]}"


def row_seed(run_seed: int, rid: str) -> int:
    """Per-row seed (31 bits, valid for torch, vLLM and OpenAI-compatible servers)."""
    return int.from_bytes(hashlib.sha256(f"{run_seed}|{rid}".encode()).digest()[:8], "big") & 0x7FFF_FFFF


def samples_per_pair(n_pairs: int, grid: GridConfig) -> list[int]:
    """How many samples each pair gets (exactly ``target_total`` in all when it is set)."""
    if grid.target_total is None:
        return [grid.per_pair] * n_pairs
    base, extra = divmod(grid.target_total, n_pairs)
    # Bresenham-style spreading: pair i gets one more when floor((i+1)*extra/n) steps up.
    return [base + ((i + 1) * extra // n_pairs - i * extra // n_pairs) for i in range(n_pairs)]


def select(items: tuple[dict, ...], wanted: list[str], key: str, what: str) -> list[dict]:
    """The items whose ``key`` is in ``wanted`` (all when empty), in asset order; unknown names are errors."""
    if not wanted:
        return list(items)
    known = {item[key] for item in items}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ConfigError(f"generation.grid.{what}: unknown {what} {', '.join(map(repr, unknown))}")
    chosen = set(wanted)
    return [item for item in items if item[key] in chosen]


def build_grid(grid: GridConfig, prompt_version: str, run_seed: int) -> list[GridRow]:
    """Every row of the grid, in grid order (sample index, then id), after ``limit``."""
    from hiwar.assets import load_countries, load_topics

    topics = select(load_topics(), grid.topics, "id", "topics")
    countries = select(load_countries(), grid.countries, "iso2", "countries")
    pairs = [(t["id"], c["iso2"]) for t in topics for c in countries]
    span = grid.max_turns - grid.min_turns + 1
    rows = []
    for (topic, country), count in zip(pairs, samples_per_pair(len(pairs), grid), strict=True):
        for k in range(count):
            rid = row_id(prompt_version, topic, country, k)
            seed = row_seed(run_seed, rid)
            rows.append(GridRow(rid, topic, country, k, seed, grid.min_turns + seed % span))
    rows.sort(key=lambda r: (r.sample_index, r.id))
    return rows[: grid.limit] if grid.limit is not None else rows
