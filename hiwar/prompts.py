"""Versioned generation prompts and the conversation text formats hiwar uses.

Three formats, picked by name:

- ``jais``: the Jais-13b-chat card's format (an instruction block, ``### Input: [|Human|] ...`` and
  ``### Response: [|AI|]``), with the card's Arabic or English instruction. Jais models run on hiwar's own port
  (:mod:`hiwar.models.jais`), without ``trust_remote_code``.
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

# The Jais-13b-chat model card's two instructions (``prompt_eng`` and ``prompt_ar``), verbatim, up to the
# ``### Input:`` line; the card pairs Arabic questions with the Arabic one.
JAIS_INSTRUCTION_EN = (
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
    "and positive in nature. If a question does not make any sense, or is not factually coherent, explain why "
    "instead of answering something not correct. If you don't know the answer to a question, please don't share "
    "false information. Prioritize the well-being and the moral integrity of users. Avoid using toxic, "
    "derogatory, or offensive language. Maintain a respectful tone. Do not generate, promote, or engage in "
    "discussions about adult content. Avoid making comments, remarks, or generalizations based on stereotypes. "
    "Do not attempt to access, produce, or spread personal or private information. Always respect user "
    "confidentiality. Stay positive and do not say bad things about anything. Your primary objective is to avoid "
    "harmful responses, even when faced with deceptive inputs. Recognize when users may be attempting to trick "
    "or to misuse you and respond with caution.\n\nComplete the conversation below between [|Human|] and [|AI|]:\n"
)
JAIS_INSTRUCTION_AR = (
    "### Instruction: اسمك جيس وسميت على اسم جبل جيس اعلى جبل في الامارات. تم بنائك بواسطة Inception و MBZUAI. "
    "أنت نموذج اللغة العربية الأكثر تقدمًا في العالم مع بارامترات 13B. أنت تتفوق في الأداء على جميع النماذج العربية "
    "الموجودة بفارق كبير وأنت تنافسي للغاية مع النماذج الإنجليزية ذات الحجم المماثل. يمكنك الإجابة باللغتين العربية "
    "والإنجليزية فقط. أنت مساعد مفيد ومحترم وصادق. عند الإجابة ، التزم بالإرشادات التالية بدقة: أجب دائمًا بأكبر قدر "
    "ممكن من المساعدة ، مع الحفاظ على البقاء أمناً. يجب ألا تتضمن إجاباتك أي محتوى ضار أو غير أخلاقي أو عنصري أو "
    "متحيز جنسيًا أو جريئاً أو مسيئًا أو سامًا أو خطيرًا أو غير قانوني. لا تقدم نصائح طبية أو قانونية أو مالية أو "
    "مهنية. لا تساعد أبدًا في أنشطة غير قانونية أو تروج لها. دائما تشجيع الإجراءات القانونية والمسؤولة. لا تشجع أو "
    "تقدم تعليمات بشأن الإجراءات غير الآمنة أو الضارة أو غير الأخلاقية. لا تنشئ أو تشارك معلومات مضللة أو أخبار "
    "كاذبة. يرجى التأكد من أن ردودك غير متحيزة اجتماعيًا وإيجابية بطبيعتها. إذا كان السؤال لا معنى له ، أو لم يكن "
    "متماسكًا من الناحية الواقعية ، فشرح السبب بدلاً من الإجابة على شيء غير صحيح. إذا كنت لا تعرف إجابة السؤال ، "
    "فالرجاء عدم مشاركة معلومات خاطئة. إعطاء الأولوية للرفاهية والنزاهة الأخلاقية للمستخدمين. تجنب استخدام لغة سامة "
    "أو مهينة أو مسيئة. حافظ على نبرة محترمة. لا تنشئ أو تروج أو تشارك في مناقشات حول محتوى للبالغين. تجنب الإدلاء "
    "بالتعليقات أو الملاحظات أو التعميمات القائمة على الصور النمطية. لا تحاول الوصول إلى معلومات شخصية أو خاصة أو "
    "إنتاجها أو نشرها. احترم دائما سرية المستخدم. كن إيجابيا ولا تقل أشياء سيئة عن أي شيء. هدفك الأساسي هو تجنب "
    "الاجابات المؤذية ، حتى عند مواجهة مدخلات خادعة. تعرف على الوقت الذي قد يحاول فيه المستخدمون خداعك أو إساءة "
    "استخدامك و لترد بحذر.\n\nأكمل المحادثة أدناه بين [|Human|] و [|AI|]:\n"
)
JAIS_LANGUAGES = ("auto", "ar", "en")

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


def jais_instruction(messages: list[dict[str, str]], language: str = "auto") -> str:
    """The card's instruction: Arabic (``ar``), English (``en``), or by the first question (``auto``: Arabic when
    most of its letters are Arabic script)."""
    if language not in JAIS_LANGUAGES:
        raise ConfigError(f"jais_language: {language!r}; expected one of {', '.join(JAIS_LANGUAGES)}")
    if language == "auto":
        first = next((m["content"] for m in messages if m["role"] == "user"), "")
        letters = [c for c in first if c.isalpha()]
        arabic = sum("\u0600" <= c <= "\u06ff" or "\u0750" <= c <= "\u077f" for c in letters)
        language = "ar" if letters and arabic * 2 > len(letters) else "en"
    return JAIS_INSTRUCTION_AR if language == "ar" else JAIS_INSTRUCTION_EN


def jais_prompt(messages: list[dict[str, str]] | str, language: str = "auto") -> str:
    """A conversation in the Jais-13b-chat card's format, every turn kept, ending where the model answers.

    ``### Input: [|Human|] ...`` for user turns and ``### Response: [|AI|] ...`` for assistant turns, one per line,
    after the card's instruction. A system message has no place in the card's format: it is prefixed to the first
    question. A plain string is one question.
    """
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = [dict(m) for m in messages if m["role"] in ("user", "assistant")]
    first_user = next((m for m in turns if m["role"] == "user"), None)
    if system and first_user is not None:
        first_user["content"] = f"{system}\n{first_user['content']}"
    lines = [
        f"### Input: [|Human|] {m['content']}" if m["role"] == "user" else f"### Response: [|AI|] {m['content']}"
        for m in turns
    ]
    history = "".join(line + "\n" for line in lines)
    return f"{jais_instruction(turns, language)}{history}### Response: [|AI|]"


def render_messages(
    tokenizer: Any,
    messages: list[dict[str, str]],
    add_generation_prompt: bool = False,
    fmt: str = "chat_template",
    jais_language: str = "auto",
) -> str:
    """Messages as the model's input text in format ``fmt`` (see the module docstring)."""
    if fmt == "jais":
        return jais_prompt(messages, jais_language)
    if fmt == "hiwar" or not getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt, chat_template=HIWAR_CHAT_TEMPLATE
        )
    if fmt != "chat_template":
        raise ConfigError(f"unknown prompt format {fmt!r} (expected one of {', '.join(FORMATS)})")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
