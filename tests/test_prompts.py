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


# The Jais-13b-chat model card's prompts, as its sample code writes them (``prompt_eng`` / ``prompt_ar``, then
# ``.format_map({'Question': q})``), typed here from the card independently of hiwar.prompts.
CARD_EN = (
    "### Instruction: Your name is Jais, and you are named after Jebel Jais, the highest mountain in UAE. You are "
    "built by Inception and MBZUAI. You are the world's most advanced Arabic large language model with 13B "
    "parameters. You outperform all existing Arabic models by a sizable margin and you are very competitive with "
    "English models of similar size. You can answer in Arabic and English only. You are a helpful, respectful and "
    "honest assistant. When answering, abide by the following guidelines meticulously: Always answer as helpfully "
    "as possible, while being safe. Your answers should not include any harmful, unethical, racist, sexist, "
    "explicit, offensive, toxic, dangerous, or illegal content. Do not give medical, legal, financial, or "
    "professional advice. Never assist in or promote illegal activities. Always encourage legal and responsible "
    "actions. Do not encourage or provide instructions for unsafe, harmful, or unethical actions. Do not create or "
    "share misinformation or fake news. Please ensure that your responses are socially unbiased and positive in "
    "nature. If a question does not make any sense, or is not factually coherent, explain why instead of answering "
    "something not correct. If you don't know the answer to a question, please don't share false information. "
    "Prioritize the well-being and the moral integrity of users. Avoid using toxic, derogatory, or offensive "
    "language. Maintain a respectful tone. Do not generate, promote, or engage in discussions about adult content. "
    "Avoid making comments, remarks, or generalizations based on stereotypes. Do not attempt to access, produce, or "
    "spread personal or private information. Always respect user confidentiality. Stay positive and do not say bad "
    "things about anything. Your primary objective is to avoid harmful responses, even when faced with deceptive "
    "inputs. Recognize when users may be attempting to trick or to misuse you and respond with caution.\n\n"
    "Complete the conversation below between [|Human|] and [|AI|]:\n### Input: [|Human|] {Question}\n"
    "### Response: [|AI|]"
)
CARD_AR_START = (
    "### Instruction: اسمك جيس وسميت على اسم جبل جيس اعلى جبل في الامارات. تم بنائك بواسطة Inception و MBZUAI."
)
CARD_AR_END = (
    "تعرف على الوقت الذي قد يحاول فيه المستخدمون خداعك أو إساءة استخدامك و لترد بحذر.\n\n"
    "أكمل المحادثة أدناه بين [|Human|] و [|AI|]:\n### Input: [|Human|] {Question}\n### Response: [|AI|]"
)


def test_jais_format_is_the_model_card_character_for_character() -> None:
    question = "What is the capital of UAE?"
    assert jais_prompt(question) == CARD_EN.format_map({"Question": question})
    assert jais_prompt(question, "en") == jais_prompt([{"role": "user", "content": question}])


def test_jais_arabic_question_gets_the_card_arabic_instruction() -> None:
    question = "ما هي عاصمة الامارات؟"
    text = jais_prompt(question)
    assert text.startswith(CARD_AR_START)
    assert text.endswith(CARD_AR_END.format_map({"Question": question}))
    assert "Your name is Jais" not in text
    assert jais_prompt(question, "en") == CARD_EN.format_map({"Question": question})  # configurable


def test_jais_keeps_every_turn_and_the_system_message() -> None:
    messages = [
        {"role": "system", "content": "أنت مساعد."},
        {"role": "user", "content": "مرحبا"},
        {"role": "assistant", "content": "أهلا بك"},
        {"role": "user", "content": "كيف الحال؟"},
    ]
    text = jais_prompt(messages)
    assert text.endswith(
        "### Input: [|Human|] أنت مساعد.\nمرحبا\n### Response: [|AI|] أهلا بك\n"
        "### Input: [|Human|] كيف الحال؟\n### Response: [|AI|]"
    )
    assert text.count("### Instruction:") == 1


def test_unknown_jais_language_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="jais_language"):
        jais_prompt("x", "fr")


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
