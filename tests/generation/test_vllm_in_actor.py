"""The in-actor vLLM engine's batch handling, over a stand-in for vLLM's ``LLM`` (the real engine runs in
tests/generation/test_vllm_engine.py, tests/generation/test_bos.py, tests/judge/test_judge_vllm.py and
tests/models/test_jais_generate.py): what reaches the engine, per-row sampling, error rows, retries."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

pytestmark = pytest.mark.vllm


class StandInLLM:
    """``generate`` as vLLM's: outputs in prompt order; a call that holds the poisoned prompt raises after leaving
    its requests in the engine (as a failed engine step does)."""

    def __init__(self, poisoned: list[int]) -> None:
        self.poisoned = poisoned
        self.calls: list[tuple[list[list[int]], list[Any]]] = []
        self.aborted: list[list[str]] = []
        states: dict[str, object] = {}
        self.llm_engine = SimpleNamespace(
            output_processor=SimpleNamespace(request_states=states), abort_request=self._abort
        )

    def _abort(self, ids: list[str]) -> None:
        self.aborted.append(list(ids))
        self.llm_engine.output_processor.request_states.clear()

    def generate(self, prompts: list[dict], params: list[Any], use_tqdm: bool) -> list[Any]:
        ids = [p["prompt_token_ids"] for p in prompts]
        self.calls.append((ids, params))
        if self.poisoned in ids:
            self.llm_engine.output_processor.request_states.update({str(i): object() for i in range(len(ids))})
            raise RuntimeError("engine step failed")
        # The text names the prompt's length and the seed, so each row's output says what reached the engine.
        return [
            SimpleNamespace(
                prompt_token_ids=p, outputs=[SimpleNamespace(text=f"{len(p)}:{sp.seed}", token_ids=[7] * sp.seed)]
            )
            for p, sp in zip(ids, params, strict=True)
        ]


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_rows_reach_the_engine_with_their_own_sampling_and_fail_alone(tiny_gpt2) -> None:
    import pyarrow as pa
    from transformers import AutoTokenizer

    from hiwar.generation.config import EngineConfig, SamplingConfig
    from hiwar.generation.engines.vllm_in_actor import VLLMGenerator

    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2)
    sampling = SamplingConfig(temperature=0.5, top_p=0.8, top_k=20, repetition_penalty=1.1, max_tokens=9)
    cfg = EngineConfig(
        engine="vllm", model=str(tiny_gpt2), sampling=sampling, micro_batch_size=2, prompt_format="chat_template"
    )
    gen = VLLMGenerator.__new__(VLLMGenerator)
    schema = json.dumps({"type": "object", "properties": {"score": {"type": "integer"}}})
    rows = [
        {"request_id": "long", "seed": 3, "messages": user("مرحبا بكم في " * 4), "json_schema": ""},
        {"request_id": "short", "seed": 4, "messages": user("مرحبا"), "json_schema": schema},
        {"request_id": "poisoned", "seed": 5, "messages": user("سم هنا"), "json_schema": ""},
        {"request_id": "too-long", "seed": 6, "messages": user("مرحبا " * 80), "json_schema": ""},
        {"request_id": "no-messages", "seed": 7, "messages": [], "json_schema": ""},
    ]
    want_ids = {
        r["request_id"]: tokenizer(
            tokenizer.apply_chat_template(r["messages"], tokenize=False, add_generation_prompt=True),
            add_special_tokens=False,
        )["input_ids"]
        for r in rows[:4]
    }
    gen.cfg, gen.tokenizer, gen.max_len, gen.llm = cfg, tokenizer, 60, StandInLLM(want_ids["poisoned"])
    out = {r["request_id"]: r for r in gen(pa.Table.from_pylist(rows)).to_pylist()}

    llm = gen.llm
    # One call for every ready row (micro_batch_size is the transformers engine's), shortest prompt first; it
    # failed on the poisoned row, its requests were aborted, and each row was retried alone (the poisoned row's
    # own retry failed and was aborted as well).
    first_ids, first_params = llm.calls[0]
    assert first_ids == sorted([want_ids[k] for k in ("long", "short", "poisoned")], key=len)
    assert llm.aborted == [["0", "1", "2"], ["0"]]
    assert sorted(tuple(ids[0]) for ids, _ in llm.calls[1:]) == sorted(
        tuple(want_ids[k]) for k in ("long", "short", "poisoned")
    )
    by_seed = {p.seed: p for p in first_params}
    assert sorted(by_seed) == [3, 4, 5]
    for p in first_params:
        assert (p.temperature, p.top_p, p.top_k, p.repetition_penalty, p.max_tokens) == (0.5, 0.8, 20, 1.1, 9)
    assert json.loads(by_seed[4].structured_outputs.json) == json.loads(schema)
    assert by_seed[3].structured_outputs is None and by_seed[5].structured_outputs is None

    for key, seed in (("long", 3), ("short", 4)):
        n = len(want_ids[key])
        assert (out[key]["generated_text"], out[key]["num_prompt_tokens"]) == (f"{n}:{seed}", n)
        assert (out[key]["num_generated_tokens"], out[key]["error"]) == (seed, "")
    bad = out["poisoned"]
    assert bad["error"] == "generation failed: RuntimeError: engine step failed"
    assert (bad["generated_text"], bad["num_prompt_tokens"]) == ("", len(want_ids["poisoned"]))
    n_long = len(want_ids["too-long"])
    assert n_long >= 60 and out["too-long"]["error"] == f"prompt has {n_long} tokens; the model takes at most 60"
    assert out["no-messages"]["error"].startswith("cannot format prompt: ")
    assert out["short"]["json_schema"] == schema  # input columns pass through
