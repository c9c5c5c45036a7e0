"""Exactly one BOS reaches each engine when the chat template already starts with one (Llama 3, Cohere/aya).

The tokenizer here adds BOS itself when asked for special tokens (a ``TemplateProcessing`` post-processor, as
Llama 3's ``tokenizer.json`` has), so text sent to an engine that tokenizes with special tokens would carry two.
Each engine reports how many prompt tokens it received (vLLM: its own count of the ids it ran).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

LLAMA3_STYLE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
COHERE_STYLE = (
    "{{ bos_token }}{% for m in messages %}<|START_OF_TURN_TOKEN|>"
    "{% if m['role'] == 'user' %}<|USER_TOKEN|>{% else %}<|CHATBOT_TOKEN|>{% endif %}"
    "{{ m['content'] }}<|END_OF_TURN_TOKEN|>{% endfor %}"
    "{% if add_generation_prompt %}<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{% endif %}"
)
MESSAGES = [[{"role": "user", "content": "ما عاصمة مصر؟"}], [{"role": "user", "content": "مرحبا، كيف حالك؟"}]]


def bos_first_model(src: Path, out: Path, template: str) -> Path:
    """``src`` (a tiny model) with a tokenizer that adds BOS on its own and a template that starts with BOS."""
    from tokenizers import Tokenizer, processors

    shutil.copytree(src, out)
    tok_file = out / "tokenizer.json"
    tok = Tokenizer.from_file(str(tok_file))
    bos = tok.token_to_id("<|bos|>")
    tok.post_processor = processors.TemplateProcessing(single="<|bos|> $A", special_tokens=[("<|bos|>", bos)])
    tok.save(str(tok_file))
    config_path = out / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["chat_template"] = template
    config_path.write_text(json.dumps(config))
    (out / "chat_template.jinja").unlink(missing_ok=True)
    return out


def expected_ids(model: Path, messages: list[dict[str, str]]) -> tuple[list[int], list[int], int]:
    """The template's ids without added specials, the ids a text tokenizer would make, and the BOS id."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    plain = tokenizer(text, add_special_tokens=False)["input_ids"]
    return plain, tokenizer(text)["input_ids"], tokenizer.bos_token_id


def run_engine(model: Path, engine: str, **extra: object) -> list[int]:
    import ray.data

    from hiwar.generation.config import EngineConfig, SamplingConfig
    from hiwar.generation.engines import generate_texts

    cfg = EngineConfig(engine=engine, model=str(model), sampling=SamplingConfig(temperature=0.0, max_tokens=2), **extra)
    rows = [{"request_id": f"r{i}", "seed": i, "messages": m} for i, m in enumerate(MESSAGES)]
    out = generate_texts(ray.data.from_items(rows), cfg).to_pandas().sort_values("request_id")
    assert (out["error"] == "").all(), out["error"].tolist()
    return [int(n) for n in out["num_prompt_tokens"]]


@pytest.fixture(scope="module", params=["llama3", "cohere"])
def bos_model(request, tmp_path_factory: pytest.TempPathFactory, tiny_llama: Path) -> Path:
    template = LLAMA3_STYLE if request.param == "llama3" else COHERE_STYLE
    return bos_first_model(tiny_llama, tmp_path_factory.mktemp("bos") / request.param, template)


def _check(model: Path, counts: list[int]) -> None:
    for messages, count in zip(MESSAGES, counts, strict=True):
        plain, with_specials, bos = expected_ids(model, messages)
        assert with_specials.count(bos) == 2  # the trap: text tokenized with specials doubles the BOS
        assert plain.count(bos) == 1 and plain[0] == bos
        assert count == len(plain)  # what the engine received: the template's one BOS, nothing added


@pytest.mark.ray
def test_transformers_engine_receives_one_bos(ray_local, bos_model: Path) -> None:
    _check(bos_model, run_engine(bos_model, "transformers"))


@pytest.mark.ray
@pytest.mark.vllm
def test_vllm_engine_receives_one_bos(ray_local, tmp_path: Path, tiny_llama: Path, monkeypatch) -> None:
    pytest.importorskip("vllm")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    model = bos_first_model(tiny_llama, tmp_path / "llama3", LLAMA3_STYLE)
    _check(model, run_engine(model, "vllm", dtype="float32", max_model_len=256))
