"""Pairwise aggregation by hand: both orders per turn, position bias cancelled, win/tie/loss and win rate."""

from __future__ import annotations

import pytest

from hiwar.judge.pairwise import pair_summary, pairwise_items


def verdicts(turn: str, conv: str, first: str, second: str, status: str = "ok") -> list[dict]:
    """Two verdicts for one turn of x vs y: ``first`` in order 1 (x shown as A), ``second`` in order 2."""
    return [
        {"turn": turn, "order": "1", "status": "ok", "winner": first, "first_model": "x", "second_model": "y",
         "conversation_id": conv},
        {"turn": turn, "order": "2", "status": status, "winner": second, "first_model": "y", "second_model": "x",
         "conversation_id": conv},
    ]  # fmt: skip


def test_orders_combine_into_win_tie_loss():
    rows = [
        *verdicts("t1", "c1", "A", "B"),  # x better in both orders: win
        *verdicts("t2", "c2", "A", "A"),  # first position both times: tie
        *verdicts("t3", "c3", "B", "A"),  # y better in both orders: loss
        *verdicts("t4", "c4", "tie", "B"),  # tie, then x: 0.75, a win
        *verdicts("t5", "c5", "A", "B", status="kept_aside"),  # one order missing: left out
    ]
    got = pair_summary(rows, "x", "y", samples=500, seed=0)
    assert got["turns"] == 4 and got["incomplete_turns"] == 1
    assert (got["win"]["value"], got["tie"]["value"], got["loss"]["value"]) == (0.5, 0.25, 0.25)
    assert got["win_rate"]["value"] == pytest.approx((1 + 0.5 + 0 + 0.75) / 4)
    assert got["win_rate"]["ci_low"] <= got["win_rate"]["value"] <= got["win_rate"]["ci_high"]
    # Decided verdicts of complete and incomplete turns: A in t1, t2 x2, t3 (order 2), t5 (order 1); B in t1, t3, t4.
    assert got["position"]["verdicts"] == 9 and got["position"]["ties"] == 1
    assert got["position"]["first_preferred"] == pytest.approx(5 / 8)
    assert got["position"]["orders_agree"] == pytest.approx(2 / 4)  # t1 and t3


def test_items_show_each_reply_first_once():
    turn = {"conversation_id": "c1", "topic": "t", "context": [{"role": "user", "content": "س"}]}
    replies = {"x": {"c1#1": {**turn, "reply": "RX"}}, "y": {"c1#1": {**turn, "reply": "RY"}, "c2#1": turn}}
    items = pairwise_items(replies, [("x", "y")], None, seed=0)
    assert [(i["order"], i["reply_a"], i["reply_b"], i["first_model"]) for i in items] == [
        ("1", "RX", "RY", "x"),
        ("2", "RY", "RX", "y"),
    ]
    assert len({i["item_id"] for i in items}) == 2 and all(i["kind"] == "pairwise" for i in items)
