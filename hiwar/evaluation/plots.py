"""Report plots (PNG, matplotlib's Agg backend): bars with intervals per model, and per-topic heat maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: never needs a display
    import matplotlib.pyplot as plt

    return plt


def bar_plot(
    path: Path,
    names: list[str],
    values: list[float],
    title: str,
    ylabel: str,
    intervals: list[tuple[float, float]] | None = None,
) -> Path:
    """One bar per model, with error bars for ``intervals`` (low, high) when given."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(names) + 2), 4))
    values = [np.nan if v is None else v for v in values]
    x = np.arange(len(names))
    yerr = None
    if intervals is not None:
        low = [v - lo if lo is not None else 0.0 for v, (lo, _) in zip(values, intervals, strict=True)]
        high = [hi - v if hi is not None else 0.0 for v, (_, hi) in zip(values, intervals, strict=True)]
        yerr = np.array([low, high])
    ax.bar(x, values, yerr=yerr, capsize=6, color="#3b7dd8")
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def heat_map(path: Path, names: list[str], topics: list[str], grid: np.ndarray, title: str) -> Path:
    """Models x topics, one coloured cell each (blank where a model has no value)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(topics) + 3), max(2.5, 0.5 * len(names) + 1.5)))
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="viridis")
    ax.set_xticks(np.arange(len(topics)), topics, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(np.arange(len(names)), names)
    ax.set_title(title)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _topic_grid(results: list[dict[str, Any]], metric: str, field: str) -> tuple[list[str], np.ndarray]:
    topics = sorted({t for r in results for t in (r.get(metric, {}).get("per_topic") or {})})
    grid = np.full((len(results), len(topics)), np.nan)
    for i, r in enumerate(results):
        per_topic = r.get(metric, {}).get("per_topic") or {}
        for j, topic in enumerate(topics):
            value = (per_topic.get(topic) or {}).get(field)
            grid[i, j] = value if value is not None else np.nan
    return topics, grid


def write_plots(out_dir: Path, results: list[dict[str, Any]]) -> list[Path]:
    """Every plot that has data: RAVEN bars with 95% intervals, bits per byte bars, per-topic heat maps."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    raven = [r for r in results if r.get("raven", {}).get("status") == "ok"]
    if raven:
        intervals = [(r["raven"].get("ci_low"), r["raven"].get("ci_high")) for r in raven]
        plots.append(
            bar_plot(
                out_dir / "raven.png",
                [r["name"] for r in raven],
                [r["raven"]["raven"] for r in raven],
                "RAVEN (95% bootstrap interval)",
                "RAVEN",
                intervals,
            )
        )
    ppl = [r for r in results if r.get("perplexity", {}).get("status") == "ok"]
    if ppl:
        plots.append(
            bar_plot(
                out_dir / "bits_per_byte.png",
                [r["name"] for r in ppl],
                [r["perplexity"]["bits_per_byte"] for r in ppl],
                "Bits per UTF-8 byte (lower is better)",
                "bits / byte",
            )
        )
    for metric, field, group, title in (
        ("raven", "raven", raven, "RAVEN by topic"),
        ("perplexity", "bits_per_byte", ppl, "Bits per byte by topic"),
    ):
        topics, grid = _topic_grid(group, metric, field)
        if topics:
            plots.append(heat_map(out_dir / f"{field}_by_topic.png", [r["name"] for r in group], topics, grid, title))
    return plots
