"""The strict judgment parser, the JSON schemas, the judge prompt and the judge config (fast units)."""

from __future__ import annotations

import json

import pytest

from hiwar.config import load_config
from hiwar.errors import ConfigError
from hiwar.judge import parse
from hiwar.judge.prompt import judge_versions, load_judge_prompt
from hiwar.judge.rubric import Rubric, pairwise_schema, pointwise_schema
from tests.judge.judge_server import CRITERIA, judgment


@pytest.fixture
def rubric() -> Rubric:
    return Rubric.from_human_eval(load_config().human_eval)


def good(**override: object) -> dict:
    body = json.loads(judgment((4, 3, 5, 2, 1)))
    body.update(override)
    return body


def test_a_good_judgment(rubric):
    got = parse.parse_pointwise(judgment((4, 3, 5, 2, 1)), rubric)
    assert got.ok and got.scores == dict(zip(CRITERIA, (4, 3, 5, 2, 1), strict=True))
    assert got.rationales["relevance"] == "تعليل relevance"
    fenced = parse.parse_pointwise("```json\n" + judgment((1, 1, 1, 1, 1)) + "\n```\n", rubric)
    assert fenced.ok
    # A raw control character inside a rationale (guided decoders emit them) changes no score.
    assert parse.parse_pointwise(judgment((2, 2, 2, 2, 2)).replace("تعليل", "تعليل\x03", 1), rubric).ok


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", parse.EMPTY),
        ("ممتاز", parse.NO_JSON),
        ('{"fluency": {"rationale": "x", "score": 4}', parse.INVALID_JSON),
        ("Here it is: " + judgment((4, 4, 4, 4, 4)), parse.TEXT_AROUND),
        (judgment((4, 4, 4, 4, 4)) + " done", parse.TEXT_AROUND),
        ("[1, 2]", parse.NO_JSON),
        (json.dumps({"fluency": {"rationale": "x", "score": 4}}), parse.MISSING),
        (json.dumps(good(extra={"rationale": "x", "score": 4})), parse.UNKNOWN),
        (json.dumps(good(fluency=4)), parse.BAD_ENTRY),
        (json.dumps(good(fluency={"score": 4})), parse.BAD_ENTRY),
        (json.dumps(good(fluency={"rationale": "x", "score": 4.0})), parse.NOT_INTEGER),
        (json.dumps(good(fluency={"rationale": "x", "score": "4"})), parse.NOT_INTEGER),
        (json.dumps(good(fluency={"rationale": "x", "score": True})), parse.NOT_INTEGER),
        (json.dumps(good(fluency={"rationale": "x", "score": 6})), parse.OUT_OF_SCALE),
        (json.dumps(good(fluency={"rationale": "x", "score": 0})), parse.OUT_OF_SCALE),
        (json.dumps(good(fluency={"rationale": " ", "score": 3})), parse.NO_RATIONALE),
    ],
)
def test_malformed_judgments_have_a_reason_and_no_score(rubric, text, code):
    got = parse.parse_pointwise(text, rubric)
    assert not got.ok and parse.reason_code(got.reason) == code and not got.scores


def test_request_errors_and_truncation_come_first(rubric):
    assert parse.parse_judgment("reply", "", "HTTP 500", False, rubric).reason == "request_error: HTTP 500"
    cut = parse.parse_judgment("reply", '{"fluency": {"rat', "", True, rubric)
    assert parse.reason_code(cut.reason) == parse.TRUNCATED and "invalid_json" in cut.reason


def test_pairwise_verdicts():
    assert parse.parse_pairwise('{"rationale": "أفضل", "winner": "B"}').winner == "B"
    assert parse.reason_code(parse.parse_pairwise('{"rationale": "x", "winner": "first"}').reason) == parse.BAD_WINNER
    assert parse.reason_code(parse.parse_pairwise('{"winner": "A"}').reason) == parse.BAD_ENTRY


def test_schemas_follow_the_rubric(rubric):
    schema = pointwise_schema(rubric, 120)
    assert schema["required"] == list(CRITERIA) and schema["additionalProperties"] is False
    entry = schema["properties"]["fluency"]
    assert list(entry["properties"]) == ["rationale", "score"]  # reason first, then score
    assert entry["properties"]["score"]["enum"] == [1, 2, 3, 4, 5]
    assert entry["properties"]["rationale"]["maxLength"] == 120
    assert pairwise_schema(50)["properties"]["winner"]["enum"] == ["A", "B", "tie"]


def test_rubric_follows_human_eval(tmp_path):
    config = load_config(
        overrides=[
            "human_eval.scale_min=0",
            "human_eval.scale_max=3",
            "human_eval.criteria=[{name: clarity, label_en: Clarity, label_ar: الوضوح, "
            "description_en: 'Is it clear?', description_ar: 'هل هو واضح؟'}]",
        ]
    )
    rubric = Rubric.from_human_eval(config.human_eval)
    assert rubric.names == ["clarity"] and rubric.scale == [0, 1, 2, 3]
    assert parse.parse_pointwise(judgment((0,), ("clarity",)), rubric).scores == {"clarity": 0}
    prompt = load_judge_prompt("v1", "en").messages("reply", rubric, {"context": [], "reply": "r"})[1]["content"]
    assert "- Clarity (clarity): Is it clear?" in prompt and "from 0 to 3" in prompt
    with pytest.raises(ConfigError, match=r"x.thresholds.overall: 4 is off the scale 0-3"):
        rubric.check_thresholds({"overall": 4}, "x.thresholds")


def test_prompt_carries_the_rubric_the_dialogue_and_the_format(rubric):
    assert "v1" in judge_versions()
    item = {
        "context": [{"role": "user", "content": "ما عاصمة مصر؟"}],
        "reply": "القاهرة.",
        "reply_a": "الأول",
        "reply_b": "الثاني",
    }
    system, user = load_judge_prompt("v1", "ar").messages("reply", rubric, item)
    assert system["role"] == "system" and user["role"] == "user"
    text = user["content"]
    for crit in rubric.criteria:
        assert f"{crit.label_ar} ({crit.name}): {crit.description_ar}" in text
    assert "المستخدم: ما عاصمة مصر؟" in text and "القاهرة." in text and '"score": <1-5>' in text
    assert "- 5: ممتاز" in text
    pair = load_judge_prompt("v1", "en").messages("pairwise", rubric, item)[1]["content"]
    assert "Reply A:\nالأول" in pair and "Reply B:\nالثاني" in pair and '"winner"' in pair
    whole = load_judge_prompt("v1", "en").messages("conversation", rubric, item)[1]["content"]
    assert "User: ما عاصمة مصر؟" in whole and "description" not in whole


def test_jais_format_renders_the_judge_prompt(rubric):
    from hiwar.prompts import render_messages

    messages = load_judge_prompt("v1", "ar").messages("reply", rubric, {"context": [], "reply": "نعم"})
    text = render_messages(None, messages, add_generation_prompt=True, fmt="jais")
    assert text.startswith("### Instruction:") and text.endswith("### Response: [|AI|]")
    assert messages[0]["content"] in text  # the system message is folded into the first question


def test_judge_config():
    with pytest.raises(ConfigError, match="judge.language"):
        load_config(overrides=["judge.language=fr"])
    with pytest.raises(ConfigError, match="unknown judge prompt version 'v9'"):
        load_judge_prompt("v9", "ar", "judge")
    with pytest.raises(ConfigError, match="pairwise.enabled needs enabled"):
        load_config(overrides=["evaluation.judge.pairwise.enabled=true"])
    with pytest.raises(ConfigError, match="a pair is two different model names"):
        load_config(overrides=["evaluation.judge.pairwise.pairs=[[a, a]]"])
    config = load_config(overrides=["generation.judge.sampling={max_tokens: 64}"])
    assert config.generation.judge.sampling.temperature == 0.0  # the judge's greedy default, not generation's 0.3
    assert config.generation.judge.sampling.max_tokens == 64
