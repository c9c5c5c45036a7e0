"""Completion markers: an output counts as finished only when its marker exists and was made from the same
inputs.

The marker ``<output>.done.json`` is written after the output, atomically, and holds a hash of everything the
output depends on (model, config, dataset fingerprint). A rerun skips an output whose marker matches and redoes one
whose inputs changed or that a killed run left without a marker.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from hiwar.lineage import write_json


def key_hash(key: Any) -> str:
    """A stable hash of a JSON-serialisable key."""
    text = json.dumps(key, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def marker_path(output: Path) -> Path:
    """Where the marker of ``output`` lives."""
    return output.with_name(output.name + ".done.json")


def is_done(output: Path, key: Any) -> bool:
    """Whether ``output`` exists with a marker made from the same ``key``."""
    marker = marker_path(output)
    if not (output.exists() and marker.is_file()):
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("key") == key_hash(key)
    except (OSError, json.JSONDecodeError):
        return False


def mark_done(output: Path, key: Any, extra: dict[str, Any] | None = None) -> Path:
    """Write the marker of a finished ``output``."""
    return write_json(marker_path(output), {"key": key_hash(key), **(extra or {})})
