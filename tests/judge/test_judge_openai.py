"""The judge through the openai engine (Ray Data LLM's HTTP processor) against a scripted server on 127.0.0.1:
`hiwar judge` with retries and kept-aside items, and resume, checked against hand-computed numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from hiwar.cli import cli
from tests.judge.conftest import conversation, write_dataset
from tests.judge.judge_server import CRITERIA, JudgeServer, judgment, tagged_scores

pytestmark = [pytest.mark.ray]

# The judged conversations: the last reply carries the scores the server answers with.
SCORES = {
    "c1": (5, 5, 5, 5, 5),
    "c2": (1, 2, 3, 4, 5),
    "c3": (3, 3, 3, 3, 3),  # flaky: prose around the JSON first, then a good judgment
    "c5": (4, 4, 2, 4, 4),
}
TOPICS = {"c1": "travel", "c2": "food", "c3": "travel", "c4": "food", "c5": "food"}


def script(prompt: str, seen: int) -> str:
    """Tagged scores; ``[[bad]]``: always a score off the scale; ``[[flaky]]``: prose around the JSON the first time."""
    if "[[bad]]" in prompt:
        return judgment((9, 3, 3, 3, 3))
    scores = tagged_scores(prompt)
    if scores is None:
        return "لا أعرف"
    if "[[flaky]]" in prompt and seen == 0:
        return "Sure! " + judgment(scores)
    return judgment(scores)


def dataset(tmp_path: Path) -> Path:
    convs = [conversation(cid, TOPICS[cid], f"نعم [[s={','.join(map(str, s))}]]") for cid, s in SCORES.items()]
    convs[2] = conversation("c3", "travel", "نعم [[flaky]] [[s=3,3,3,3,3]]")
    convs.append(conversation("c4", "food", "نعم [[bad]]"))
    return write_dataset(tmp_path / "dataset", convs)


def judge_args(server: JudgeServer, out: Path, *extra: str) -> list[str]:
    return [
        "judge",
        "--out",
        str(out),
        "--set",
        "cluster.include_dashboard=false",
        "--set",
        "judge.engine=openai",
        "--set",
        "judge.model=judge-model",
        "--set",
        f"judge.base_url={server.url}",
        "--set",
        "judge.max_retries=0",
        "--set",
        "judge.shard_size=2",
        "--set",
        "judge.bootstrap_samples=200",
        *extra,
    ]


def test_judge_scores_retries_and_keeps_aside(ray_local, tmp_path):
    data = dataset(tmp_path)
    out = tmp_path / "judged"
    with JudgeServer(script) as server:
        result = CliRunner().invoke(cli, [*judge_args(server, out), str(data)])
        assert result.exit_code == 0, result.output
        first_requests = len(server.requests)
        # Round 1: 5 items; round 2: c3 (prose) and c4 (off scale); round 3: c4 again.
        assert first_requests == 5 + 2 + 1
        temps = sorted(r["temperature"] for r in server.requests)
        assert temps == [0.0] * 5 + [0.7] * 3  # greedy first tries, retries at judge.retry_temperature
        assert len({r["seed"] for r in server.requests}) == 8  # a new seed per attempt
        assert all(r["model"] == "judge-model" and r["messages"][0]["role"] == "system" for r in server.requests)
        # Resume: every shard is finished, so a rerun asks the server nothing.
        again = CliRunner().invoke(cli, [*judge_args(server, out), str(data)])
        assert again.exit_code == 0, again.output
        assert len(server.requests) == first_requests

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    c = summary["counts"]
    assert (c["items"], c["judged"], c["kept_aside"], c["retried"]) == (5, 4, 1, 2)
    assert c["attempts"] == {"1": 3, "2": 1, "3": 1}
    assert c["failed_attempts"] == 4
    assert c["failed_attempts_by_reason"] == {"out_of_scale": 3, "text_around_json": 1}
    assert c["kept_aside_by_reason"] == {"out_of_scale": 1}
    means = {n: sum(s[i] for s in SCORES.values()) / 4 for i, n in enumerate(CRITERIA)}
    for name, stats in summary["criteria"].items():
        assert stats["mean"] == pytest.approx(means[name])
        assert stats["n"] == 4 and stats["ci_low"] <= stats["mean"] <= stats["ci_high"]
    assert summary["criteria"]["fluency"]["distribution"] == {"1": 1, "2": 0, "3": 1, "4": 1, "5": 1}
    overall = [sum(s) / 5 for s in SCORES.values()]
    assert summary["overall"]["mean"] == pytest.approx(sum(overall) / 4)
    assert summary["per_topic"]["travel"]["overall"] == pytest.approx((5 + 3) / 2)
    assert summary["per_topic"]["food"]["n"] == 2  # c4 is kept aside, not scored
    assert summary["throughput"]["shards_skipped"] == 3  # the rerun's

    judged = {r["item_id"]: r for r in pq.read_table(out / "judgments.parquet").to_pylist()}
    assert sorted(judged) == ["c1", "c2", "c3", "c5"]
    assert [judged["c2"][f"score_{n}"] for n in CRITERIA] == [1, 2, 3, 4, 5]
    assert judged["c3"]["attempts"] == 2 and judged["c3"]["reasons"][0].startswith("text_around_json")
    assert json.loads(judged["c1"]["rationales_json"])["fluency"] == "تعليل fluency"
    aside = pq.read_table(out / "kept_aside.parquet").to_pylist()
    assert [r["item_id"] for r in aside] == ["c4"]
    assert aside[0]["attempts"] == 3 and len(aside[0]["reasons"]) == 3
    assert aside[0]["reason"] == "out_of_scale: fluency's score 9 is off the scale 1-5"
    assert '"score": 9' in aside[0]["raw_text"] and aside[0]["score_fluency"] is None
    assert "kept aside: 1" in (out / "report.md").read_text(encoding="utf-8")


def test_judge_scores_an_export_for_calibration(ray_local, tmp_path):
    """`hiwar judge <export>` scores the blind items (through the key), then `human-eval analyze --judge` sets the
    judge beside the raters; a criterion the judge scores the same everywhere is reported undefined."""
    from hiwar.records_io import write_jsonl
    from tests.evaluation.human.helpers import fill_sheets

    # 8 conversations of two models; the judge's fluency score is tagged in the rated (last) reply.
    fluency = [1, 2, 3, 4, 5, 2, 4, 5]
    convs = [
        conversation(f"e{i}", "travel", f"نعم [[s={f},3,3,3,3]]", model="m1" if i % 2 else "m2")
        for i, f in enumerate(fluency)
    ]
    export = tmp_path / "export"
    common = ["--set", "human_eval.samples_per_model=4", "--set", "human_eval.bootstrap_samples=200"]
    common += ["--set", "human_eval.plots=false"]
    result = CliRunner().invoke(cli, ["human-eval", "export", str(write_jsonl(convs, tmp_path / "c.jsonl")),
                                      "--out", str(export), *common])  # fmt: skip
    assert result.exit_code == 0, result.output
    out = tmp_path / "judged"
    with JudgeServer(script) as server:
        result = CliRunner().invoke(cli, [*judge_args(server, out), *common, str(export)])
        assert result.exit_code == 0, result.output
        assert all("[[s=" in r["messages"][-1]["content"] for r in server.requests)
        assert not any("m1" in r["messages"][-1]["content"] for r in server.requests)  # blind: no model name
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    key = json.loads((export / "key.json").read_text(encoding="utf-8"))
    assert summary["sources"]["export_id"] == key["export_id"] and summary["counts"]["judged"] == 8
    assert sorted(summary["per_model"]) == ["m1", "m2"]

    judged = {r["item_id"]: r["score_fluency"] for r in pq.read_table(out / "judgments.parquet").to_pylist()}
    assert sorted(judged) == sorted(key["items"])

    def rater(name: str, item: dict, criterion: str) -> int:
        score = next(f for c, f in zip(convs, fluency, strict=True) if c.id == item["item_id"])
        if criterion == "fluency":  # rater-1 agrees with the judge, rater-2 is one point kinder below 5
            return score if name == "rater-1" else min(score + 1, 5)
        return 3 + (int(item["item_id"][1:]) % 2)  # the judge says 3 everywhere on the other criteria

    fill_sheets(export, rater)
    report = tmp_path / "report"
    result = CliRunner().invoke(
        cli, ["human-eval", "analyze", str(export), "--judge", str(out), "--out", str(report), *common]
    )
    assert result.exit_code == 0, result.output
    cal = json.loads((report / "report.json").read_text(encoding="utf-8"))["judge_calibration"]
    flu = cal["criteria"]["fluency"]
    assert flu["judge_vs_rater"][0]["kappa"]["unweighted"]["value"] == pytest.approx(1.0)
    assert flu["judge_vs_rater"][0]["exact_agreement"] == 1.0
    assert flu["judge_vs_rater"][1]["within_one"] == 1.0
    coh = cal["criteria"]["coherence"]["judge_vs_rater"][0]
    assert (
        coh["kappa"]["linear"]["value"] is None
        and "judge gave every item the same score (3)" in coh["kappa"]["linear"]["reason"]
    )
    md = (report / "report.md").read_text(encoding="utf-8")
    assert "## Judge calibration" in md and "| judge vs rater-1 | 8 | 1.000" in md
    assert "coherence, judge vs rater-1: kappa (unweighted) undefined" in md
    scores_csv = (report / "scores.csv").read_text(encoding="utf-8-sig")
    assert "fluency.judge" in scores_csv.splitlines()[0]


def test_a_server_that_refuses_the_schema_is_named_in_the_reason(ray_local, tmp_path):
    """structured_output (auto) sends the judgment's schema; a server that answers 400 to it leaves the items kept
    aside with a reason that says so (no crash); structured_output=off then judges them through the parser alone."""
    data = write_dataset(tmp_path / "dataset", [conversation("c1", "travel", "نعم [[s=5,4,3,2,1]]")])
    out = tmp_path / "judged"
    with JudgeServer(script, refuse_schema=True) as server:
        result = CliRunner().invoke(cli, [*judge_args(server, out, "--set", "judge.max_attempts=2"), str(data)])
        assert result.exit_code == 0, result.output
        assert len(server.requests) == 2 and all(r["response_format"]["type"] == "json_schema" for r in server.requests)
        aside = pq.read_table(out / "kept_aside.parquet").to_pylist()
        assert [r["item_id"] for r in aside] == ["c1"]
        reason = aside[0]["reason"]
        assert reason.startswith("request_error: the server rejected response_format") and "HTTP 400" in reason
        off = judge_args(server, out, "--set", "judge.structured_output=off")
        result = CliRunner().invoke(cli, [*off, str(data)])
        assert result.exit_code == 0, result.output
        assert len(server.requests) == 3 and "response_format" not in server.requests[-1]
    judged = pq.read_table(out / "judgments.parquet").to_pylist()
    assert [(r["item_id"], [r[f"score_{n}"] for n in CRITERIA]) for r in judged] == [("c1", [5, 4, 3, 2, 1])]
