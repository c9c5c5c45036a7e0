"""Atomic writes (hiwar.atomic): whole files only, unique temporary names, nothing left behind on failure."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from hiwar.atomic import atomic_open, atomic_path, temporary_name, write_text
from hiwar.lineage import write_json


def test_write_text_replaces_whole_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "summary.json"
    write_text(target, "first")
    write_text(target, "ثانٍ")
    assert target.read_text(encoding="utf-8") == "ثانٍ"
    assert sorted(p.name for p in target.parent.iterdir()) == ["summary.json"]


def test_failed_write_keeps_old_content_and_removes_temporary(tmp_path: Path) -> None:
    target = tmp_path / "shard-00001.parquet"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target) as tmp:
            tmp.write_text("half", encoding="utf-8")
            raise RuntimeError("killed")
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-00001.parquet"]


def test_temporary_names_are_unique_and_invisible_to_finished_globs(tmp_path: Path) -> None:
    target = tmp_path / "shard-00003.parquet"
    names = {temporary_name(target) for _ in range(200)}
    assert len(names) == 200
    for name in names:
        assert name.parent == tmp_path and name.name.startswith("shard-00003.parquet.") and name.suffix == ".tmp"
        name.touch()
    assert list(tmp_path.glob("*.parquet")) == []  # what work_shards.finished and its kind look for


def test_concurrent_writers_each_leave_a_whole_file(tmp_path: Path) -> None:
    """Eight threads rewrite one file 50 times each: a fixed temporary name let one writer rename another's
    half-written file (or fail with FileNotFoundError); every read must now parse as one writer's whole payload."""
    target = tmp_path / "done.json"
    payloads = {i: {"writer": i, "text": "ع" * (20_000 + i)} for i in range(8)}
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for _ in range(50):
                write_json(target, payloads[i])
                json.loads(target.read_text(encoding="utf-8"))  # a torn file would not parse
        except BaseException as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = json.loads(target.read_text(encoding="utf-8"))
    assert final == payloads[final["writer"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done.json"]


def test_permissions_follow_the_umask_not_mkstemp(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = write_text(tmp_path / "report.md", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_atomic_open_keeps_encoding_and_newlines_and_the_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "scores.csv"
    with atomic_open(target, encoding="utf-8-sig", newline="") as fh:
        fh.write("a,ب\r\n")
    assert target.read_bytes() == b"\xef\xbb\xbf" + "a,ب\r\n".encode()  # BOM and CRLF as written
    with pytest.raises(ValueError, match="bad row"):
        with atomic_open(target) as fh:
            fh.write("half")
            raise ValueError("bad row")
    assert target.read_bytes() == b"\xef\xbb\xbf" + "a,ب\r\n".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


def test_a_sheet_that_fails_part_way_leaves_the_raters_old_sheet_whole(tmp_path: Path) -> None:
    """A row the CSV writer rejects after two good ones: the rater's sheet written before stays as it was (the
    old ``path.open("w")`` truncated it and left two rows)."""
    from hiwar.evaluation.human.sheets import read_sheet, write_sheet

    def row(i: int) -> dict:
        context = [{"role": "user", "content": f"سؤال {i}"}]
        return {"item": f"i{i}", "system": "A", "topic": "t", "context": context, "reply": f"رد {i}"}

    stem = tmp_path / "rater-1"
    write_sheet([row(i) for i in range(3)], ["fluency"], stem)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError):
        write_sheet([row(7), row(8), {**row(9), "unexpected": 1}], ["fluency"], stem)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert [r["item"] for _, r in read_sheet(stem.with_suffix(".csv")).rows] == ["i0", "i1", "i2"]
