"""The openai engine through Ray Data LLM's HTTP processor against small servers started on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import SecretStr

from hiwar.config import load_config
from hiwar.generation import validate as v
from tests.generation.conftest import run_overrides
from tests.generation.fake_openai import FakeOpenAI
from tests.generation.scripted_openai import Reply, ScriptedOpenAI, chat_body
from tests.generation.teach import BAD_TOPICS, GOOD_TOPICS, RECYCLING, TRANSIT, targets

pytestmark = [pytest.mark.ray]

KEY = "sk-test-3f9a1c0de2b7"


def arabic_names(topic_ids) -> list[str]:
    from hiwar.assets import load_topics

    return [t["ar"] for t in load_topics() if t["id"] in topic_ids]


def test_openai_engine_end_to_end_and_key_stays_secret(ray_local, tmp_path, monkeypatch, caplog):
    from hiwar.generation.run import run_generate

    want = targets()
    answers = {name: want[t] for t in GOOD_TOPICS for name in arabic_names([t])}
    monkeypatch.setenv("HIWAR_TEST_KEY", KEY)
    with FakeOpenAI(KEY, answers, failing=tuple(arabic_names(BAD_TOPICS))) as server:
        config = load_config(
            overrides=run_overrides(
                tmp_path,
                "served-model",
                "generation.engine=openai",
                f"generation.base_url={server.url}",
                "generation.api_key_env=HIWAR_TEST_KEY",
                "generation.max_retries=1",
                "generation.sampling.temperature=0.5",
                "generation.sampling.top_k=-1",
            )
        )
        out = run_generate(config)
    stats = json.loads((out / "stats.json").read_text())
    c = stats["counts"]
    assert (c["prompts"], c["accepted"], c["exact_duplicates"], c["request_errors"]) == (4, 2, 1, 1)
    assert stats["rejects_by_reason"][v.REQUEST_FAILED] == 1
    # 4 rows reached the server, the failing one twice (max_retries=1), each with its own row seed.
    assert len(server.requests) == 4 + 1
    from hiwar.generation.grid import build_grid

    seeds = {r.seed for r in build_grid(config.generation.grid, "v1", config.seed)}
    assert {r["seed"] for r in server.requests} == seeds
    assert all(r["model"] == "served-model" and r["temperature"] == 0.5 and "messages" in r for r in server.requests)
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in caplog.text


def test_wrong_key_gives_error_rows_not_a_crash(ray_local, tmp_path, monkeypatch):
    import ray.data

    from hiwar.generation.config import EngineConfig
    from hiwar.generation.engines import generate_texts

    monkeypatch.setenv("HIWAR_TEST_KEY", "wrong")
    with FakeOpenAI(KEY, {}, failing=()) as server:
        cfg = EngineConfig(engine="openai", model="m", base_url=server.url, api_key_env="HIWAR_TEST_KEY")
        rows = [
            {"request_id": "a", "seed": 1, "prompt": "نص"},
            {"request_id": "b", "seed": 2, "prompt": "نص"},
        ]
        out = sorted(generate_texts(ray.data.from_items(rows), cfg).take_all(), key=lambda r: r["request_id"])
    assert [r["request_id"] for r in out] == ["a", "b"]
    assert all(r["error"].startswith("HTTP 401") and "bad key" in r["error"] for r in out)
    assert all(r["generated_text"] == "" and r["num_generated_tokens"] == 0 for r in out)
    assert all(r["prompt"] == "نص" and r["seed"] in (1, 2) for r in out)


GARBAGE = "نص عشوائي بلا أدوار ولا حوار"
USAGE = {"prompt_tokens": 12, "completion_tokens": 50}


def scripted_run(tmp_path, topics, replies, *extra):
    """``hiwar generate`` over ``topics`` x EG against a server answering the i-th grid row with ``replies[i]``.

    Returns (dataset folder, grid rows, server, stats, rejects by id).
    """
    import pyarrow.parquet as pq

    from hiwar.generation.grid import build_grid
    from hiwar.generation.run import run_generate

    overrides = [f"generation.grid.topics=[{','.join(topics)}]", "generation.grid.countries=[EG]", *extra]
    config = load_config(overrides=run_overrides(tmp_path, "served-model", "generation.engine=openai", *overrides))
    rows = build_grid(config.generation.grid, config.generation.prompt_version, config.seed)
    assert len(rows) == len(replies) and len({r.seed for r in rows}) == len(rows)
    with ScriptedOpenAI({row.seed: reply for row, reply in zip(rows, replies, strict=True)}) as server:
        config = config.model_copy(update={"generation": config.generation.model_copy(update={"base_url": server.url})})
        out = run_generate(config)
    stats = json.loads((out / "stats.json").read_text())
    rejects = {r["id"]: r for r in pq.read_table(out / "rejects").to_pylist()}
    return out, rows, server, stats, rejects


def test_mixed_answers_in_one_job_keep_every_valid_text(ray_local, tmp_path):
    """Issue 16: two transcripts, garbage, an HTTP 500 and an HTTP 400. batch_size=4 puts the three answers and
    the 500 in one Ray batch and the 400 in the next; Ray concatenated the two batches' differently shaped
    answers and the three answered rows came back with an empty text (and 50 tokens)."""
    from hiwar.generation.parse import parse_transcript
    from hiwar.records_io import read_records

    replies = [
        Reply(200, chat_body(TRANSIT)),
        Reply(200, chat_body(RECYCLING)),
        Reply(200, chat_body(GARBAGE)),
        Reply(500, {"error": {"message": "internal boom"}}),
        Reply(400, {"error": {"message": "max_tokens is too large", "type": "BadRequestError", "code": 400}}),
    ]
    topics = [*GOOD_TOPICS[:2], "arabic_poetry", "sleep_habits", "traffic_rules"]
    out, rows, server, stats, rejects = scripted_run(
        tmp_path, topics, replies, "generation.batch_size=4", "generation.shard_size=8", "generation.max_retries=1"
    )
    c = stats["counts"]
    assert (c["prompts"], c["accepted"], c["rejected"], c["request_errors"]) == (5, 2, 3, 2)
    assert c["accepted"] + c["rejected"] == c["prompts"]
    accepted = {conv.id: conv.messages for conv in read_records(out / "data")}
    assert accepted == {
        rows[0].id: parse_transcript(TRANSIT).messages,
        rows[1].id: parse_transcript(RECYCLING).messages,
    }
    assert set(rejects) == {r.id for r in rows[2:]}
    garbage, http500, http400 = (rejects[r.id] for r in rows[2:])
    assert garbage["raw_text"] == GARBAGE and garbage["error"] == "" and garbage["num_generated_tokens"] == 50
    assert v.NO_ROLE_MARKERS in garbage["reasons"]
    for reject, status, body in ((http500, 500, "internal boom"), (http400, 400, "max_tokens is too large")):
        assert reject["reasons"] == [v.REQUEST_FAILED]
        assert reject["error"].startswith(f"HTTP {status}") and body in reject["error"], reject["error"]
        assert reject["num_generated_tokens"] == 0
    assert "(after 2 tries)" in http500["error"]  # max_retries=1
    assert [server.tries(r.seed) for r in rows] == [1, 1, 1, 2, 1]


# One reply per odd shape, and what the error row must say about it (besides keeping the body).
ODD_SHAPES = {
    "a list": (Reply(200, [1, 2]), "the body is a JSON array"),
    "a string": (Reply(200, "just words"), "the body is a JSON string"),
    "a number": (Reply(200, 42), "the body is a JSON number"),
    "null": (Reply(200, None), "the body is a JSON null"),
    "no choices": (Reply(200, {"id": "x1", "usage": USAGE}), "no choices"),
    "choices an object": (Reply(200, {"choices": {"text": TRANSIT}, "usage": USAGE}), "choices is a JSON object"),
    "choices empty": (Reply(200, {"choices": [], "usage": USAGE}), "no choices"),
    "choice a string": (Reply(200, {"choices": [TRANSIT]}), "choices[0] is a JSON string"),
    "message without content": (
        Reply(200, {"choices": [{"message": {"role": "assistant"}}], "usage": USAGE}),
        "message.content is a JSON null",
    ),
    "content a list": (
        Reply(200, {"choices": [{"message": {"role": "assistant", "content": [TRANSIT]}}], "usage": USAGE}),
        "message.content is a JSON array",
    ),
    "usage a string": (Reply(200, {**chat_body(TRANSIT), "usage": "lots"}), "usage is a JSON string"),
    "usage counts as text": (
        Reply(200, {**chat_body(TRANSIT), "usage": {"completion_tokens": "50"}}),
        "usage.completion_tokens",
    ),
    "error object with 200": (Reply(200, {"error": {"message": "overloaded"}}), "the server answered an error"),
    "not JSON": (Reply(200, raw=b"<html>oops</html>", content_type="text/html"), "HTTP 200: not a JSON answer"),
    "500 not JSON": (Reply(500, raw=b"upstream crashed", content_type="text/plain"), "HTTP 500"),
    "400 JSON": (Reply(400, {"error": {"message": "bad field"}}), "HTTP 400"),
    "404 empty": (Reply(404), "HTTP 404"),
}


def test_oddly_shaped_answers_become_rejects_not_a_crash(ray_local, tmp_path):
    from hiwar.assets import load_topics

    topics = [t["id"] for t in load_topics()][: len(ODD_SHAPES)]
    replies = [reply for reply, _ in ODD_SHAPES.values()]
    _, rows, _, stats, rejects = scripted_run(
        tmp_path, topics, replies, "generation.batch_size=3", "generation.shard_size=6", "generation.max_retries=0"
    )
    c = stats["counts"]
    assert (c["prompts"], c["accepted"], c["rejected"]) == (len(ODD_SHAPES), 0, len(ODD_SHAPES))
    for row, (name, (reply, says)) in zip(rows, ODD_SHAPES.items(), strict=True):
        reject = rejects[row.id]
        assert reject["reasons"] == [v.REQUEST_FAILED], name
        assert says in reject["error"], (name, reject["error"])
        body = reply.encoded().decode()
        assert (body[:30] in reject["error"]) if body else "(empty body)" in reject["error"], (name, reject["error"])
        assert (reject["raw_text"], reject["num_generated_tokens"]) == ("", 0), name


@pytest.mark.parametrize(("name", "reply", "says"), [(k, r, s) for k, (r, s) in ODD_SHAPES.items()])
def test_shape_answer_turns_any_body_into_an_error_row(name, reply, says):
    from hiwar.generation.engines.openai_engine import shape_answer

    out = shape_answer(reply.status, "Reason", reply.encoded())
    assert set(out) == {"generated_text", "num_prompt_tokens", "num_generated_tokens", "error"}
    assert (out["generated_text"], out["num_prompt_tokens"], out["num_generated_tokens"]) == ("", 0, 0)
    assert says in out["error"]
    body = reply.encoded().decode()
    assert out["error"].endswith(body) if body else out["error"].endswith("(empty body)")


def test_shape_answer_reads_chat_and_text_completions():
    from hiwar.generation.engines.openai_engine import shape_answer

    chat = shape_answer(200, "OK", json.dumps(chat_body(TRANSIT)).encode())
    assert chat == {"generated_text": TRANSIT, "num_prompt_tokens": 12, "num_generated_tokens": 50, "error": ""}
    text = {"choices": [{"index": 0, "text": RECYCLING}], "usage": {"prompt_tokens": 3, "completion_tokens": 7}}
    assert shape_answer(201, "Created", json.dumps(text))["generated_text"] == RECYCLING
    no_usage = shape_answer(200, "OK", json.dumps({"choices": [{"text": "نص"}], "error": None}))
    assert no_usage == {"generated_text": "نص", "num_prompt_tokens": 0, "num_generated_tokens": 0, "error": ""}


def test_shape_answer_clips_long_bodies_and_odd_bytes():
    from hiwar.generation.engines.openai_engine import MAX_BODY_CHARS, shape_answer

    long = shape_answer(503, "Service Unavailable", b"x" * 50_000)
    assert long["error"].startswith("HTTP 503 Service Unavailable: xxx")
    assert long["error"].endswith(f"[{50_000 - MAX_BODY_CHARS} more chars]")
    assert len(long["error"]) < MAX_BODY_CHARS + 100
    odd = shape_answer(200, "OK", b"\xff\xfe not utf-8")
    assert odd["error"].startswith("HTTP 200: not a JSON answer") and "not utf-8" in odd["error"]
    for count in (True, -1, 1.5, 2**70):
        bad = shape_answer(200, "OK", json.dumps({**chat_body("نص"), "usage": {"completion_tokens": count}}))
        assert "usage.completion_tokens" in bad["error"] and bad["generated_text"] == ""


def test_error_bodies_never_carry_the_key():
    from hiwar.generation.engines.openai_engine import SafeSession

    async def post_once(url: str) -> dict:
        async with SafeSession(SecretStr(KEY), timeout_s=10, retries=0) as session:
            return await (await session.post(url, data=b"{}")).json()

    echo = Reply(401, {"error": {"message": f"bad key: Bearer {KEY}"}})
    with ScriptedOpenAI({}, default=echo) as server:
        answer = asyncio.run(post_once(server.url + "/chat/completions"))
    assert answer["error"].startswith("HTTP 401") and "Bearer ***" in answer["error"]
    assert KEY not in json.dumps(answer)


def test_finalize_answer_without_a_shaped_answer_is_an_error_row():
    from hiwar.generation.engines.openai_engine import finalize_answer

    for answer in (None, [1], {"choices": []}):
        out = finalize_answer({"__hiwar_input": {"id": "a", "seed": 1}, "http_response": answer})
        assert (out["id"], out["generated_text"], out["num_generated_tokens"]) == ("a", "", 0)
        assert out["error"].startswith("no answer was recorded for this row")
