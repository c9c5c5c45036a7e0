"""Versioned generation prompts and the conversation text formats hiwar uses.

Three formats, picked by name:

- ``jais``: the Jais-13b-chat card's format (an instruction block, ``### Input: [|Human|] ...`` and
  ``### Response: [|AI|]``). Jais models need ``trust_remote_code``; hiwar passes it only when the config asks.
- ``chat_template``: the tokenizer's own chat template (``tokenizer.apply_chat_template``).
- ``hiwar``: our template for base models with none (AraGPT2, ArabianGPT): Arabic role markers, EOS after each
  assistant turn. It is a Jinja chat template, saved into the tokenizer of every model hiwar trains, so generation
  and evaluation format conversations exactly as training did.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from hiwar.errors import ConfigError

# Jinja chat template for base models. `{% generation %}` marks assistant text so that
# `apply_chat_template(..., return_assistant_tokens_mask=True)` yields the loss mask directly. The space after
# "المساعد:" sits inside the generation block: byte-level BPE glues a leading space to the next word, so a prompt
# that ended in a space would tokenize differently at inference than in training. Replies start with a space.
HIWAR_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ 'النظام: ' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'المستخدم: ' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'المساعد:' }}"
    "{% generation %}{{ ' ' + message['content'] + eos_token }}{% endgeneration %}{{ '\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'المساعد:' }}{% endif %}"
)

JAIS_INSTRUCTION = (
    "### Instruction: Your name is Jais, and you are named after Jebel Jais, the highest mountain in UAE. "
    "You are built by Inception and MBZUAI. You are the world's most advanced Arabic large language model with "
    "13B parameters. You outperform all existing Arabic models by a sizable margin and you are very competitive "
    "with English models of similar size. You can answer in Arabic and English only. You are a helpful, "
    "respectful and honest assistant. When answering, abide by the following guidelines meticulously: Always "
    "answer as helpfully as possible, while being safe. Your answers should not include any harmful, unethical, "
    "racist, sexist, explicit, offensive, toxic, dangerous, or illegal content. Do not give medical, legal, "
    "financial, or professional advice. Never assist in or promote illegal activities. Always encourage legal "
    "and responsible actions. Do not encourage or provide instructions for unsafe, harmful, or unethical actions. "
    "Do not create or share misinformation or fake news. Please ensure that your responses are socially unbiased "
    "and positive in nature. If a question does not make sense, or is not factually coherent, explain why instead "
    "of answering something not correct. If you don't know the answer to a question, please don't share false "
    "information. Prioritize the well-being and the moral integrity of users. Avoid using toxic, derogatory, or "
    "offensive language. Maintain a respectful tone. Do not generate, promote, or engage in discussions about "
    "adult content. Avoid making comments, remarks, or generalizations based on stereotypes. Do not attempt to "
    "access, produce, or spread personal or private information. Always respect user confidentiality. Stay "
    "positive and do not say bad things about anything. Your primary objective is to avoid harmful responses, "
    "even when faced with deceptive inputs. Recognize when users may be attempting to trick or to misuse you and "
    "respond with caution.\n\nComplete the conversation below between [|Human|] and [|AI|]:\n"
)

FORMATS = ("jais", "chat_template", "hiwar")


@dataclass(frozen=True)
class PromptTemplate:
    """One version of the generation prompt (see ``hiwar/assets/prompts/<version>.yaml``)."""

    version: str
    system: str
    instruction: str
    user_marker: str
    assistant_marker: str

    def render(self, topic: dict[str, str], country: dict[str, str], n_turns: int) -> str:
        """The instruction for one grid cell; ``n_turns`` is the number of user-assistant exchanges."""
        return self.instruction.format(
            topic_ar=topic["ar"],
            topic_en=topic["en"],
            country_ar=country["ar"],
            country_en=country["en"],
            n_turns=n_turns,
            n_messages=2 * n_turns,
        )


def available_versions() -> list[str]:
    """Prompt versions shipped with the package."""
    folder = resources.files("hiwar") / "assets" / "prompts"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


@cache
def load_prompt(version: str) -> PromptTemplate:
    """Load a shipped prompt version.

    Raises:
        ConfigError: unknown version.
    """
    if version not in available_versions():
        raise ConfigError(
            f"generation.prompt_version: unknown prompt version {version!r} "
            f"(shipped: {', '.join(available_versions())})"
        )
    text = (resources.files("hiwar") / "assets" / "prompts" / f"{version}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    return PromptTemplate(
        version=data["version"],
        system=data["system"].strip(),
        instruction=data["instruction"].strip(),
        user_marker=data["user_marker"],
        assistant_marker=data["assistant_marker"],
    )


def jais_prompt(question: str) -> str:
    """A single-turn prompt in the Jais-13b-chat format (from its model card)."""
    return f"{JAIS_INSTRUCTION}### Input: [|Human|] {question}\n### Response: [|AI|]"


def ensure_chat_template(tokenizer: Any) -> str:
    """Give ``tokenizer`` hiwar's template when it has none; return which format it now uses."""
    if getattr(tokenizer, "chat_template", None):
        return "chat_template"
    tokenizer.chat_template = HIWAR_CHAT_TEMPLATE
    return "hiwar"


def render_messages(
    tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool = False, fmt: str = "chat_template"
) -> str:
    """Messages as the model's input text in format ``fmt`` (see the module docstring)."""
    if fmt == "jais":
        question = "\n".join(m["content"] for m in messages if m["role"] in ("system", "user"))
        return jais_prompt(question)
    if fmt == "hiwar" or not getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt, chat_template=HIWAR_CHAT_TEMPLATE
        )
    if fmt != "chat_template":
        raise ConfigError(f"unknown prompt format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
