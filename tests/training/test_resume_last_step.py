"""A run resumed from a checkpoint at its last step trains nothing more (Hugging Face's Trainer would train one
step too many there)."""

from __future__ import annotations

from pathlib import Path

import pytest


def _trainer(model_dir: Path, out: Path, max_steps: int):
    import torch
    from transformers import Trainer, TrainingArguments

    from hiwar.models.loader import ModelRef, load_causal_lm
    from hiwar.training.collate import SFTCollator
    from hiwar.training.worker import SequenceDataset

    generator = torch.Generator().manual_seed(0)
    sequences = []
    for _ in range(10):  # 10 rows, 2 per step: 5 steps an epoch, so step 7 is inside the second epoch
        ids = torch.randint(3, 500, (12,), generator=generator).tolist()
        sequences.append({"input_ids": ids, "labels": ids})
    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=2,
        max_steps=max_steps,
        save_strategy="steps",
        save_steps=max_steps,
        logging_steps=1,
        learning_rate=1e-2,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        seed=0,
    )
    model = load_causal_lm(ModelRef(str(model_dir)), torch.float32)
    return Trainer(model=model, args=args, train_dataset=SequenceDataset(sequences), data_collator=SFTCollator(0))


def test_resume_at_the_last_step_trains_nothing(tiny_gpt2: Path, tmp_path: Path) -> None:
    import torch

    from hiwar.training.worker import _finished_run

    first = _trainer(tiny_gpt2, tmp_path / "first", 7)
    first.train()
    checkpoint = tmp_path / "first" / "checkpoint-7"
    trained = {k: v.clone() for k, v in first.model.state_dict().items()}

    # What a plain resume does: one step more than asked for (why hiwar does not resume so at the last step).
    stock = _trainer(tiny_gpt2, tmp_path / "stock", 7)
    assert stock.train(resume_from_checkpoint=str(checkpoint)).global_step == 8

    ours = _trainer(tiny_gpt2, tmp_path / "ours", 7)
    output = _finished_run(ours, str(checkpoint))
    assert output.global_step == 7 and ours.state.global_step == 7
    logged = [row["loss"] for row in first.state.log_history if "loss" in row]
    assert len(logged) == 7 and output.training_loss == pytest.approx(sum(logged) / 7)
    for name, value in ours.model.state_dict().items():  # the checkpoint's weights, not the base model's
        torch.testing.assert_close(value, trained[name], rtol=0, atol=0)
