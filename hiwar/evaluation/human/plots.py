"""PNG plots (matplotlib, Agg backend): score distributions per model, rater-vs-rater confusion matrices."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np

from hiwar.evaluation.human.validate import Ratings


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def distributions(key: dict[str, Any], ratings: Ratings, path: Path) -> Path:
    """One panel per criterion: share of each score per model, every rater's scores pooled."""
    plt = _pyplot()
    scale = list(range(key["scale"]["min"], key["scale"]["max"] + 1))
    models = sorted({v["model"] for v in key["items"].values()})
    crits = key["criteria"]
    fig, axes = plt.subplots(len(crits), 1, figsize=(7, 2.4 * len(crits)), squeeze=False, gridspec_kw={"hspace": 0.5})
    width = 0.8 / max(len(models), 1)
    for ax, crit in zip(axes[:, 0], crits, strict=True):
        for m, model in enumerate(models):
            scores = [
                s[crit]
                for sheet in ratings.scores.values()
                for code, s in sheet.items()
                if crit in s and key["items"][code]["model"] == model
            ]
            counts = np.array([scores.count(v) for v in scale], dtype=float)
            share = counts / counts.sum() if counts.sum() else counts
            ax.bar(
                np.arange(len(scale)) + m * width - 0.4 + width / 2,
                share,
                width,
                label=f"{model} ({len(scores)} scores)",
            )
        ax.set_title(crit)
        ax.set_xticks(range(len(scale)), [str(v) for v in scale])
        ax.set_ylabel("share")
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def text_colours(table: np.ndarray, cmap: Any) -> list[list[str]]:
    """Black or white for each cell's count, whichever reads on the cell's colour (``cmap`` scaled to the table's
    largest count, as ``imshow`` draws it): the diagonal of a good agreement is the darkest part of the plot."""
    top = max(int(table.max()), 1)
    colours = []
    for row in table:
        out = []
        for n in row:
            r, g, b, _ = cmap(n / top)
            out.append("white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5 else "black")  # relative luminance
        colours.append(out)
    return colours


def confusion(key: dict[str, Any], ratings: Ratings, r1: str, r2: str, path: Path) -> Path:
    """One panel per criterion: counts of (r1 score, r2 score) over the items both scored, all models."""
    plt = _pyplot()
    lo, hi = key["scale"]["min"], key["scale"]["max"]
    k = hi - lo + 1
    crits = key["criteria"]
    fig, axes = plt.subplots(1, len(crits), figsize=(3.2 * len(crits), 3.4), squeeze=False)
    fig.subplots_adjust(wspace=0.35, bottom=0.17)
    for ax, crit in zip(axes[0], crits, strict=True):
        table = np.zeros((k, k), dtype=int)
        for code, scores in ratings.scores[r1].items():
            other = ratings.scores[r2].get(code, {})
            if crit in scores and crit in other:
                table[scores[crit] - lo, other[crit] - lo] += 1
        image = ax.imshow(table, cmap="Blues", origin="lower", extent=(lo - 0.5, hi + 0.5, lo - 0.5, hi + 0.5), vmin=0)
        colours = text_colours(table, image.cmap)
        for (i, j), n in np.ndenumerate(table):
            ax.text(j + lo, i + lo, str(n), ha="center", va="center", fontsize=8, color=colours[i][j])
        ax.set_xticks(range(lo, hi + 1))
        ax.set_yticks(range(lo, hi + 1))
        ax.set_title(crit, fontsize=9)
        ax.set_xlabel(r2)
        ax.set_ylabel(r1)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_plots(key: dict[str, Any], ratings: Ratings, out: Path) -> list[str]:
    """Write every plot into ``out``; return their file names."""
    out.mkdir(parents=True, exist_ok=True)
    names = [distributions(key, ratings, out / "score_distributions.png").name]
    raters = [r for r in key["raters"] if ratings.scores.get(r)]
    for r1, r2 in itertools.combinations(raters, 2):
        names.append(confusion(key, ratings, r1, r2, out / f"confusion_{r1}_vs_{r2}.png").name)
    return names
