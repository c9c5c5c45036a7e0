"""Batches of prepared sequences: the collator only pads (labels were made at data prep).

Unpacked sequences are right-padded with an attention mask. Packed sequences carry ``position_ids`` that
restart at 0 for each conversation and go without an attention mask, which is how transformers' mask builder
(eager and sdpa) recognises packed input and keeps attention within each conversation; the padding tail
becomes a segment of its own. With ``flatten`` (for flash-attention's variable-length kernels) a batch becomes
one row, no padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hiwar.training.data import IGNORE_INDEX


@dataclass
class SFTCollator:
    """Pad a list of sequences into tensors, counting real and padding tokens.

    Attributes:
        pad_id: token id written into padding (never attended to, never in the loss).
        flatten: put a packed batch into one row (flash-attention varlen) instead of padded rows.
    """

    pad_id: int
    flatten: bool = False
    real_tokens: int = 0
    pad_tokens: int = 0

    def __call__(self, features: Sequence[dict[str, Sequence[int]]]) -> dict[str, Any]:
        import torch

        packed = "position_ids" in features[0]
        if packed and self.flatten:
            rows = [self._flat(features)]
        else:
            width = max(len(f["input_ids"]) for f in features)
            rows = [self._pad(f, width, packed) for f in features]
        batch = {key: torch.tensor([row[key] for row in rows], dtype=torch.long) for key in rows[0]}
        real = sum(len(f["input_ids"]) for f in features)
        self.real_tokens += real
        self.pad_tokens += batch["input_ids"].numel() - real
        # A KV cache is useless in training and would hide packed position_ids from the mask builder.
        batch["use_cache"] = False
        return batch

    def _pad(self, feature: dict[str, Sequence[int]], width: int, packed: bool) -> dict[str, list[int]]:
        size = len(feature["input_ids"])
        gap = width - size
        row = {
            "input_ids": list(feature["input_ids"]) + [self.pad_id] * gap,
            "labels": list(feature["labels"]) + [IGNORE_INDEX] * gap,
        }
        if packed:
            row["position_ids"] = list(feature["position_ids"]) + list(range(gap))
        else:
            row["attention_mask"] = [1] * size + [0] * gap
        return row

    @staticmethod
    def _flat(features: Sequence[dict[str, Sequence[int]]]) -> dict[str, list[int]]:
        row: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
        for feature in features:
            for key in row:
                row[key] += list(feature[key])
        return row

    @property
    def padding_share(self) -> float:
        """Padding tokens over all tokens batched so far."""
        total = self.real_tokens + self.pad_tokens
        return self.pad_tokens / total if total else 0.0
