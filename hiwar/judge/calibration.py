"""How well the judge agrees with the human raters on the same blind items (``human-eval analyze --judge``).

The judge scores the export's items (``hiwar judge <export>``: item id = blind code, from a rater's sheet, so it
sees what the raters see). Per criterion, over every item both scored:

- judge vs each rater, and judge vs the raters' mean: Cohen's kappa (unweighted, linear, quadratic) with bootstrap
  intervals, Spearman's rho with a bootstrap interval, exact and within-one agreement (the statistics of
  :mod:`hiwar.evaluation.human.stats`). Kappa needs scale points, so the mean is rounded to the nearest one
  (halves up); rho uses the mean itself.
- Krippendorff's alpha (ordinal) of the raters alone and with the judge as one more rater, with bootstrap intervals.
- the raters among themselves (every pair), the yardstick a judge is read against.

A statistic the data leave undefined (a judge that gives every item one score) is reported as undefined, with the
reason, and never as a number.
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hiwar.errors import HiwarError
from hiwar.evaluation.human.stats import MIN_DEFINED_SHARE, ordinal_alpha, pair_stats

JUDGE = "judge"
MEAN = "raters' mean"


def load_judge_scores(path: str | Path, key: dict[str, Any]) -> tuple[dict[str, dict[str, int]], dict[str, Any]]:
    """Judge scores per blind item and criterion, from a judge output folder (or its ``judgments.parquet``).

    Raises:
        HiwarError: no judgments; a judge run on another export; criteria or scale that differ from the sheets';
            items that are not in the key.
    """
    from hiwar.judge.outputs import JUDGMENTS

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    file = folder / JUDGMENTS if path.is_dir() else path
    if not file.is_file():
        raise HiwarError(f"{file}: no judgments (run `hiwar judge <export folder>` first)")
    summary_path = folder / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    export_id = (summary.get("sources") or {}).get("export_id")
    if export_id is not None and export_id != key["export_id"]:
        raise HiwarError(f"{folder}: judged export {export_id}, but the sheets are export {key['export_id']}")
    rubric = (summary.get("judge") or {}).get("rubric")
    if rubric:
        names = [c["name"] for c in rubric["criteria"]]
        if names != key["criteria"] or rubric["scale"] != key["scale"]:
            raise HiwarError(
                f"{folder}: the judge scored {names} on {rubric['scale']}, "
                f"the sheets {key['criteria']} on {key['scale']}"
            )
    from hiwar.judge.outputs import read_judgments

    scores: dict[str, dict[str, int]] = {}
    for row in read_judgments(file):
        if row["item_id"] not in key["items"]:
            raise HiwarError(f"{file}: item {row['item_id']!r} is not in the key (a judge run on another export?)")
        scores[row["item_id"]] = {c: int(row[f"score_{c}"]) for c in key["criteria"]}
    info = {"judgments": str(file), "judge": (summary.get("judge") or {}).get("model"), "items": len(scores)}
    return scores, info


def bootstrap_ci(stat: Any, columns: list[np.ndarray], n_boot: int, confidence: float, rng: np.random.Generator) -> Any:
    """Percentile bootstrap interval of ``stat(*columns)`` resampling items; None when most resamples leave it
    undefined (``stat`` returns None) or there are no resamples."""
    n = len(columns[0])
    if not n_boot or n < 2:
        return None
    idx = rng.integers(0, n, size=(n_boot, n))
    values = [v for row in idx if (v := stat(*(c[row] for c in columns))) is not None]
    if len(values) < MIN_DEFINED_SHARE * n_boot:
        return None
    tail = 100 * (1 - confidence) / 2
    return [float(v) for v in np.percentile(values, [tail, 100 - tail])]


def rho_value(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rho, or None where undefined (a constant side, fewer than 3 items)."""
    from scipy.stats import spearmanr

    if len(a) < 3 or len(np.unique(a)) < 2 or len(np.unique(b)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(spearmanr(a, b).statistic)
    return value if math.isfinite(value) else None


def alpha_value(matrix: np.ndarray, scale: list[int]) -> float | None:
    """Ordinal alpha of a raters x items matrix, or None where undefined."""
    return ordinal_alpha(matrix, scale)["value"]


def agreement(
    a: np.ndarray, b: np.ndarray, names: tuple[str, str], scale: list[int], n_boot: int, conf: float, rng: Any
) -> dict[str, Any]:
    """Kappa x3 (with intervals), rho (with an interval), exact and within-one agreement over paired items.

    ``b`` may be non-integer (the raters' mean): kappa and agreement then use it rounded to the scale."""
    finite = np.isfinite(a) & np.isfinite(b)
    a, b = a[finite], b[finite]
    rounded = np.clip(np.floor(b + 0.5), scale[0], scale[-1])
    out = pair_stats(a.astype(int), rounded.astype(int), names, scale, n_boot, conf, rng)
    rho = rho_value(a, b)
    out["spearman"]["ci"] = bootstrap_ci(rho_value, [a, b], n_boot, conf, rng) if rho is not None else None
    if rho is not None:
        out["spearman"]["rho"] = rho  # on the unrounded scores (equal to pair_stats' own for integer ones)
    return out


def criterion_calibration(
    humans: np.ndarray, judge: np.ndarray, raters: list[str], scale: list[int], n_boot: int, conf: float, rng: Any
) -> dict[str, Any]:
    """Every judge and human agreement figure for one criterion (``humans``: raters x items, NaN = missing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # items no rater scored: mean of nothing is NaN, left out below
        mean = np.nanmean(humans, axis=0)
    both = np.isfinite(judge) & np.isfinite(mean)
    out: dict[str, Any] = {
        "items": int(np.isfinite(mean).sum()),
        "judge_scored": int(both.sum()),
        "judge_vs_rater": [
            agreement(judge, humans[i], (JUDGE, r), scale, n_boot, conf, rng) for i, r in enumerate(raters)
        ],
        "judge_vs_mean": agreement(judge, mean, (JUDGE, MEAN), scale, n_boot, conf, rng),
        "human_pairs": [
            agreement(humans[i], humans[j], (r1, r2), scale, n_boot, conf, rng)
            for (i, r1), (j, r2) in itertools.combinations(enumerate(raters), 2)
        ],
    }
    with_judge = np.vstack([humans, judge[None, :]])
    for name, matrix in (("alpha_raters", humans), ("alpha_raters_and_judge", with_judge)):
        value = ordinal_alpha(matrix, scale)
        columns = [matrix.T]
        value["ci"] = None
        if value["value"] is not None:
            value["ci"] = bootstrap_ci(lambda m: alpha_value(m.T, scale), columns, n_boot, conf, rng)
        out[name] = value
    return out


def calibrate(
    key: dict[str, Any], ratings: Any, judge: dict[str, dict[str, int]], n_boot: int, conf: float, seed: int
) -> dict[str, Any]:
    """Judge-vs-human and human-vs-human agreement per criterion, over every item of the export."""

    scale = list(range(key["scale"]["min"], key["scale"]["max"] + 1))
    raters = [r for r in key["raters"] if r in ratings.scores]
    codes = sorted(key["items"])
    rng = np.random.default_rng(seed)
    criteria = {}
    for crit in key["criteria"]:
        humans = ratings.matrix(raters, codes, crit)
        scores = np.array([judge.get(c, {}).get(crit, np.nan) for c in codes], dtype=float)
        criteria[crit] = criterion_calibration(humans, scores, raters, scale, n_boot, conf, rng)
    return {
        "raters": raters,
        "items": len(codes),
        "judged_items": sum(1 for c in codes if c in judge),
        "mean_rounding": "the raters' mean is rounded to the nearest scale point (halves up) for kappa and agreement; "
        "rho uses it unrounded",
        "criteria": criteria,
    }


def add_judge_columns(rows: list[dict[str, Any]], judge: dict[str, dict[str, int]], criteria: list[str]) -> None:
    """Add ``<criterion>.judge`` to the per-item score rows (None where the judge has no score)."""
    for row in rows:
        for crit in criteria:
            row[f"{crit}.judge"] = judge.get(row["item"], {}).get(crit)
