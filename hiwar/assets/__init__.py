"""Data shipped with hiwar: topics, countries, hand-written conversations, prompt templates."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any


def asset_path(name: str) -> Path:
    """Filesystem path of a shipped asset file."""
    return Path(str(resources.files("hiwar") / "assets" / name))


@cache
def load_topics() -> tuple[dict[str, Any], ...]:
    """The 93 topics: ``{"id", "en", "ar", "category"}``."""
    return tuple(json.loads(asset_path("topics.json").read_text(encoding="utf-8")))


@cache
def load_countries() -> tuple[dict[str, Any], ...]:
    """The 151 countries: ``{"iso2", "iso3", "en", "ar", "region", "arab_league"}``."""
    return tuple(json.loads(asset_path("countries.json").read_text(encoding="utf-8")))


def seed_conversations_path() -> Path:
    """The hand-written Arabic conversations (JSONL in the record format)."""
    return asset_path("conversations.jsonl")


def load_seed_conversations() -> list:
    """The hand-written conversations as :class:`hiwar.record.Conversation` objects."""
    from hiwar.records_io import read_records

    return read_records(seed_conversations_path())
