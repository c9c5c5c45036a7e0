"""Fingerprints, code version and atomic JSON."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hiwar.dataset_layout import read_split, resolve_split
from hiwar.errors import DataError
from hiwar.lineage import code_version, fingerprint, write_json
from hiwar.record import Conversation
from hiwar.records_io import write_parquet


def test_fingerprint_is_sha256_of_names_and_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_bytes(b"abc")
    b.write_bytes(b"de")
    expected = hashlib.sha256(b"a.txtabcb.txtde").hexdigest()[:16]
    assert fingerprint([a, b]) == expected
    b.write_bytes(b"df")
    assert fingerprint([a, b]) != expected


def test_code_version_and_json(tmp_path: Path) -> None:
    version = code_version()
    assert version["hiwar"]
    path = write_json(tmp_path / "x" / "m.json", {"نص": 1, **version})
    assert json.loads(path.read_text(encoding="utf-8"))["نص"] == 1
    assert not list(tmp_path.rglob("*.tmp"))


def test_dataset_layout(tmp_path: Path) -> None:
    conv = Conversation(id="a", messages=[{"role": "user", "content": "س"}, {"role": "assistant", "content": "ج"}])
    write_parquet([conv], tmp_path / "ds" / "data" / "train-00000.parquet")
    assert [r.id for r in read_split(tmp_path / "ds", "train")] == ["a"]
    try:
        resolve_split(tmp_path / "ds", "test")
    except DataError as err:
        assert "dataset has no 'test' split" in str(err)
    else:
        raise AssertionError("missing split must fail")
    # A plain file is read as it is, whatever the split.
    assert [r.id for r in read_split(tmp_path / "ds" / "data" / "train-00000.parquet", "test")] == ["a"]


def test_report_names_the_code_version_in_words() -> None:
    from hiwar.lineage import code_text

    assert code_text({"hiwar": "0.1.0", "git": "3dda18ddf700+dirty"}) == "hiwar 0.1.0 (git 3dda18ddf700+dirty)"
    assert code_text({"hiwar": "0.1.0", "git": None}) == "hiwar 0.1.0"


def test_folder_stamp_changes_when_a_file_changes(tmp_path) -> None:
    from hiwar.lineage import folder_stamp

    (tmp_path / "model.safetensors").write_bytes(b"abc")
    first = folder_stamp(tmp_path)
    assert first == folder_stamp(tmp_path) and len(first) == 16
    (tmp_path / "model.safetensors").write_bytes(b"abcd")
    assert folder_stamp(tmp_path) != first
    assert folder_stamp("") is None and folder_stamp("org/not-a-local-folder") is None
