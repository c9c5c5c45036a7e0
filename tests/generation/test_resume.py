"""Kill a real `hiwar generate` part-way (SIGKILL), or only its engine actor, and compare with a clean run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hiwar.cli import cli
from tests.generation.conftest import run_overrides
from tests.generation.teach import grid_overrides
from tests.generation.test_generate_transformers import generate
from tests.ray_processes import kill_one_actor

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# 8 prompts (the taught grid in two countries), one per shard, one row per batch: shards finish one by one.
OVERRIDES = (*grid_overrides(("EG", "DZ")), "generation.shard_size=1", "generation.batch_size=1")


def dataset_ids(dataset: Path) -> dict[str, list[tuple[str, str]]]:
    import pyarrow.parquet as pq

    data = pq.read_table(dataset / "data").to_pylist()
    rejects = pq.read_table(dataset / "rejects").to_pylist()
    return {
        "accepted": sorted((r["id"], json.dumps(r["messages"], ensure_ascii=False)) for r in data),
        "rejected": sorted((r["id"], r["raw_text"] + "|" + ",".join(r["reasons"])) for r in rejects),
    }


@pytest.fixture(scope="module")
def clean(ray_local, taught_model, tmp_path_factory) -> Path:
    """The dataset of an uninterrupted run over the same 8 prompts."""
    return generate(tmp_path_factory.mktemp("clean"), taught_model, *OVERRIDES)


def test_killed_run_resumes_to_the_clean_result(ray_local, taught_model, tmp_path, clean):
    killed_dir = tmp_path / "killed"
    args = [sys.executable, "-m", "hiwar.cli", "--log-level", "WARNING", "generate"]
    for item in run_overrides(killed_dir, taught_model, *OVERRIDES, "cluster.num_cpus=2"):
        args += ["--set", item]
    log = tmp_path / "killed.log"
    with log.open("w") as sink:  # its own embedded Ray (RAY_ADDRESS unset), in its own process group
        proc = subprocess.Popen(
            args,
            env={**os.environ, "RAY_ADDRESS": ""},
            start_new_session=True,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    shards = killed_dir / "dataset" / "work" / "shards"
    deadline = time.monotonic() + 420
    try:
        while time.monotonic() < deadline and len(list(shards.glob("shard-*.parquet"))) < 2:
            assert proc.poll() is None, "generate ended before the kill: " + log.read_text()[-2000:]
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray processes it started
        proc.wait(30)
    done = {p.name: p.stat().st_mtime_ns for p in shards.glob("shard-*.parquet")}
    assert 2 <= len(done) < 8, f"kill came too late or too early: {sorted(done)}"
    assert not (killed_dir / "dataset" / "stats.json").exists()

    resumed = generate(killed_dir, taught_model, *OVERRIDES)
    stats = json.loads((resumed / "stats.json").read_text())
    assert stats["throughput"]["shards_skipped"] == len(done)
    assert stats["throughput"]["rows_generated"] == 8 - len(done)
    assert {p.name: p.stat().st_mtime_ns for p in shards.glob("shard-*.parquet") if p.name in done} == done

    assert dataset_ids(resumed) == dataset_ids(clean)
    assert json.loads((clean / "stats.json").read_text())["counts"] == stats["counts"]
    assert stats["counts"]["prompts"] == 8 and stats["counts"]["accepted"] >= 2


def test_killed_engine_actor_is_replaced_and_its_rows_retried(ray_local, taught_model, tmp_path, clean):
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["dataset"] = generate(tmp_path / "crashed", taught_model, *OVERRIDES)
        except BaseException as err:  # surfaced below, in the test's thread
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    shards = tmp_path / "crashed" / "dataset" / "work" / "shards"
    deadline = time.monotonic() + 420
    while not list(shards.glob("shard-*.parquet")):  # the engine is up and mid-run: kill it as an OOM killer would
        assert thread.is_alive(), f"generate ended before the kill: {outcome}"
        assert time.monotonic() < deadline, "no shard within 7 minutes"
        time.sleep(0.05)
    kill_one_actor("HFGenerator")
    thread.join(600)
    assert not thread.is_alive() and "error" not in outcome, outcome
    dataset = outcome["dataset"]
    stats = json.loads((dataset / "stats.json").read_text())
    assert stats["throughput"]["rows_generated"] == 8 and stats["counts"]["prompts"] == 8
    assert dataset_ids(dataset) == dataset_ids(clean)  # the rows in flight were generated again, identically


def test_engine_that_cannot_load_fails_the_job_in_one_line(ray_local, taught_model, tmp_path):
    import shutil

    # Weights whose shapes disagree with the config: the preflight (which opens weight files, not tensors) lets it
    # through, and the engine actors' strict load fails. (Corrupt files never get this far: tests/models.)
    broken = tmp_path / "broken-model"
    shutil.copytree(taught_model, broken)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "n_inner": 8}))
    args = ["--log-level", "WARNING", "generate"]
    for item in run_overrides(tmp_path / "run", broken, *OVERRIDES):
        args += ["--set", item]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    shards = tmp_path / "run" / "dataset" / "work" / "shards"
    # Ray's account (and its raylet's late retry notices) surround it; the error itself is one line.
    [line] = [ln for ln in result.output.splitlines() if ln.startswith("Error: ")]
    assert line.startswith("Error: generation: the Ray Data job failed: HiwarError: generation.model=")
    assert "weights do not match GPT2LMHeadModel: shape: transformer.h.0.mlp.c_fc.bias" in line
    assert line.endswith(
        f"0 of 8 shard(s) are written in {shards} and kept: fix the cause and rerun the same command to "
        "generate the rest"
    )
