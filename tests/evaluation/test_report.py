"""The report files: every number in Markdown and CSV equals the JSON; plots are PNG files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from hiwar.config import load_config
from hiwar.evaluation.report import COLUMNS, fmt, write_report


def _result(name: str, ppl: float, bpb: float, raven: float) -> dict:
    return {
        "name": name,
        "path": f"/models/{name}",
        "trust_remote_code": False,
        "perplexity": {
            "status": "ok",
            "perplexity": ppl,
            "bits_per_byte": bpb,
            "bits_per_char": bpb * 1.8,
            "conversations": 3,
            "window": 512,
            "stride": 256,
            "per_conversation_perplexity": {"mean": ppl * 1.1, "std": 0.5},
            "per_topic": {"food": {"bits_per_byte": bpb - 0.1}, "travel": {"bits_per_byte": bpb + 0.1}},
            "skipped": {"no assistant turn": {"count": 1, "examples": ["c9"]}},
        },
        "raven": {
            "status": "ok",
            "raven": raven,
            "ci_low": raven - 0.05,
            "ci_high": raven + 0.04,
            "turns": 7,
            "reply_chars_mean": 42.5,
            "reply_tokens_mean": 11.0,
            "per_topic": {"food": {"raven": raven, "turns": 4}, "travel": {"raven": raven - 0.1, "turns": 3}},
        },
    }


def test_report_files_agree_with_json(tmp_path: Path) -> None:
    results = [
        _result("ours", 9.4123456, 1.23456789, 0.823456),
        _result("base", 12.5, 1.5, 0.61),
        {
            "name": "broken",
            "path": "/nope",
            "trust_remote_code": False,
            "perplexity": {"status": "failed", "reason": "no such model folder: /nope"},
            "raven": {"status": "failed", "reason": "no such model folder: /nope"},
        },
    ]
    data = {"path": "/data", "split": "test", "fingerprint": "abc123", "conversations": 4, "files": []}
    write_report(tmp_path, results, data, load_config(), {"hiwar": "0", "git": None})
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["dataset"]["fingerprint"] == "abc123"
    assert [m["path"] for m in report["models"]] == ["/models/ours", "/models/base", "/nope"]
    assert report["config"]["evaluation"]["split"] == "test"
    with (tmp_path / "report.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    for row, table in zip(rows, report["table"], strict=True):
        for column, _ in COLUMNS:
            value = table[column]
            if isinstance(value, float):
                assert float(row[column]) == value
                assert fmt(value) in markdown
            else:
                assert row[column] == ("" if value is None else str(value))
    assert report["table"][0]["raven"] == pytest.approx(0.823456)
    assert "no such model folder: /nope" in markdown and "skipped 1 conversation(s): no assistant turn" in markdown
    assert "exp(total NLL / total scored tokens)" in markdown
    for name in ("raven.png", "bits_per_byte.png", "raven_by_topic.png", "bits_per_byte_by_topic.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/{name}" in markdown
