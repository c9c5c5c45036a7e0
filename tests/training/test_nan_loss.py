"""A run whose loss becomes nan stops with one line, before it saves such weights (real tiny HF Trainer)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from hiwar.assets import load_seed_conversations
from hiwar.cli import cli
from hiwar.records_io import write_jsonl
from hiwar.training.callbacks import NonFiniteLossError, StopOnNonFiniteLoss
from hiwar.training.config import TrainingConfig

# A finite learning rate that breaks the weights at once: Adam moves each weight by about the rate.
HUGE_RATE = 1.0e38


def test_nan_loss_stops_before_the_next_checkpoint(tmp_path: Path, tiny_gpt2: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer

    from hiwar.training.collate import SFTCollator
    from hiwar.training.data import prepare_split
    from hiwar.training.worker import SequenceDataset, training_arguments

    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    data = prepare_split(tokenizer, [c.messages for c in load_seed_conversations()[:16]], 128)
    # logging_steps past max_steps: the loss reaches the callback only because every saving step logs.
    settings = TrainingConfig(
        learning_rate=HUGE_RATE, max_steps=8, save_steps=2, logging_steps=100, per_device_train_batch_size=2
    )
    out = tmp_path / "checkpoints"
    trainer = Trainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_gpt2),
        args=training_arguments(settings, 0, str(out), has_eval=False, precision="fp32"),
        train_dataset=SequenceDataset(data.sequences),
        data_collator=SFTCollator(pad_id=tokenizer.pad_token_id),
        callbacks=[StopOnNonFiniteLoss("tiny")],
    )
    with pytest.raises(NonFiniteLossError) as caught:
        trainer.train()
    message = str(caught.value)
    assert "\n" not in message and message.startswith("training.models (tiny): the loss became nan at step ")
    step = int(re.search(r"at step (\d+)", message).group(1))
    assert step % settings.save_steps == 0 and step < settings.max_steps  # caught at a saving step, before saving
    saved = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    assert saved and all(s < step for s in saved)  # only checkpoints from before the loss broke


@pytest.mark.train
def test_nan_loss_is_one_line_from_hiwar_train(tmp_path: Path, tiny_gpt2: Path) -> None:
    data = write_jsonl(load_seed_conversations()[:16], tmp_path / "train.jsonl")
    sets = {
        "run_dir": tmp_path / "run",
        "training.models": f"[{{name: tiny, model: '{tiny_gpt2}'}}]",
        "training.learning_rate": f"{HUGE_RATE:.1e}",
        "training.num_workers": 0,  # Ray Train's local mode: the same callback, no worker start-up
        "training.max_steps": 6,
        "training.save_steps": 2,
        "training.max_seq_len": 128,
        "cluster.num_cpus": 2,
        "cluster.include_dashboard": "false",
    }
    args = ["train", "--dataset", str(data)] + [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    result = CliRunner().invoke(cli, args)
    assert isinstance(result.exception, SystemExit) and result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert errors[0].startswith("Error: training.models (tiny): the loss became nan at step ")
    assert "lower training.learning_rate" in errors[0]
    assert not (tmp_path / "run" / "models" / "tiny").exists()  # no model folder from broken weights
