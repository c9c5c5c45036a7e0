"""One judge job: items -> judge prompts -> engine (Ray Data) -> strict parse, in rounds of retries, resumable.

Items are sorted by id and cut into work shards of ``shard_size`` (:mod:`hiwar.work_shards`, as generation's).
Round 1 sends every item of every unfinished shard; round k sends again only the items whose judgment was
malformed, with a new per-item seed (and, when the judge is greedy, ``retry_temperature``), up to ``max_attempts``
rounds. A shard is written (atomically) as soon as each of its items is judged or has used its last attempt (the
rounds, not generation's one answer per row, decide that), so a killed job loses only unfinished shards, and a rerun
redoes exactly those, with the same seeds. Each round is one Ray Data job (with vLLM, one engine start).

The work folder is named after a fingerprint of everything that decides the judgments (judge model, sampling,
prompt, rubric, items, seed), so a changed config never mixes with old judgments and an old one is reused as is.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiwar.errors import ConfigError, JobFailed
from hiwar.evaluation.examples import stable_seed
from hiwar.judge.config import JudgeConfig
from hiwar.judge.items import ITEM_FIELDS
from hiwar.judge.parse import reason_code
from hiwar.judge.rubric import Rubric, pairwise_schema, pointwise_schema
from hiwar.work_shards import cut, finished, read_shards, shard_path, unfinished, write_shard

log = logging.getLogger(__name__)

# Keys whose change alters a judgment (not the resources that run it).
FINGERPRINT_KEYS = (
    "engine",
    "model",
    "trust_remote_code",
    "sampling",
    "dtype",
    "max_model_len",
    "prompt_format",
    "jais_language",
    "prompt_version",
    "language",
    "structured_output",
    "max_attempts",
    "retry_temperature",
    "rationale_max_chars",
    "shard_size",
)
RESULT_EXTRA = ("turn", "first_model", "second_model", "pair", "order")


@dataclass
class JobStats:
    """What this invocation did (resumed shards did nothing)."""

    items: int = 0
    shards: int = 0
    shards_skipped: int = 0
    requests: int = 0
    generated_tokens: int = 0
    seconds: float = 0.0
    rounds: list[int] = field(default_factory=list)  # requests per round

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with throughput."""
        secs = max(self.seconds, 1e-9)
        return {
            **self.__dict__,
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(self.requests / secs, 3) if self.requests else 0.0,
            "generated_tokens_per_s": round(self.generated_tokens / secs, 2) if self.requests else 0.0,
        }


def work_fingerprint(cfg: JudgeConfig, rubric: Rubric, items: list[dict[str, Any]], seed: int) -> str:
    """The key of everything that decides which judgment each item gets, as a digest (:mod:`hiwar.markers`' rule):
    the work folder is named by it, so a changed key never reuses a shard judged under another one."""
    from hiwar.markers import digest

    # structured_output as what it does on this engine (auto and on are the same requests on vllm).
    data = {**cfg.model_dump(mode="json", include=set(FINGERPRINT_KEYS)), "structured_output": cfg.guided}
    # The items' whole content, not only their ids: a model retrained in place writes new replies under old ids.
    items_key = digest(sorted(items, key=lambda i: i["item_id"]))
    return digest({**data, "rubric": rubric.to_dict(), "seed": seed, "items": items_key})


def check_judge(cfg: JudgeConfig, key: str) -> JudgeConfig:
    """The judge config as it will run (vllm falls back to transformers for models vLLM cannot serve), checked
    on the driver before Ray starts.

    Raises:
        HiwarError: no model, a model that cannot run on the engine, or a missing engine package (naming ``key``).
    """
    from hiwar.generation.engines import runnable_engine

    if not cfg.model:
        raise ConfigError(f"{key}.model: the judge needs a model (a hub id, a folder, or the served model's name)")
    cfg = runnable_engine(cfg)
    if cfg.structured_output == "on" and not cfg.guided:
        raise ConfigError(
            f"{key}.structured_output: 'on' needs the vllm or openai engine ({cfg.engine} has no guided decoding); "
            "use auto or off"
        )
    if cfg.engine == "openai":
        from hiwar.generation.engines.openai_engine import check_openai

        check_openai(cfg)
        return cfg
    from hiwar.models.preflight import require_runnable

    require_runnable(cfg.ref(key), cfg.engine, max_model_len=cfg.max_model_len, max_tokens=cfg.sampling.max_tokens)
    if cfg.engine == "vllm":
        from hiwar.errors import require
        from hiwar.generation.engines.vllm_engine import INSTALL

        require("vllm", INSTALL, f"{key}.engine=vllm")
    return cfg


def engine_for_attempt(cfg: JudgeConfig, attempt: int) -> JudgeConfig:
    """The judge's engine config for round ``attempt``: greedy judges retry with ``retry_temperature``.

    vLLM gets compact JSON (no free whitespace between tokens, so a guided judgment cannot run on in blanks); the
    vllm engine itself turns chunked prefill off on CPU (see ``vllm_params.engine_kwargs``). Explicit
    ``engine_kwargs`` win.
    """
    update: dict[str, Any] = {}
    if attempt > 1 and cfg.sampling.temperature == 0:
        update["sampling"] = cfg.sampling.model_copy(update={"temperature": cfg.retry_temperature})
    if cfg.engine == "vllm":
        kwargs: dict[str, Any] = {}
        if cfg.guided:
            kwargs["structured_outputs_config"] = {"backend": "xgrammar", "disable_any_whitespace": True}
        update["engine_kwargs"] = {**kwargs, **cfg.engine_kwargs}
    return cfg.model_copy(update=update) if update else cfg


class RequestBuilder:
    """Item and attempt -> the engine's request row (messages, per-attempt seed, and the judgment's JSON schema
    when ``structured_output`` is on for the engine: vLLM guides decoding by it, the openai engine sends it as
    ``response_format``)."""

    def __init__(self, cfg: JudgeConfig, rubric: Rubric, seed: int, key: str) -> None:
        from hiwar.judge.prompt import load_judge_prompt

        self.prompt = load_judge_prompt(cfg.prompt_version, cfg.language, key)
        self.rubric, self.seed = rubric, seed
        self.schemas: dict[str, tuple[str, str]] = {}  # kind -> (schema name, schema as JSON text)
        if cfg.guided:
            point = ("judgment", json.dumps(pointwise_schema(rubric, cfg.rationale_max_chars), ensure_ascii=False))
            pair = ("verdict", json.dumps(pairwise_schema(cfg.rationale_max_chars), ensure_ascii=False))
            self.schemas = {"reply": point, "conversation": point, "pairwise": pair}

    def __call__(self, item: dict[str, Any], attempt: int, shard: int) -> dict[str, Any]:
        row = {
            "request_id": f"{item['item_id']}@{attempt}",
            "item_id": item["item_id"],
            "kind": item["kind"],
            "attempt": attempt,
            "shard": shard,
            "seed": stable_seed(self.seed, item["item_id"], attempt),
            "messages": self.prompt.messages(item["kind"], self.rubric, item),
        }
        if self.schemas:
            row["json_schema_name"], row["json_schema"] = self.schemas[item["kind"]]
        return row


def final_row(item: dict[str, Any], attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """An item's result: its last attempt's judgment, or, when every attempt failed, kept aside with the reasons."""
    last = attempts[-1]
    ok = not last["reason"]
    return {
        **{k: item.get(k, "") for k in ITEM_FIELDS},
        **{k: str(item.get(k, "")) for k in RESULT_EXTRA},
        "status": "ok" if ok else "kept_aside",
        "attempts": len(attempts),
        "seed": int(last["seed"]),
        "scores_json": last["scores_json"],
        "rationales_json": last["rationales_json"],
        "winner": last["winner"],
        "rationale": last["rationale"],
        "reason": last["reason"],
        "reasons": [a["reason"] for a in attempts if a["reason"]],
        "raw_text": last["generated_text"],
        "num_prompt_tokens": int(last["num_prompt_tokens"] or 0),
        "num_generated_tokens": int(sum(int(a["num_generated_tokens"] or 0) for a in attempts)),
    }


class Rounds:
    """The retry rounds over the unfinished shards; writes each shard when its last item is settled."""

    def __init__(self, items: list[list[dict[str, Any]]], shards: list[int], folder: Path, max_attempts: int) -> None:
        self.items = {item["item_id"]: (item, k) for k, group in zip(shards, items, strict=True) for item in group}
        self.groups = dict(zip(shards, items, strict=True))
        self.attempts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.open = Counter({k: len(group) for k, group in zip(shards, items, strict=True)})
        self.folder, self.max_attempts = folder, max_attempts
        self.reasons: Counter[str] = Counter()

    def pending(self, attempt: int) -> list[tuple[dict[str, Any], int]]:
        """Items that still need a judgment in round ``attempt``."""
        return [
            (item, k)
            for item_id, (item, k) in self.items.items()
            if len(self.attempts[item_id]) == attempt - 1 and (attempt == 1 or self.attempts[item_id][-1]["reason"])
        ]

    def record(self, row: dict[str, Any]) -> None:
        """One judged attempt; a settled item closes its shard's count, and a closed shard is written."""
        tries = self.attempts[row["item_id"]]
        tries.append(row)
        if row["reason"]:
            self.reasons[reason_code(row["reason"])] += 1
        if row["reason"] and len(tries) < self.max_attempts:
            return
        shard = self.items[row["item_id"]][1]
        self.open[shard] -= 1
        if self.open[shard] == 0:
            group = [final_row(it, self.attempts[it["item_id"]]) for it in self.groups[shard]]
            write_shard(group, shard_path(self.folder / "shards", shard), "item_id")
            log.info("judge shard %05d done (%d items)", shard, len(group))


def run_round(
    requests: list[dict[str, Any]], cfg: JudgeConfig, rubric: Rubric, rounds: Rounds, stats: JobStats
) -> None:
    """Send one round's requests through the engine and the parse stage; record every answer."""
    import ray.data

    from hiwar.generation.engines import generate_texts
    from hiwar.judge.parse_stage import parse_batch

    # Blocks for every engine replica (ActorResources.blocks), so each gets work even in a small retry round.
    ds = generate_texts(ray.data.from_items(requests, override_num_blocks=cfg.blocks(len(requests))), cfg)
    ds = ds.map_batches(
        parse_batch,
        batch_format="pyarrow",
        batch_size=None,
        num_cpus=1,  # as generation's parse step: one whole CPU, not several fractional worker start-ups
        fn_kwargs={"rubric": rubric.to_dict(), "max_tokens": cfg.sampling.max_tokens},
    )
    for batch in ds.iter_batches(batch_format="pyarrow", batch_size=None):
        for row in batch.to_pylist():
            stats.requests += 1
            stats.generated_tokens += int(row["num_generated_tokens"] or 0)
            rounds.record(row)


def judge_items(
    items: list[dict[str, Any]], cfg: JudgeConfig, rubric: Rubric, work: Path, seed: int, cluster: Any, key: str
) -> tuple[list[dict[str, Any]], JobStats]:
    """Judge every item (or reuse the finished shards of an earlier run); returns one result per item.

    Args:
        items: what to judge (see :mod:`hiwar.judge.items`); ``item_id`` unique.
        cfg: the judge. rubric: criteria and scale. seed: the base of the per-item seeds.
        work: the work folder (a subfolder per fingerprint). cluster: where Ray runs. key: the config key (messages).

    Raises:
        HiwarError: the judge cannot run (before Ray starts). JobFailed: the Ray job itself failed.
    """
    folder = work / work_fingerprint(cfg, rubric, items, seed)
    groups = cut(sorted(items, key=lambda i: i["item_id"]), cfg.shard_size)
    todo = unfinished(folder / "shards", len(groups))
    stats = JobStats(items=len(items), shards_skipped=len(groups) - len(todo))
    if not todo:
        return read_shards(folder / "shards", "item_id"), stats
    from hiwar.lineage import write_json

    cfg = check_judge(cfg, key)
    write_json(folder / "plan.json", {"key": key, "items": len(items), "shards": len(groups), "seed": seed})
    rounds = Rounds([groups[k] for k in todo], todo, folder, cfg.max_attempts)
    build = RequestBuilder(cfg, rubric, seed, key)
    log.info("judge: %d of %d shards to judge (%d items)", len(todo), len(groups), sum(len(groups[k]) for k in todo))
    _run_rounds(rounds, build, cfg, rubric, stats, cluster, folder)
    stats.shards = len(todo)
    if rounds.reasons:
        log.info("judge: failed attempts by reason: %s", dict(rounds.reasons.most_common()))
    return read_shards(folder / "shards", "item_id"), stats


def _run_rounds(
    rounds: Rounds, build: RequestBuilder, cfg: JudgeConfig, rubric: Rubric, stats: JobStats, cluster: Any, folder: Path
) -> None:
    from ray.exceptions import RayError

    from hiwar.cluster.session import connect, shutdown
    from hiwar.errors import describe_error

    session = connect(cluster, warm=cfg.warm_actors())
    start = time.perf_counter()
    try:
        for attempt in range(1, cfg.max_attempts + 1):
            requests = [build(item, attempt, k) for item, k in rounds.pending(attempt)]
            if not requests:
                break
            stats.rounds.append(len(requests))
            log.info("judge round %d: %d request(s)", attempt, len(requests))
            run_round(requests, engine_for_attempt(cfg, attempt), rubric, rounds, stats)
    except RayError as err:
        log.error("%s", err)
        done = len(finished(folder / "shards"))
        raise JobFailed(
            f"judge: the Ray Data job failed: {describe_error(err)}; {done} finished shard(s) in {folder} are kept: "
            "fix the cause and rerun the same command to judge the rest"
        ) from err
    finally:
        stats.seconds = time.perf_counter() - start
        shutdown(session)
    unsettled = [k for k, n in rounds.open.items() if n]
    if unsettled:  # every item is settled after max_attempts rounds, so this would be a bug
        raise RuntimeError(f"judge shards {unsettled} did not settle")
