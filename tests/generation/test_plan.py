"""Generation's work shards under the completion rule: a changed plan is refused in one line, or started over."""

from __future__ import annotations

from pathlib import Path

import pytest

from hiwar.config import load_config
from hiwar.errors import HiwarError
from hiwar.generation.run import check_plan


def test_a_changed_plan_is_refused_or_started_over(tmp_path: Path) -> None:
    work = tmp_path / "dataset" / "work"
    (work / "shards").mkdir(parents=True)
    config = load_config(None, ["generation.sampling.temperature=0.3"])
    check_plan(work, config, 10)
    (work / "shards" / "shard-00000.parquet").write_bytes(b"finished shard")
    check_plan(work, load_config(None, ["generation.replicas=4"]), 10)  # resources: the same plan
    hotter = load_config(None, ["generation.sampling.temperature=0.9"])
    with pytest.raises(HiwarError) as err:
        check_plan(work, hotter, 10)
    assert str(err.value) == (
        f"{work.parent}: the generation work in it was made with other inputs (generation.sampling.temperature: "
        "0.3 -> 0.9); rerun with --force to start it over (its finished shards are deleted), or set another "
        "generation.output_dir"
    )
    assert (work / "shards" / "shard-00000.parquet").exists()
    check_plan(work, hotter, 10, force=True)
    assert list((work / "shards").iterdir()) == []
    check_plan(work, hotter, 10)  # the new plan is recorded
