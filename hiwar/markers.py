"""When a piece of work counts as done: the one completion rule, for stages, shards, models and metrics.

A marker is a small JSON file written atomically after the work it marks. It holds the work's *key*: the
fingerprints of its inputs, the config keys that decide its output and, where it matters, the code version.
The work is done when the marker's key equals the key it would write now. A marker with another key is *stale*:
the caller redoes the work (cheap work: a metric) or stops with one line that says what changed and how to force
a redo (:meth:`Check.refusal`); nothing is ever skipped on a marker that does not match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hiwar.errors import HiwarError
from hiwar.lineage import write_json

MISSING, DONE, STALE = "missing", "done", "stale"


def normalize(key: Any) -> Any:
    """The key as it reads back from JSON (tuples become lists, paths strings), so equal keys compare equal."""
    return json.loads(json.dumps(key, sort_keys=True, ensure_ascii=False, default=str))


def digest(key: Any) -> str:
    """A short stable hash of a key (16 hex digits), for a key that names other keys."""
    text = json.dumps(normalize(key), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def flatten(data: Any, prefix: str = "", skip: Iterable[str] = ()) -> dict[str, Any]:
    """Nested mappings as ``{"a.b.c": value}``; keys named in ``skip`` (at any depth) are left out.

    A config section flattened this way, less the keys that only say how fast or where the work runs, is the
    part of a key that "the config keys that decide the output" means.
    """
    skip = set(skip)
    data = data.model_dump(mode="json") if hasattr(data, "model_dump") else data
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for name, value in data.items():
        if name in skip:
            continue
        dotted = f"{prefix}.{name}" if prefix else str(name)
        if isinstance(value, dict) and value:
            out.update(flatten(value, dotted, skip))
        else:
            out[dotted] = value
    return out


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_changes(old: Any, new: Any, limit: int = 3) -> list[str]:
    """What differs between two keys, one ``name: old -> new`` entry each (at most ``limit``, then a count)."""
    before, after = flatten(normalize(old)), flatten(normalize(new))
    names = sorted(set(before) | set(after))
    changes = [
        f"{name}: {_short(before.get(name, '(none)'))} -> {_short(after.get(name, '(none)'))}"
        for name in names
        if before.get(name, "(none)") != after.get(name, "(none)")
    ]
    if len(changes) > limit:
        changes = changes[:limit] + [f"and {len(changes) - limit} more"]
    return changes


@dataclass
class Check:
    """The verdict on one marker: ``missing`` (never finished), ``done`` (same key) or ``stale`` (another key)."""

    state: str
    marker: Path
    changes: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """The work is finished and current."""
        return self.state == DONE

    @property
    def stale(self) -> bool:
        """The work was finished from other inputs."""
        return self.state == STALE

    def what_changed(self) -> str:
        """The changes in one phrase."""
        return "; ".join(self.changes) or "its key changed"

    def refusal(self, what: str, force: str) -> HiwarError:
        """The one-line error for stale work that is not redone by itself.

        Args:
            what: the work, as the user knows it (``"stage train"``, ``"models/student"``).
            force: how to redo it (``"rerun with --from train"``).
        """
        return HiwarError(f"{what} was made with other inputs ({self.what_changed()}); {force}")


def read_marker(marker: Path) -> dict[str, Any] | None:
    """The marker's content, or None when it is absent or torn (a killed write: the work did not finish)."""
    try:
        data = json.loads(Path(marker).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def check(marker: Path, key: Any, output: Path | None = None) -> Check:
    """Compare ``marker`` with the ``key`` the work would write now.

    Args:
        marker: the marker file.
        key: what the work depends on now (JSON-serialisable).
        output: the work's output, when it is a separate file: a marker without it means "not done".
    """
    data = read_marker(marker)
    if data is None or data.get("status", "done") != "done" or (output is not None and not output.exists()):
        return Check(MISSING, Path(marker))
    if "key" not in data or not isinstance(data["key"], dict):
        return Check(STALE, Path(marker), ["a marker written by an older hiwar, without its key"])
    if data["key"] == normalize(key):
        return Check(DONE, Path(marker))
    return Check(STALE, Path(marker), describe_changes(data["key"], key))


def write_marker(marker: Path, key: Any, **extra: Any) -> Path:
    """Write the marker of finished work: ``extra`` fields (lineage, times), then its ``key``."""
    return write_json(marker, {**extra, "status": "done", "key": normalize(key)})


def sidecar(output: Path) -> Path:
    """The marker of a single output file: ``<output>.done.json`` beside it."""
    return output.with_name(output.name + ".done.json")
