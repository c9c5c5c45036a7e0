"""Work shards (generation's chain and the judge): how inputs are cut, which shards are done, atomic files."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from hiwar.work_shards import cut, finished, read_shards, shard_path, unfinished, write_shard


def test_cut_keeps_order_and_leaves_the_remainder_last() -> None:
    assert cut(list("abcdefg"), 3) == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    assert cut([], 4) == []
    assert cut([1, 2], 5) == [[1, 2]]


def test_a_shard_is_done_when_its_file_exists(tmp_path) -> None:
    shards = tmp_path / "work" / "shards"
    assert unfinished(shards, 3) == [0, 1, 2]
    write_shard([{"id": "b", "n": 2}, {"id": "a", "n": 1}], shard_path(shards, 1), "id")
    assert shard_path(shards, 1).name == "shard-00001.parquet"
    assert unfinished(shards, 3) == [0, 2]
    # Only the renamed file is left: a half-written shard never looks finished.
    assert [p.name for p in shards.iterdir()] == ["shard-00001.parquet"]
    assert pq.read_table(shard_path(shards, 1)).column("id").to_pylist() == ["a", "b"]


def test_shards_are_read_one_by_one_and_sorted(tmp_path) -> None:
    # Shard 0's list column is empty in every row (list<null> in Arrow), shard 1's holds strings: concatenating the
    # tables would fail on the two schemas.
    write_shard([{"item_id": "z", "reasons": []}], shard_path(tmp_path, 0), "item_id")
    tables = [
        pa.table({"item_id": ["m"], "reasons": [["bad json"]]}),
        pa.table({"item_id": ["c"], "reasons": [["late"]]}),
    ]
    write_shard(tables, shard_path(tmp_path, 1), "item_id")
    (tmp_path / "shard-00002.parquet.tmp").write_bytes(b"left by a killed run")
    assert [p.name for p in finished(tmp_path)] == ["shard-00000.parquet", "shard-00001.parquet"]
    assert read_shards(tmp_path, "item_id") == [
        {"item_id": "c", "reasons": ["late"]},
        {"item_id": "m", "reasons": ["bad json"]},
        {"item_id": "z", "reasons": []},
    ]
