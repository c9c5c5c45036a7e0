"""Read Ray Train's checkpoint-manager snapshot: the record of which checkpoints a rerun can resume from.

A checkpoint folder appears in storage before the controller registers it; a run killed in between resumes from the
previous registered checkpoint (or from scratch). Tests that kill a run "after a checkpoint" wait for this record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path


def registered_checkpoint(run_folder: Path, newer_than: float = 0.0) -> str | None:
    """The latest registered checkpoint's folder name, from a snapshot written after ``newer_than`` (epoch s)."""
    snapshot = run_folder / "checkpoint_manager_snapshot.json"
    try:
        if snapshot.stat().st_mtime <= newer_than:
            return None
        state = json.loads(snapshot.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):  # not written yet, or caught mid-write
        return None
    latest = state.get("latest_checkpoint_result")
    return latest["checkpoint_dir_name"] if latest else None


def wait_for_checkpoint(
    run_folder: Path,
    running: Callable[[], bool],
    what: str | Callable[[], str],
    timeout_s: float,
    newer_than: float = 0.0,
    poll_s: float = 0.5,
) -> str:
    """Wait until a checkpoint is registered in ``run_folder`` (:func:`registered_checkpoint`); fail the test when
    ``running()`` turns false first (the message names ``what``, or calls it then) or after ``timeout_s``. Returns
    the checkpoint's folder name."""
    deadline = time.monotonic() + timeout_s
    while not (found := registered_checkpoint(run_folder, newer_than)):
        assert running(), f"{what() if callable(what) else what} ended before its first checkpoint"
        assert time.monotonic() < deadline, f"no checkpoint within {timeout_s:g} s"
        time.sleep(poll_s)
    return found
