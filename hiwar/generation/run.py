"""``hiwar generate`` and ``hiwar split``: the topic x country grid to a validated, split dataset folder.

Resumable: the grid is cut into prompt shards of ``shard_size`` rows with deterministic names; each finished
shard is written once, atomically, under ``<dataset>/work/shards/``. A rerun with the same config skips
finished shards, generates the rest with the same per-row seeds, and rebuilds the outputs (dedup, rejects,
splits, stats, card) from all shards, so it ends with exactly the conversations a clean run makes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from hiwar.config import RunConfig, save_resolved
from hiwar.errors import HiwarError, JobFailed
from hiwar.failures import describe_error
from hiwar.generation.config import GenerationConfig

log = logging.getLogger(__name__)

PLAN_FILE = "plan.json"
# Keys whose change alters what is generated: a rerun with other values must not mix old and new shards.
FINGERPRINT_KEYS = (
    "engine",
    "model",
    "trust_remote_code",
    "sampling",
    "dtype",
    "max_model_len",
    "prompt_version",
    "prompt_format",
    "grid",
    "validation",
    "shard_size",
)


def dataset_dir(config: RunConfig) -> Path:
    """Where the dataset goes: ``generation.output_dir``, else ``<run_dir>/dataset``."""
    return Path(config.generation.output_dir or Path(config.run_dir) / "dataset")


def output_places(config: RunConfig) -> list[tuple[str, Path]]:
    """Where ``hiwar generate`` writes, named by the config key that decides it."""
    return [("generation.output_dir" if config.generation.output_dir else "run_dir", dataset_dir(config))]


def fingerprint(config: RunConfig) -> str:
    """A hash of everything that decides which text each row gets."""
    data = config.generation.model_dump(mode="json", include=set(FINGERPRINT_KEYS))
    data["seed"] = config.seed
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def check_plan(work: Path, config: RunConfig, n_rows: int) -> None:
    """Record the plan of a new run, or make sure a rerun has the same one.

    Raises:
        HiwarError: the folder holds shards made with a different generation config.
    """
    from hiwar.lineage import write_json

    plan = {"fingerprint": fingerprint(config), "rows": n_rows, "shard_size": config.generation.shard_size}
    path = work / PLAN_FILE
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        if old.get("fingerprint") != plan["fingerprint"]:
            raise HiwarError(
                f"{work.parent}: holds a run made with a different generation config (model, sampling, "
                "prompt, grid, validation or seed); use another generation.output_dir or delete it"
            )
        return
    write_json(path, plan)


def _check_engine(cfg: GenerationConfig) -> None:
    """Fail before starting Ray when the model cannot run on its engine or the engine is missing."""
    from hiwar.generation.engines import runnable_engine

    cfg = runnable_engine(cfg)
    if cfg.engine in ("transformers", "vllm"):
        from hiwar.generation.engines.common import check_model

        check_model(cfg)
    if cfg.engine == "openai":
        from hiwar.generation.engines.openai_engine import check_openai

        check_openai(cfg)
    if cfg.engine == "vllm":
        from hiwar.errors import require
        from hiwar.generation.engines.vllm_engine import INSTALL

        require("vllm", INSTALL, "generation.engine=vllm")


def _generate_pending(config: RunConfig, rows: list, shards_dir: Path) -> tuple[Any, int]:
    """Send the grid rows of unfinished shards through the pipeline; returns (result, shards skipped)."""
    from ray.exceptions import RayError

    from hiwar.cluster.session import connect, shutdown
    from hiwar.generation.pipeline import PipelineResult, run_pipeline, shard_path
    from hiwar.generation.prompting import request_rows

    cfg = config.generation
    size = cfg.shard_size
    n_shards = (len(rows) + size - 1) // size
    todo = [k for k in range(n_shards) if not shard_path(shards_dir, k).exists()]
    if not todo:
        return PipelineResult(), n_shards
    requests = []
    for k in todo:
        for request in request_rows(rows[k * size : (k + 1) * size], cfg):
            request["shard"] = k
            requests.append(request)
    log.info("%d of %d shards to generate (%d prompts)", len(todo), n_shards, len(requests))
    session = connect(config.cluster)
    try:
        return run_pipeline(requests, cfg, shards_dir), n_shards - len(todo)
    except RayError as err:  # the job itself failed (an engine that cannot start, actors dead past retries)
        log.error("%s", err)  # Ray's full account, for the log
        written = sum(1 for k in range(n_shards) if shard_path(shards_dir, k).exists())
        raise JobFailed(
            f"generation: the Ray Data job failed: {describe_error(err)}; {written} of {n_shards} shard(s) are "
            f"written in {shards_dir} and kept: fix the cause and rerun the same command to generate the rest"
        ) from err
    finally:
        shutdown(session)


def run_generate(config: RunConfig) -> Path:
    """Generate, validate, dedup and split the grid; returns the dataset folder (see module docstring)."""
    from hiwar.generation.grid import build_grid
    from hiwar.outdirs import check_output_dirs

    cfg = config.generation
    out = dataset_dir(config)
    check_output_dirs(output_places(config))
    rows = build_grid(cfg.grid, cfg.prompt_version, config.seed)
    if not rows:
        raise HiwarError("generation.grid: the grid is empty (check topics, countries and limit)")
    _check_engine(cfg)
    if cfg.judge.enabled:  # the judge's model and thresholds, before any conversation is generated
        from hiwar.judge.filter import check_filter

        check_filter(config)
    work = out / "work"
    shards_dir = work / "shards"
    shards_dir.mkdir(parents=True, exist_ok=True)
    check_plan(work, config, len(rows))
    result, skipped = _generate_pending(config, rows, shards_dir)
    finalize(config, out, len(rows), result, skipped)
    return out


def finalize(config: RunConfig, out: Path, n_prompts: int, result: Any, skipped: int) -> dict[str, Any]:
    """Build the dataset folder from every finished shard; returns the stats."""
    from hiwar.generation.outputs import assemble, read_work, write_rejects, write_splits
    from hiwar.generation.prompting import resolve_format
    from hiwar.generation.stats import build_stats
    from hiwar.judge.filter import apply_judge_filter

    cfg = config.generation
    rows = read_work(out / "work" / "shards")
    if len(rows) != n_prompts:
        raise RuntimeError(f"{out}: expected {n_prompts} generated rows, found {len(rows)}")
    assembled = assemble(rows, cfg, resolve_format(cfg))
    judged = apply_judge_filter(config, out, assembled)  # generation.judge: None when off
    write_rejects(assembled.rejects, out, cfg.rows_per_file)
    splits = write_splits(assembled.accepted, out, cfg.splits, config.seed, cfg.rows_per_file)
    stats = build_stats(config, assembled, splits, result, skipped)
    if judged:
        stats["judge"] = judged
    _write_meta(config, out, stats)
    return stats


def _write_meta(config: RunConfig, out: Path, stats: dict[str, Any]) -> None:
    from hiwar.generation.card import render_card
    from hiwar.lineage import write_json

    write_json(out / "stats.json", stats)
    (out / "README.md").write_text(render_card(stats), encoding="utf-8")
    save_resolved(config, out)


def run_split(config: RunConfig, dataset: str | Path | None = None) -> Path:
    """Re-split an existing dataset folder with ``generation.splits`` (and the run seed); updates stats and
    card.

    Raises:
        HiwarError: the folder is not a hiwar dataset.
    """
    from hiwar.dataset_layout import is_dataset_dir
    from hiwar.generation.outputs import write_splits
    from hiwar.outdirs import check_output_dirs
    from hiwar.records_io import read_records

    out = Path(dataset) if dataset else dataset_dir(config)
    check_output_dirs([("--dataset", out)] if dataset else output_places(config))
    stats_path = out / "stats.json"
    if not is_dataset_dir(out) or not stats_path.exists():
        raise HiwarError(f"{out}: not a hiwar dataset folder (no data/ or stats.json); run `hiwar generate` first")
    convs = read_records(out / "data")
    cfg = config.generation
    stats = json.loads(stats_path.read_text(encoding="utf-8"))
    stats["splits"] = write_splits(convs, out, cfg.splits, config.seed, cfg.rows_per_file)
    stats["split_config"] = cfg.splits.model_dump()
    _write_meta(config, out, stats)
    return out
