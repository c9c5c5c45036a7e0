"""The prompt grid: topics x countries x samples, with deterministic ids, seeds and turn counts.

- A pair (topic, country) gets ``per_pair`` samples, or, with ``target_total``, ``target_total // pairs`` plus
  one more for ``target_total % pairs`` pairs spread evenly over the pair order (topics, then countries, in
  asset order), so the total is exact.
- A row's id hashes (prompt version, topic, country, sample index): it does not depend on the grid's size,
  filters or the run seed, so the same cell has the same id in every run. Its seed hashes (run seed, id); its
  requested turn count is drawn from ``[min_turns, max_turns]`` by that seed.
- Rows are ordered by (sample index, id): ``limit`` then takes first samples spread over many pairs. They are
  made one sample index at a time, so a huge ``target_total`` with a small ``limit`` costs only ``limit`` rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any

from hiwar.errors import ConfigError
from hiwar.generation.config import GridConfig

# A run holds its grid (and its requests) in memory: past this many rows, say so instead of a MemoryError.
MAX_ROWS = 10_000_000


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


def grid_pairs(grid: GridConfig) -> list[tuple[str, str]]:
    """The (topic, country) pairs of the grid, topics then countries in asset order, after checking that the
    grid names known topics and countries and fits in one run.

    Raises:
        ConfigError: unknown topics or countries, or a grid past :data:`MAX_ROWS` rows (after ``limit``).
    """
    from hiwar.assets import load_countries, load_topics

    topics = select(load_topics(), grid.topics, "id", "topics")
    countries = select(load_countries(), grid.countries, "iso2", "countries")
    pairs = [(t["id"], c["iso2"]) for t in topics for c in countries]
    total = grid.target_total if grid.target_total is not None else grid.per_pair * len(pairs)
    size = total if grid.limit is None else min(total, grid.limit)
    if size > MAX_ROWS:
        how = f"target_total={grid.target_total}" if grid.target_total is not None else f"per_pair={grid.per_pair}"
        raise ConfigError(
            f"generation.grid: {how} makes {size:,} rows, more than one run holds ({MAX_ROWS:,}); set "
            "generation.grid.limit, or split the grid over runs (grid.topics, grid.countries)"
        )
    return pairs


def iter_rows(pairs: list[tuple[str, str]], grid: GridConfig, prompt_version: str, run_seed: int) -> Iterator[GridRow]:
    """The grid's rows in grid order, made one sample index at a time: ``limit`` rows cost ``limit`` rows of
    memory, not the whole grid."""
    counts = samples_per_pair(len(pairs), grid)
    span = grid.max_turns - grid.min_turns + 1
    for k in range(max(counts, default=0)):
        level = []
        for (topic, country), count in zip(pairs, counts, strict=True):
            if count > k:
                rid = row_id(prompt_version, topic, country, k)
                seed = row_seed(run_seed, rid)
                level.append(GridRow(rid, topic, country, k, seed, grid.min_turns + seed % span))
        level.sort(key=lambda r: r.id)
        yield from level


def build_grid(grid: GridConfig, prompt_version: str, run_seed: int) -> list[GridRow]:
    """Every row of the grid, in grid order (sample index, then id), after ``limit``.

    Raises:
        ConfigError: as :func:`grid_pairs`.
    """
    pairs = grid_pairs(grid)
    return list(islice(iter_rows(pairs, grid, prompt_version, run_seed), grid.limit))
