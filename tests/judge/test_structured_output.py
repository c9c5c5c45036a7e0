"""``structured_output``: which engines get the judgment's JSON schema, the requests that carry it (vLLM's row schema,
the openai engine's ``response_format``), and the reason given when a server refuses it (fast units)."""

from __future__ import annotations

import pytest

from hiwar.config import load_config
from hiwar.errors import ConfigError
from hiwar.generation.engines.common import engine_fields
from hiwar.generation.engines.openai_engine import OpenAIPreprocess
from hiwar.judge import parse
from hiwar.judge.job import RequestBuilder, check_judge
from hiwar.judge.rubric import Rubric, pairwise_schema, pointwise_schema

ITEM = {"item_id": "m::c1#3", "kind": "reply", "context": [{"role": "user", "content": "سؤال"}], "reply": "جواب"}
PAIR = {**ITEM, "item_id": "pair", "kind": "pairwise", "reply_a": "أ", "reply_b": "ب"}


def judge(*overrides: str):
    return load_config(overrides=["judge.model=judge-model", *overrides]).judge


@pytest.mark.parametrize(
    ("engine", "value", "guided"),
    [
        ("vllm", "auto", True),
        ("openai", "auto", True),
        ("transformers", "auto", False),
        ("openai", "off", False),
        ("openai", "false", False),  # YAML booleans (the key's older form; YAML reads on/off as them too)
        ("vllm", "true", True),
    ],
)
def test_structured_output_per_engine(engine, value, guided):
    cfg = judge(f"judge.engine={engine}", f"judge.structured_output={value}")
    assert cfg.guided is guided and cfg.structured_output in ("auto", "on", "off")


def test_structured_output_on_needs_an_engine_that_takes_a_schema():
    with pytest.raises(ConfigError, match="judge.structured_output: 'on' needs the vllm or openai engine"):
        check_judge(judge("judge.engine=transformers", "judge.structured_output=on"), "judge")
    with pytest.raises(ConfigError, match="judge.structured_output"):
        load_config(overrides=["judge.structured_output=maybe"])


def test_openai_requests_carry_the_judgment_schema_as_response_format():
    cfg = judge("judge.engine=openai", "judge.base_url=http://127.0.0.1:9/v1", "judge.rationale_max_chars=120")
    rubric = Rubric.from_human_eval(load_config().human_eval)
    build = RequestBuilder(cfg, rubric, 0, "judge")
    send = OpenAIPreprocess(engine_fields(cfg), chat=True)
    point = send(build(ITEM, 1, 0))["payload"]["response_format"]
    assert point == {
        "type": "json_schema",
        "json_schema": {"name": "judgment", "schema": pointwise_schema(rubric, 120), "strict": True},
    }
    pair = send(build(PAIR, 1, 0))["payload"]["response_format"]["json_schema"]
    assert pair["schema"] == pairwise_schema(120) and pair["name"] == "verdict"
    # A generation row (no schema) asks for nothing; a response_format in engine_kwargs wins over the row's.
    generation_row = {"request_id": "g", "seed": 1, "messages": ITEM["context"]}
    assert "response_format" not in send(generation_row)["payload"]
    fixed = cfg.model_copy(update={"engine_kwargs": {"response_format": {"type": "json_object"}}})
    payload = OpenAIPreprocess(engine_fields(fixed), chat=True)(build(ITEM, 1, 0))["payload"]
    assert payload["response_format"] == {"type": "json_object"}
    off = cfg.model_copy(update={"structured_output": "off"})
    assert "response_format" not in send(RequestBuilder(off, rubric, 0, "judge")(ITEM, 1, 0))["payload"]


def test_a_refused_schema_says_so_in_the_reason():
    body = 'HTTP 400 Bad Request: {"error": {"message": "response_format is not supported"}}'
    said = parse.request_error(body, guided=True)
    assert said.startswith("the server rejected response_format") and "structured_output: off" in said
    assert said.endswith(body)  # the server's own words are kept
    assert parse.request_error(body, guided=False) == body  # not the judge's schema: nothing to say
    assert parse.request_error("HTTP 400 Bad Request: max_tokens too large", guided=True).startswith("HTTP 400")
    rubric = Rubric.from_human_eval(load_config().human_eval)
    assert parse.parse_judgment("reply", "", said, False, rubric).reason == f"request_error: {said}"
