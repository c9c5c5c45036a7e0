import pytest

from hiwar.errors import ConfigError
from hiwar.generation.config import GridConfig
from hiwar.generation.grid import build_grid, row_id, row_seed, samples_per_pair


def test_paper_scale_target_total_is_exact_and_even():
    counts = samples_per_pair(93 * 151, GridConfig(target_total=43316))
    assert sum(counts) == 43316
    assert set(counts) == {3, 4} and counts.count(4) == 43316 - 3 * 93 * 151
    # evenly spread: every run of 12 consecutive pairs holds at most 2 extras (1187/14043 ~ 1 in 11.8)
    assert max(sum(c == 4 for c in counts[i : i + 12]) for i in range(len(counts) - 12)) <= 2


def test_full_paper_grid_rows_and_unique_ids():
    rows = build_grid(GridConfig(target_total=43316), "v1", 0)
    assert len(rows) == 43316
    assert len({r.id for r in rows}) == 43316
    assert len({(r.topic, r.country) for r in rows}) == 93 * 151


def test_ids_and_seeds_are_deterministic_and_independent_of_filters():
    full = {(r.topic, r.country, r.sample_index): r for r in build_grid(GridConfig(per_pair=2), "v1", 7)}
    small = build_grid(GridConfig(topics=["recycling"], countries=["EG", "DZ"], per_pair=2), "v1", 7)
    assert len(small) == 4
    for r in small:
        assert full[(r.topic, r.country, r.sample_index)] == r
    assert small[0].id == row_id("v1", small[0].topic, small[0].country, small[0].sample_index)
    assert small[0].seed == row_seed(7, small[0].id)
    other_seed = build_grid(GridConfig(topics=["recycling"], countries=["EG", "DZ"], per_pair=2), "v1", 8)
    assert [r.id for r in other_seed] == [r.id for r in small]
    assert [r.seed for r in other_seed] != [r.seed for r in small]


def test_turn_counts_in_range_and_limit_spreads_over_pairs():
    rows = build_grid(GridConfig(per_pair=3, min_turns=2, max_turns=6, limit=50), "v1", 0)
    assert len(rows) == 50
    assert all(r.sample_index == 0 for r in rows)  # first samples of 50 different pairs
    assert len({(r.topic, r.country) for r in rows}) == 50
    assert {r.n_turns for r in rows} <= set(range(2, 7)) and len({r.n_turns for r in rows}) > 1


def test_unknown_topic_is_a_config_error():
    with pytest.raises(ConfigError, match="generation.grid.topics: unknown topics 'nope'"):
        build_grid(GridConfig(topics=["nope"]), "v1", 0)
