import pytest

from hiwar.generation.parse import REPAIR_KINDS, parse_transcript, to_transcript


def test_parse_two_turns_with_multiline_message():
    text = "المستخدم: ما عاصمة مصر؟\nالمساعد: القاهرة.\nوهي أكبر مدنها.\nالمستخدم : شكرا\nالمساعد: عفوا<|endoftext|>"
    parsed = parse_transcript(text)
    assert parsed.preamble == ""
    assert parsed.messages == [
        {"role": "user", "content": "ما عاصمة مصر؟"},
        {"role": "assistant", "content": "القاهرة.\nوهي أكبر مدنها."},
        {"role": "user", "content": "شكرا"},
        {"role": "assistant", "content": "عفوا"},
    ]


def test_preamble_is_kept_apart_and_mid_line_marker_stays_text():
    parsed = parse_transcript("إليك المحادثة:\r\nالمستخدم: سؤال\r\nالمساعد: جواب والمستخدم: لا")
    assert parsed.preamble == "إليك المحادثة:"
    assert parsed.messages[1] == {"role": "assistant", "content": "جواب والمستخدم: لا"}


def test_no_markers_gives_no_messages():
    parsed = parse_transcript("نص بلا أدوار")
    assert parsed.messages == [] and parsed.preamble == "نص بلا أدوار"


def test_to_transcript_round_trips():
    messages = [{"role": "user", "content": "سؤال"}, {"role": "assistant", "content": "جواب\nثان"}]
    assert parse_transcript(to_transcript(messages)).messages == messages


PLAIN = (
    "المستخدم: ما أشهر أكلة في تونس؟\nالمساعد: الكسكسي، ويُطبخ **بالسمك** في المدن الساحلية.\n"
    "المستخدم: شكراً\nالمساعد: العفو"
)
MESSAGES = parse_transcript(PLAIN).messages
# Each decoration around every marker of PLAIN, and the repair kind it counts under.
DECORATED = {
    "bidi": PLAIN.replace("المستخدم:", "\u200fالمستخدم:").replace("المساعد:", "\u202bالمساعد\u202c:\u2069"),
    "diacritics": PLAIN.replace("المستخدم:", "المُسْتَخْدِمُ:").replace("المساعد:", "المُساعِدُ:"),
    "tatweel": PLAIN.replace("المستخدم:", "المستـــخدم:").replace("المساعد:", "المسـاعد:"),
    "emphasis": PLAIN.replace("المستخدم:", "**المستخدم:**").replace("المساعد:", "__المساعد__:"),
    "bullet": PLAIN.replace("المستخدم:", "- المستخدم:").replace("المساعد:", "1. المساعد:"),
}


@pytest.mark.parametrize("kind", sorted(DECORATED))
def test_each_marker_decoration_parses_like_the_plain_transcript(kind):
    parsed = parse_transcript(DECORATED[kind])
    assert parsed.messages == MESSAGES and parsed.preamble == ""
    assert parsed.repairs == {k: (4 if k == kind else 0) for k in REPAIR_KINDS}


@pytest.mark.parametrize(
    "marker",
    ["*المستخدم:*", "_المستخدم_:", "**المستخدم**:", "* المستخدم:", "+ المستخدم:", "• المستخدم:", "2) المستخدم:"],
)
def test_other_emphasis_and_bullet_forms(marker):
    parsed = parse_transcript(PLAIN.replace("المستخدم:", marker, 1))
    assert parsed.messages == MESSAGES


def test_decorations_combine_and_message_text_is_kept_as_written():
    text = "- **\u200fالمُستـخدم:** كيف حالك يا *صديقي*؟\nالمساعد:\u200f بخيرٍ، والحمدُ لله."
    parsed = parse_transcript(text)
    assert parsed.messages == [
        {"role": "user", "content": "كيف حالك يا *صديقي*؟"},
        {"role": "assistant", "content": "بخيرٍ، والحمدُ لله."},
    ]
    assert parsed.repairs == {"bidi": 2, "diacritics": 1, "tatweel": 1, "emphasis": 1, "bullet": 1}


def test_unbalanced_emphasis_or_bullet_without_space_stays_text():
    for line in ("**المستخدم: سؤال", "-المستخدم: سؤال"):
        parsed = parse_transcript(f"{line}\nالمساعد: جواب")
        assert parsed.preamble == line and len(parsed.messages) == 1
