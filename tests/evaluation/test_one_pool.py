"""One actor pool per model in ``hiwar evaluate``: the same numbers and files as a pool per metric, with the model
loaded once (counted by the loader's load log, which the session's Ray workers write)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from hiwar.config import load_config
from hiwar.records_io import write_parquet
from tests.evaluation.helpers import conversation

pytestmark = pytest.mark.ray

DIALOGUES = [
    ("food", "مرحبا، كيف حالك؟", "بخير والحمد لله.", "ما أشهر أكلة في مصر؟", "الكشري طبعا."),
    ("travel", "أريد السفر إلى المغرب.", "فكرة رائعة!", "ما أفضل وقت للزيارة؟", "الربيع أجمل وقت."),
    ("work", "عندي مقابلة عمل غدا.", "بالتوفيق!", "كيف أستعد لها؟", "اقرأ عن الشركة جيدا."),
]


def _evaluate(root: Path, model: Path, encoder: Path, one_pool: bool, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``run_evaluate`` of ``model`` on DIALOGUES (sampled replies: per-row seeds matter), one pool or two."""
    from hiwar.evaluation import model_evaluation
    from hiwar.evaluation.run import run_evaluate

    monkeypatch.setattr(model_evaluation, "_ONE_POOL", one_pool)
    data = root / "dataset" / "data" / "test-00000.parquet"
    if not data.is_file():  # a rerun scores the same file (a rewritten one has another fingerprint)
        write_parquet([conversation(f"c{i}", topic, *turns) for i, (topic, *turns) in enumerate(DIALOGUES)], data)
    overrides = [
        f"run_dir={root}",
        f"evaluation.raven.encoder={encoder}",
        "evaluation.raven.bootstrap_samples=100",
        "evaluation.raven.engine.sampling.max_tokens=8",
        "evaluation.raven.engine.sampling.temperature=0.9",
        "evaluation.raven.engine.micro_batch_size=2",
        "evaluation.perplexity.max_tokens_per_batch=256",
    ]
    return run_evaluate(load_config(None, overrides), models=[str(model)]) / "models"


def _loads(model: Path) -> list[str]:
    """The load log's lines for ``model`` (process id, model)."""
    from hiwar.models.loader import LOAD_LOG_ENV

    log = Path(os.environ[LOAD_LOG_ENV])
    lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
    return [line for line in lines if line.endswith(f"\t{model}")]


@pytest.fixture(scope="module")
def both_ways(ray_local, tmp_path_factory, tiny_gpt2: Path, tiny_encoder: Path) -> dict:
    """The tiny GPT-2 evaluated with a pool per metric, then with one pool; the model loads each run made."""
    root = tmp_path_factory.mktemp("one-pool")
    runs, loads = {}, {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for one_pool in (False, True):
            before = len(_loads(tiny_gpt2))
            runs[one_pool] = _evaluate(root / f"one_pool_{one_pool}", tiny_gpt2, tiny_encoder, one_pool, monkeypatch)
            loads[one_pool] = _loads(tiny_gpt2)[before:]
    (name,) = [p.name for p in runs[True].iterdir()]
    return {"apart": runs[False] / name, "one": runs[True] / name, "loads": loads}


def _summary(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_one_pool_writes_the_same_numbers_and_files(both_ways: dict) -> None:
    apart, one = both_ways["apart"], both_ways["one"]
    for metric, files in (("perplexity", ["conversations.parquet"]), ("raven", ["replies.parquet", "turns.parquet"])):
        assert _summary(one / metric / "summary.json") == _summary(apart / metric / "summary.json")
        assert (one / metric / "summary.json.done.json").is_file()
        for name in files:
            pd.testing.assert_frame_equal(pd.read_parquet(one / metric / name), pd.read_parquet(apart / metric / name))
    assert (one / "raven" / "replies.parquet.done.json").is_file()
    replies = pd.read_parquet(one / "raven" / "replies.parquet")
    assert len(replies) == 2 * len(DIALOGUES) and (replies["error"] == "").all()
    assert _summary(one / "perplexity" / "summary.json")["conversations"] == len(DIALOGUES)


def test_one_pool_loads_the_model_once(both_ways: dict) -> None:
    # A pool per metric: the scorer's actor and the reply engine's actor each load it; one pool: one actor.
    assert len(both_ways["loads"][False]) == 2 and len({line.split("\t")[0] for line in both_ways["loads"][False]}) == 2
    assert len(both_ways["loads"][True]) == 1


def test_one_pool_only_for_the_metrics_not_done(both_ways: dict, tiny_gpt2: Path, monkeypatch) -> None:
    """A rerun after RAVEN's summary is lost recomputes RAVEN alone (its saved replies: no model load)."""
    one = both_ways["one"]
    (one / "raven" / "summary.json.done.json").unlink()
    before = len(_loads(tiny_gpt2))
    from hiwar.evaluation.model_evaluation import ModelEvaluation

    seen = []
    monkeypatch.setattr(ModelEvaluation, "jobs", _recording(ModelEvaluation.jobs, seen))
    _evaluate(one.parent.parent.parent, tiny_gpt2, Path(_config_encoder(one)), True, monkeypatch)
    assert seen == [[("perplexity",), ("raven",)]]
    assert _loads(tiny_gpt2)[before:] == []
    report = _summary(one.parent.parent / "report.json")["models"][0]
    assert report["perplexity"]["resumed"] and not report["raven"]["resumed"]


def _recording(jobs, seen: list):
    def wrapper(self):
        out = jobs(self)
        seen.append(list(out))
        return out

    return wrapper


def _config_encoder(model_dir: Path) -> str:
    return _summary(model_dir / "raven" / "summary.json")["encoder"]


def test_a_failing_encoder_costs_perplexity_nothing(ray_local, tmp_path, tiny_gpt2: Path) -> None:
    """The shared job fails (no encoder there); each metric is then run apart: perplexity is scored, RAVEN fails."""
    from hiwar.evaluation.model_evaluation import ModelEvaluation

    seen = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(ModelEvaluation, "jobs", _recording(ModelEvaluation.jobs, seen))
        models = _evaluate(tmp_path, tiny_gpt2, tmp_path / "no-encoder", True, monkeypatch)
    assert seen == [[("perplexity", "raven")]]
    report = _summary(models.parent / "report.json")["models"][0]
    assert report["perplexity"]["status"] == "ok" and report["perplexity"]["conversations"] == len(DIALOGUES)
    assert report["raven"]["status"] == "failed" and "no-encoder" in report["raven"]["reason"]
