from hiwar.generation.parse import parse_transcript, to_transcript


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
