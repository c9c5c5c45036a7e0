"""Deterministic train/validation/test splits.

Units (conversations, or topic-country pairs with ``by_pair``) are ordered by a hash of (run seed, unit key);
walking that order, a unit goes to the split in whose share of the rows its first row falls. The same set of
conversations and seed always gives the same splits, and with ``by_pair`` no pair is in two splits.
"""

from __future__ import annotations

import hashlib
from collections import Counter

from hiwar.dataset_layout import SPLITS
from hiwar.generation.config import SplitConfig
from hiwar.record import Conversation


def unit_key(conv: Conversation, by_pair: bool) -> str:
    """The unit a conversation is split with: its pair, or itself."""
    return f"{conv.topic}|{conv.country}" if by_pair else conv.id


def assign_splits(convs: list[Conversation], cfg: SplitConfig, seed: int) -> dict[str, list[Conversation]]:
    """Split ``convs``; each split's list is sorted by id."""
    sizes = Counter(unit_key(c, cfg.by_pair) for c in convs)
    order = sorted(sizes, key=lambda k: hashlib.sha256(f"{seed}|{k}".encode()).hexdigest())
    bounds = (cfg.train, cfg.train + cfg.validation)
    total, done, where = max(len(convs), 1), 0, {}
    for key in order:
        share = done / total
        where[key] = SPLITS[0] if share < bounds[0] else SPLITS[1] if share < bounds[1] else SPLITS[2]
        done += sizes[key]
    out: dict[str, list[Conversation]] = {s: [] for s in SPLITS}
    for conv in sorted(convs, key=lambda c: c.id):
        out[where[unit_key(conv, cfg.by_pair)]].append(conv)
    return out
