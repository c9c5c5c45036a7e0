"""The one completion rule (hiwar/markers.py): done means the marker's key equals the key the work would write now."""

from __future__ import annotations

import json
from pathlib import Path

from hiwar.markers import check, describe_changes, flatten, sidecar, write_marker


def test_missing_done_and_stale(tmp_path: Path) -> None:
    marker = tmp_path / "m.json"
    assert check(marker, {"a": 1}).state == "missing"
    write_marker(marker, {"a": 1, "b": [1, 2]}, note="lineage")
    assert check(marker, {"a": 1, "b": (1, 2)}).done  # as it reads back from JSON
    stale = check(marker, {"a": 2, "b": [1, 2]})
    assert stale.stale and stale.changes == ["a: 1 -> 2"]
    assert json.loads(marker.read_text())["note"] == "lineage"


def test_a_torn_or_keyless_marker_is_never_done(tmp_path: Path) -> None:
    marker = tmp_path / "m.json"
    marker.write_text('{"status": "do', encoding="utf-8")  # a killed write
    assert check(marker, {"a": 1}).state == "missing"
    marker.write_text(json.dumps({"status": "done"}), encoding="utf-8")  # an older hiwar's marker
    verdict = check(marker, {"a": 1})
    assert verdict.stale and "older hiwar" in verdict.what_changed()


def test_a_marker_without_its_output_is_not_done(tmp_path: Path) -> None:
    out = tmp_path / "summary.json"
    write_marker(sidecar(out), {"a": 1})
    assert check(sidecar(out), {"a": 1}, output=out).state == "missing"
    out.write_text("{}")
    assert check(sidecar(out), {"a": 1}, output=out).done


def test_refusal_is_one_line_naming_the_change_and_the_way_out(tmp_path: Path) -> None:
    marker = tmp_path / "m.json"
    write_marker(marker, {"training.learning_rate": 0.001, "input dataset": "aaaa"})
    verdict = check(marker, {"training.learning_rate": 0.002, "input dataset": "aaaa"})
    message = str(verdict.refusal("stage train", "rerun with --from train"))
    assert message == (
        "stage train was made with other inputs (training.learning_rate: 0.001 -> 0.002); rerun with --from train"
    )


def test_flatten_skips_keys_at_any_depth_and_changes_are_capped() -> None:
    data = {"a": {"b": 1, "batch_size": 8, "c": {"batch_size": 2, "d": 3}}, "e": {}}
    assert flatten(data, "x", skip={"batch_size"}) == {"x.a.b": 1, "x.a.c.d": 3, "x.e": {}}
    changes = describe_changes({f"k{i}": i for i in range(5)}, {f"k{i}": -i for i in range(5)})
    assert changes[-1] == "and 1 more" and len(changes) == 4  # k0 did not change
