"""Trainer callbacks: metrics as JSON lines in the run folder (rank 0), with throughput and padding share; a stop
when the loss becomes inf or nan."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from hiwar.atomic import write_text
from hiwar.errors import HiwarError
from hiwar.training.collate import SFTCollator


class JsonlMetricsCallback(TrainerCallback):
    """Append every log (loss, learning rate, eval loss...) to ``metrics.jsonl``, one object per line.

    On resume, lines from steps after the checkpoint are dropped first: those steps run again, so the file
    never holds a step twice. Throughput is this worker's real (non-padding) tokens per second times the world
    size.
    """

    def __init__(self, path: str | Path, collator: SFTCollator, world_size: int = 1, resume_step: int = 0) -> None:
        self.path = Path(path)
        self.resume_step = resume_step
        self.collator = collator
        self.world_size = world_size
        self._start = time.perf_counter()
        self._tokens_at_start = 0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = time.perf_counter()
        self._tokens_at_start = self.collator.real_tokens
        if state.is_world_process_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._drop_after(self.resume_step)  # the Trainer loads its state after this hook

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        row = {"step": state.global_step, "epoch": state.epoch, **logs, "time": time.time()}
        row["tokens_per_s"] = (self.collator.real_tokens - self._tokens_at_start) * self.world_size / elapsed
        row["padding_share"] = self.collator.padding_share
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    def _drop_after(self, step: int) -> None:
        if not self.path.exists():
            return
        kept = [
            line
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= step
        ]
        write_text(self.path, "".join(line + "\n" for line in kept))


class NonFiniteLossError(HiwarError):
    """The training (or validation) loss became inf or nan: the run stopped before saving such weights."""


class StopOnNonFiniteLoss(TrainerCallback):
    """Stop a run whose loss becomes inf or nan, before a checkpoint of broken weights is saved.

    The Trainer must not filter such losses out of its logs (``logging_nan_inf_filter=False``, as
    :func:`hiwar.training.worker.training_arguments` sets it). Every step that saves also logs, so the loss since
    the last log is checked before each checkpoint: the latest checkpoint is always the last good one. Every rank
    logs the same (all-reduced) loss, so every rank stops at the same step.
    """

    KEYS = ("loss", "eval_loss")

    def __init__(self, name: str = "") -> None:
        self.name = name

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if control.should_save:
            control.should_log = True  # log (and so check) the loss before this step's checkpoint is written

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        for key in self.KEYS:
            value = (logs or {}).get(key)
            if isinstance(value, (int, float)) and not math.isfinite(value):
                who = f"training.models ({self.name})" if self.name else "training"
                raise NonFiniteLossError(
                    f"{who}: the {'validation ' if key == 'eval_loss' else ''}loss became {value} at step "
                    f"{state.global_step} (training.learning_rate={args.learning_rate:g}); training stopped "
                    "before saving those weights"
                )


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` file (empty when it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
