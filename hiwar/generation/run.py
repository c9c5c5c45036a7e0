"""``hiwar generate`` and ``hiwar split``: the topic x country grid to a validated, split dataset folder.

Resumable: the grid is cut into prompt shards of ``shard_size`` rows with deterministic names; each finished
shard is written once, atomically, under ``<dataset>/work/shards/``. A rerun with the same config skips
finished shards, generates the rest with the same per-row seeds, and rebuilds the outputs (dedup, rejects,
splits, stats, card) from all shards, so it ends with exactly the conversations a clean run makes.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from hiwar.atomic import write_text
from hiwar.config import RunConfig, save_resolved
from hiwar.errors import HiwarError, JobFailed, describe_error
from hiwar.generation.config import ENGINE_RESOURCE_KEYS, GenerationConfig
from hiwar.run_layout import RunLayout

log = logging.getLogger(__name__)

PLAN_FILE = "plan.json"
# Keys whose change alters what is generated: a rerun with other values must not mix old and new shards.
SHARD_KEYS = (
    "engine",
    "model",
    "trust_remote_code",
    "sampling",
    "dtype",
    "max_model_len",
    "prompt_version",
    "prompt_format",
    "jais_language",
    "grid",
    "validation",
    "shard_size",
)
# Keys that decide where or in how many files the dataset is written, not what it holds.
LAYOUT_KEYS = frozenset({"output_dir", "shard_size", "rows_per_file"})


def plan_key(config: RunConfig, n_rows: int) -> dict[str, Any]:
    """What the finished work shards depend on: the keys that decide each row's text, the seed, the grid's size and
    the code (parsing and validation run inside the shards)."""
    from hiwar.lineage import code_version
    from hiwar.markers import flatten

    data = config.generation.model_dump(mode="json", include=set(SHARD_KEYS))
    return {**flatten(data, "generation"), "seed": config.seed, "rows": n_rows, "hiwar": code_version()["hiwar"]}


def dataset_key(config: RunConfig) -> dict[str, Any]:
    """What the whole dataset folder depends on (the pipeline's generate stage): every generation key but the
    resources and the file layout, the seed, the generator's local folder (if any) and the code."""
    from hiwar.lineage import code_version, folder_stamp
    from hiwar.markers import flatten

    return {
        **flatten(config.generation, "generation", skip=ENGINE_RESOURCE_KEYS | LAYOUT_KEYS),
        "seed": config.seed,
        "input generator folder": folder_stamp(config.generation.model),
        "hiwar": code_version()["hiwar"],
    }


def check_plan(work: Path, config: RunConfig, n_rows: int, force: bool = False) -> None:
    """Record the plan of a new run, or make sure a rerun has the same one (the completion rule of
    :mod:`hiwar.markers` applied to the work shards).

    Args:
        force: shards made with another plan are deleted and generated anew, instead of an error.

    Raises:
        HiwarError: the folder holds shards made with a different generation config.
    """
    from hiwar.markers import check, write_marker

    key = plan_key(config, n_rows)
    path = work / PLAN_FILE
    verdict = check(path, key)
    if verdict.stale:
        if not force:
            raise verdict.refusal(
                f"{work.parent}: the generation work in it",
                "rerun with --force to start it over (its finished shards are deleted), or set another "
                "generation.output_dir",
            )
        log.warning("%s: generated with other inputs (%s); starting over", work, verdict.what_changed())
        shutil.rmtree(work / "shards", ignore_errors=True)
        (work / "shards").mkdir(parents=True)
    if not verdict.done:
        write_marker(path, key, rows=n_rows, shard_size=config.generation.shard_size)


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
    """Send the grid rows of unfinished shards through the shard chain; returns (result, shards skipped)."""
    from ray.exceptions import RayError

    from hiwar.cluster.session import connect, shutdown
    from hiwar.generation.prompting import request_rows
    from hiwar.generation.shard_chain import ChainResult, run_chain
    from hiwar.work_shards import cut, finished, unfinished

    cfg = config.generation
    groups = cut(rows, cfg.shard_size)
    n_shards = len(groups)
    todo = unfinished(shards_dir, n_shards)
    if not todo:
        return ChainResult(), n_shards
    requests = []
    for k in todo:
        for request in request_rows(groups[k], cfg):
            request["shard"] = k
            requests.append(request)
    log.info("%d of %d shards to generate (%d prompts)", len(todo), n_shards, len(requests))
    session = connect(config.cluster, warm=cfg.warm_actors())
    try:
        return run_chain(requests, cfg, shards_dir), n_shards - len(todo)
    except RayError as err:  # the job itself failed (an engine that cannot start, actors dead past retries)
        log.error("%s", err)  # Ray's full account, for the log
        written = len(finished(shards_dir))
        raise JobFailed(
            f"generation: the Ray Data job failed: {describe_error(err)}; {written} of {n_shards} shard(s) are "
            f"written in {shards_dir} and kept: fix the cause and rerun the same command to generate the rest"
        ) from err
    finally:
        shutdown(session)


def run_generate(config: RunConfig, force: bool = False) -> Path:
    """Generate, validate, dedup and split the grid; returns the dataset folder (see module docstring).

    Args:
        force: work shards made with another generation config are deleted and generated anew (without it, such
            a folder is an error that says what changed).
    """
    from hiwar.generation.grid import build_grid
    from hiwar.outdirs import check_output_dirs

    cfg = config.generation
    layout = RunLayout(config)
    out = layout.dataset
    check_output_dirs(layout.output_places("generate"))
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
    check_plan(work, config, len(rows), force)
    result, skipped = _generate_pending(config, rows, shards_dir)
    finalize(config, out, len(rows), result, skipped)
    return out


def finalize(config: RunConfig, out: Path, n_prompts: int, result: Any, skipped: int) -> dict[str, Any]:
    """Build the dataset folder from every finished shard; returns the stats."""
    from hiwar.generation.assemble import assemble, read_work, write_rejects, write_splits
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
    from hiwar.dataset_layout import STATS_FILE
    from hiwar.generation.card import render_card
    from hiwar.lineage import write_json

    write_json(out / STATS_FILE, stats)
    write_text(out / "README.md", render_card(stats))
    save_resolved(config, out)


def run_split(config: RunConfig, dataset: str | Path | None = None) -> Path:
    """Re-split an existing dataset folder with ``generation.splits`` (and the run seed); updates stats and
    card.

    Raises:
        HiwarError: the folder is not a hiwar dataset.
    """
    from hiwar.dataset_layout import STATS_FILE, is_dataset_dir, read_stats
    from hiwar.generation.assemble import write_splits
    from hiwar.outdirs import check_output_dirs
    from hiwar.records_io import read_records

    layout = RunLayout(config)
    out = Path(dataset) if dataset else layout.dataset
    check_output_dirs([("--dataset", out)] if dataset else layout.output_places("generate"))
    if not is_dataset_dir(out) or not (out / STATS_FILE).exists():
        raise HiwarError(f"{out}: not a hiwar dataset folder (no data/ or stats.json); run `hiwar generate` first")
    convs = read_records(out / "data")
    cfg = config.generation
    stats = read_stats(out)
    stats["splits"] = write_splits(convs, out, cfg.splits, config.seed, cfg.rows_per_file)
    stats["split_config"] = cfg.splits.model_dump()
    _write_meta(config, out, stats)
    return out
