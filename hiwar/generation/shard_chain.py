"""The Ray Data chain of one generation run: requests -> engine -> parse/validate -> finished work shards.

Only prompt shards that have no output file yet are sent. Results stream back to the driver, grouped by shard;
a shard is written (atomically, by :mod:`hiwar.work_shards`) as soon as its last row arrives. A killed run
thus loses at most the shards in flight, and a rerun sends only those again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hiwar.generation.config import GenerationConfig
from hiwar.work_shards import shard_path, write_shard

log = logging.getLogger(__name__)


@dataclass
class ChainResult:
    """What this invocation generated."""

    rows: int = 0
    shards: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0


def run_chain(requests: list[dict[str, Any]], cfg: GenerationConfig, shards_dir: Path) -> ChainResult:
    """Generate every request (rows carry ``shard``) and write each shard when it is complete."""
    import ray.data

    from hiwar.generation.engines import generate_texts
    from hiwar.generation.postprocess import parse_and_validate

    expected = Counter(r["shard"] for r in requests)
    ds = ray.data.from_items(requests, override_num_blocks=cfg.blocks(len(requests)))
    ds = generate_texts(ds, cfg)
    ds = ds.map_batches(
        parse_and_validate,
        batch_format="pyarrow",
        batch_size=None,
        # A whole CPU per task: fractional CPUs let Ray start several worker processes at once, each paying
        # Python and Ray start-up (seconds), for a step that needs milliseconds per row.
        num_cpus=1,
        fn_kwargs={"validation": cfg.validation.model_dump(), "max_tokens": cfg.sampling.max_tokens},
    )
    result, pending = ChainResult(), defaultdict(list)
    got: Counter = Counter()
    start = time.perf_counter()
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        if batch.num_rows == 0:
            continue
        result.generated_tokens += sum(batch.column("num_generated_tokens").to_pylist())
        for shard in set(batch.column("shard").to_pylist()):
            part = batch.filter(batch.column("shard").to_numpy() == shard)
            pending[shard].append(part)
            got[shard] += part.num_rows
            if got[shard] == expected[shard]:
                write_shard(pending.pop(shard), shard_path(shards_dir, shard), "id")
                result.shards += 1
                log.info("shard %05d done (%d rows)", shard, expected[shard])
        result.rows += batch.num_rows
    result.seconds = time.perf_counter() - start
    if pending:  # every row comes back once, so this would be a bug, not a user error
        raise RuntimeError(f"shards {sorted(pending)} did not get all their rows back")
    return result
