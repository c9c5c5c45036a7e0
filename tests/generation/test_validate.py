"""One hand-written bad output per reject reason, and good outputs that pass."""

import pytest

from hiwar.generation import validate as v
from hiwar.generation.config import ValidationConfig
from hiwar.generation.parse import parse_transcript
from tests.generation.test_language import PERSIAN, transcript

U1 = "ما أشهر الأطباق التقليدية في المغرب؟"
A1 = "من أشهرها الكسكس والطاجين والحريرة، وتقدم في المناسبات العائلية وأيام الجمعة."
U2 = "وكيف يحضر الطاجين عادة؟"
A2 = "يطهى اللحم مع الخضار والتوابل ببطء في إناء فخاري مخروطي حتى ينضج تماما."
GOOD = f"المستخدم: {U1}\nالمساعد: {A1}\nالمستخدم: {U2}\nالمساعد: {A2}"
CFG = ValidationConfig()


def check(text: str, **kwargs) -> list[str]:
    return v.validate(parse_transcript(text), text, CFG, **kwargs)


def test_good_conversation_is_accepted():
    assert check(GOOD) == []


LONG_REPEAT = " ".join(["هذا الكلام يتكرر كثيرا"] * 12)

BAD = {
    v.EMPTY_OUTPUT: "   \n ",
    v.NO_ROLE_MARKERS: "هذه محادثة مكتوبة بلا أي علامات للأدوار على الإطلاق في بداية الأسطر.",
    v.TEXT_BEFORE_FIRST_TURN: "بالتأكيد، إليك المحادثة:\n" + GOOD,
    v.STARTS_WITH_ASSISTANT: f"المساعد: {A1}\nالمستخدم: {U2}\nالمساعد: {A2}",
    v.ROLES_NOT_ALTERNATING: f"المستخدم: {U1}\nالمستخدم: {U2}\nالمساعد: {A1}\nالمستخدم: سؤال آخر؟\nالمساعد: {A2}",
    v.ENDS_WITH_USER: f"{GOOD}\nالمستخدم: وماذا عن الحلويات المغربية؟",
    v.TOO_FEW_TURNS: f"المستخدم: {U1}\nالمساعد: {A1}",
    v.TOO_MANY_TURNS: "\n".join(
        f"المستخدم: سؤال رقم {i} عن المطبخ؟\nالمساعد: جواب مفصل رقم {i} عن الطبخ المحلي." for i in range(11)
    ),
    v.EMPTY_TURN: f"المستخدم: {U1}\nالمساعد: {A1}\nالمستخدم: \nالمساعد: {A2}",
    v.TURN_TOO_LONG: f"{GOOD}\nالمستخدم: أكمل\nالمساعد: " + "كلمة مختلفة " * 200,
    v.TOO_SHORT: "المستخدم: لم؟\nالمساعد: لأن.\nالمستخدم: متى؟\nالمساعد: غدا.",
    v.NEAR_IDENTICAL_TURNS: f"المستخدم: {U1}\nالمساعد: {A1}\nالمستخدم: {U2}\nالمساعد: {A1}",
    v.ASSISTANT_SPEAKS_FOR_USER: f"المستخدم: {U1}\nالمساعد: {A1} المستخدم: {U2}\nالمستخدم: سؤال؟\nالمساعد: {A2}",
    v.USER_SPEAKS_FOR_ASSISTANT: f"المستخدم: {U1} المساعد: {A1}\nالمساعد: {A2}\n"
    f"المستخدم: {U2}\nالمساعد: جواب آخر مفيد.",
    v.TEMPLATE_LEAK: f"{GOOD}\n### Response: [|AI|]",
    v.LOW_ARABIC_RATIO: GOOD.replace(A2, "Yes, tagine is slow cooked with vegetables, meat and many spices here."),
    v.NOT_ARABIC: transcript(PERSIAN),
    v.LATIN_LEAKAGE: GOOD.replace(A2, A2 + " (tajine)"),
    v.NGRAM_REPETITION: f"المستخدم: {U1}\nالمساعد: {LONG_REPEAT}\nالمستخدم: {U2}\nالمساعد: {A2}",
}


@pytest.mark.parametrize("reason", sorted(BAD))
def test_each_bad_output_is_rejected_for_its_reason(reason):
    assert reason in check(BAD[reason])


def test_too_long_conversation():
    cfg = ValidationConfig(max_total_chars=100)  # GOOD has about 200 characters of messages
    assert v.validate(parse_transcript(GOOD), GOOD, cfg) == [v.TOO_LONG]


def test_request_error_and_truncation():
    assert check("", error="HTTP 500") == [v.REQUEST_FAILED]
    assert check(GOOD, truncated=True) == [v.TRUNCATED]
    assert v.validate(parse_transcript(GOOD), GOOD, ValidationConfig(reject_truncated=False), truncated=True) == []


def test_every_reason_is_listed_once_and_covered():
    assert len(set(v.REASONS)) == len(v.REASONS)
    covered = set(BAD) | {v.TOO_LONG, v.REQUEST_FAILED, v.TRUNCATED, v.DUPLICATE, v.NEAR_DUPLICATE}
    assert covered == set(v.REASONS)


def test_all_reasons_are_reported_and_ordered():
    text = "Intro\nالمساعد: hello there my friend\nالمساعد: hello there my friend"
    reasons = check(text)
    assert reasons == [r for r in v.REASONS if r in reasons]
    for r in (
        v.TEXT_BEFORE_FIRST_TURN,
        v.STARTS_WITH_ASSISTANT,
        v.ROLES_NOT_ALTERNATING,
        v.NEAR_IDENTICAL_TURNS,
        v.LOW_ARABIC_RATIO,
        v.LATIN_LEAKAGE,
    ):
        assert r in reasons


def test_preamble_allowed_by_config():
    cfg = ValidationConfig(allow_preamble=True)
    text = BAD[v.TEXT_BEFORE_FIRST_TURN]
    assert v.validate(parse_transcript(text), text, cfg) == []


def test_decorated_markers_are_not_no_role_markers():
    decorated = GOOD.replace("المستخدم:", "\u200f**المُستـخدم:**").replace("المساعد:", "- المساعد:")
    assert check(decorated) == []
    assert parse_transcript(decorated).messages == parse_transcript(GOOD).messages
