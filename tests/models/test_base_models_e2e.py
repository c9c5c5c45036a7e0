"""The paper's two base models, real architectures and tokenizers at tiny size, through ``hiwar train`` (a real Ray
Train worker process, which must know hiwar's ports by itself) and ``hiwar evaluate`` (perplexity and RAVEN
through the transformers engine):

- AraGPT2 from the hub's *older* revision (``model_type: gpt2`` over Grover weights), the case the stock GPT-2
  class loads silently wrong;
- ArabianGPT: GPT-2 with the AraNizer tokenizer, whose EOS and pad come from the config keys.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hiwar.assets import load_seed_conversations
from hiwar.config import RunConfig
from hiwar.records_io import write_parquet
from tests.models.arabiangpt import build_tiny_arabiangpt

pytestmark = [pytest.mark.train, pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def trained(ray_local, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from hiwar.tiny_models import build_tiny_aragpt2
    from hiwar.training.run import run_train

    root = tmp_path_factory.mktemp("base-models")
    records = load_seed_conversations()
    write_parquet(records[:60], root / "run" / "dataset" / "data" / "train-00000.parquet")
    write_parquet(records[60:80], root / "run" / "dataset" / "data" / "test-00000.parquet")
    aragpt2 = build_tiny_aragpt2(root / "aragpt2-old", revision="gpt2", positions=256)
    arabiangpt = build_tiny_arabiangpt(root / "arabiangpt", declare=False)
    config = RunConfig.model_validate(
        {
            "run_dir": str(root / "run"),
            "cluster": {"include_dashboard": False},
            "training": {
                "models": [
                    {"name": "aragpt2", "model": str(aragpt2)},  # one real Ray Train worker process
                    {
                        "name": "arabiangpt",
                        "model": str(arabiangpt),
                        "eos_token": "<EOS>",
                        "pad_token": "<PAD>",
                        "overrides": {"num_workers": 0, "resources_per_worker": {"CPU": 2.0}},
                    },
                ],
                "validation_split": None,
                "max_steps": 8,
                "save_steps": 8,
                "logging_steps": 1,
                "learning_rate": 3.0e-3,
                "warmup_steps": 0.0,
                "per_device_train_batch_size": 4,
                "num_workers": 1,
                "resources_per_worker": {"CPU": 1.0},
            },
        }
    )
    outputs = dict(zip(("aragpt2", "arabiangpt"), run_train(config), strict=True))
    return {"root": root, "config": config, "base": {"aragpt2": aragpt2, "arabiangpt": arabiangpt}, "out": outputs}


def _loss(model: object, tokenizer: object, conversations: list) -> float:
    import torch

    from hiwar.training.data import tokenize_conversation

    losses = []
    with torch.no_grad():
        for conv in conversations:
            ex = tokenize_conversation(tokenizer, conv.messages, 256)
            out = model(input_ids=torch.tensor([ex["input_ids"]]), labels=torch.tensor([ex["labels"]]))
            losses.append(float(out.loss))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("name", ["aragpt2", "arabiangpt"])
def test_trains_every_weight_and_reloads_through_the_auto_class(trained: dict, name: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hiwar.models import register_architectures
    from hiwar.models.loader import ModelRef, load_causal_lm

    register_architectures()
    out = trained["out"][name]
    tuned, info = AutoModelForCausalLM.from_pretrained(out, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    base = load_causal_lm(ModelRef(str(trained["base"][name])))
    assert type(base) is type(tuned)
    assert type(tuned).__name__ == ("AraGPT2LMHeadModel" if name == "aragpt2" else "GPT2LMHeadModel")
    tuned_params = dict(tuned.named_parameters())
    for param, before in base.named_parameters():
        assert not torch.equal(before, tuned_params[param]), f"{param} did not change"
    tokenizer = AutoTokenizer.from_pretrained(out)
    train = load_seed_conversations()[:20]
    assert _loss(tuned, tokenizer, train) < _loss(base, tokenizer, train) - 0.05
    if name == "arabiangpt":  # the config keys were saved with the fine-tuned tokenizer
        assert (tokenizer.eos_token, tokenizer.pad_token) == ("<EOS>", "<PAD>")
    else:  # saved as what it is: a reload can never pick the stock GPT-2 class again
        assert json.loads((out / "config.json").read_text())["model_type"] == "aragpt2"


def test_evaluate_scores_both_through_the_transformers_engine(trained: dict, tiny_encoder: Path) -> None:
    from hiwar.config import load_config
    from hiwar.evaluation.run import run_evaluate

    root = trained["root"]
    config = load_config(
        None,
        [
            f"run_dir={root / 'run'}",
            f"evaluation.raven.encoder={tiny_encoder}",
            "evaluation.raven.turns=last",
            "evaluation.raven.max_conversations=6",
            "evaluation.raven.bootstrap_samples=100",
            "evaluation.raven.engine.sampling.max_tokens=6",
        ],
    )
    out = run_evaluate(config, models=[str(p) for p in trained["out"].values()])
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    for model in report["models"]:
        assert model["perplexity"]["status"] == "ok", model
        assert model["perplexity"]["perplexity"] > 1.0 and model["perplexity"]["tokens"] > 0
        assert model["raven"]["status"] == "ok" and model["raven"]["turns"] == 6, model
        assert -1.0 <= model["raven"]["raven"] <= 1.0


def test_vllm_is_swapped_for_transformers_on_aragpt2_only(trained: dict, tiny_gpt2: Path) -> None:
    from hiwar.generation.config import EngineConfig
    from hiwar.generation.engines import runnable_engine

    aragpt2 = EngineConfig(engine="vllm", model=str(trained["out"]["aragpt2"]))
    assert runnable_engine(aragpt2).engine == "transformers"
    gpt2 = EngineConfig(engine="vllm", model=str(tiny_gpt2))
    assert runnable_engine(gpt2).engine == "vllm"
