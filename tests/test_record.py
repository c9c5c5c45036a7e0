"""The conversation record: round trips through Parquet, JSONL and `datasets`, and boundary validation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hiwar.errors import DataError
from hiwar.record import CONVERSATION_SCHEMA, Conversation, Generator
from hiwar.records_io import read_records, write_jsonl, write_parquet, write_parquet_shards

MESSAGES = [
    {"role": "system", "content": "أنت مساعد مفيد."},
    {"role": "user", "content": "ما أشهر الأكلات في المغرب؟"},
    {"role": "assistant", "content": "الكسكس والطاجين والحريرة."},
]


def make(i: int) -> Conversation:
    return Conversation(
        id=f"c{i}",
        messages=MESSAGES,
        topic="traditional_cuisine",
        country="MA",
        generator=Generator(model="m", engine="vllm", prompt_version="v1", sampling={"temperature": 0.3, "seed": i}),
        seed=i,
        created_at="2026-11-23T00:00:00+00:00",
        metadata={"dialect": "msa", "n": i},
    )


def test_parquet_round_trip(tmp_path: Path) -> None:
    records = [make(i) for i in range(5)]
    path = write_parquet(records, tmp_path / "a.parquet")
    assert pq.read_schema(path).equals(CONVERSATION_SCHEMA)
    assert read_records(path) == records


def test_jsonl_round_trip_keeps_arabic_readable(tmp_path: Path) -> None:
    records = [make(i) for i in range(3)]
    path = write_jsonl(records, tmp_path / "a.jsonl")
    assert "الكسكس" in path.read_text(encoding="utf-8")
    assert read_records(path) == records


def test_a_write_that_fails_midway_keeps_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that dies part-way leaves the previous file as it was and no partial file beside it: JSONL whose
    records run out with an error after one row, Parquet whose writer fails after its first bytes."""
    old = [make(i) for i in range(3)]
    jsonl, parquet = tmp_path / "a.jsonl", tmp_path / "a.parquet"
    write_jsonl(old, jsonl)
    write_parquet(old, parquet)

    def failing() -> Iterator[Conversation]:
        yield make(10)
        raise RuntimeError("killed")

    def half_written(table: pa.Table, where: str | Path) -> None:
        Path(where).write_bytes(b"PAR1")
        raise OSError("disk full")

    with pytest.raises(RuntimeError, match="killed"):
        write_jsonl(failing(), jsonl)
    monkeypatch.setattr(pq, "write_table", half_written)
    with pytest.raises(OSError, match="disk full"):
        write_parquet([make(11)], parquet)
    monkeypatch.undo()
    assert read_records(jsonl) == old and read_records(parquet) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "a.parquet"]


def test_shards_and_folder_read(tmp_path: Path) -> None:
    records = [make(i) for i in range(7)]
    paths = write_parquet_shards(records, tmp_path / "d", rows_per_shard=3)
    assert [p.name for p in paths] == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert [pq.read_metadata(p).num_rows for p in paths] == [3, 3, 1]
    assert read_records(tmp_path / "d") == records


def test_loads_offline_with_datasets_and_chat_template(tmp_path: Path, tiny_gpt2: Path) -> None:
    import datasets
    from transformers import AutoTokenizer

    write_parquet_shards([make(i) for i in range(4)], tmp_path / "d", prefix="train")
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "d" / "*.parquet"), split="train")
    assert ds.num_rows == 4
    assert ds[0]["messages"] == MESSAGES
    assert json.loads(ds[2]["generator"]["sampling"]) == {"temperature": 0.3, "seed": 2}
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt2)
    text = tokenizer.apply_chat_template(ds[0]["messages"], tokenize=False)
    assert text == (
        "<|bos|>النظام: أنت مساعد مفيد.\nالمستخدم: ما أشهر الأكلات في المغرب؟\n"
        "المساعد: الكسكس والطاجين والحريرة.<|endoftext|>\n"
    )


def bad_jsonl(tmp_path: Path, rows: list) -> Path:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return path


GOOD = {"id": "a", "messages": [{"role": "user", "content": "مرحبا"}]}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"messages": GOOD["messages"]}, "missing column 'id'"),
        ({"id": "b"}, "missing column 'messages'"),
        ({"id": "b", "messages": []}, "'messages' is empty"),
        ({"id": "b", "messages": "hi"}, "'messages' must be a list"),
        ({"id": "b", "messages": [{"role": "bot", "content": "x"}]}, "messages[0] has unknown role 'bot'"),
        ({"id": "b", "messages": [{"role": "user"}]}, "messages[0] must have 'role' and 'content'"),
        ({"id": "b", "messages": [{"role": "user", "content": 3}]}, "messages[0].content must be a string"),
        ({"id": 5, "messages": GOOD["messages"]}, "'id' must be a non-empty string"),
        ({**GOOD, "id": "b", "seed": "x"}, "'seed' must be an integer"),
        ({**GOOD, "id": "b", "topic": 1}, "'topic' must be a string"),
    ],
)
def test_validation_names_file_row_and_problem(tmp_path: Path, row: dict, problem: str) -> None:
    path = bad_jsonl(tmp_path, [GOOD, row])
    with pytest.raises(DataError) as info:
        read_records(path)
    assert str(info.value).startswith(f"{path}: line 2: {problem}")


def test_parquet_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": ["a"]}), path)
    with pytest.raises(DataError, match=r"x\.parquet: missing column\(s\) messages"):
        read_records(path)


def test_parquet_bad_row_is_numbered(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    rows = [{"id": "a", "messages": [{"role": "user", "content": "x"}]}, {"id": "b", "messages": []}]
    pq.write_table(pa.Table.from_pylist(rows), path)
    with pytest.raises(DataError, match=r"x\.parquet: row 1: 'messages' is empty"):
        read_records(path)


def test_missing_path_and_wrong_suffix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file or folder"):
        read_records(tmp_path / "nope")
    (tmp_path / "a.csv").write_text("x")
    with pytest.raises(DataError, match=r"expected a \.parquet or \.jsonl file"):
        read_records(tmp_path / "a.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no .parquet or .jsonl files"):
        read_records(tmp_path / "empty")


def test_not_json_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"id": "a", "messages": [{"role": "user", "content": "x"}]}\n{oops\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"a\.jsonl: line 2: not valid JSON"):
        read_records(path)


def test_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_records(path)
