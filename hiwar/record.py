"""The one record type: a conversation (OpenAI-style ``messages`` plus metadata) and its Arrow schema.

On disk (Parquet and JSONL) a conversation has these columns:

- ``id`` (string): deterministic id, unique within a dataset.
- ``messages`` (list of ``{role, content}``): roles ``system``, ``user``, ``assistant``, as in the OpenAI chat
  format, so ``tokenizer.apply_chat_template(row["messages"])`` works on a row as it is.
- ``topic`` (string): topic id from ``hiwar/assets/topics.json`` (or any string for outside data).
- ``country`` (string): ISO 3166-1 alpha-2 code from ``hiwar/assets/countries.json``.
- ``generator`` (struct): ``model``, ``engine``, ``prompt_version`` and ``sampling`` (a JSON object as text,
  because Arrow maps of mixed value types do not load in ``datasets``).
- ``seed`` (int64): the per-row seed the generator used.
- ``created_at`` (string): ISO 8601 UTC time.
- ``metadata`` (string): a free JSON object as text, for the same reason as ``sampling``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa

ROLES = ("system", "user", "assistant")

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
GENERATOR_TYPE = pa.struct(
    [
        ("model", pa.string()),
        ("engine", pa.string()),
        ("prompt_version", pa.string()),
        ("sampling", pa.string()),
    ]
)
CONVERSATION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("messages", pa.list_(MESSAGE_TYPE)),
        ("topic", pa.string()),
        ("country", pa.string()),
        ("generator", GENERATOR_TYPE),
        ("seed", pa.int64()),
        ("created_at", pa.string()),
        ("metadata", pa.string()),
    ]
)


def utc_now() -> str:
    """Current time as an ISO 8601 UTC string (seconds)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class Generator:
    """What produced a conversation: model id or path, engine name, prompt version and sampling."""

    model: str = ""
    engine: str = ""
    prompt_version: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)


@dataclass
class Conversation:
    """One multi-turn conversation: OpenAI-style messages plus where it came from."""

    id: str
    messages: list[dict[str, str]]
    topic: str = ""
    country: str = ""
    generator: Generator = field(default_factory=Generator)
    seed: int = 0
    created_at: str = field(default_factory=utc_now)
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        """The Arrow/Parquet row (JSON-encoded ``sampling`` and ``metadata``)."""
        return {
            "id": self.id,
            "messages": [{"role": m["role"], "content": m["content"]} for m in self.messages],
            "topic": self.topic,
            "country": self.country,
            "generator": {
                "model": self.generator.model,
                "engine": self.generator.engine,
                "prompt_version": self.generator.prompt_version,
                "sampling": json.dumps(self.generator.sampling, ensure_ascii=False, sort_keys=True),
            },
            "seed": int(self.seed),
            "created_at": self.created_at,
            "metadata": json.dumps(self.metadata, ensure_ascii=False, sort_keys=True),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Conversation:
        """Inverse of :meth:`to_row`; also accepts already-decoded dicts (JSONL written by hand)."""
        gen = row.get("generator") or {}
        sampling = gen.get("sampling") or {}
        metadata = row.get("metadata") or {}
        return cls(
            id=row["id"],
            messages=[{"role": m["role"], "content": m["content"]} for m in row["messages"]],
            topic=row.get("topic") or "",
            country=row.get("country") or "",
            generator=Generator(
                model=gen.get("model") or "",
                engine=gen.get("engine") or "",
                prompt_version=gen.get("prompt_version") or "",
                sampling=json.loads(sampling) if isinstance(sampling, str) else dict(sampling),
            ),
            seed=int(row.get("seed") or 0),
            created_at=row.get("created_at") or "",
            metadata=json.loads(metadata) if isinstance(metadata, str) else dict(metadata),
        )


def row_problem(row: Any) -> str | None:
    """Why ``row`` is not a valid conversation row, or None when it is.

    Checks presence and types of the required columns, roles, and that ``messages`` is not empty and says
    something. Every command reads conversations through this check (:func:`hiwar.records_io.read_records`), so
    a row that one command refuses, every command refuses.
    """
    if not isinstance(row, dict):
        return f"expected an object, got {type(row).__name__}"
    for key in ("id", "messages"):
        if key not in row or row[key] is None:
            return f"missing column '{key}'"
    if not isinstance(row["id"], str) or not row["id"]:
        return "'id' must be a non-empty string"
    messages = row["messages"]
    if not isinstance(messages, list):
        return f"'messages' must be a list, got {type(messages).__name__}"
    if not messages:
        return "'messages' is empty"
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            return f"messages[{i}] must have 'role' and 'content'"
        if msg["role"] not in ROLES:
            return f"messages[{i}] has unknown role {msg['role']!r} (expected one of {', '.join(ROLES)})"
        if not isinstance(msg["content"], str):
            return f"messages[{i}].content must be a string, got {type(msg['content']).__name__}"
    if not any(msg["content"].strip() for msg in messages):
        return "every message's 'content' is empty (nothing to train on or score)"
    for key in ("topic", "country", "created_at"):
        if row.get(key) is not None and not isinstance(row[key], str):
            return f"'{key}' must be a string, got {type(row[key]).__name__}"
    seed = row.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        return f"'seed' must be an integer, got {type(seed).__name__}"
    for key in ("generator", "metadata"):
        value = row.get(key)
        if value is not None and not isinstance(value, (dict, str)):
            return f"'{key}' must be an object, got {type(value).__name__}"
    return None
