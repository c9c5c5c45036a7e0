"""Export -> fill sheets -> analyze round trips, sheet validation errors, partial analysis and the CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hiwar.cli import cli
from hiwar.config import RunConfig, load_config
from hiwar.errors import HiwarError
from hiwar.evaluation.human.analyze import ALL, run_analyze
from hiwar.evaluation.human.export import run_export
from hiwar.evaluation.human.validate import SheetProblemsError, parse_score

from .helpers import MODELS, fill_sheets

LEVEL = {MODELS[0]: 5, MODELS[1]: 2}


def designed(rater: str, item: dict, crit: str) -> int:
    """Scores whose statistics are known without the code under test.

    fluency: both raters give the model's level (5 or 2): pooled kappa 1, each model's raters constant.
    coherence: both raters agree on a score that varies with the item: every kappa 1.
    relevance: rater-2 is rater-1 plus one: no exact agreement, all within one.
    others: 3 from both (every kappa undefined: constant raters).
    """
    base = 1 + int(item["item_id"][1:]) % 4  # 1..4, from the conversation number
    if crit == "fluency":
        return LEVEL[item["model"]]
    if crit == "coherence":
        return base
    if crit == "relevance":
        return base + (rater == "rater-2")
    return 3


@pytest.fixture
def filled_export(config: RunConfig, conversations: list[Path]) -> Path:
    export = run_export(config, [str(p) for p in conversations])
    fill_sheets(export, designed)
    return export


def test_round_trip_statistics(config: RunConfig, filled_export: Path) -> None:
    config.human_eval.plots = True
    report_dir = run_analyze(config, str(filled_export))
    assert report_dir == filled_export / "report"
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert report["problems"] == [] and report["partial"] is False
    pooled = report["groups"][ALL]
    fluency = pooled["fluency"]["pairs"][0]
    assert fluency["n"] == 12 and all(fluency["kappa"][w]["value"] == pytest.approx(1.0) for w in fluency["kappa"])
    for model, level in LEVEL.items():
        per_model = report["groups"][model]["fluency"]
        assert per_model["average"] == {"n": 6, "mean": pytest.approx(level), "sd": pytest.approx(0.0)}
        assert per_model["pairs"][0]["kappa"]["linear"]["value"] is None
        assert "gave every item the same score" in per_model["pairs"][0]["kappa"]["linear"]["reason"]
    coherence = pooled["coherence"]["pairs"][0]
    assert coherence["spearman"]["rho"] == pytest.approx(1.0) and coherence["exact_agreement"] == 1.0
    relevance = pooled["relevance"]["pairs"][0]
    assert relevance["exact_agreement"] == 0.0 and relevance["within_one"] == 1.0
    assert relevance["spearman"]["rho"] == pytest.approx(1.0)
    assert pooled["overall_quality"]["pairs"][0]["kappa"]["unweighted"]["value"] is None
    assert "krippendorff_alpha_ordinal" not in pooled["coherence"]  # two raters only
    for name in (
        "report.md",
        "scores.csv",
        "score_distributions.png",
        "confusion_rater-1_vs_rater-2.png",
        "config.resolved.yaml",
    ):
        assert (report_dir / name).is_file(), name
    assert (report_dir / "score_distributions.png").read_bytes().startswith(b"\x89PNG")
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "| all models | rater-1 / rater-2 | 12 | 1.000" in markdown and "kappa undefined" in markdown


def test_scores_csv_is_unblinded_and_matches_the_sheets(config: RunConfig, filled_export: Path) -> None:
    report_dir = run_analyze(config, str(filled_export / "sheets"))
    with (report_dir / "scores.csv").open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12 and {r["model"] for r in rows} == set(MODELS)
    for row in rows:
        item = {"item_id": row["item_id"], "model": row["model"]}
        assert int(row["relevance.rater-2"]) == designed("rater-2", item, "relevance")
        assert float(row["relevance.mean"]) == designed("rater-1", item, "relevance") + 0.5


def test_jsonl_sheets_and_three_raters_give_alpha(conversations: list[Path], tmp_path: Path) -> None:
    config = load_config(
        None,
        [
            f"run_dir={tmp_path}",
            "human_eval.raters=3",
            "human_eval.samples_per_model=6",
            "human_eval.bootstrap_samples=0",
            "human_eval.plots=false",
        ],
    )
    export = run_export(config, [str(p) for p in conversations])
    fill_sheets(export, lambda rater, item, crit: designed("rater-1", item, crit), fmt="jsonl")
    report = json.loads((run_analyze(config, str(export)) / "report.json").read_text(encoding="utf-8"))
    coherence = report["groups"][ALL]["coherence"]
    assert len(coherence["pairs"]) == 3 and coherence["krippendorff_alpha_ordinal"]["value"] == pytest.approx(1.0)
    assert coherence["pairs"][0]["kappa"]["quadratic"]["ci"] is None  # bootstrap off
    assert report["groups"][ALL]["overall_quality"]["krippendorff_alpha_ordinal"]["value"] is None


def _rewrite_csv(path: Path, edit) -> None:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header, rows = list(reader.fieldnames), list(reader)
    header, rows = edit(header, rows)
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def test_every_sheet_problem_is_reported_at_once(config: RunConfig, filled_export: Path) -> None:
    sheets = filled_export / "sheets"

    def break_rater1(header: list[str], rows: list[dict]) -> tuple[list[str], list[dict]]:
        rows[0]["fluency"] = "7"  # row 2: outside the scale
        rows[1]["coherence"] = ""  # row 3: blank
        rows[2]["relevance"] = "good"  # row 4: not a number
        rows[3]["item"] = "Q9999"  # row 5: unknown item
        rows[4]["system"] = "S9"  # row 6: system code does not match the key
        rows.append(dict(rows[5]))  # row 14: duplicate of row 7
        del rows[6]  # the item of (old) row 8 goes missing
        return header, rows

    _rewrite_csv(sheets / "rater-1.csv", break_rater1)
    _rewrite_csv(sheets / "rater-2.csv", lambda h, rows: ([c for c in h if c != "overall_quality"], rows))
    (sheets / "rater-3.csv").write_text("item\n", encoding="utf-8")
    with pytest.raises(SheetProblemsError) as caught:
        run_analyze(config, str(filled_export))
    problems = caught.value.problems
    r1, r2 = sheets / "rater-1.csv", sheets / "rater-2.csv"
    expected = [
        f"{r1}: row 2, column 'fluency': score 7 is outside the scale 1-5",
        f"{r1}: row 3, column 'coherence': blank score",
        f"{r1}: row 4, column 'relevance': 'good' is not a number",
        f"{r1}: row 5, column 'item': unknown item 'Q9999' (not in the key)",
        f"{r1}: row 6, column 'system': S9 does not match the key's",
        f"{r1}: row 13, column 'item': item",
        f"{r1}: 2 item(s) of the key missing from the sheet",
        f"{r2}: column 'overall_quality' missing",
        f"{sheets / 'rater-3.csv'}: not a sheet of this export",
    ]
    for start in expected:
        assert sum(p.startswith(start) for p in problems) == 1, (start, problems)
    assert "duplicated (first at row 7)" in next(p for p in problems if p.startswith(f"{r1}: row 13"))
    assert len(problems) == len(expected)
    assert str(caught.value).count("\n") == len(expected)  # one summary line, then one line per problem

    report_dir = run_analyze(config, str(filled_export), allow_partial=True)
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert report["partial"] is True and len(report["problems"]) == len(expected)
    # rater-1 keeps 8 of 12 items: minus row 5 (unknown), row 6 (system), the duplicated and the deleted item.
    assert report["groups"][ALL]["fluency"]["pairs"][0]["n"] == 7  # also row 2's fluency is out of scale
    assert report["groups"][ALL]["overall_quality"]["pairs"][0]["n"] == 0
    assert "Problems skipped" in (report_dir / "report.md").read_text(encoding="utf-8")


def test_missing_and_doubly_filled_sheets(config: RunConfig, filled_export: Path) -> None:
    sheets = filled_export / "sheets"
    fill_sheets(filled_export, designed, fmt="jsonl")  # the CSVs are filled too
    with pytest.raises(SheetProblemsError, match="rater-1.csv and .*rater-1.jsonl: both have scores"):
        run_analyze(config, str(filled_export))
    for name in ("rater-1.jsonl", "rater-2.csv"):
        (sheets / name).unlink()
    run_analyze(config, str(filled_export))  # rater-1 filled the CSV, rater-2 the JSONL: fine
    (sheets / "rater-2.jsonl").unlink()
    with pytest.raises(SheetProblemsError, match="rater-2.csv: sheet missing"):
        run_analyze(config, str(filled_export))
    with pytest.raises(HiwarError, match="fewer than two raters"):
        run_analyze(config, str(filled_export), allow_partial=True)


def test_blank_sheet_is_one_problem(config: RunConfig, conversations: list[Path]) -> None:
    export = run_export(config, [str(p) for p in conversations])
    with pytest.raises(SheetProblemsError) as caught:
        run_analyze(config, str(export))
    assert [p.split(": ", 1)[1] for p in caught.value.problems] == ["no scores filled in"] * 2


@pytest.mark.parametrize(("cell", "score"), [("4", 4), (" 5 ", 5), ("٣", 3), ("2.0", 2), (1, 1), (4.0, 4)])
def test_scores_raters_may_type(cell: object, score: int) -> None:
    assert parse_score(cell, 1, 5) == (score, None)


@pytest.mark.parametrize("cell", ["", None, "3.5", "0", "6", "x", True])
def test_scores_that_are_rejected(cell: object) -> None:
    value, problem = parse_score(cell, 1, 5)
    assert value is None and problem


def test_cli_export_and_analyze(conversations: list[Path], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "he"
    sets = ["--set", "human_eval.samples_per_model=4", "--set", "human_eval.bootstrap_samples=50"]
    sets += ["--set", "human_eval.plots=false"]
    result = runner.invoke(cli, ["human-eval", "export", *map(str, conversations), "--out", str(out), *sets])
    assert result.exit_code == 0, result.output
    assert str(out / "key.json") in result.output
    result = runner.invoke(cli, ["human-eval", "analyze", str(out), *sets])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.startswith("Error: 2 problem(s)") and "rater-1.csv: no scores filled in" in result.output
    fill_sheets(out, designed)
    result = runner.invoke(cli, ["human-eval", "analyze", str(out), *sets])
    assert result.exit_code == 0, result.output
    assert (out / "report" / "report.md").is_file()


def test_cli_user_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["human-eval", "export", str(tmp_path / "missing.parquet")])
    assert result.exit_code == 2 and result.output.strip().count("\n") == 0
    assert "missing.parquet: no such file or folder" in result.output
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    result = runner.invoke(cli, ["human-eval", "export", str(tmp_path / "broken.parquet")])
    assert result.exit_code == 2 and "broken.parquet: not a readable Parquet file" in result.output
    result = runner.invoke(cli, ["human-eval", "analyze", str(tmp_path)])
    assert result.exit_code == 2 and "key file not found" in result.output
    result = runner.invoke(cli, ["human-eval", "export", "x", "--set", "human_eval.scale_max=0"])
    assert result.exit_code == 2 and "scale_max (0) must be greater than scale_min (1)" in result.output


def test_reports_are_reproducible(config: RunConfig, filled_export: Path, tmp_path: Path) -> None:
    first = run_analyze(config, str(filled_export), out_dir=str(tmp_path / "r1"))
    second = run_analyze(config, str(filled_export), out_dir=str(tmp_path / "r2"))
    one, two = (json.loads((d / "report.json").read_text(encoding="utf-8")) for d in (first, second))
    assert one["groups"] == two["groups"]
    ci = one["groups"][ALL]["relevance"]["pairs"][0]["kappa"]["quadratic"]
    assert ci["value"] is not None and np.isfinite(ci["ci"]).all()


def test_report_withholds_intervals_below_the_minimum_n_and_says_so(config: RunConfig, filled_export: Path) -> None:
    config.human_eval.min_interval_n = 50  # more items than the export has
    report_dir = run_analyze(config, str(filled_export))
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    coherence = report["groups"][ALL]["coherence"]["pairs"][0]
    assert coherence["kappa"]["linear"]["ci"] is None
    text = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "shown only where at least 50 items were scored by both raters" in text
    assert (
        "- all models, coherence, rater-1 vs rater-2: no kappa interval: n=12 is below human_eval.min_interval_n=50"
        in text
    )
