"""Dedup across the whole run: exact (Arabic-normalised key) and near-duplicates (MinHash LSH).

Conversations are visited in id order and the first of each group is kept, so the result depends only on the
set of conversations, not on the order in which shards finished.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from hiwar.generation.arabic import normalize
from hiwar.generation.config import DedupConfig
from hiwar.generation.validate import DUPLICATE, NEAR_DUPLICATE


@dataclass(frozen=True)
class DupOf:
    """Why a conversation was dropped: the reason and the id it duplicates."""

    reason: str
    of: str


def dedup_key(messages: list[dict[str, str]]) -> str:
    """Exact-duplicate key: a hash of the roles and the Arabic-normalised contents."""
    text = "\n".join(f"{m['role']}\t{normalize(m['content'])}" for m in messages)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def shingles(messages: list[dict[str, str]], n: int) -> set[bytes]:
    """Word n-gram shingles of the normalised conversation text."""
    tokens = normalize(" ".join(m["content"] for m in messages)).split()
    if len(tokens) < n:
        return {" ".join(tokens).encode()}
    return {" ".join(tokens[i : i + n]).encode() for i in range(len(tokens) - n + 1)}


def find_duplicates(items: dict[str, list[dict[str, str]]], cfg: DedupConfig) -> dict[str, DupOf]:
    """Map id -> :class:`DupOf` for every conversation to drop (``items``: id -> messages)."""
    from datasketch import MinHash, MinHashLSH

    dropped: dict[str, DupOf] = {}
    seen: dict[str, str] = {}
    lsh = MinHashLSH(threshold=cfg.threshold, num_perm=cfg.num_perm) if cfg.near else None
    for cid in sorted(items):
        messages = items[cid]
        if cfg.exact:
            key = dedup_key(messages)
            if key in seen:
                dropped[cid] = DupOf(DUPLICATE, seen[key])
                continue
            seen[key] = cid
        if lsh is not None:
            mh = MinHash(num_perm=cfg.num_perm, seed=1)
            mh.update_batch(list(shingles(messages, cfg.shingle_words)))
            match = lsh.query(mh)
            if match:
                dropped[cid] = DupOf(NEAR_DUPLICATE, min(match))
                continue
            lsh.insert(cid, mh)
    return dropped
