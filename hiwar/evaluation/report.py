"""The cross-model report: one table (Markdown, JSON, CSV), per-topic tables, plots, lineage and method."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from hiwar.atomic import atomic_open, write_text
from hiwar.generation.language import DEFAULT_MIN_CONFIDENCE
from hiwar.lineage import code_text, finite, write_json
from hiwar.record import utc_now

PERPLEXITY_METHOD = (
    "Perplexity = exp(total NLL / total scored tokens) over the split, with the conversation formatted "
    "exactly as in training (the tokenizer's chat template, or hiwar's template for base models) and the "
    "training mask ({mask}). Sequences longer than the window ({window}) are scored with a strided sliding "
    "window (stride {stride}): every token is scored once, with at least window - stride tokens of context. "
    "Perplexity depends on the tokenizer: compare it within one model only."
)
BPB_METHOD = (
    "Bits per byte (char) = total NLL in bits of the scored tokens / UTF-8 bytes (Unicode characters) of the "
    "scored message contents ({contents}). Template markup and end-of-turn tokens add NLL but no bytes. "
    "Comparable across tokenizers."
)
RAVEN_METHOD = (
    "RAVEN = mean over scored assistant turns of max(0, cos(E(model reply), E(reference reply))), where the "
    "model writes the reply to the reference dialogue so far and E is the sentence encoder {encoder} "
    "({pooling} pooling). 95% interval: percentile bootstrap over conversations ({samples} resamples). Empty "
    "replies score 0; failed generations are left out and counted. non_arabic_reply_share: the share of "
    "non-empty replies whose language (fastText lid.176) is another language than Arabic with probability at "
    "least {min_confidence}, the generation validators' rule."
)

# (column, JSON path) of the one-row-per-model table, in order.
COLUMNS = [
    ("model", ("name",)),
    ("perplexity_within_model", ("perplexity", "perplexity")),
    ("ppl_per_conv_mean", ("perplexity", "per_conversation_perplexity", "mean")),
    ("ppl_per_conv_std", ("perplexity", "per_conversation_perplexity", "std")),
    ("bits_per_byte", ("perplexity", "bits_per_byte")),
    ("bits_per_char", ("perplexity", "bits_per_char")),
    ("raven", ("raven", "raven")),
    ("raven_ci_low", ("raven", "ci_low")),
    ("raven_ci_high", ("raven", "ci_high")),
    ("reply_chars_mean", ("raven", "reply_chars_mean")),
    ("reply_tokens_mean", ("raven", "reply_tokens_mean")),
    ("non_arabic_reply_share", ("raven", "non_arabic_share")),
    ("judge_overall", ("judge", "overall", "mean")),
    ("judge_ci_low", ("judge", "overall", "ci_low")),
    ("judge_ci_high", ("judge", "overall", "ci_high")),
    ("scored_conversations", ("perplexity", "conversations")),
    ("scored_turns", ("raven", "turns")),
    ("perplexity_status", ("perplexity", "status")),
    ("raven_status", ("raven", "status")),
    ("judge_status", ("judge", "status")),
    ("path", ("path",)),
]


def lookup(data: dict[str, Any], path: tuple[str, ...]) -> Any:
    """``data[path[0]][path[1]]...`` or None when any step is missing."""
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def table_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report table: one dict per model, keys as :data:`COLUMNS`."""
    return [{col: lookup(r, path) for col, path in COLUMNS} for r in results]


def fmt(value: Any) -> str:
    """A table cell: floats to 4 decimals, missing as a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def topic_table(results: list[dict[str, Any]], metric: str, field: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Per-topic values of one metric: (topics, one row per model)."""
    topics = sorted({t for r in results for t in (lookup(r, (metric, "per_topic")) or {})})
    rows = []
    for r in results:
        per_topic = lookup(r, (metric, "per_topic")) or {}
        rows.append({"model": r["name"], **{t: lookup(per_topic, (t, field)) for t in topics}})
    return topics, rows


def _problems(results: list[dict[str, Any]]) -> list[str]:
    lines = []
    for r in results:
        for metric in ("perplexity", "raven"):
            part = r.get(metric, {})
            if part.get("status") == "failed":
                lines.append(f"- **{r['name']}** {metric}: failed: {part.get('reason')}")
            for reason, info in (part.get("skipped") or {}).items():
                lines.append(
                    f"- {r['name']} {metric}: skipped {info['count']} conversation(s): {reason} "
                    f"(e.g. {', '.join(info['examples'])})"
                )
            for reason, count in (part.get("unscored") or {}).items():
                lines.append(f"- {r['name']} {metric}: {count} conversation(s) scored nothing: {reason}")
            if part.get("failed_turns"):
                lines.append(
                    f"- {r['name']} raven: {part['failed_turns']} turn(s) had no reply (generation error; "
                    f"see replies.parquet)"
                )
    return lines


def methods(config: Any, results: list[dict[str, Any]]) -> dict[str, str]:
    """The method statements, filled with this run's settings."""
    ev = config.evaluation
    ppl = next((r["perplexity"] for r in results if r["perplexity"].get("status") == "ok"), {})
    contents = "assistant messages" if ev.perplexity.mask == "assistant" else "all messages"
    out = {
        "perplexity": PERPLEXITY_METHOD.format(
            mask=ev.perplexity.mask,
            window=ppl.get("window", "model context"),
            stride=ppl.get("stride", "window/2"),
        ),
        "bits_per_byte": BPB_METHOD.format(contents=contents),
        "raven": RAVEN_METHOD.format(
            encoder=ev.raven.encoder,
            pooling=ev.raven.pooling,
            samples=ev.raven.bootstrap_samples,
            min_confidence=DEFAULT_MIN_CONFIDENCE,
        ),
    }
    if ev.judge.enabled:
        from hiwar.judge.report import judge_method

        out["judge"] = judge_method(ev.judge, config.human_eval)
    return out


def render_markdown(report: dict[str, Any], plots: list[str]) -> str:
    """The report as Markdown."""
    rows, data = report["table"], report["dataset"]
    main_cols = [c for c, _ in COLUMNS if c not in ("path", "perplexity_status", "raven_status", "judge_status")]
    parts = [
        "# hiwar evaluation report",
        "",
        f"Created {report['created_at']} by {code_text(report['code'])}.",
        "",
        f"Dataset: `{data.get('path')}` split `{data.get('split')}`, "
        f"fingerprint `{data.get('fingerprint', '-')}`, {data.get('conversations', 0)} conversations.",
    ]
    if data.get("error"):
        parts += ["", f"**Nothing was evaluated:** {data['error']}"]
    parts += [
        "",
        "## Results",
        "",
        "Perplexity is comparable only within a model (it depends on the tokenizer); "
        "bits per byte, bits per char and RAVEN compare models.",
        "",
        markdown_table(rows, main_cols),
        "",
    ]
    parts += ["## Models", ""] + [
        f"- **{r['model']}**: `{r['path']}` (perplexity: {r['perplexity_status']}, RAVEN: {r['raven_status']})"
        for r in rows
    ]
    for metric, field, title in (
        ("raven", "raven", "RAVEN by topic"),
        ("perplexity", "bits_per_byte", "Bits per byte by topic"),
    ):
        topics, topic_rows = topic_table(report["models"], metric, field)
        if topics:
            parts += ["", f"## {title}", "", markdown_table(topic_rows, ["model", *topics])]
    from hiwar.judge.report import evaluation_section

    judge = evaluation_section(report["models"], report.get("judge_pairwise"))
    if judge:
        parts += ["", *judge]
    problems = _problems(report["models"])
    if problems:
        parts += ["", "## Failures and skips", "", *problems]
    parts += ["", "## Method", ""] + [f"- **{k}**: {v}" for k, v in report["method"].items()]
    if plots:
        parts += ["", "## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(parts) + "\n"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """The table as CSV (full float precision, empty cells for missing values)."""
    with atomic_open(path, newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[c for c, _ in COLUMNS])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return path


def write_report(
    out_dir: Path,
    results: list[dict[str, Any]],
    data: dict[str, Any],
    config: Any,
    code: dict[str, Any],
    judge_pairwise: dict[str, Any] | None = None,
) -> Path:
    """Write ``report.json``, ``report.csv``, ``report.md`` and ``plots/*.png`` into ``out_dir`` (with the judge's
    pairwise comparisons when ``evaluation.judge.pairwise`` ran)."""
    from hiwar.evaluation.plots import write_plots

    out_dir.mkdir(parents=True, exist_ok=True)
    report = finite(
        {
            "created_at": utc_now(),
            "code": code,
            "dataset": data,
            "method": methods(config, results),
            "table": table_rows(results),
            "models": results,
            "judge_pairwise": judge_pairwise,
            "config": config.model_dump(mode="json"),
        }
    )
    write_json(out_dir / "report.json", report)
    write_csv(out_dir / "report.csv", report["table"])
    plots = write_plots(out_dir / "plots", results) if results else []
    write_text(out_dir / "report.md", render_markdown(report, [str(Path(p).relative_to(out_dir)) for p in plots]))
    return out_dir
