"""Which conversations and turns each metric scores, and why others are skipped."""

from __future__ import annotations

from hiwar.evaluation.examples import perplexity_rows, pick_turns, raven_rows, stable_seed
from tests.evaluation.helpers import conversation


def _convs() -> list:
    return [
        conversation("c1", "food", "س1", "ج1", "س2", "ج2", "س3", "ج3"),
        conversation("c2", "travel", "سؤال بلا رد"),
        conversation("c3", "travel", "س", "   "),
        conversation("c4", "travel", "س", "جواب"),
    ]


def test_skips_conversations_without_assistant_turns() -> None:
    rows, skipped = perplexity_rows(_convs())
    assert [r["id"] for r in rows] == ["c1", "c4"]  # longest first
    assert skipped.to_dict() == {
        "no assistant turn": {"count": 1, "examples": ["c2"]},
        "no non-empty assistant turn after a user turn": {"count": 1, "examples": ["c3"]},
    }


def test_raven_rows_hold_the_dialogue_so_far() -> None:
    rows, skipped = raven_rows(_convs(), "all", None, None, seed=0)
    assert [r["request_id"] for r in rows] == ["c1#1", "c1#3", "c1#5", "c4#1"]
    row = rows[1]
    assert row["messages"][-1] == {"role": "user", "content": "س2"} and len(row["messages"]) == 3
    assert row["reference"] == "ج2" and row["seed"] == stable_seed(0, "c1", 3)
    assert sum(v["count"] for v in skipped.to_dict().values()) == 2
    last, _ = raven_rows(_convs(), "last", None, None, seed=0)
    assert [r["request_id"] for r in last] == ["c1#5", "c4#1"]


def test_turn_sampling_is_seeded_and_bounded() -> None:
    messages = _convs()[0].messages
    assert pick_turns(messages, "all", 2, seed=5) == pick_turns(messages, "all", 2, seed=5)
    assert len(pick_turns(messages, "all", 2, seed=5)) == 2
    picked = {tuple(pick_turns(messages, "sample", None, seed=s)) for s in range(20)}
    assert picked <= {(1,), (3,), (5,)} and len(picked) > 1
    some, _ = raven_rows(_convs(), "all", None, 1, seed=0)
    assert len({r["conversation_id"] for r in some}) == 1
    assert stable_seed("a", 1) == stable_seed("a", 1) != stable_seed("a", 2)
