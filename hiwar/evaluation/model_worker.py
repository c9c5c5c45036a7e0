"""One actor pool per model: :class:`ModelWorker` loads the model under test and its tokenizer once and serves
both kinds of evaluation rows, perplexity rows (scored by :class:`PerplexityScorer`'s batch logic) and RAVEN reply
rows (written by :class:`HFGenerator`'s batch logic). Reply rows then go through the encoder pool
(:class:`ReplySimilarity`), which encodes only non-empty replies, so perplexity rows (no reply) pass it unencoded.

Used when RAVEN's reply engine is ``transformers`` and both metrics of a model need computing; with vllm or openai
the engine owns its copy of the model and the metrics run as separate jobs (``model_evaluation.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hiwar.evaluation.config import MODELS_WHERE, PerplexityConfig, RavenConfig
from hiwar.models.spec import ModelSpec

if TYPE_CHECKING:
    import pyarrow as pa

    from hiwar.models.loader import ModelRef

PERPLEXITY, REPLY = "perplexity", "reply"

# Every row carries every column (empty or zero for the other kind), so blocks of either kind concatenate without
# Arrow promoting or merging types (the pitfall described in openai_engine.shape_answer's docstring). A reply
# row's dialogue travels as JSON text for the same reason: a nested struct column would be absent on
# perplexity rows.
INPUT_COLUMNS = {"kind": "", "id": "", "topic": "", "messages_json": "", "request_id": "", "seed": 0, "reference": ""}
PERPLEXITY_COLUMNS = ("id", "topic", "nll", "n_tokens", "n_input_tokens", "n_bytes", "n_chars", "note")
REPLY_COLUMNS = ("request_id", "reference", "generated_text", "num_prompt_tokens", "num_generated_tokens", "error")


def output_schema() -> pa.Schema:
    """The worker's output columns: the kind, then :class:`PerplexityScorer`'s and :class:`HFGenerator`'s."""
    import pyarrow as pa

    types = {"nll": pa.float64(), "note": pa.string(), "reference": pa.string(), "error": pa.string()}
    types.update({c: pa.int64() for c in ("n_tokens", "n_input_tokens", "n_bytes", "n_chars")})
    types.update({c: pa.int64() for c in ("num_prompt_tokens", "num_generated_tokens")})
    names = ["kind", *PERPLEXITY_COLUMNS, *REPLY_COLUMNS]
    return pa.schema([(name, types.get(name, pa.string())) for name in names])


class ModelWorker:
    """Actor UDF: loads the model and tokenizer once (:mod:`hiwar.models.loader`); ``__call__`` maps a pyarrow
    batch of both kinds of rows (``kind``) to :func:`output_schema` rows, each kind through its own batch logic."""

    def __init__(
        self, model: ModelRef, perplexity: dict[str, Any], engine: dict[str, Any], dtype: str, num_threads: float
    ) -> None:
        from hiwar.evaluation.perplexity.stage import PerplexityScorer
        from hiwar.generation.engines.hf_engine import HFGenerator
        from hiwar.models.loader import load_for_inference, load_tokenizer

        tokenizer = load_tokenizer(model)
        lm, device = load_for_inference(model, dtype, num_threads)
        self.scorer = PerplexityScorer.on_loaded(lm, tokenizer, device, **perplexity)
        self.generator = HFGenerator.on_loaded(engine, lm, tokenizer, device)

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        kinds = batch.column("kind").to_pylist()
        parts = []
        for kind, run in ((PERPLEXITY, self._score), (REPLY, self._reply)):
            # Typed indices: an empty Python list is a null-typed array, which take() rejects.
            rows = batch.take(pa.array([i for i, k in enumerate(kinds) if k == kind], pa.int64()))
            if rows.num_rows:
                parts.append(_uniform(kind, run(rows)))
        return pa.concat_tables(parts) if parts else output_schema().empty_table()

    def _score(self, rows: pa.Table) -> dict[str, Any]:
        """Perplexity rows as :class:`PerplexityScorer` takes them (numpy columns)."""
        return self.scorer({c: rows.column(c).to_numpy(zero_copy_only=False) for c in ("id", "topic", "messages_json")})

    def _reply(self, rows: pa.Table) -> dict[str, Any]:
        """Reply rows as :class:`HFGenerator` takes them (``request_id``, ``seed``, ``messages``)."""
        import pyarrow as pa

        requests = [
            {"request_id": r["request_id"], "seed": r["seed"], "messages": json.loads(r["messages_json"])}
            for r in rows.select(["request_id", "seed", "messages_json"]).to_pylist()
        ]
        out = self.generator(pa.Table.from_pylist(requests))
        return {**out.to_pydict(), "reference": rows.column("reference").to_pylist()}


def _uniform(kind: str, columns: dict[str, Any]) -> pa.Table:
    """``columns`` of one kind as an :func:`output_schema` table (the other kind's columns empty or zero)."""
    import pyarrow as pa

    schema = output_schema()
    n = len(next(iter(columns.values())))
    filled = {}
    for field in schema:
        if field.name == "kind":
            filled["kind"] = [kind] * n
        elif field.name in columns:
            filled[field.name] = list(columns[field.name])
        else:
            filled[field.name] = [""] * n if pa.types.is_string(field.type) else [0] * n
    return pa.Table.from_pydict(filled, schema=schema)


@dataclass
class PoolOutputs:
    """What one model's pool wrote: perplexity columns (as ``score_conversations`` returns them) and RAVEN's
    replies with their scores (as ``replies_and_scores`` returns them)."""

    perplexity: dict[str, Any]
    replies: tuple[Any, Any]


def input_rows(ppl_rows: list[dict[str, Any]], reply_rows: list[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Both kinds of rows with :data:`INPUT_COLUMNS` each."""
    ppl = [
        {**INPUT_COLUMNS, "kind": PERPLEXITY, "id": r["id"], "topic": r["topic"], "messages_json": r["messages_json"]}
        for r in ppl_rows
    ]
    replies = [
        {
            **INPUT_COLUMNS,
            "kind": REPLY,
            "request_id": r["request_id"],
            "seed": int(r["seed"]),
            "messages_json": json.dumps(r["messages"], ensure_ascii=False),
            "reference": r["reference"],
        }
        for r in reply_rows
    ]
    return ppl, replies


def run_model_pool(
    spec: ModelSpec,
    ppl_rows: list[dict[str, Any]],
    ppl: PerplexityConfig,
    reply_rows: list[dict[str, Any]],
    raven: RavenConfig,
) -> PoolOutputs:
    """Both metrics' model work for ``spec`` in one Ray Data job: one :class:`ModelWorker` pool (the reply
    engine's resources, ``raven.engine``), then the encoder pool. Each kind keeps the blocks its own job would
    have (:meth:`~hiwar.resources.ActorResources.blocks`), so Ray batches its rows as that job would."""
    import ray

    from hiwar.evaluation.raven.job import SCORE_COLUMNS, replies_frame, reply_engine, similarity_stage
    from hiwar.generation.engines import prepared_engine
    from hiwar.generation.engines.common import check_model, engine_fields

    engine = prepared_engine(reply_engine(spec, raven))
    check_model(engine)
    ppl_in, reply_in = input_rows(ppl_rows, reply_rows)
    # Replies first: they are the longer work, so the scorer's rows fill in behind them.
    ds = ray.data.from_items(reply_in, override_num_blocks=engine.blocks(len(reply_in))).union(
        ray.data.from_items(ppl_in, override_num_blocks=ppl.blocks(len(ppl_in)))
    )
    settings = {"mask": ppl.mask, "window": ppl.window, "stride": ppl.stride}
    worked = ds.map_batches(
        ModelWorker,
        fn_constructor_kwargs={
            "model": spec.ref(MODELS_WHERE),
            "perplexity": {**settings, "max_tokens_per_batch": ppl.max_tokens_per_batch},
            "engine": engine_fields(engine),
            "dtype": engine.dtype,
            "num_threads": engine.threads(),
        },
        batch_format="pyarrow",
        **engine.ray_args(),
    )
    table = similarity_stage(worked, raven).to_pandas()
    scored = table[table["kind"] == PERPLEXITY]
    out = table[table["kind"] == REPLY].reset_index(drop=True)
    return PoolOutputs(
        perplexity={c: scored[c].to_numpy() for c in PERPLEXITY_COLUMNS},
        replies=(replies_frame(spec, reply_rows, out), out[SCORE_COLUMNS]),
    )
