from hiwar.generation.config import SplitConfig
from hiwar.generation.splits import assign_splits
from hiwar.record import Conversation


def convs(n_pairs: int, per_pair: int) -> list[Conversation]:
    msgs = [{"role": "user", "content": "س"}, {"role": "assistant", "content": "ج"}]
    return [
        Conversation(id=f"c{p:03d}-{k}", messages=msgs, topic=f"t{p % 7}", country=f"C{p}")
        for p in range(n_pairs)
        for k in range(per_pair)
    ]


def test_fractions_are_met_and_deterministic():
    data = convs(200, 1)
    parts = assign_splits(data, SplitConfig(train=0.8, validation=0.1, test=0.1), seed=0)
    assert [len(parts[s]) for s in ("train", "validation", "test")] == [160, 20, 20]
    again = assign_splits(list(reversed(data)), SplitConfig(train=0.8, validation=0.1, test=0.1), seed=0)
    assert {s: [c.id for c in v] for s, v in parts.items()} == {s: [c.id for c in v] for s, v in again.items()}
    other = assign_splits(data, SplitConfig(train=0.8, validation=0.1, test=0.1), seed=1)
    assert [c.id for c in other["test"]] != [c.id for c in parts["test"]]


def test_by_pair_keeps_pairs_whole():
    data = convs(60, 3)
    parts = assign_splits(data, SplitConfig(train=0.8, validation=0.1, test=0.1, by_pair=True), seed=0)
    where = {}
    for split, items in parts.items():
        for c in items:
            assert where.setdefault((c.topic, c.country), split) == split
    assert sum(len(v) for v in parts.values()) == 180
    assert [len(parts[s]) for s in ("train", "validation", "test")] == [144, 18, 18]
