"""RAVEN of one model as one Ray Data job: replies through hiwar's generation engines, then embeddings.

Replies are saved (``replies.parquet`` with a completion marker) before the summary is computed, so a rerun
finds them and only embeds them again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hiwar.atomic import atomic_path
from hiwar.evaluation.config import RavenConfig, model_key
from hiwar.models.spec import ModelSpec

log = logging.getLogger(__name__)

REQUEST_COLUMNS = ("request_id", "seed", "messages")


def reply_engine(spec: ModelSpec, cfg: RavenConfig) -> Any:
    """The configured reply engine pointed at the model under test."""
    from hiwar.models.options import LoadOptions

    return cfg.engine.model_copy(update={"model": spec.model, **spec.model_dump(include=set(LoadOptions.model_fields))})


def reply_dataset(spec: ModelSpec, rows: list[dict[str, Any]], cfg: RavenConfig) -> Any:
    """A Ray Dataset of the requests (with their reference reply) through the reply engine."""
    import ray

    from hiwar.generation.engines import generate_texts

    requests = [{**{key: row[key] for key in REQUEST_COLUMNS}, "reference": row["reference"]} for row in rows]
    ds = ray.data.from_items(requests, override_num_blocks=cfg.engine.blocks(len(rows)))
    return generate_texts(ds, reply_engine(spec, cfg))


def replies_frame(spec: ModelSpec, rows: list[dict[str, Any]], out: Any) -> Any:
    """A DataFrame of ``rows`` plus the engine's ``out`` (``generated_text``, token counts, ``error``), one row
    per scored turn."""
    import pandas as pd

    keep = ["request_id", "generated_text", "num_prompt_tokens", "num_generated_tokens", "error"]
    out = out[[c for c in keep if c in out.columns]].copy()
    if "error" not in out:
        out["error"] = None
    frame = pd.DataFrame([{k: v for k, v in row.items() if k != "messages"} for row in rows])
    frame["context_turns"] = [len(row["messages"]) for row in rows]
    # The dialogue so far and the model's name travel with each reply, so the file is also a human-eval input
    # (hiwar.evaluation.human.items reads `model`, `conversation_id`, `topic`, `context`, `reply`).
    frame["context"] = [json.dumps(row["messages"], ensure_ascii=False) for row in rows]
    frame["model"] = spec.name
    frame = frame.merge(out, on="request_id", how="left", validate="one_to_one")
    missing = frame["generated_text"].isna() & frame["error"].isna()
    frame.loc[missing, "error"] = "no reply came back from the engine"
    frame["error"] = frame["error"].fillna("").astype(str)
    frame["generated_text"] = frame["generated_text"].fillna("").astype(str)
    frame["reply"] = frame["generated_text"].str.strip()
    return frame.sort_values("request_id", kind="stable").reset_index(drop=True)


def similarity_stage(ds: Any, cfg: RavenConfig) -> Any:
    """``ds`` (``request_id``, ``generated_text``, ``reference``) through the encoder actor pool."""

    from hiwar.evaluation.raven.stage import ReplySimilarity

    return ds.map_batches(
        ReplySimilarity,
        fn_constructor_kwargs={
            "encoder": cfg.encoder,
            "pooling": cfg.pooling,
            "backend": cfg.backend,
            "prefix": cfg.text_prefix,
            "max_length": cfg.max_length,
            "trust_remote_code": cfg.encoder_trust_remote_code,
            "num_threads": cfg.threads(),
        },
        batch_format="pyarrow",
        **cfg.ray_args(),
    )


SCORE_COLUMNS = ["request_id", "cosine", "score", "reply_chars"]


def embed_saved(frame: Any, cfg: RavenConfig) -> Any:
    """``SCORE_COLUMNS`` of replies saved before, from the encoder actor pool alone."""
    import ray

    records = frame[["request_id", "generated_text", "reference"]].to_dict("records")  # pandas 3: no from_pandas
    ds = ray.data.from_items(records, override_num_blocks=cfg.blocks(len(records)))
    return similarity_stage(ds, cfg).to_pandas()[SCORE_COLUMNS]


def replies_and_scores(spec: ModelSpec, rows: list[dict[str, Any]], cfg: RavenConfig) -> tuple[Any, Any]:
    """Replies and their similarity scores in one Ray Data job: both actor pools start together, so the encoder
    is loaded while the model replies (two jobs in a row would pay two start-ups one after the other)."""
    out = similarity_stage(reply_dataset(spec, rows, cfg), cfg).to_pandas()
    return replies_frame(spec, rows, out), out[SCORE_COLUMNS]


def replies_key(spec: ModelSpec, rows: list[dict[str, Any]], cfg: RavenConfig, seed: int) -> dict[str, Any]:
    """What the saved replies depend on (their own marker's key)."""
    from hiwar.engine_config import ENGINE_RESOURCE_KEYS
    from hiwar.markers import flatten

    return {
        "model": model_key(spec),
        "engine": flatten(cfg.engine, skip=ENGINE_RESOURCE_KEYS),
        "requests": [r["request_id"] for r in rows],
        "seed": seed,
    }


def replies_saved(spec: ModelSpec, rows: list[dict[str, Any]], cfg: RavenConfig, seed: int, out_dir: Path) -> bool:
    """Whether ``replies.parquet`` holds these replies already (a run killed while embedding them)."""
    from hiwar.markers import check, sidecar

    path = out_dir / "replies.parquet"
    return check(sidecar(path), replies_key(spec, rows, cfg, seed), output=path).done


def run_raven(
    spec: ModelSpec,
    rows: list[dict[str, Any]],
    cfg: RavenConfig,
    seed: int,
    out_dir: Path,
    replies: Callable[[], tuple[Any, Any]] | None = None,
) -> dict:
    """Replies, similarities and the RAVEN summary for ``spec``; writes ``replies.parquet`` and
    ``turns.parquet``.

    ``replies`` gives the replies and their scores when another job computed them (the model's one pool,
    ``hiwar.evaluation.model_worker``); by default this job writes them with the reply engine.
    """
    import pandas as pd

    from hiwar.evaluation.raven.score import reply_languages, summarize_raven
    from hiwar.generation.language import identify_all
    from hiwar.markers import sidecar, write_marker

    out_dir.mkdir(parents=True, exist_ok=True)
    replies_path = out_dir / "replies.parquet"
    scored = None
    if replies_saved(spec, rows, cfg, seed, out_dir):  # after a crash past the replies: embed them
        frame = pd.read_parquet(replies_path)
        log.info("%s: reusing %d saved replies", spec.name, len(frame))
    else:
        frame, scored = replies() if replies else replies_and_scores(spec, rows, cfg)
        with atomic_path(replies_path) as tmp:
            frame.to_parquet(tmp, index=False)
        write_marker(sidecar(replies_path), replies_key(spec, rows, cfg, seed))
    failed = frame[frame["error"] != ""]
    ok = frame[frame["error"] == ""].reset_index(drop=True)
    if ok.empty:
        reason = failed["error"].iloc[0] if len(failed) else "no turns to score"
        raise RuntimeError(f"every reply failed ({len(failed)} turns), e.g.: {reason}")
    if scored is None:
        scored = embed_saved(ok, cfg)
    turns = ok.merge(scored, on="request_id", how="left", validate="one_to_one")
    languages = identify_all(turns["reply"].tolist())
    turns["reply_language"] = [d.language for d in languages]
    turns["reply_language_confidence"] = [d.confidence for d in languages]
    with atomic_path(out_dir / "turns.parquet") as tmp:
        turns.to_parquet(tmp, index=False)
    summary = summarize_raven(
        turns["score"].to_numpy(),
        turns["cosine"].to_numpy(),
        turns["conversation_id"].to_numpy(),
        turns["topic"].to_numpy(),
        cfg.bootstrap_samples,
        seed,
    )
    summary["failed_turns"] = int(len(failed))
    summary["empty_replies"] = int((turns["generated_text"].str.strip() == "").sum())
    summary["reply_chars_mean"] = float(turns["reply_chars"].mean())
    summary.update(reply_languages(turns["reply"].tolist(), languages))
    if "num_generated_tokens" in turns:
        summary["reply_tokens_mean"] = float(pd.to_numeric(turns["num_generated_tokens"]).mean())
    log.info(
        "%s: RAVEN %.4f [%.4f, %.4f] over %d turns",
        spec.name,
        summary["raven"],
        summary["ci_low"],
        summary["ci_high"],
        summary["turns"],
    )
    return summary
