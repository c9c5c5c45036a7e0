"""``evaluation.judge``: judge scores per model and pairwise win rates in the evaluation report, through the openai
engine against a scripted server that always prefers the reply shown first (position bias)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hiwar.config import load_config
from tests.judge.judge_server import CRITERIA, JudgeServer, judgment, tagged_scores

pytestmark = [pytest.mark.ray]

# model -> scores its replies get (one per turn); both models answer the same three turns.
REPLY_SCORES = {
    "alpha": [(5, 5, 5, 5, 5), (4, 4, 4, 4, 4), (5, 4, 5, 4, 5)],
    "beta": [(2, 2, 2, 2, 2), (3, 3, 3, 3, 3), (1, 2, 3, 2, 1)],
}
TOPICS = ["travel", "food", "travel"]


def always_first(prompt: str, seen: int) -> str:
    """Pairwise: always reply A (the one shown first); pointwise: the reply's tagged scores."""
    if '"winner"' in prompt:
        return json.dumps({"rationale": "الأول أفضل", "winner": "A"}, ensure_ascii=False)
    return judgment(tagged_scores(prompt))


def write_replies(out_dir: Path) -> None:
    """``models/<name>/raven/replies.parquet`` as ``hiwar evaluate`` writes them (plus one failed reply)."""
    for model, scores in REPLY_SCORES.items():
        rows = [
            {
                "request_id": f"conv-{n}#3",
                "conversation_id": f"conv-{n}",
                "turn": 3,
                "topic": TOPICS[n],
                "context": json.dumps([{"role": "user", "content": f"سؤال {n}"}], ensure_ascii=False),
                "reply": f"جواب [[s={','.join(map(str, s))}]]",
                "generated_text": "",
                "error": "",
                "model": model,
            }
            for n, s in enumerate(scores)
        ]
        rows.append({**rows[0], "request_id": "conv-9#3", "conversation_id": "conv-9", "reply": "", "error": "boom"})
        path = out_dir / "models" / model / "raven" / "replies.parquet"
        path.parent.mkdir(parents=True)
        pd.DataFrame(rows).to_parquet(path, index=False)


def test_judge_metric_and_pairwise_in_the_report(ray_local, tmp_path):
    from hiwar.evaluation.report import write_report
    from hiwar.judge.metric import run_judge_metric

    write_replies(tmp_path)
    results = [
        {
            "name": m,
            "path": f"/models/{m}",
            "trust_remote_code": False,
            "perplexity": {"status": "disabled"},
            "raven": {"status": "ok", "raven": 0.5, "ci_low": 0.4, "ci_high": 0.6, "turns": 3},
        }
        for m in REPLY_SCORES
    ]
    with JudgeServer(always_first) as server:
        config = load_config(
            overrides=[
                f"run_dir={tmp_path}",
                "evaluation.judge.enabled=true",
                "evaluation.judge.engine=openai",
                "evaluation.judge.model=judge-model",
                f"evaluation.judge.base_url={server.url}",
                "evaluation.judge.pairwise.enabled=true",
                "evaluation.judge.bootstrap_samples=200",
            ]
        )
        pairwise = run_judge_metric(config, tmp_path, results)
        assert len(server.requests) == 2 * 3 + 2 * 3  # 3 replies per model, 3 shared turns in 2 orders
    data = {"path": "/data", "split": "test", "fingerprint": "f", "conversations": 3, "files": []}
    write_report(tmp_path, results, data, config, {"hiwar": "0", "git": None}, pairwise)

    for model, scores in REPLY_SCORES.items():
        judge = results[[r["name"] for r in results].index(model)]["judge"]
        assert judge["status"] == "ok" and judge["counts"]["judged"] == 3  # the failed reply is not judged
        for i, name in enumerate(CRITERIA):
            assert judge["criteria"][name]["mean"] == pytest.approx(sum(s[i] for s in scores) / 3)
        assert judge["overall"]["mean"] == pytest.approx(sum(sum(s) / 5 for s in scores) / 3)
        assert judge["per_topic"]["food"]["overall"] == pytest.approx(sum(scores[1]) / 5)
    pair = pairwise["pairs"]["alpha~beta"]
    # Always "A": alpha wins the order it is shown first in and loses the other, so every turn is a tie.
    assert pair["turns"] == 3 and pair["win_rate"]["value"] == pytest.approx(0.5)
    assert (pair["win"]["value"], pair["tie"]["value"], pair["loss"]["value"]) == (0.0, 1.0, 0.0)
    assert pair["position"]["first_preferred"] == 1.0 and pair["position"]["orders_agree"] == 0.0
    assert pairwise["position_bias"]["first_preferred"] == 1.0

    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    table = {row["model"]: row for row in report["table"]}
    assert table["alpha"]["judge_overall"] == pytest.approx((5 + 4 + 4.6) / 3)
    assert table["beta"]["judge_status"] == "ok"
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "## LLM judge" in md and "| alpha vs beta | 3 | 0.50" in md
    assert "the reply shown first won 1.00 of decided verdicts" in md
    assert "**judge**: Judge = `judge-model`" in md
    assert (tmp_path / "judge" / "judgments.parquet").is_file()


def test_judge_metric_failure_is_a_status(ray_local, tmp_path):
    from hiwar.judge.metric import run_judge_metric

    write_replies(tmp_path)
    results = [{"name": m, "raven": {"status": "ok"}} for m in REPLY_SCORES]
    results.append({"name": "gamma", "raven": {"status": "failed", "reason": "no such model"}})
    config = load_config(overrides=[f"run_dir={tmp_path}", "evaluation.judge.enabled=true"])  # no judge model
    assert run_judge_metric(config, tmp_path, results) is None
    assert results[0]["judge"]["status"] == "failed" and "evaluation.judge.model" in results[0]["judge"]["reason"]
    assert "no RAVEN replies to judge (RAVEN: no such model)" in results[2]["judge"]["reason"]
