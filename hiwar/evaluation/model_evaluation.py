"""One model's evaluation: both metrics (perplexity and RAVEN) of one model, each under its own completion marker
(:mod:`hiwar.markers`), with a model that cannot load failing both with the same reason. Both metrics share one
actor pool of the model when they can (:mod:`hiwar.evaluation.model_worker`), else each runs its own job. ``run.py``
resolves the models and runs the jobs of one :class:`ModelEvaluation` per model."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from hiwar.errors import ConfigError, DataError, HiwarError, describe_error
from hiwar.evaluation.config import MODELS_WHERE, RESOURCE_KEYS, EvaluationConfig, PerplexityConfig, model_key
from hiwar.lineage import finite, folder_stamp, write_json
from hiwar.models.spec import ModelSpec

log = logging.getLogger(__name__)

# Private switch for tests: False runs each metric in its own pool, as before one pool per model.
_ONE_POOL = True


def run_metric(name: str, out_dir: Path, key: dict[str, Any], compute: Callable[[], dict]) -> dict[str, Any]:
    """Run one metric for one model unless its marker says it is done; failures become a status, not a
    crash."""
    from hiwar.markers import check, sidecar, write_marker

    summary_path = out_dir / "summary.json"
    verdict = check(sidecar(summary_path), key, output=summary_path)
    if verdict.done:
        log.info("%s: finished before (marker %s), skipping", name, verdict.marker)
        return {"status": "ok", "resumed": True, **json.loads(summary_path.read_text(encoding="utf-8"))}
    if verdict.stale:
        log.info("%s: made with other inputs (%s); computing it again", name, verdict.what_changed())
    try:
        summary = compute()
    except HiwarError as err:
        return _failed(name, out_dir, str(err))
    except Exception as err:  # noqa: BLE001 - one model's failure must not stop the rest
        return _failed(name, out_dir, describe_error(err))
    summary = finite(summary)
    write_json(summary_path, summary)
    write_marker(sidecar(summary_path), key)
    return {"status": "ok", "resumed": False, **summary}


def _failed(name: str, out_dir: Path, reason: str) -> dict[str, Any]:
    log.error("%s failed: %s", name, reason)
    write_json(out_dir / "failed.json", {"status": "failed", "reason": reason})
    return {"status": "failed", "reason": reason}


def resolved_window(spec: ModelSpec, window: int | None) -> int:
    """The sliding window in tokens: the model's context (read from its config), or the configured window,
    which may not exceed it.

    Raises:
        ConfigError: ``evaluation.perplexity.window`` is above the model's context.
    """
    from hiwar.models.loader import context_length, load_config

    context = context_length(load_config(spec.ref(MODELS_WHERE)))
    if window and window > context:
        raise ConfigError(
            f"evaluation.perplexity.window={window}: above {spec.name}'s context of {context} tokens "
            "(leave it unset to use the whole context)"
        )
    return window or context


def preflight_problem(spec: ModelSpec) -> str | None:
    """Why the model cannot be scored (the preflight's first problem), or None."""
    from hiwar.models.preflight import check_model

    problems = check_model(spec.ref(MODELS_WHERE), "transformers").problems
    return problems[0] if problems else None


class ModelEvaluation:
    """Both metrics of one model; a model that cannot be loaded fails both with the same reason."""

    def __init__(
        self,
        spec: ModelSpec,
        convs: list[Any],
        ev: EvaluationConfig,
        seed: int,
        data: dict[str, Any],
        model_dir: Path,
    ) -> None:
        self.spec, self.convs, self.ev, self.data = spec, convs, ev, data
        self.seed = ev.raven.seed if ev.raven.seed is not None else seed
        self.model_dir = model_dir  # RunLayout.evaluation_model
        self.base_key = {
            "model": model_key(spec),
            "weights": folder_stamp(spec.model),
            "dataset": data["fingerprint"],
            "split": data["split"],
        }
        # Checked here, on the driver before Ray starts: a model that cannot load fails both its metrics with
        # the reason, without an actor ever starting for it.
        self.load_problem = preflight_problem(spec)

    METRICS = ("perplexity", "raven")

    def jobs(self) -> dict[tuple[str, ...], Callable[[], dict[str, dict[str, Any]]]]:
        """The model's jobs, by the metrics each computes: both metrics in one job over one actor pool when
        :meth:`one_pool` says so, else one job per metric."""
        if self.one_pool():
            return {self.METRICS: self.run_together}
        return {(m,): partial(self.run_apart, m) for m in self.METRICS}

    def one_pool(self) -> bool:
        """Whether both metrics need the model now and can share one pool of it: RAVEN replies through the
        ``transformers`` engine (vLLM and openai hold their own copy of the model) at perplexity's precision,
        neither metric nor RAVEN's replies finished before, and the model loads."""
        from hiwar.evaluation.raven.job import replies_saved, reply_engine
        from hiwar.generation.engines import runnable_engine

        ppl, rv = self.ev.perplexity, self.ev.raven
        if not (_ONE_POOL and ppl.enabled and rv.enabled) or self.load_problem:
            return False
        if any(self.finished(metric) for metric in self.METRICS):
            return False
        engine = runnable_engine(reply_engine(self.spec, rv))
        if engine.engine != "transformers" or engine.dtype != ppl.dtype:
            return False
        try:
            rows = self.raven_inputs()[0]
        except HiwarError:  # no turn to score: RAVEN says so alone
            return False
        return not replies_saved(self.spec, rows, rv, self.seed, self.model_dir / "raven")

    def finished(self, metric: str) -> bool:
        """Whether ``metric``'s result is written already for the same inputs (its marker says so)."""
        from hiwar.markers import check, sidecar

        key = self.perplexity_key() if metric == "perplexity" else self.raven_key()
        summary = self.model_dir / metric / "summary.json"
        return check(sidecar(summary), key, output=summary).done

    def warm_actors(self, metrics: tuple[str, ...]) -> int:
        """Model actors that the job computing ``metrics`` starts at once: its transformers pool (the reply
        engine's and the encoder's when RAVEN is among them, else perplexity's), for warm workers asked for ahead;
        none when the metrics are off or finished, or the model cannot load."""
        from hiwar.evaluation.raven.job import reply_engine
        from hiwar.generation.engines import runnable_engine

        todo = [m for m in metrics if getattr(self.ev, m).enabled and not self.finished(m)]
        if not todo or self.load_problem:
            return 0
        if "raven" in todo:  # the reply engine's pool and, in the same Ray Data job, the encoder's
            engine = runnable_engine(reply_engine(self.spec, self.ev.raven))
            return engine.warm_actors() + self.ev.raven.actors
        return self.ev.perplexity.actors

    def run_apart(self, metric: str, **job: Callable[[], Any]) -> dict[str, dict[str, Any]]:
        """One metric's result (with its status), from its marker when it is finished already; ``job`` hands
        the metric the work of a shared pool (``scores`` or ``replies``)."""
        if not getattr(self.ev, metric).enabled:
            return {metric: {"status": "disabled"}}
        compute, key = (
            (partial(self.perplexity, **job), self.perplexity_key())
            if metric == "perplexity"
            else (partial(self.raven, **job), self.raven_key())
        )
        return {metric: run_metric(f"{self.spec.name}/{metric}", self.model_dir / metric, key, compute)}

    def run_each_apart(self) -> dict[str, dict[str, Any]]:
        """Every metric in its own job, one after the other."""
        return {m: r for metric in self.METRICS for m, r in self.run_apart(metric).items()}

    def run_together(self) -> dict[str, dict[str, Any]]:
        """Both metrics from one Ray Data job whose one actor pool loads the model once
        (:mod:`hiwar.evaluation.model_worker`). When that job fails, each metric runs in its own pool, so one
        metric's failure (the encoder's, say) never costs the other its result."""
        from hiwar.evaluation.model_worker import run_model_pool

        try:
            ppl_rows, _, ppl_cfg = self.perplexity_inputs()
            reply_rows, _ = self.raven_inputs()
        except HiwarError:  # nothing to score for one metric: each says why in its own result
            return self.run_each_apart()
        try:
            pool = run_model_pool(self.spec, ppl_rows, ppl_cfg, reply_rows, self.ev.raven)
        except Exception as err:  # noqa: BLE001 - retried apart, where each metric fails on its own
            reason = describe_error(err)
            log.warning("%s: the one pool failed (%s); each metric in its own pool", self.spec.name, reason)
            return self.run_each_apart()
        return {
            **self.run_apart("perplexity", scores=lambda: pool.perplexity),
            **self.run_apart("raven", replies=lambda: pool.replies),
        }

    def result(self, metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """``{name, path, trust_remote_code, perplexity: {...}, raven: {...}}`` with a status per metric."""
        spec = self.spec
        return {"name": spec.name, "path": spec.model, "trust_remote_code": spec.trust_remote_code, **metrics}

    def check_model(self) -> None:
        """Raise (once checked, from cache) when the model cannot be loaded (:mod:`hiwar.models.preflight`)."""
        if self.load_problem:
            raise HiwarError(f"cannot be loaded: {self.load_problem}")

    def perplexity_key(self) -> dict[str, Any]:
        """What the perplexity result depends on."""
        ppl = self.ev.perplexity
        return {
            **self.base_key,
            "mask": ppl.mask,
            "window": ppl.window,
            "stride": ppl.stride,
            "dtype": ppl.dtype,
        }

    def perplexity_inputs(self) -> tuple[list[dict[str, Any]], Any, PerplexityConfig]:
        """The rows to score, the skipped conversations, and the settings with the window resolved.

        Raises:
            HiwarError: the model cannot be loaded. DataError: nothing to score. ConfigError: window too large.
        """
        from hiwar.evaluation.examples import perplexity_rows
        from hiwar.evaluation.perplexity.nll import effective_stride

        rows, skipped = perplexity_rows(self.convs)
        self.check_model()
        if not rows:
            raise DataError("no scorable conversations: " + json.dumps(skipped.to_dict(), ensure_ascii=False))
        ppl = self.ev.perplexity
        window = resolved_window(self.spec, ppl.window)
        return rows, skipped, ppl.model_copy(update={"window": window, "stride": effective_stride(window, ppl.stride)})

    def perplexity(self, scores: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
        """Perplexity, bits per byte and bits per char of the split (``scores``: see ``run_perplexity``)."""
        from hiwar.evaluation.perplexity.job import run_perplexity

        rows, skipped, cfg = self.perplexity_inputs()
        summary = run_perplexity(self.spec, rows, cfg, self.model_dir / "perplexity", scores)
        return {
            **summary,
            "mask": cfg.mask,
            "window": cfg.window,
            "stride": cfg.stride,
            "skipped": skipped.to_dict(),
        }

    def raven_key(self) -> dict[str, Any]:
        """What the RAVEN result depends on (not the pools' sizes or resources)."""
        from hiwar.markers import flatten

        return {**self.base_key, **flatten(self.ev.raven, "raven", skip=RESOURCE_KEYS), "seed": self.seed}

    def raven_inputs(self) -> tuple[list[dict[str, Any]], Any]:
        """The turns to score and the skipped conversations.

        Raises:
            HiwarError: the model cannot be loaded. DataError: no turn to score.
        """
        from hiwar.evaluation.examples import raven_rows

        rv = self.ev.raven
        rows, skipped = raven_rows(self.convs, rv.turns, rv.max_turns, rv.max_conversations, self.seed)
        self.check_model()
        if not rows:
            raise DataError("no assistant turns to score: " + json.dumps(skipped.to_dict(), ensure_ascii=False))
        return rows, skipped

    def raven(self, replies: Callable[[], tuple[Any, Any]] | None = None) -> dict[str, Any]:
        """RAVEN with its interval and per-topic values (``replies``: see ``run_raven``)."""
        from hiwar.evaluation.raven.job import run_raven

        rv = self.ev.raven
        rows, skipped = self.raven_inputs()
        summary = run_raven(self.spec, rows, rv, self.seed, self.model_dir / "raven", replies)
        return {**summary, "encoder": rv.encoder, "pooling": rv.pooling, "skipped": skipped.to_dict()}
