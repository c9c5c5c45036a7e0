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


def test_non_arabic_reply_share_against_a_hand_counted_fixture(tmp_path: Path) -> None:
    from hiwar.evaluation.raven.score import reply_languages
    from hiwar.generation.language import identify_all
    from tests.generation.test_language import EGYPTIAN, GULF, LEVANTINE, MAGHREBI, MSA, PERSIAN, URDU

    # By hand: 10 replies, 1 empty (left out), 1 too short to identify ("und", not held against the model);
    # of the 9 non-empty ones, 3 are not Arabic (Persian twice, Urdu once): 3 / 9.
    replies = [
        MSA[0][1],
        EGYPTIAN[0][1],
        GULF[1][1],
        PERSIAN[0][1],
        URDU[1][1],
        LEVANTINE[0][1],
        PERSIAN[1][1],
        "",
        "نعم.",
        MAGHREBI[1][1],
    ]
    summary = reply_languages(replies, identify_all(replies))
    assert summary["non_arabic_replies"] == 3
    assert summary["non_arabic_share"] == pytest.approx(3 / 9)
    assert summary["reply_languages"] == {"ar": 5, "fa": 2, "ur": 1, "und": 1}

    result = _result("ours", 9.4, 1.2, 0.8)
    result["raven"].update(summary)
    write_report(tmp_path, [result], {"path": "/data", "split": "test"}, load_config(), {"hiwar": "0", "git": None})
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert report["table"][0]["non_arabic_reply_share"] == pytest.approx(3 / 9)
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "non_arabic_reply_share" in markdown and "0.3333" in markdown
    with (tmp_path / "report.csv").open(encoding="utf-8") as fh:
        assert float(next(csv.DictReader(fh))["non_arabic_reply_share"]) == pytest.approx(3 / 9)
