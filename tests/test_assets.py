"""Sanity checks on the bundled data files in ``hiwar/assets`` (topics, countries, seed conversations)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ASSETS = Path(__file__).parents[1] / "hiwar" / "assets"

ARABIC = re.compile(r"[\u0600-\u06FF]")
LATIN = re.compile(r"[A-Za-z]")
SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")

ARAB_LEAGUE = set("DZ BH KM DJ EG IQ JO KW LB LY MR MA OM PS QA SA SO SD SY TN AE YE".split())
REGIONS = {"arab_world", "africa", "asia", "europe", "americas", "oceania"}


def _load_json(name: str):
    return json.loads((ASSETS / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def topics() -> list[dict]:
    return _load_json("topics.json")


@pytest.fixture(scope="module")
def countries() -> list[dict]:
    return _load_json("countries.json")


@pytest.fixture(scope="module")
def conversations() -> list[dict]:
    lines = (ASSETS / "conversations.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_topics(topics):
    assert len(topics) == 93
    ids = [t["id"] for t in topics]
    assert len(set(ids)) == len(ids)
    assert len({t["en"] for t in topics}) == len(topics)
    assert len({t["ar"] for t in topics}) == len(topics)
    for t in topics:
        assert SNAKE.match(t["id"]), t["id"]
        assert t["en"].strip(), t
        assert t["ar"].strip() and ARABIC.search(t["ar"]), t
        assert not LATIN.search(t["ar"]), t
        assert SNAKE.match(t["category"]), t
    assert 8 <= len({t["category"] for t in topics}) <= 20


def test_countries(countries):
    assert len(countries) == 151
    iso2 = [c["iso2"] for c in countries]
    iso3 = [c["iso3"] for c in countries]
    assert len(set(iso2)) == len(iso2)
    assert len(set(iso3)) == len(iso3)
    for c in countries:
        assert re.fullmatch(r"[A-Z]{2}", c["iso2"]), c
        assert re.fullmatch(r"[A-Z]{3}", c["iso3"]), c
        assert c["en"].strip(), c
        assert ARABIC.search(c["ar"]) and not LATIN.search(c["ar"]), c
        assert c["region"] in REGIONS, c
        assert isinstance(c["arab_league"], bool), c
        assert c["arab_league"] == (c["iso2"] in ARAB_LEAGUE), c
        assert (c["region"] == "arab_world") == c["arab_league"], c
    assert ARAB_LEAGUE <= set(iso2)
    # Arab League members first, then by English name within each group.
    keys = [(not c["arab_league"], c["en"]) for c in countries]
    assert keys == sorted(keys)


def test_conversations(conversations, topics, countries):
    assert len(conversations) >= 60
    topic_ids = {t["id"] for t in topics}
    iso2 = {c["iso2"] for c in countries}
    ids = [c["id"] for c in conversations]
    assert len(set(ids)) == len(ids)
    for conv in conversations:
        assert conv["topic"] in topic_ids, conv["id"]
        assert conv["country"] in iso2, conv["id"]
        msgs = conv["messages"]
        assert 4 <= len(msgs) <= 10, conv["id"]
        assert len(msgs) % 2 == 0, conv["id"]
        for i, m in enumerate(msgs):
            assert m["role"] == ("user" if i % 2 == 0 else "assistant"), (conv["id"], i)
            content = m["content"]
            assert content.strip(), (conv["id"], i)
            assert ARABIC.search(content), (conv["id"], i)
            assert not LATIN.search(content), (conv["id"], i, content)
        gen = conv["generator"]
        assert isinstance(json.loads(gen["sampling"]), dict)
        meta = json.loads(conv["metadata"])
        assert isinstance(meta, dict) and meta.get("dialect"), conv["id"]
    assert len({c["topic"] for c in conversations}) >= 40
    assert len({c["country"] for c in conversations}) >= 30
