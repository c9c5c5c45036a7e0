"""Judge numbers as text: ``summary.json`` and ``report.md`` of a judge run, the console summary, and the judge's
sections in the evaluation report and the dataset card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hiwar.atomic import write_text
from hiwar.judge.config import OVERALL

SUMMARY = "summary.json"  # a judge run's numbers, beside report.md

NA = "-"


def num(value: Any, digits: int = 2) -> str:
    """A number for a table cell; a dash when missing."""
    return NA if value is None else f"{value:.{digits}f}"


def mean_ci(stats: dict[str, Any] | None) -> str:
    """``mean [low, high]`` (the interval when there is one)."""
    if not stats or stats.get("mean") is None:
        return NA
    if stats.get("ci_low") is None:
        return num(stats["mean"])
    return f"{num(stats['mean'])} [{num(stats['ci_low'])}, {num(stats['ci_high'])}]"


def table(head: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table."""
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows
    ]


def scores_table(summary: dict[str, Any]) -> list[str]:
    """Per criterion and overall: mean [95% interval], sd, n, and the distribution over the scale."""
    rows = []
    for name, stats in [*summary["criteria"].items(), (OVERALL, summary[OVERALL])]:
        dist = stats.get("distribution")
        rows.append(
            [
                name,
                mean_ci(stats),
                num(stats.get("sd")),
                stats["n"],
                " ".join(f"{k}:{v}" for k, v in dist.items()) if dist else NA,
            ]
        )
    return table(["criterion", "mean [95% CI]", "sd", "n", "scores (score:count)"], rows)


def counts_lines(counts: dict[str, Any]) -> list[str]:
    """Judged, retried, kept aside, and why."""
    reasons = ", ".join(f"{k} {v}" for k, v in counts["failed_attempts_by_reason"].items()) or "none"
    aside = ", ".join(f"{k} {v}" for k, v in counts["kept_aside_by_reason"].items()) or "none"
    return [
        f"- items: {counts['items']}; judged: {counts['judged']}; kept aside: {counts['kept_aside']} ({aside})",
        f"- retried: {counts['retried']} item(s); failed attempts: {counts['failed_attempts']} ({reasons}); "
        f"attempts per item: {counts['attempts']}",
    ]


def render_summary(summary: dict[str, Any]) -> str:
    """A judge run's ``report.md``."""
    judge = summary["judge"]
    lines = [
        "# hiwar judge report",
        "",
        f"Judge `{judge['model']}` (engine {judge['engine']}, prompt {judge['prompt_version']} in "
        f"{judge['language']}, structured output: {'on' if judge['structured_output'] else 'off'}, up to "
        f"{judge['max_attempts']} attempts per item). Scale {judge['rubric']['scale']['min']}-"
        f"{judge['rubric']['scale']['max']}; overall = the mean of an item's criterion scores; intervals: "
        "percentile bootstrap over conversations.",
        "",
        *counts_lines(summary["counts"]),
        "",
        "## Scores",
        "",
        *scores_table(summary),
    ]
    for model, part in (summary.get("per_model") or {}).items():
        lines += ["", f"## {model}", "", *counts_lines(part["counts"]), "", *scores_table(part)]
    if summary.get("per_topic"):
        names = [*summary["criteria"], OVERALL]
        rows = [[t, v["n"], *(num(v[n]) for n in names)] for t, v in summary["per_topic"].items()]
        lines += ["", "## By topic (means)", "", *table(["topic", "n", *names], rows)]
    return "\n".join(lines) + "\n"


def write_summary(out: Path, summary: dict[str, Any]) -> None:
    """Write ``summary.json`` and ``report.md``."""
    from hiwar.lineage import finite, write_json

    write_json(out / SUMMARY, finite(summary))
    write_text(out / "report.md", render_summary(summary))


def summary_text(summary: dict[str, Any], out: Path) -> str:
    """The console summary of ``hiwar judge``."""
    c = summary["counts"]
    crit = ", ".join(f"{k} {num(v['mean'])}" for k, v in summary["criteria"].items())
    return "\n".join(
        [
            f"hiwar judge: {out}",
            f"  judge       {summary['judge']['engine']} / {summary['judge']['model']}",
            f"  items       {c['items']}: judged {c['judged']}, kept aside {c['kept_aside']}, retried {c['retried']}",
            f"  overall     {mean_ci(summary[OVERALL])}",
            f"  criteria    {crit or NA}",
            f"  report      {out / 'report.md'}",
        ]
    )


JUDGE_METHOD = (
    "Judge = `{model}` ({engine}, prompt {version} in {language}) scores each model's RAVEN replies on the "
    "human-evaluation rubric ({criteria}; whole numbers {lo}-{hi}), one short rationale per criterion; "
    "{structured}; a malformed or off-scale judgment is retried with a new seed up to {attempts} times in all, then "
    "kept aside (counted, never given a score). Overall = the mean of an item's criterion scores. 95% intervals: "
    "percentile bootstrap over conversations ({samples} resamples).{pairwise}"
)


def judge_method(cfg: Any, human_eval: Any) -> str:
    """The evaluation report's method statement for ``evaluation.judge`` (rubric from ``human_eval``)."""
    structured = "a strict JSON parser"
    if cfg.guided:
        how = "guided decoding" if cfg.engine == "vllm" else "the server's structured output (response_format)"
        structured = f"the judgment's JSON schema enforced by {how}, then {structured}"
    pairwise = (
        " Pairwise: every shared turn of two models judged in both orders; a turn's score is the mean of its two "
        "verdicts (ties count half), so position bias cancels; the share of decided verdicts won by the reply "
        "shown first measures that bias."
        if cfg.pairwise.enabled
        else ""
    )
    return JUDGE_METHOD.format(
        model=cfg.model,
        engine=cfg.engine,
        version=cfg.prompt_version,
        language=cfg.language,
        criteria=", ".join(c.name for c in human_eval.criteria),
        lo=human_eval.scale_min,
        hi=human_eval.scale_max,
        structured=structured,
        attempts=cfg.max_attempts,
        samples=cfg.bootstrap_samples,
        pairwise=pairwise,
    )


def evaluation_section(results: list[dict[str, Any]], pairwise: dict[str, Any] | None) -> list[str]:
    """The evaluation report's judge section: per model and criterion, per topic, failures, and the pairwise
    table."""
    judged = [r for r in results if (r.get("judge") or {}).get("status") == "ok"]
    failed = [r for r in results if (r.get("judge") or {}).get("status") == "failed"]
    if not judged and not failed and not pairwise:
        return []
    lines = ["## LLM judge", ""]
    lines += [f"- **{r['name']}**: the judge failed: {r['judge'].get('reason')}" for r in failed]
    if failed:
        lines.append("")
    if pairwise and pairwise.get("status") == "failed":
        lines += [f"Pairwise comparison failed: {pairwise.get('reason')}", ""]
    if judged:
        names = list(judged[0]["judge"]["criteria"])
        rows = [
            [
                r["name"],
                *(mean_ci(r["judge"]["criteria"][n]) for n in names),
                mean_ci(r["judge"][OVERALL]),
                r["judge"]["counts"]["judged"],
                r["judge"]["counts"]["kept_aside"],
            ]
            for r in judged
        ]
        lines += [
            "Mean judge score per criterion [95% interval, bootstrap over conversations]; overall = the mean of "
            "an item's criterion scores.",
            "",
            *table(["model", *names, OVERALL, "judged", "kept aside"], rows),
        ]
        topics = sorted({t for r in judged for t in r["judge"].get("per_topic", {})})
        if topics:
            rows = [
                [r["name"], *(num((r["judge"]["per_topic"].get(t) or {}).get(OVERALL)) for t in topics)] for r in judged
            ]
            lines += ["", "Overall judge score by topic:", "", *table(["model", *topics], rows)]
    if pairwise and pairwise.get("pairs"):
        lines += ["", *pairwise_lines(pairwise)]
    return lines + [""]


def _rate(stats: dict[str, Any]) -> str:
    if stats.get("value") is None:
        return NA
    ci = f" [{num(stats['ci_low'])}, {num(stats['ci_high'])}]" if stats.get("ci_low") is not None else ""
    return f"{num(stats['value'])}{ci}"


def pairwise_lines(pairwise: dict[str, Any]) -> list[str]:
    """The pairwise table: X vs Y, win rate (ties half), win/tie/loss with intervals, and position bias."""
    rows = []
    for part in pairwise["pairs"].values():
        x, y = part["models"]
        pos = part["position"]
        rows.append(
            [
                f"{x} vs {y}",
                part["turns"],
                _rate(part["win_rate"]),
                _rate(part["win"]),
                _rate(part["tie"]),
                _rate(part["loss"]),
                num(pos["first_preferred"]),
                num(pos["orders_agree"]),
            ]
        )
    bias = pairwise["position_bias"]["first_preferred"]
    return [
        "Pairwise: each shared turn judged in both orders; a turn's score is the mean of its two verdicts, so "
        "position bias cancels (ties count half in the win rate).",
        "",
        *table(["pair", "turns", "win rate", "win", "tie", "loss", "first shown preferred", "orders agree"], rows),
        "",
        f"Position bias over all pairs: the reply shown first won {num(bias)} of decided verdicts (0.50 = none).",
    ]


def card_section(stats: dict[str, Any]) -> str:
    """The dataset card's judge section ("" when the filter was off)."""
    judge = stats.get("judge")
    if not judge:
        return ""
    c = judge["counts"]
    thresholds = ", ".join(f"{k} >= {v:g}" for k, v in judge["thresholds"].items()) or "none"
    lines = [
        "## LLM judge filter",
        "",
        f"Every accepted conversation was scored by `{judge['judge']['model']}` (engine {judge['judge']['engine']}, "
        f"prompt {judge['judge']['prompt_version']}) on the human-evaluation rubric; thresholds: {thresholds}. "
        f"{c['below_threshold']} conversation(s) fell below and were rejected (`judge_below_threshold`); "
        f"{c['kept_aside']} could not be scored ({judge['on_failure']}). Scores of the kept conversations:",
        "",
        *scores_table(judge["accepted"]),
        "",
    ]
    return "\n".join(lines)


def _kappa(stat: dict[str, Any]) -> str:
    if stat["value"] is None:
        return "undefined"
    ci = stat.get("ci")
    return f"{stat['value']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _rho(stat: dict[str, Any]) -> str:
    if stat["rho"] is None:
        return "undefined"
    ci = stat.get("ci")
    return f"{stat['rho']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def _pct(value: float | None) -> str:
    return NA if value is None else f"{100 * value:.0f}%"


def _agreement_row(label: str, pair: dict[str, Any], notes: list[str], crit: str) -> list[Any]:
    for weighting, stat in pair["kappa"].items():
        if stat["reason"]:
            notes.append(f"{crit}, {label}: kappa ({weighting}) undefined: {stat['reason']}")
    if pair["spearman"]["reason"]:
        notes.append(f"{crit}, {label}: rho undefined: {pair['spearman']['reason']}")
    return [
        label,
        pair["n"],
        *(_kappa(pair["kappa"][w]) for w in ("unweighted", "linear", "quadratic")),
        _rho(pair["spearman"]),
        _pct(pair["exact_agreement"]),
        _pct(pair["within_one"]),
    ]


def calibration_markdown(cal: dict[str, Any]) -> str:
    """The human-eval report's judge calibration section."""
    head = ["comparison", "n", "κ", "κ linear", "κ quadratic", "ρ", "exact", "within one"]
    lines = [
        "## Judge calibration: the LLM judge against the raters",
        "",
        f"The judge (`{cal.get('judge') or '?'}`) scored {cal['judged_items']} of the {cal['items']} blind items. "
        "Intervals: percentile bootstrap over items. Judge vs raters' mean: "
        f"{cal['mean_rounding']}. Krippendorff's α (ordinal) of the raters alone, then with the judge as one "
        "more rater. The rater pairs are the yardstick: a judge that agrees with the raters as well as they agree "
        "with each other can stand in for one.",
        "",
    ]
    notes: list[str] = []
    for crit, part in cal["criteria"].items():
        rows = [_agreement_row(f"judge vs {p['raters'][1]}", p, notes, crit) for p in part["judge_vs_rater"]]
        rows.append(_agreement_row("judge vs raters' mean", part["judge_vs_mean"], notes, crit))
        rows += [_agreement_row(" vs ".join(p["raters"]), p, notes, crit) for p in part["human_pairs"]]
        alphas = []
        for name, label in (("alpha_raters", "raters"), ("alpha_raters_and_judge", "raters + judge")):
            stat = part[name]
            if stat["reason"]:
                notes.append(f"{crit}, α {label} undefined: {stat['reason']}")
            ci = stat.get("ci")
            text = "undefined" if stat["value"] is None else f"{stat['value']:.3f}"
            alphas.append(f"{label} {text}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))
        lines += [f"### {crit}", "", *table(head, rows), "", f"α ordinal: {'; '.join(alphas)}", ""]
    if notes:
        lines += ["Undefined statistics:", "", *(f"- {n}" for n in dict.fromkeys(notes)), ""]
    return "\n".join(lines)
