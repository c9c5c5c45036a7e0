"""Arabic, not just Arabic script: hand-written conversations in Arabic (MSA and four dialects) are accepted;
Persian, Urdu, Pashto and Sorani ones are rejected as ``not_arabic``, with their language in the reject row,
in ``stats.json`` and in the card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hiwar.generation import validate as v
from hiwar.generation.config import ValidationConfig
from hiwar.generation.language import (
    ARABIC,
    UNDETERMINED,
    Detection,
    arabic_share,
    foreign_languages,
    identify,
    identify_all,
)
from hiwar.generation.parse import parse_transcript


def transcript(turns: list[tuple[str, str]]) -> str:
    """``[(user, assistant), ...]`` as a plain transcript."""
    return "\n".join(f"المستخدم: {u}\nالمساعد: {a}" for u, a in turns)


MSA = [
    (
        "مرحباً، أريد أن أتعلم البرمجة في وقت قصير. هل يمكنك أن تقترح علي خطة واضحة أبدأ بها؟",
        "بالتأكيد. ابدأ بأساسيات لغة بايثون لأنها سهلة القراءة، وخصص ساعة كل يوم لحل تمارين صغيرة. بعد شهر "
        "حاول أن تبني مشروعاً بسيطاً مثل تطبيق لإدارة المهام.",
    ),
    (
        "وهل أحتاج إلى حاسوب قوي لذلك؟",
        "لا، يكفي حاسوب عادي واتصال بالإنترنت. أغلب الأدوات مجانية، ويمكنك أيضاً التدرب في المتصفح مباشرة.",
    ),
]
EGYPTIAN = [
    (
        "إزيك يا صاحبي؟ عايز أروح إسكندرية الأسبوع الجاي بس مش عارف أركب قطر ولا أتوبيس. إنت شايف إيه الأحسن؟",
        "القطر أحسن بكتير في رأيي، هتوصل في حوالي تلات ساعات ومش هتتعب من الطريق. بس احجز بدري عشان الزحمة "
        "بتبقى جامدة يوم الخميس.",
    ),
    (
        "ماشي، وإيه أحلى أكل ممكن آكله هناك؟ أنا بحب السمك أوي.",
        "لازم تروح مطعم على البحر في بحري، السمك هناك طازة والأسعار معقولة. وما تنساش تجرب الفريسكا على الشط، "
        "دي حاجة ما تتفوتش.",
    ),
]
GULF = [
    (
        "شلونك؟ أبي أسافر دبي الشهر الجاي مع عيالي، وش أحسن مكان نسكن فيه؟ ما أبي شي بعيد عن البحر.",
        "والله دبي فيها أماكن وايد حلوة. إذا تبي شي قريب من البحر روح الجميرا، وإذا تبي شي أرخص شوف ديرة، "
        "وكلها قريبة من المترو.",
    ),
    (
        "زين، وكم تتوقع يكلفني الفندق لليلة وحدة؟",
        "يعتمد على الموسم، بس تقريباً بين خمسمية وألف درهم. وإذا حجزت من بدري يطلع لك أرخص، وبعض الفنادق "
        "تعطيك الفطور ببلاش.",
    ),
]
LEVANTINE = [
    (
        "مرحبا، بدي أعمل تبولة متل اللي بتعملها ستي، شو بحتاج؟ وكيف بعرف إنها طلعت مزبوطة؟",
        "أكيد! بدك بقدونس كتير، شوية نعنع، بندورة، بصل أخضر، برغل ناعم، وزيت زيتون وحامض. التبولة المزبوطة "
        "بيكون فيها البقدونس أكتر شي، مش البرغل.",
    ),
    (
        "قديش لازم نقع البرغل قبل ما حطه؟",
        "بيكفي ربع ساعة بمي باردة، وبعدين اعصره منيح وحطه فوق البندورة لحتى يشرب عصيرها. وما تحط الملح "
        "والحامض إلا قبل ما تقدمها بشوي.",
    ),
]
MAGHREBI = [
    (
        "السلام، بغيت نمشي لمراكش فالصيف ولكن ما عرفتش واش الجو غادي يكون سخون بزاف. شنو كتنصحني؟",
        "إيه، مراكش فالصيف كتكون سخونة بزاف. الأحسن تمشي فالربيع ولا فالخريف ملي الجو كيكون زوين، وتقدر "
        "تتمشى فالمدينة القديمة بلا ما تعيا.",
    ),
    (
        "واخا، وشنو هما الحوايج اللي خاصني نشوفهم تما؟",
        "خاصك تزور جامع الفنا فالليل، وحدائق ماجوريل فالصباح. ومن بعد تاكل الطنجية فشي مطعم تقليدي، راه "
        "ماكلة مراكشية ديال بصح.",
    ),
]
PERSIAN = [
    (
        "سلام، من می‌خواهم برای تعطیلات نوروز به شیراز سفر کنم. به نظر شما چه جاهایی را حتماً باید ببینم؟",
        "شیراز شهر شعر و باغ است. حتماً به آرامگاه حافظ و سعدی سر بزنید و در باغ ارم قدم بزنید. مسجد نصیرالملک "
        "هم صبح زود، وقتی نور از شیشه‌های رنگی می‌تابد، بسیار زیباست.",
    ),
    (
        "ممنون. برای رفتن به تخت جمشید بهتر است تور بگیرم یا خودم بروم؟",
        "اگر راهنمای محلی بگیرید، تاریخ هر بخش را بهتر می‌فهمید. ولی با تاکسی هم می‌توانید بروید؛ فاصله‌اش از "
        "شهر حدود یک ساعت است. آب و کلاه فراموش نشود، چون آفتاب آنجا تند است.",
    ),
]
URDU = [
    (
        "السلام علیکم، میں اگلے مہینے لاہور جا رہا ہوں۔ وہاں کون سی جگہیں دیکھنے کے قابل ہیں؟",
        "وعلیکم السلام! لاہور میں بادشاہی مسجد اور شاہی قلعہ ضرور دیکھیں۔ شام کو فوڈ اسٹریٹ جائیں جہاں سے "
        "مسجد کا منظر بہت خوبصورت لگتا ہے۔",
    ),
    (
        "شکریہ۔ کیا وہاں گھومنے کے لیے رکشہ بہتر ہے یا ٹیکسی؟",
        "چھوٹے فاصلوں کے لیے رکشہ سستا اور آسان ہے، لیکن کرایہ پہلے طے کر لیں۔ لمبے سفر کے لیے موبائل ایپ سے "
        "ٹیکسی منگوانا زیادہ آرام دہ رہتا ہے۔",
    ),
]
PASHTO = [
    (
        "سلام، زه غواړم چې راتلونکې اونۍ کابل ته سفر وکړم. هلته د لیدلو وړ ځایونه کوم دي؟",
        "کابل ډېر ښکلی ښار دی. تاسو کولی شئ د بابر باغ، د کابل موزیم او دارالامان ماڼۍ ته لاړ شئ. د ماښام په "
        "وخت کې د ښار نوې سیمې هم ډېرې خوندورې دي.",
    ),
    (
        "مننه. هلته د خوړو لپاره کوم ځای ښه دی؟",
        "که کابلي پلو خوښوئ، نو د ښار په زړو بازارونو کې یې وخورئ. همدارنګه منتو او بولاني هم ډېر مشهور دي "
        "او بیه یې ارزانه ده.",
    ),
]
SORANI = [
    (
        "سڵاو، دەمەوێت هەفتەی داهاتوو سەردانی هەولێر بکەم. چ شوێنێک هەیە کە دەبێت ببینرێت؟",
        "هەولێر یەکێکە لە کۆنترین شارەکانی جیهان. سەرەتا سەردانی قەڵای هەولێر بکە، پاشان بچۆ بۆ بازاڕی "
        "قەیسەری. ئێواران پارکی شانەدەر زۆر خۆشە.",
    ),
    (
        "سوپاس. باشترین کات بۆ سەردان کەیە؟",
        "بەهار باشترین کاتە، چونکە کەشوهەوا فێنکە و دەوروبەری شار سەوزە. لە هاویندا گەرما زۆر بەرز دەبێتەوە، "
        "بۆیە ئاو لەگەڵ خۆت ببە.",
    ),
]
ARABIC_CONVERSATIONS = {"msa": MSA, "egyptian": EGYPTIAN, "gulf": GULF, "levantine": LEVANTINE, "maghrebi": MAGHREBI}
OTHER_CONVERSATIONS = {"fa": PERSIAN, "ur": URDU, "ps": PASHTO, "ckb": SORANI}
CFG = ValidationConfig()


def check(text: str, cfg: ValidationConfig = CFG) -> list[str]:
    return v.validate(parse_transcript(text), text, cfg)


@pytest.mark.parametrize("variety", sorted(ARABIC_CONVERSATIONS))
def test_arabic_of_every_variety_is_accepted(variety: str) -> None:
    text = transcript(ARABIC_CONVERSATIONS[variety])
    assert check(text) == []
    detections = identify_all(m["content"] for m in parse_transcript(text).messages)
    assert [d.language for d in detections] == [ARABIC] * 4
    assert min(d.confidence for d in detections) >= CFG.min_language_confidence


@pytest.mark.parametrize("language", ["fa", "ur", "ps"])
def test_persian_urdu_pashto_are_rejected_with_their_language(language: str) -> None:
    text = transcript(OTHER_CONVERSATIONS[language])
    assert check(text) == [v.NOT_ARABIC]  # the Arabic-script ratio alone accepted them
    detections = identify_all(m["content"] for m in parse_transcript(text).messages)
    assert foreign_languages(detections, CFG.min_language_confidence) == [language]


def test_sorani_is_rejected_as_kurdish() -> None:
    text = transcript(SORANI)
    assert v.NOT_ARABIC in check(text)
    detections = identify_all(m["content"] for m in parse_transcript(text).messages)
    assert foreign_languages(detections) == ["ckb"]


def test_one_persian_reply_rejects_by_default_and_share_relaxes_it() -> None:
    # Three Arabic messages and one Persian one: 3 of 4 identified messages are Arabic.
    mixed = transcript([MSA[0], (MSA[1][0], PERSIAN[1][1])])
    assert check(mixed) == [v.NOT_ARABIC]
    assert check(mixed, ValidationConfig(min_arabic_message_share=0.75)) == []
    assert check(mixed, ValidationConfig(min_arabic_message_share=0.76)) == [v.NOT_ARABIC]


def test_only_confident_identifications_vote() -> None:
    ar, fa = Detection("ar", 0.99), Detection("fa", 0.65)
    assert arabic_share([ar, fa], min_confidence=0.7) == 1.0  # the unsure Persian guess does not vote
    assert arabic_share([ar, fa], min_confidence=0.6) == 0.5
    assert arabic_share([Detection(UNDETERMINED, 0.0)]) == 1.0  # nothing identified: nothing against it


def test_a_word_or_two_is_not_identified() -> None:
    # lid.176 calls "شكراً" Persian; texts under MIN_LETTERS letters get no language at all.
    assert identify("شكراً") == Detection(UNDETERMINED, 0.0)
    assert identify("٥٠٠ درهم") == Detection(UNDETERMINED, 0.0)
    assert identify("شكراً لك يا صديقي").language == ARABIC


def test_letters_only_pashto_writes_name_pashto_among_the_candidates() -> None:
    # The model ranks this Pashto sentence as Persian first; ښ, ړ and ۍ are letters only Pashto writes.
    sentence = "کابل ښکلی ښار دی، تاسو کولی شئ د بابر باغ او دارالامان ماڼۍ ته لاړ شئ."
    assert identify(sentence).language == "ps"


def test_reject_rows_stats_and_card_carry_the_languages(tmp_path: Path) -> None:
    """The postprocess stage's rows through assemble, the rejects table, stats and the card (no Ray)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hiwar.config import load_config
    from hiwar.generation.assemble import assemble, write_rejects
    from hiwar.generation.card import render_card
    from hiwar.generation.postprocess import parse_and_validate
    from hiwar.generation.shard_chain import ChainResult
    from hiwar.generation.stats import build_stats

    texts = {
        "a": transcript(EGYPTIAN).replace("المستخدم:", "**المستخدم:**"),
        "b": transcript(PERSIAN),
        "c": transcript(URDU),
        "d": transcript(GULF),
    }
    rows = [
        {
            "id": key,
            "topic": "travel",
            "country": "EG",
            "sample_index": 0,
            "seed": i,
            "n_turns": 2,
            "shard": 0,
            "request_id": key,
            "generated_text": text,
            "num_prompt_tokens": 10,
            "num_generated_tokens": 100,
            "error": "",
        }
        for i, (key, text) in enumerate(texts.items())
    ]
    config = load_config()
    out = parse_and_validate(pa.Table.from_pylist(rows), config.generation.validation.model_dump(), 512).to_pylist()
    assert [r["reasons"] for r in out] == [[], [v.NOT_ARABIC], [v.NOT_ARABIC], []]
    assert out[0]["parse_repairs"] == {"bidi": 0, "diacritics": 0, "tatweel": 0, "emphasis": 2, "bullet": 0}
    assembled = assemble(out, config.generation, "chat_template")
    write_rejects(assembled.rejects, tmp_path, 100)
    rejects = pq.read_table(tmp_path / "rejects" / "rejects-00000.parquet").to_pylist()
    assert [[d["language"] for d in r["languages"]] for r in rejects] == [["fa"] * 4, ["ur"] * 4]
    stats = build_stats(config, assembled, {"train": 2}, ChainResult(), 0)
    assert stats["rejects_by_reason"] == {v.NOT_ARABIC: 2}
    assert stats["not_arabic_languages"] == {"fa": 1, "ur": 1}
    assert stats["parse_repairs"]["by_kind"]["emphasis"] == {"outputs": 1, "share": 0.25, "markers": 2}
    assert stats["parse_repairs"]["outputs"] == 1
    card = render_card(json.loads(json.dumps(stats)))
    assert "| Persian (fa) | 1 |" in card and "| Urdu (ur) | 1 |" in card
    assert "| emphasis | 1 (25.0%), 2 markers |" in card


@pytest.mark.ray
def test_generate_counts_repairs_and_languages_into_stats_json(ray_local, tmp_path: Path, monkeypatch) -> None:
    """The whole ``hiwar generate`` over Ray Data (openai engine against a local server): one output wraps its
    markers in ``**``, one lists them as bullets, one is Persian, one Urdu."""
    import pyarrow.parquet as pq

    from hiwar.config import load_config
    from hiwar.generation.run import run_generate
    from tests.generation.conftest import run_overrides
    from tests.generation.fake_openai import FakeOpenAI
    from tests.generation.teach import BAD_TOPICS, GOOD_TOPICS
    from tests.generation.test_openai_engine import arabic_names

    topics = [*GOOD_TOPICS, *BAD_TOPICS]
    outputs = [
        transcript(EGYPTIAN).replace("المستخدم:", "**المستخدم:**").replace("المساعد:", "**المساعد:**"),
        transcript(GULF).replace("المستخدم:", "- المستخدم:").replace("المساعد:", "- المساعد:"),
        transcript(PERSIAN),
        transcript(URDU),
    ]
    answers = {arabic_names([t])[0]: text for t, text in zip(topics, outputs, strict=True)}
    monkeypatch.setenv("HIWAR_TEST_KEY", "k")
    with FakeOpenAI("k", answers, failing=()) as server:
        overrides = run_overrides(
            tmp_path,
            "served-model",
            "generation.engine=openai",
            f"generation.base_url={server.url}",
            "generation.api_key_env=HIWAR_TEST_KEY",
        )
        out = run_generate(load_config(overrides=overrides))
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert (stats["counts"]["accepted"], stats["rejects_by_reason"]) == (2, {v.NOT_ARABIC: 2})
    assert stats["not_arabic_languages"] == {"fa": 1, "ur": 1}
    by_kind = stats["parse_repairs"]["by_kind"]
    assert by_kind["emphasis"] == {"outputs": 1, "share": 0.25, "markers": 4}
    assert by_kind["bullet"] == {"outputs": 1, "share": 0.25, "markers": 4}
    assert by_kind["bidi"]["outputs"] == by_kind["diacritics"]["outputs"] == by_kind["tatweel"]["outputs"] == 0
    rejects = pq.read_table(out / "rejects").to_pylist()
    assert sorted({d["language"] for r in rejects for d in r["languages"]}) == ["fa", "ur"]
    data = pq.read_table(out / "data").to_pylist()
    plain = {parse_transcript(transcript(c)).messages[0]["content"]: c for c in (EGYPTIAN, GULF)}
    for row in data:  # the stored messages carry no marker decoration
        assert row["messages"] == parse_transcript(transcript(plain[row["messages"][0]["content"]])).messages
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| Persian (fa) | 1 |" in card and "| emphasis | 1 (25.0%), 4 markers |" in card
