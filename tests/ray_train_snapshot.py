"""Read Ray Train's checkpoint-manager snapshot: the record of which checkpoints a rerun can resume from.

A checkpoint folder appears in storage before the controller registers it; a run killed in between resumes from the
previous registered checkpoint (or from scratch). Tests that kill a run "after a checkpoint" wait for this record.
"""

from __future__ import annotations

import json
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
