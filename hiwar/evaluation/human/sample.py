"""Seeded sampling of items per model, spread over topics."""

from __future__ import annotations

import random
from collections import defaultdict

from hiwar.evaluation.human.items import RatingItem


def stratified_ids(ids_by_topic: dict[str, list[str]], k: int, rng: random.Random) -> list[str]:
    """Up to ``k`` ids, taking one per topic in turn (topics in a shuffled order) until ``k`` are taken.

    This spreads a small sample over as many topics as possible; a topic gives more than one item only
    once every topic with items left has given one.
    """
    pools = {t: rng.sample(sorted(ids), len(ids)) for t, ids in sorted(ids_by_topic.items())}
    order = rng.sample(sorted(pools), len(pools))
    chosen: list[str] = []
    while len(chosen) < k and any(pools.values()):
        for topic in order:
            if pools[topic] and len(chosen) < k:
                chosen.append(pools[topic].pop())
    return chosen


def _pick(ids_by_topic: dict[str, list[str]], k: int, stratify: bool, rng: random.Random) -> list[str]:
    if stratify:
        return stratified_ids(ids_by_topic, k, rng)
    every = sorted(i for ids in ids_by_topic.values() for i in ids)
    return rng.sample(every, min(k, len(every)))


def sample_items(items: list[RatingItem], per_model: int, stratify: bool, seed: int) -> list[RatingItem]:
    """``per_model`` items of each model (all of them when it has fewer), reproducible from ``seed``.

    When every model answered the same items (replies to the same contexts, as ``hiwar evaluate`` writes
    them), the same item ids are drawn for every model, so raters compare models on the same dialogues.
    """
    by_model: dict[str, dict[str, RatingItem]] = defaultdict(dict)
    for item in items:
        by_model[item.model][item.item_id] = item
    rng = random.Random(seed)
    shared = set.intersection(*(set(m) for m in by_model.values())) if by_model else set()
    smallest = min((len(m) for m in by_model.values()), default=0)
    if len(by_model) > 1 and shared and len(shared) >= min(per_model, smallest):
        anyone = next(iter(by_model.values()))
        topics: dict[str, list[str]] = defaultdict(list)
        for item_id in shared:
            topics[anyone[item_id].topic].append(item_id)
        ids = _pick(topics, per_model, stratify, rng)
        return [by_model[m][i] for m in sorted(by_model) for i in ids]
    chosen = []
    for model in sorted(by_model):
        topics = defaultdict(list)
        for item_id, item in by_model[model].items():
            topics[item.topic].append(item_id)
        chosen += [by_model[model][i] for i in _pick(topics, per_model, stratify, rng)]
    return chosen
