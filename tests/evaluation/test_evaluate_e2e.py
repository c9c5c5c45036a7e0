"""End to end through local Ray: two tiny models and a broken one, perplexity, bits per byte, RAVEN, the report, resume
and the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from hiwar.config import load_config
from hiwar.models.spec import ModelSpec
from hiwar.records_io import write_parquet
from tests.evaluation.helpers import conversation

pytestmark = pytest.mark.ray

EXCHANGES = [
    ("مرحبا، كيف حالك؟", "بخير والحمد لله.", "ما أشهر أكلة في مصر؟"),
    ("أريد السفر إلى المغرب.", "فكرة رائعة!", "ما أفضل وقت للزيارة؟"),
    ("عندي مقابلة عمل غدا.", "بالتوفيق!", "كيف أستعد لها؟"),
    ("ما رأيك في كرة القدم؟", "رياضة شعبية جدا.", "من أشهر لاعب عربي؟"),
]
TOPICS = ["food", "travel", "work", "sport"]


def _overrides(run_dir: Path, encoder: Path) -> list[str]:
    return [
        f"run_dir={run_dir}",
        f"evaluation.raven.encoder={encoder}",
        "evaluation.raven.turns=last",
        "evaluation.raven.bootstrap_samples=200",
        "evaluation.raven.engine.sampling.max_tokens=8",
        "evaluation.raven.engine.micro_batch_size=1",
        "evaluation.perplexity.max_tokens_per_batch=512",
    ]


def _reference_replies(config, model: Path) -> dict[str, str]:
    """The tiny GPT-2's greedy reply to each dialogue, through the same engine settings RAVEN uses."""
    import ray

    from hiwar.evaluation.raven.job import reply_engine
    from hiwar.generation.engines import generate_texts

    requests = []
    for i, (user1, reply1, user2) in enumerate(EXCHANGES):
        messages = [
            {"role": "user", "content": user1},
            {"role": "assistant", "content": reply1},
            {"role": "user", "content": user2},
        ]
        requests.append({"request_id": f"c{i}", "seed": 0, "messages": messages})
    engine = reply_engine(ModelSpec(model=str(model)), config.evaluation.raven)
    out = generate_texts(ray.data.from_items(requests), engine).to_pandas()
    return dict(zip(out["request_id"], out["generated_text"], strict=True))


@pytest.fixture(scope="module")
def evaluated(ray_local, tmp_path_factory, tiny_gpt2: Path, tiny_llama: Path, tiny_encoder: Path) -> dict:
    from hiwar.evaluation.run import run_evaluate

    root = tmp_path_factory.mktemp("evaluate")
    config = load_config(None, _overrides(root / "run", tiny_encoder))
    replies = _reference_replies(config, tiny_gpt2)
    convs = [
        conversation(f"c{i}", TOPICS[i], *EXCHANGES[i], replies[f"c{i}"])
        for i in range(len(EXCHANGES))
        if replies[f"c{i}"].strip()
    ]
    assert len(convs) >= 2, "the tiny model should write non-empty replies"
    convs.append(conversation("c-silent", "food", "هل من أحد هنا؟"))
    write_parquet(convs, root / "run" / "dataset" / "data" / "test-00000.parquet")  # the default path
    broken = root / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    models = [str(tiny_gpt2), str(tiny_llama), str(broken)]
    out = run_evaluate(config, models=models)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return {"out": out, "report": report, "config": config, "models": models, "convs": convs, "root": root}


def test_model_that_wrote_the_references_scores_one(evaluated: dict) -> None:
    gpt2, llama, broken = evaluated["report"]["models"]
    assert gpt2["raven"]["status"] == "ok" and gpt2["raven"]["turns"] == len(evaluated["convs"]) - 1
    assert gpt2["raven"]["raven"] == pytest.approx(1.0, abs=1e-5)
    assert llama["raven"]["status"] == "ok" and llama["raven"]["raven"] < 0.999
    assert llama["raven"]["ci_low"] <= llama["raven"]["raven"] <= llama["raven"]["ci_high"]
    turns = pd.read_parquet(evaluated["out"] / "models" / gpt2["name"] / "raven" / "turns.parquet")
    assert (turns["generated_text"] == turns["reference"]).all()
    assert broken["perplexity"]["status"] == broken["raven"]["status"] == "failed"
    assert "cannot be loaded" in broken["raven"]["reason"]
    assert gpt2["raven"]["skipped"] == {"no assistant turn": {"count": 1, "examples": ["c-silent"]}}


def test_perplexity_job_equals_plain_model_loss(evaluated: dict, tiny_gpt2: Path) -> None:
    import torch

    from hiwar.models.loader import ModelRef, load_causal_lm, load_tokenizer, pick_device
    from hiwar.training.data import tokenize_conversation

    gpt2 = evaluated["report"]["models"][0]
    frame = pd.read_parquet(evaluated["out"] / "models" / gpt2["name"] / "perplexity" / "conversations.parquet")

    pick_device(1)
    model = load_causal_lm(ModelRef(str(tiny_gpt2)), torch.float32).eval()
    tokenizer = load_tokenizer(ModelRef(str(tiny_gpt2)))
    total_nll = total_tokens = total_bytes = 0
    for conv in evaluated["convs"][:-1]:
        enc = tokenize_conversation(tokenizer, conv.messages, 100_000)
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([enc["input_ids"]]), labels=torch.tensor([enc["labels"]])).loss
        count = sum(1 for t in enc["labels"][1:] if t != -100)
        row = frame.set_index("id").loc[conv.id]
        assert row["n_tokens"] == count and row["nll"] / count == pytest.approx(loss.item(), rel=1e-5)
        total_nll, total_tokens = total_nll + loss.item() * count, total_tokens + count
        total_bytes += sum(len(m["content"].encode()) for m in conv.messages if m["role"] == "assistant")
    ppl = gpt2["perplexity"]
    assert ppl["perplexity"] == pytest.approx(float(torch.exp(torch.tensor(total_nll / total_tokens))), rel=1e-5)
    assert ppl["bits_per_byte"] == pytest.approx(total_nll / 0.6931471805599453 / total_bytes, rel=1e-5)


def test_report_files_match_json(evaluated: dict) -> None:
    out, report = evaluated["out"], evaluated["report"]
    with (out / "report.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert [r["path"] for r in rows] == evaluated["models"]
    for row, table in zip(rows, report["table"], strict=True):
        for key in ("perplexity_within_model", "bits_per_byte", "bits_per_char", "raven", "raven_ci_low"):
            if table[key] is not None:
                assert float(row[key]) == table[key] and f"{table[key]:.4f}" in markdown
    assert report["dataset"]["fingerprint"] and report["dataset"]["fingerprint"] in markdown
    assert (out / "config.resolved.yaml").is_file()
    assert {p.name for p in (out / "plots").iterdir()} >= {"raven.png", "bits_per_byte.png"}


def test_rerun_resumes_and_cli_reports(evaluated: dict) -> None:
    from click.testing import CliRunner

    from hiwar.cli import cli
    from hiwar.evaluation.run import run_evaluate

    out = run_evaluate(evaluated["config"], models=evaluated["models"][:2])
    models = json.loads((out / "report.json").read_text(encoding="utf-8"))["models"]
    assert all(m[metric]["resumed"] for m in models for metric in ("perplexity", "raven"))
    assert [m["raven"]["raven"] for m in models] == [m["raven"]["raven"] for m in evaluated["report"]["models"][:2]]
    args = ["evaluate", "-m", evaluated["models"][2]]
    for override in _overrides(evaluated["root"] / "run", Path(evaluated["config"].evaluation.raven.encoder)):
        args += ["--set", override]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "nothing could be evaluated" in result.output
