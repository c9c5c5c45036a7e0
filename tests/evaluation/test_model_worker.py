"""ModelWorker without Ray: each kind of row comes out exactly as the metric's own actor writes it, whether a batch
holds one kind or both."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from tests.evaluation.helpers import conversation

DIALOGUES = [
    ("food", "مرحبا، كيف حالك؟", "بخير والحمد لله.", "ما أشهر أكلة في مصر؟", "الكشري طبعا."),
    ("travel", "أريد السفر إلى المغرب.", "فكرة رائعة!", "ما أفضل وقت للزيارة؟", "الربيع أجمل وقت."),
]


@pytest.fixture(scope="module")
def setup(tiny_gpt2: Path) -> dict:
    from hiwar.evaluation.config import RavenConfig
    from hiwar.evaluation.examples import perplexity_rows, raven_rows
    from hiwar.evaluation.model_worker import ModelWorker, input_rows
    from hiwar.evaluation.raven.job import reply_engine
    from hiwar.generation.engines import prepared_engine
    from hiwar.generation.engines.common import engine_fields
    from hiwar.models.spec import ModelSpec

    spec = ModelSpec(model=str(tiny_gpt2))
    convs = [conversation(f"c{i}", topic, *turns) for i, (topic, *turns) in enumerate(DIALOGUES)]
    raven = RavenConfig(engine={"sampling": {"temperature": 0.9, "max_tokens": 6}, "micro_batch_size": 2})
    engine = engine_fields(prepared_engine(reply_engine(spec, raven)))
    ppl = {"mask": "assistant", "window": 128, "stride": 64, "max_tokens_per_batch": 256}
    ppl_rows, reply_rows = perplexity_rows(convs)[0], raven_rows(convs, "all", None, None, 7)[0]
    worker = ModelWorker(spec.ref("evaluation.models"), ppl, engine, "auto", 1)
    ppl_in, reply_in = input_rows(ppl_rows, reply_rows)
    return {
        "spec": spec,
        "engine": engine,
        "ppl": ppl,
        "ppl_rows": ppl_rows,
        "reply_rows": reply_rows,
        "worker": worker,
        "ppl_in": ppl_in,
        "reply_in": reply_in,
    }


def _own_scores(setup: dict) -> dict:
    """What PerplexityScorer's own actor writes for the perplexity rows."""
    import numpy as np

    from hiwar.evaluation.perplexity.stage import PerplexityScorer

    scorer = PerplexityScorer(setup["spec"].ref("evaluation.models"), dtype="auto", num_threads=1, **setup["ppl"])
    batch = {c: np.array([r[c] for r in setup["ppl_rows"]], dtype=object) for c in ("id", "topic", "messages_json")}
    return {k: list(v) for k, v in scorer(batch).items()}


def _own_replies(setup: dict) -> dict:
    """What HFGenerator's own actor writes for the reply rows."""
    from hiwar.generation.engines.hf_engine import HFGenerator

    keys = ("request_id", "seed", "messages", "reference")
    table = pa.Table.from_pylist([{k: r[k] for k in keys} for r in setup["reply_rows"]])
    return HFGenerator(setup["engine"], 1)(table).to_pydict()


def _kind(out: pa.Table, kind: str, columns: tuple[str, ...]) -> dict:
    rows = [r for r in out.to_pylist() if r["kind"] == kind]
    return {c: [r[c] for r in rows] for c in columns}


def test_one_kind_per_batch_and_both_kinds_match_the_metrics_own_actors(setup: dict) -> None:
    from hiwar.evaluation.model_worker import PERPLEXITY, PERPLEXITY_COLUMNS, REPLY, output_schema

    own_scores, own_replies = _own_scores(setup), _own_replies(setup)
    columns = ("request_id", "generated_text", "num_prompt_tokens", "num_generated_tokens", "error", "reference")
    worker = setup["worker"]
    for batch in (setup["ppl_in"], setup["reply_in"], setup["reply_in"] + setup["ppl_in"]):
        out = worker(pa.Table.from_pylist(batch))
        assert out.schema == output_schema() and out.num_rows == len(batch)
        kinds = {r["kind"] for r in batch}
        if PERPLEXITY in kinds:
            assert _kind(out, PERPLEXITY, PERPLEXITY_COLUMNS) == {c: own_scores[c] for c in PERPLEXITY_COLUMNS}
        if REPLY in kinds:
            assert _kind(out, REPLY, columns) == {c: own_replies[c] for c in columns}
    assert all(
        json.loads(r["messages_json"]) == s["messages"]
        for r, s in zip(setup["reply_in"], setup["reply_rows"], strict=True)
    )
