"""Prompt templates and conversation formats."""

from __future__ import annotations

import pytest

from hiwar.errors import ConfigError
from hiwar.prompts import HIWAR_CHAT_TEMPLATE, available_versions, jais_prompt, load_prompt

TOPIC = {"id": "football", "ar": "كرة القدم", "en": "Football"}
COUNTRY = {"iso2": "EG", "ar": "مصر", "en": "Egypt"}


def test_v1_is_shipped_and_renders() -> None:
    assert "v1" in available_versions()
    prompt = load_prompt("v1")
    text = prompt.render(TOPIC, COUNTRY, n_turns=3)
    assert "كرة القدم" in text and "مصر" in text
    assert "3 أدوار" in text and "6 رسائل" in text
    assert prompt.user_marker == "المستخدم:" and prompt.assistant_marker == "المساعد:"
    assert "{" not in text


def test_unknown_version_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown prompt version 'v99'"):
        load_prompt("v99")


def test_jais_format_matches_model_card() -> None:
    text = jais_prompt("ما عاصمة مصر؟")
    assert text.startswith("### Instruction: Your name is Jais")
    assert text.endswith("### Input: [|Human|] ما عاصمة مصر؟\n### Response: [|AI|]")


def test_hiwar_template_marks_assistant_tokens(tiny_gpt2) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2)
    assert tokenizer.chat_template == HIWAR_CHAT_TEMPLATE
    messages = [{"role": "user", "content": "مرحبا"}, {"role": "assistant", "content": "أهلا"}]
    out = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    masked = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert masked == " أهلا<|endoftext|>"
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|bos|>المستخدم: مرحبا\nالمساعد:"
