"""``evaluation.judge`` inside a full ``hiwar evaluate``: two tiny models write RAVEN replies, the judge (openai
engine, a scripted server on 127.0.0.1) scores them and compares them pairwise; the report carries the judge's numbers
beside perplexity and RAVEN, computed here by hand from the replies the models wrote. A rerun asks the judge nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hiwar.config import load_config
from hiwar.records_io import write_parquet
from tests.evaluation.helpers import conversation
from tests.judge.judge_server import CRITERIA, JudgeServer, judgment

pytestmark = pytest.mark.ray

DIALOGUES = [
    ("food", "مرحبا، كيف حالك؟", "بخير والحمد لله.", "ما أشهر أكلة في مصر؟"),
    ("travel", "أريد السفر إلى المغرب.", "فكرة رائعة!", "ما أفضل وقت للزيارة؟"),
    ("work", "عندي مقابلة عمل غدا.", "بالتوفيق!", "كيف أستعد لها؟"),
]
END = "\n\nAnswer with one JSON"  # the English v1 prompt: the answer format follows the reply (or reply B)


def level(reply: str) -> int:
    """The judge's fixed view of a reply: 1-5 from its code points."""
    return 1 + sum(map(ord, reply)) % 5


def reply_scores(reply: str) -> tuple[int, ...]:
    """A reply's judgment, in criterion order (its overall rises with its level)."""
    s = level(reply)
    return (s, 6 - s, s, 3, max(s - 1, 1))


def script(prompt: str, seen: int) -> str:
    """Pointwise: :func:`reply_scores` of the rated reply; pairwise: the reply of higher level (tie when equal)."""
    if "\n\nReply A:\n" in prompt:
        body = prompt.split("\n\nReply A:\n", 1)[1].rsplit(END, 1)[0]
        a, b = (level(r) for r in body.rsplit("\n\nReply B:\n", 1))
        winner = "A" if a > b else "B" if a < b else "tie"
        return json.dumps({"rationale": "reason", "winner": winner})
    return judgment(reply_scores(prompt.split("\n\nReply to rate:\n", 1)[1].rsplit(END, 1)[0]))


def overrides(run_dir: Path, encoder: Path, url: str) -> list[str]:
    return [
        f"run_dir={run_dir}",
        f"evaluation.raven.encoder={encoder}",
        "evaluation.raven.turns=last",
        "evaluation.raven.bootstrap_samples=100",
        "evaluation.raven.engine.sampling.max_tokens=8",
        "evaluation.raven.engine.micro_batch_size=1",
        "evaluation.perplexity.max_tokens_per_batch=512",
        "evaluation.judge.enabled=true",
        "evaluation.judge.engine=openai",
        "evaluation.judge.model=judge-model",
        f"evaluation.judge.base_url={url}",
        "evaluation.judge.max_retries=0",
        "evaluation.judge.language=en",
        "evaluation.judge.bootstrap_samples=100",
        "evaluation.judge.pairwise.enabled=true",
    ]


def written_replies(out: Path, model: str) -> dict[str, str]:
    """Turn (``conversation#turn``) -> the reply ``model`` wrote, as RAVEN saved it (error rows left out)."""
    frame = pd.read_parquet(out / "models" / model / "raven" / "replies.parquet")
    frame = frame[frame["error"].fillna("") == ""]
    return {f"{c}#{t}": r for c, t, r in zip(frame["conversation_id"], frame["turn"], frame["reply"], strict=True)}


def test_evaluate_reports_judge_scores_and_win_rates(ray_local, tmp_path, tiny_gpt2, tiny_llama, tiny_encoder):
    from click.testing import CliRunner

    from hiwar.cli import cli
    from hiwar.evaluation.run import run_evaluate

    convs = [conversation(f"c{i}", topic, *turns) for i, (topic, *turns) in enumerate(DIALOGUES)]
    write_parquet(convs, tmp_path / "run" / "dataset" / "data" / "test-00000.parquet")  # the run's default path
    models = [str(tiny_gpt2), str(tiny_llama)]
    with JudgeServer(script) as server:
        sets = overrides(tmp_path / "run", tiny_encoder, server.url)
        out = run_evaluate(load_config(overrides=sets), models=models)
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        x, y = (m["name"] for m in report["models"])
        replies = {m: written_replies(out, m) for m in (x, y)}
        shared = sorted(set(replies[x]) & set(replies[y]))
        assert len(replies[x]) == len(replies[y]) == len(shared) == 3  # one last turn per conversation
        # Every reply judged once, every shared turn once in each order; every judge request asked for the schema.
        assert len(server.requests) == 3 + 3 + 2 * 3
        assert all(r["response_format"]["type"] == "json_schema" for r in server.requests)
        n_requests = len(server.requests)

        # A rerun (through the CLI) resumes every metric and asks the judge nothing.
        args = ["evaluate", *(a for m in models for a in ("-m", m)), *(a for s in sets for a in ("--set", s))]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert len(server.requests) == n_requests
    again = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert all(m[k]["resumed"] for m in again["models"] for k in ("perplexity", "raven"))

    md = (out / "report.md").read_text(encoding="utf-8")
    for got in (report, again):
        table = {row["model"]: row for row in got["table"]}
        for model in got["models"]:
            judge, scores = model["judge"], [reply_scores(r) for r in replies[model["name"]].values()]
            assert model["perplexity"]["status"] == model["raven"]["status"] == judge["status"] == "ok"
            assert judge["counts"]["judged"] == 3 and judge["counts"]["kept_aside"] == 0
            for i, name in enumerate(CRITERIA):
                assert judge["criteria"][name]["mean"] == pytest.approx(sum(s[i] for s in scores) / 3)
            overall = sum(sum(s) / 5 for s in scores) / 3
            assert table[model["name"]]["judge_overall"] == pytest.approx(overall)
            fluency = judge["criteria"]["fluency"]
            assert f"| {model['name']} | {fluency['mean']:.2f} [{fluency['ci_low']:.2f}, " in md

    # Pairwise: the judge prefers the reply of higher level whatever its position, so both orders agree.
    levels = [(level(replies[x][t]), level(replies[y][t])) for t in shared]
    win_rate = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in levels) / 3
    pair = report["judge_pairwise"]["pairs"][f"{x}~{y}"]
    assert pair["turns"] == 3 and pair["win_rate"]["value"] == pytest.approx(win_rate)
    assert pair["tie"]["value"] == pytest.approx(sum(a == b for a, b in levels) / 3)
    assert pair["position"]["orders_agree"] == 1.0
    decided = sum(a != b for a, b in levels)
    assert pair["position"]["first_preferred"] == (0.5 if decided else None)  # each decided turn: once A, once B
    assert f"| {x} vs {y} | 3 | {win_rate:.2f}" in md
    assert again["judge_pairwise"]["pairs"][f"{x}~{y}"]["win_rate"] == pair["win_rate"]
