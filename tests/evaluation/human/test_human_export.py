"""Export: loading items, stratified seeded sampling, blinding, per-rater order, formats, idempotence."""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from hiwar.config import RunConfig
from hiwar.errors import DataError, HiwarError
from hiwar.evaluation.human.export import run_export
from hiwar.evaluation.human.items import RatingItem, load_items
from hiwar.evaluation.human.sample import sample_items, stratified_ids

from .helpers import MODELS, TOPICS, fill_sheets


def test_conversation_items_rate_the_last_assistant_turn(conversations: list[Path]) -> None:
    items = load_items([str(p) for p in conversations])
    assert Counter(i.model for i in items) == {MODELS[0]: 9, MODELS[1]: 9}
    first = next(i for i in items if i.item_id == "c000")
    assert first.reply == "نصيحتي رقم 0: خذ الأمور بهدوء."
    assert [m["role"] for m in first.context] == ["user", "assistant", "user"]
    renamed = load_items([str(conversations[0])], model_name="mine")
    assert {i.model for i in renamed} == {"mine"}


def test_replies_file_items(replies_file: Path, tmp_path: Path) -> None:
    items = load_items([str(replies_file)])
    assert len(items) == 12 and {i.model for i in items} == set(MODELS)
    assert items[0].context == [{"role": "user", "content": "سؤال 0"}] and items[0].reference == "مرجع 0"
    # JSONL replies with a messages list (not a JSON string) as context, and a bad row reported by line.
    bad = tmp_path / "bad.jsonl"
    good_row = {
        "model": "m",
        "conversation_id": "x",
        "context": [{"role": "user", "content": "س"}],
        "reply": "ج",
    }
    bad.write_text(
        json.dumps(good_row) + "\n" + json.dumps({**good_row, "context": [{"role": "bot"}]}) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"bad\.jsonl: line 2: context\[0\] must be"):
        load_items([str(bad)])


def test_duplicate_items_and_missing_inputs_are_data_errors(replies_file: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="twice"):
        load_items([str(replies_file), str(replies_file)])
    with pytest.raises(DataError, match="no such file"):
        load_items([str(tmp_path / "nope.parquet")])


def test_stratified_sampling_spreads_over_topics() -> None:
    ids = {t: [f"{t}{n}" for n in range(6)] for t in TOPICS}
    chosen = stratified_ids(ids, 6, random.Random(0))
    assert Counter(c.rstrip("0123456789") for c in chosen) == {t: 2 for t in TOPICS}
    assert stratified_ids(ids, 6, random.Random(0)) == chosen
    assert len(stratified_ids(ids, 100, random.Random(0))) == 18


def test_models_with_the_same_items_get_the_same_sample() -> None:
    items = [
        RatingItem(model=m, item_id=f"x{n}", context=[], reply="r", topic=TOPICS[n % 3])
        for m in MODELS
        for n in range(12)
    ]
    chosen = sample_items(items, 4, True, seed=5)
    by_model = {m: sorted(i.item_id for i in chosen if i.model == m) for m in MODELS}
    assert by_model[MODELS[0]] == by_model[MODELS[1]] and len(by_model[MODELS[0]]) == 4


def _sheet_files(export: Path) -> list[Path]:
    return sorted((export / "sheets").iterdir())


def test_export_is_blind(config: RunConfig, conversations: list[Path]) -> None:
    export = run_export(config, [str(p) for p in conversations])
    assert export == Path(config.run_dir) / "human_eval"
    names = {p.name for p in _sheet_files(export)}
    assert names == {"instructions.md", "rater-1.csv", "rater-1.jsonl", "rater-2.csv", "rater-2.jsonl"}
    for path in _sheet_files(export):
        text = path.read_bytes().decode("utf-8-sig")
        for secret in [*MODELS, "jais", "aragpt2", "c000", str(conversations[0])]:
            assert secret not in text, f"{secret!r} leaks into {path.name}"
    key = json.loads((export / "key.json").read_text(encoding="utf-8"))
    assert set(key["systems"].values()) == set(MODELS)
    assert Counter(v["model"] for v in key["items"].values()) == {m: 6 for m in MODELS}
    assert (export / "config.resolved.yaml").is_file()


def test_sheets_shuffle_per_rater_and_carry_every_column(config: RunConfig, conversations: list[Path]) -> None:
    export = run_export(config, [str(p) for p in conversations])
    raw = (export / "sheets" / "rater-1.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: spreadsheets then read the file as UTF-8
    with (export / "sheets" / "rater-1.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows1 = list(csv.DictReader(fh))
    rows2 = [json.loads(line) for line in (export / "sheets" / "rater-2.jsonl").read_text("utf-8").splitlines()]
    assert list(rows1[0]) == [
        "item",
        "system",
        "topic",
        "context",
        "reply",
        "fluency",
        "coherence",
        "relevance",
        "cultural_appropriateness",
        "overall_quality",
        "comment",
    ]
    assert {r["item"] for r in rows1} == {r["item"] for r in rows2} and len(rows1) == 12
    assert [r["item"] for r in rows1] != [r["item"] for r in rows2]
    assert "المستخدم (user): مرحبا" in rows1[0]["context"] and rows1[0]["fluency"] == ""
    assert rows2[0]["context"][0]["role"] == "user" and rows2[0]["fluency"] is None
    instructions = (export / "sheets" / "instructions.md").read_text(encoding="utf-8")
    for text in (
        "الطلاقة",
        "Fluency",
        "الملاءمة الثقافية",
        "Cultural appropriateness",
        "from 1 to 5",
        "5: excellent",
    ):
        assert text in instructions


def test_export_is_reproducible_and_keeps_filled_sheets(
    config: RunConfig, conversations: list[Path], tmp_path: Path
) -> None:
    inputs = [str(p) for p in conversations]
    first = run_export(config, inputs, out_dir=str(tmp_path / "a"))
    second = run_export(config, inputs, out_dir=str(tmp_path / "b"))
    for name in ("rater-1.csv", "rater-2.jsonl", "instructions.md"):
        assert (first / "sheets" / name).read_bytes() == (second / "sheets" / name).read_bytes()
    fill_sheets(first, lambda rater, item, crit: 3)
    filled = (first / "sheets" / "rater-1.csv").read_bytes()
    run_export(config, inputs, out_dir=str(first))  # same export: nothing rewritten
    assert (first / "sheets" / "rater-1.csv").read_bytes() == filled
    other = config.model_copy(update={"seed": 99})
    with pytest.raises(HiwarError, match="already have scores"):
        run_export(other, inputs, out_dir=str(first))


def test_config_changes_criteria_scale_and_raters(conversations: list[Path], tmp_path: Path) -> None:
    from hiwar.config import load_config

    config = load_config(
        None,
        [
            f"run_dir={tmp_path}",
            "human_eval.raters=3",
            "human_eval.scale_min=0",
            "human_eval.scale_max=3",
            "human_eval.max_context_messages=1",
            "human_eval.criteria=[{name: clarity, label_en: Clarity, label_ar: الوضوح, "
            'description_en: "Clear?", '
            'description_ar: "واضح؟"}]',
        ],
    )
    export = run_export(config, [str(conversations[0])])
    rows = [json.loads(line) for line in (export / "sheets" / "rater-3.jsonl").read_text("utf-8").splitlines()]
    assert "clarity" in rows[0] and "fluency" not in rows[0] and len(rows[0]["context"]) == 1
    assert "from 0 to 3" in (export / "sheets" / "instructions.md").read_text(encoding="utf-8")
