"""Actor start-up (:mod:`hiwar.startup`): transformers' unused optional imports are deferred, not lost; the warm-up is
idempotent; the loader still loads all four tiny architectures; a failed worker preload never stops a worker."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hiwar.startup as startup

# Run in a fresh interpreter: the deferral only acts before transformers' model code is first imported, which the
# test session has long done.
FRESH_PROCESS = """
import importlib.util, json, sys
import hiwar.startup as startup
from hiwar.models.loader import ModelRef, load_causal_lm, load_tokenizer

report = {"deferred": startup.defer_optional_imports(), "again": startup.defer_optional_imports()}
startup.warm_imports()
first = startup.warmed_at
startup.warm_imports()
report["warm_idempotent"] = startup.warmed_at == first
report["not_warmed"] = [m for m in ("torch", "transformers.modeling_utils", "ray.data") if m not in sys.modules]
import torch
report["models"] = {}
for name in sys.argv[1:]:
    ref = ModelRef(name)
    tokenizer, model = load_tokenizer(ref), load_causal_lm(ref).eval()
    with torch.inference_mode():
        out = model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=2, min_new_tokens=2, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    report["models"][name] = [type(model).__name__, out.shape[1]]
report["trainer_deferred"] = startup.defer_optional_imports(trainer=True)  # only the Trainer's module is new
from transformers import Trainer  # what a Ray Train worker imports next
report["not_imported"] = [m for m in ("sklearn", "scipy.optimize", "scipy.stats") if m not in sys.modules]

import transformers.generation.candidate_generator as cg
import transformers.loss.loss_for_object_detection as od
report["checks_restored"] = cg.is_sklearn_available() == (importlib.util.find_spec("sklearn") is not None) and (
    od.is_scipy_available() == (importlib.util.find_spec("scipy") is not None))
if importlib.util.find_spec("sklearn") is not None:
    from sklearn.metrics import roc_curve
    got, want = cg.roc_curve([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.4]), roc_curve([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.4])
    report["roc_same"] = all((a == b).all() for a, b in zip(got, want))
if importlib.util.find_spec("scipy") is not None:
    report["assignment"] = [list(map(int, x)) for x in od.linear_sum_assignment([[4, 1], [2, 0]])]
import transformers.data.metrics as glue
report["glue_check_restored"] = glue.is_sklearn_available() == (importlib.util.find_spec("sklearn") is not None)
if glue.is_sklearn_available():
    report["glue"] = glue.glue_compute_metrics("sts-b", [1.0, 2.0, 4.0], [1.0, 3.0, 2.0])
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def ported(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from hiwar.tiny_models import build_tiny_aragpt2, build_tiny_jais

    root = tmp_path_factory.mktemp("ports")
    jais = build_tiny_jais(root / "jais")
    return [jais, build_tiny_aragpt2(root / "aragpt2", tokenizer_dir=jais)]  # one tokenizer trained, not two


def test_fresh_actor_defers_optional_imports_and_loads_all_tiny_architectures(
    tiny_gpt2: Path, tiny_llama: Path, ported: list[Path]
) -> None:
    names = [str(p) for p in (tiny_gpt2, tiny_llama, *ported)]
    env = {k: v for k, v in os.environ.items() if k != startup.EAGER_ENV}
    proc = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, *names], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["deferred"] == len(startup.DEFERRED) and report["again"] == 0
    assert report["warm_idempotent"] and report["not_warmed"] == []
    assert [report["models"][n] for n in names] == [
        ["GPT2LMHeadModel", 5],
        ["LlamaForCausalLM", 5],
        ["JAISLMHeadModel", 5],
        ["AraGPT2LMHeadModel", 5],
    ]
    # Loading and generating never needed the deferred packages; the stand-ins give the same answers.
    assert report["trainer_deferred"] == len(startup.TRAINER_DEFERRED)
    assert report["not_imported"] == ["sklearn", "scipy.optimize", "scipy.stats"]
    assert report["checks_restored"] and report["glue_check_restored"]
    # STS-B's metrics through the stand-ins: Pearson and Spearman of (1, 2, 4) against (1, 3, 2), by hand.
    if "glue" in report:
        assert report["glue"]["pearson"] == pytest.approx(3 / 84**0.5)  # covariance 1 / sqrt(42/9 * 2)
        assert report["glue"]["spearmanr"] == pytest.approx(0.5)
    assert report.get("roc_same", True)
    assert report.get("assignment", [[0, 1], [1, 0]]) == [[0, 1], [1, 0]]


ENCODER_PROCESS = """
import json, sys
from hiwar.evaluation.raven.stage import ReplySimilarity
import pyarrow as pa
actor = ReplySimilarity(sys.argv[1])
out = actor(pa.table({"generated_text": ["مرحبا بك", ""], "reference": ["مرحبا بك", "شكرا"]}))
print(json.dumps({"cosine": out.column("cosine").to_pylist(),
                  "not_imported": [m for m in ("sklearn", "scipy.optimize", "scipy.stats") if m not in sys.modules]}))
"""


def test_fresh_encoder_actor_defers_optional_imports(tiny_encoder: Path) -> None:
    """RAVEN's encoder actor loads its model outside hiwar's loader: it must defer the same imports by itself."""
    env = {k: v for k, v in os.environ.items() if k != startup.EAGER_ENV}
    proc = subprocess.run(
        [sys.executable, "-c", ENCODER_PROCESS, str(tiny_encoder)], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["cosine"] == [pytest.approx(1.0), 0.0]  # a reply equal to its reference; an empty reply
    assert report["not_imported"] == ["sklearn", "scipy.optimize", "scipy.stats"]


def test_eager_env_turns_the_deferral_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(startup.EAGER_ENV, "1")
    monkeypatch.delitem(sys.modules, "transformers.generation.candidate_generator", raising=False)
    assert startup.defer_optional_imports() == 0
    assert "transformers.generation.candidate_generator" not in sys.modules


def test_a_failed_warm_up_never_stops_the_worker(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    """Ray ends a worker whose setup hook raises: the hook logs instead, and the actor imports on demand."""

    def broken() -> None:
        raise RuntimeError("no torch here")

    import hiwar.cluster.warm_workers as warm_workers

    marked = []  # the real mark() writes to Ray's KV store: outside a Ray worker, it would start a cluster (10 s)
    monkeypatch.setattr(warm_workers, "mark", marked.append)
    monkeypatch.setattr(startup, "warm_imports", broken)
    with caplog.at_level(logging.ERROR):
        startup.warm_worker()
    assert "warm-up failed" in caplog.text
    assert marked == ["registered", "warm"]  # the steps after the failed one still ran
