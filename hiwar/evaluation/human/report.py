"""Write the human-eval report: JSON (everything), Markdown (the tables a paper needs) and per-item CSV."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from hiwar.atomic import atomic_open, write_text
from hiwar.evaluation.human.stats import WEIGHTINGS
from hiwar.lineage import write_json

NA = "n/a"


def _num(value: float | None, digits: int = 3) -> str:
    return NA if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return NA if value is None else f"{100 * value:.0f}%"


def _p(value: float | None) -> str:
    if value is None:
        return NA
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _kappa(stat: dict[str, Any]) -> str:
    if stat["value"] is None:
        return NA
    ci = stat.get("ci")
    return f"{stat['value']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _quality_table(report: dict[str, Any]) -> list[str]:
    crits = report["criteria"]
    lines = ["| model | " + " | ".join(crits) + " |", "|---|" + "---|" * len(crits)]
    for group, by_crit in report["groups"].items():
        cells = []
        for crit in crits:
            avg = by_crit[crit]["average"]
            sd = f" ± {avg['sd']:.2f}" if avg["sd"] is not None else ""
            cells.append(f"{_num(avg['mean'], 2)}{sd} (n={avg['n']})")
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    return lines


def _agreement_table(report: dict[str, Any], crit: str, notes: dict[str, None]) -> list[str]:
    many = len(report["raters"]) > 2
    head = "| group | raters | n | κ | κ linear | κ quadratic | ρ (p) | exact | within one |"
    lines = [head + (" α ordinal |" if many else ""), "|---" * (10 if many else 9) + "|"]
    for group, by_crit in report["groups"].items():
        stats = by_crit[crit]
        for pair in stats["pairs"]:
            for weighting in WEIGHTINGS:
                kappa, who = pair["kappa"][weighting], f"{group}, {crit}, {' vs '.join(pair['raters'])}"
                if kappa["reason"]:
                    notes[f"{who}: kappa undefined: {kappa['reason']}"] = None
                elif kappa.get("ci_reason"):
                    notes[f"{who}: no kappa interval: {kappa['ci_reason']}"] = None
            rho = pair["spearman"]
            if rho["reason"]:
                notes[f"{group}, {crit}, {' vs '.join(pair['raters'])}: rho undefined: {rho['reason']}"] = None
            row = (
                f"| {group} | {' / '.join(pair['raters'])} | {pair['n']} | "
                + " | ".join(_kappa(pair["kappa"][w]) for w in WEIGHTINGS)
                + f" | {_num(rho['rho'])} ({_p(rho['p'])}) | {_pct(pair['exact_agreement'])} | "
                f"{_pct(pair['within_one'])} |"
            )
            if many:
                alpha = stats["krippendorff_alpha_ordinal"]
                if alpha["reason"]:
                    notes[f"{group}, {crit}: alpha undefined: {alpha['reason']}"] = None
                row += f" {_num(alpha['value'])} |"
            lines.append(row)
    return lines


def _rater_table(report: dict[str, Any]) -> list[str]:
    raters = report["raters"]
    lines = [
        "| group | criterion | " + " | ".join(raters) + " | average |",
        "|---|---|" + "---|" * (len(raters) + 1),
    ]
    for group, by_crit in report["groups"].items():
        for crit, stats in by_crit.items():
            cells = [stats["raters"].get(r, {"mean": None, "sd": None}) for r in raters] + [stats["average"]]
            text = [f"{_num(c['mean'], 2)} ± {_num(c['sd'], 2)}" for c in cells]
            lines.append(f"| {group} | {crit} | " + " | ".join(text) + " |")
    return lines


def markdown(report: dict[str, Any], plots: list[str]) -> str:
    """The report as Markdown."""
    boot = report["bootstrap"]
    scale = report["scale"]
    lines = [
        "# Human evaluation report",
        "",
        f"Export `{report['export_id']}`: {report['items']} items from {len(report['models'])} model(s), "
        f"rated by {', '.join(report['raters'])} on a {scale['min']}-{scale['max']} scale. Kappa intervals: "
        f"percentile bootstrap over items, {boot['samples']} resamples, {100 * boot['confidence']:.0f}% "
        f"(seed {boot['seed']}), shown only where at least {boot.get('min_interval_n', 2)} items were scored by "
        "both raters and most resamples define kappa: a kappa without brackets has no interval, for the reason "
        "listed under the tables. ρ is Spearman's rank correlation with its two-sided p-value.",
        "",
    ]
    if report["partial"]:
        lines += [
            f"**Partial analysis**: {len(report['problems'])} problem(s) in the sheets were skipped "
            "(listed at the end).",
            "",
        ]
    lines += ["## Quality: mean ± sd of the raters' average score per item", "", *_quality_table(report), ""]
    notes: dict[str, None] = {}
    lines += ["## Agreement", ""]
    for crit in report["criteria"]:
        lines += [f"### {crit}", "", *_agreement_table(report, crit, notes), ""]
    if notes:
        lines += ["Undefined statistics and missing intervals:", ""] + [f"- {n}" for n in notes] + [""]
    lines += ["## Each rater's scores (mean ± sd)", "", *_rater_table(report), ""]
    if report["problems"]:
        lines += ["## Problems skipped", ""] + [f"- {p}" for p in report["problems"]] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def write_scores_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """Per-item scores as CSV (UTF-8 with a BOM, like the sheets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["item"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_report(report: dict[str, Any], rows: list[dict[str, Any]], out: Path, plots: list[str] | None = None) -> Path:
    """Write ``report.json``, ``report.md`` and ``scores.csv`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "report.json", report)
    write_scores_csv(rows, out / "scores.csv")
    write_text(out / "report.md", markdown(report, plots or []))
    return out
