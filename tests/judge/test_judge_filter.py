"""``generation.judge``: `hiwar generate` (openai engine) with the judge as a data filter, one scripted server
answering both the generator's prompts (transcripts) and the judge's (scores), checked by hand."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from hiwar.config import load_config
from hiwar.judge.rubric import Rubric, pointwise_schema
from tests.generation.conftest import run_overrides
from tests.generation.teach import RECYCLING, TRANSIT
from tests.judge.judge_server import CRITERIA, JudgeServer, judgment

pytestmark = [pytest.mark.ray]

EATING = (
    "المستخدم: ما هو الطعام الصحي للفطور؟\n"
    "المساعد: الشوفان مع الفاكهة والحليب خيار ممتاز ومشبع.\n"
    "المستخدم: وماذا عن العشاء؟\n"
    "المساعد: اجعله خفيفا، مثل سلطة الخضروات مع قطعة من السمك المشوي."
)
SLEEP = (
    "المستخدم: كم ساعة يحتاج الإنسان البالغ من النوم؟\n"
    "المساعد: يحتاج البالغ عادة من سبع إلى تسع ساعات كل ليلة.\n"
    "المستخدم: وكيف أنام بسرعة؟\n"
    "المساعد: ابتعد عن الشاشات قبل النوم بساعة واجعل الغرفة هادئة ومظلمة."
)
# topic -> (Arabic topic name in the generator's prompt, transcript, a phrase of it, the judge's scores)
CASES = {
    "public_transportation": (TRANSIT, "المترو", (5, 5, 5, 5, 5)),  # overall 5.0: kept
    "recycling": (RECYCLING, "التدوير", (4, 4, 2, 4, 4)),  # relevance 2 < 3: rejected
    "healthy_eating": (EATING, "الشوفان", (3, 3, 3, 3, 2)),  # overall 2.8 < 3: rejected
    "sleep_habits": (SLEEP, "الشاشات", (4, 4, 4, 4, 3)),  # overall 3.8: kept
}


def script_for(names: dict[str, str]):
    def script(prompt: str, seen: int) -> str:
        if '"rationale"' in prompt:  # the judge's prompt
            for _, phrase, scores in CASES.values():
                if phrase in prompt:
                    return judgment(scores)
            return "?"
        for topic, (transcript, _, _) in CASES.items():
            if names[topic] in prompt:
                return transcript
        return "?"

    return script


def test_judge_filter_rejects_below_threshold(ray_local, tmp_path):
    from hiwar.assets import load_topics
    from hiwar.generation.run import run_generate
    from hiwar.records_io import read_records

    names = {t["id"]: t["ar"] for t in load_topics() if t["id"] in CASES}
    with JudgeServer(script_for(names)) as server:
        overrides = run_overrides(
            tmp_path,
            "gen-model",
            "generation.engine=openai",
            f"generation.base_url={server.url}",
            f"generation.grid.topics=[{','.join(CASES)}]",
            "generation.judge.enabled=true",
            "generation.judge.engine=openai",
            "generation.judge.model=judge-model",
            f"generation.judge.base_url={server.url}",
            "generation.judge.thresholds={relevance: 3, overall: 3}",
            "generation.judge.bootstrap_samples=100",
        )
        out = run_generate(load_config(overrides=overrides))
        n_requests = len(server.requests)
        assert n_requests == 4 + 4  # each conversation generated once and judged once
        # structured_output (auto): the judge's requests carry its schema as response_format, generation's none.
        judged = [r for r in server.requests if r["model"] == "judge-model"]
        generated = [r for r in server.requests if r["model"] == "gen-model"]
        assert len(judged) == len(generated) == 4 and not any("response_format" in r for r in generated)
        rubric = Rubric.from_human_eval(load_config(overrides=overrides).human_eval)
        schema = {"name": "judgment", "schema": pointwise_schema(rubric, 300), "strict": True}
        assert all(r["response_format"] == {"type": "json_schema", "json_schema": schema} for r in judged)
        run_generate(load_config(overrides=overrides))  # a rerun judges nothing again
        assert len(server.requests) == n_requests

    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["counts"]["accepted"] == 2 and stats["rejects_by_reason"]["judge_below_threshold"] == 2
    judge = stats["judge"]
    assert judge["counts"]["below_threshold"] == 2 and judge["counts"]["kept"] == 2
    assert judge["thresholds"] == {"relevance": 3, "overall": 3}
    assert judge["accepted"]["overall"]["mean"] == pytest.approx((5.0 + 3.8) / 2)
    assert judge["accepted"]["criteria"]["overall_quality"]["distribution"] == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}
    assert judge["below_threshold"]["criteria"]["relevance"]["mean"] == pytest.approx((2 + 3) / 2)
    assert judge["all"]["overall"]["n"] == 4

    kept = {c.topic: c for c in read_records(out / "data")}
    assert sorted(kept) == ["public_transportation", "sleep_habits"]
    meta = kept["sleep_habits"].metadata["judge"]
    assert meta["scores"] == dict(zip(CRITERIA, CASES["sleep_habits"][2], strict=True))
    assert meta["overall"] == pytest.approx(3.8) and meta["model"] == "judge-model"
    rejects = {r["topic"]: r for r in pq.read_table(out / "rejects").to_pylist()}
    assert rejects["recycling"]["reasons"] == ["judge_below_threshold"]
    assert json.loads(rejects["recycling"]["judge"])["below"] == ["relevance"]
    assert json.loads(rejects["healthy_eating"]["judge"])["below"] == ["overall"]
    assert json.loads(rejects["healthy_eating"]["judge"])["scores"]["overall_quality"] == 2
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "## LLM judge filter" in card and "relevance >= 3, overall >= 3" in card


def test_thresholds_must_name_criteria(tmp_path):
    from hiwar.errors import ConfigError
    from hiwar.generation.run import run_generate

    overrides = run_overrides(
        tmp_path,
        "gen-model",
        "generation.engine=openai",
        "generation.base_url=http://127.0.0.1:9/v1",
        "generation.judge.enabled=true",
        "generation.judge.engine=openai",
        "generation.judge.model=judge-model",
        "generation.judge.base_url=http://127.0.0.1:9/v1",
        "generation.judge.thresholds={fluenc: 3}",
    )
    with pytest.raises(ConfigError, match=r"generation.judge.thresholds.fluenc: not a criterion"):
        run_generate(load_config(overrides=overrides))
