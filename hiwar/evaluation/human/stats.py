"""Agreement and quality statistics for ratings on an integer scale.

Spearman's rho comes from SciPy and ordinal alpha from the ``krippendorff`` package. Cohen's kappa (point
estimate and every bootstrap resample at once) is computed here from confusion counts as
``1 - sum(W * O) / sum(W * E)`` with disagreement weights W, the formula scikit-learn's ``cohen_kappa_score``
uses; the tests check it against published worked examples and a plain agreement-weight loop. (scikit-learn is
not a dependency on purpose: when it is installed, ``transformers`` imports it in every process, about 5 s each
on these machines, and every Ray actor and Train worker pays that.) A statistic that is undefined for the data
is ``None`` with the reason, never a crash.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

WEIGHTINGS = ("unweighted", "linear", "quadratic")
MIN_DEFINED_SHARE = 0.5  # report no interval when most resamples leave kappa undefined


def undefined(reason: str) -> dict[str, Any]:
    """An undefined statistic: no value, and why."""
    return {"value": None, "reason": reason}


def constant_rater(a: np.ndarray, b: np.ndarray, names: tuple[str, str]) -> str | None:
    """Why kappa or rho is undefined because a rater gave one score to every item, or None."""
    for scores, name in ((a, names[0]), (b, names[1])):
        if len(np.unique(scores)) == 1:
            return (
                f"{name} gave every item the same score ({int(scores[0])}), so agreement cannot be told "
                "apart from chance"
            )
    return None


def cohen_kappa(
    a: np.ndarray,
    b: np.ndarray,
    scale: list[int],
    weighting: str,
    names: tuple[str, str] = ("rater A", "rater B"),
) -> dict[str, Any]:
    """Cohen's kappa (``unweighted``, ``linear`` or ``quadratic``) on the whole scale, or why it is undefined.

    A rater who gives every item the same score makes kappa 0 whatever the other does, so it is reported as
    undefined rather than as "no agreement".
    """
    if len(a) < 2:
        return undefined("fewer than 2 items scored by both raters")
    reason = constant_rater(a, b, names)
    if reason:
        return undefined(reason)
    k = len(scale)
    counts = np.zeros((1, k, k))
    np.add.at(counts, (0, np.asarray(a) - scale[0], np.asarray(b) - scale[0]), 1)
    value = float(kappa_from_counts(counts, weighting)[0])
    if not math.isfinite(value):
        return undefined("chance agreement is 1")
    return {"value": float(value), "reason": None}


def disagreement_weights(k: int, weighting: str) -> np.ndarray:
    """The k x k disagreement weights (as in scikit-learn): 0/1, ``|i - j|`` or ``(i - j)**2``."""
    grid = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(float)
    if weighting == "unweighted":
        return (grid > 0).astype(float)
    return grid if weighting == "linear" else grid**2


def kappa_from_counts(counts: np.ndarray, weighting: str) -> np.ndarray:
    """Kappa for each of a stack of confusion-count matrices (B, k, k); NaN where undefined.

    Undefined as in :func:`cohen_kappa`: a rater (row or column margin) with one score only.
    """
    k = counts.shape[-1]
    observed = counts / counts.sum(axis=(1, 2), keepdims=True)
    rows, cols = observed.sum(axis=2), observed.sum(axis=1)
    expected = rows[:, :, None] * cols[:, None, :]
    w = disagreement_weights(k, weighting)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = 1.0 - (w * observed).sum(axis=(1, 2)) / (w * expected).sum(axis=(1, 2))
    constant = ((rows > 0).sum(axis=1) < 2) | ((cols > 0).sum(axis=1) < 2)
    kappa[constant] = np.nan
    return kappa


def bootstrap_kappa(
    a: np.ndarray, b: np.ndarray, scale: list[int], n_boot: int, confidence: float, rng: np.random.Generator
) -> dict[str, dict[str, Any]]:
    """Percentile bootstrap intervals (resampling items) for the three kappas.

    Returns, per weighting, ``{"ci": [low, high] or None, "defined": resamples where kappa was defined}``.
    """
    k, n = len(scale), len(a)
    ai, bi = np.asarray(a) - scale[0], np.asarray(b) - scale[0]
    idx = rng.integers(0, n, size=(n_boot, n))
    cells = (np.arange(n_boot)[:, None] * k * k + ai[idx] * k + bi[idx]).ravel()
    counts = np.bincount(cells, minlength=n_boot * k * k).reshape(n_boot, k, k)
    tail = 100 * (1 - confidence) / 2
    out = {}
    for weighting in WEIGHTINGS:
        values = kappa_from_counts(counts, weighting)
        values = values[np.isfinite(values)]
        ci = None
        if len(values) >= MIN_DEFINED_SHARE * n_boot:
            ci = [float(v) for v in np.percentile(values, [tail, 100 - tail])]
        out[weighting] = {"ci": ci, "defined": int(len(values))}
    return out


def spearman(a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("rater A", "rater B")) -> dict[str, Any]:
    """Spearman's rho and its two-sided p-value (SciPy), or why they are undefined."""
    from scipy.stats import spearmanr

    if len(a) < 3:
        return {"rho": None, "p": None, "reason": "fewer than 3 items scored by both raters"}
    reason = constant_rater(a, b, names)
    if reason:
        return {"rho": None, "p": None, "reason": reason}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = spearmanr(a, b)
    rho, p = float(result.statistic), float(result.pvalue)
    if not math.isfinite(rho):
        return {"rho": None, "p": None, "reason": "rho is not defined for these scores"}
    return {"rho": rho, "p": p, "reason": None}


def describe(scores: np.ndarray) -> dict[str, Any]:
    """Count, mean and sample standard deviation (None where undefined)."""
    n = int(len(scores))
    return {
        "n": n,
        "mean": float(np.mean(scores)) if n else None,
        "sd": float(np.std(scores, ddof=1)) if n > 1 else None,
    }


def pair_stats(
    a: np.ndarray,
    b: np.ndarray,
    names: tuple[str, str],
    scale: list[int],
    n_boot: int,
    confidence: float,
    rng: np.random.Generator,
    min_interval_n: int = 2,
) -> dict[str, Any]:
    """Every two-rater statistic for the items both raters scored.

    A kappa's ``ci`` is None, with ``ci_reason`` saying why, when there is no interval to trust: bootstrap off,
    fewer than ``min_interval_n`` items, kappa undefined, or undefined in most resamples.
    """
    a, b = np.asarray(a, dtype=int), np.asarray(b, dtype=int)
    kappas = {w: cohen_kappa(a, b, scale, w, names) for w in WEIGHTINGS}
    for kappa in kappas.values():
        kappa.update(ci=None, ci_reason=None)
    if not n_boot:
        reason = "bootstrap off (human_eval.bootstrap_samples=0)"
    elif len(a) < max(min_interval_n, 2):
        reason = f"n={len(a)} is below human_eval.min_interval_n={min_interval_n}"
    else:
        reason = None
        for weighting, boot in bootstrap_kappa(a, b, scale, n_boot, confidence, rng).items():
            if kappas[weighting]["value"] is not None:
                kappas[weighting].update(boot)
            if kappas[weighting]["value"] is not None and boot["ci"] is None:
                kappas[weighting]["ci_reason"] = (
                    f"kappa is undefined in {n_boot - boot['defined']} of {n_boot} resamples"
                )
    for kappa in kappas.values():
        if kappa["value"] is not None and kappa["ci"] is None and kappa["ci_reason"] is None:
            kappa["ci_reason"] = reason
    return {
        "raters": list(names),
        "n": int(len(a)),
        "kappa": kappas,
        "spearman": spearman(a, b, names),
        "exact_agreement": float(np.mean(a == b)) if len(a) else None,
        "within_one": float(np.mean(np.abs(a - b) <= 1)) if len(a) else None,
    }


def ordinal_alpha(matrix: np.ndarray, scale: list[int]) -> dict[str, Any]:
    """Krippendorff's alpha (ordinal) for a raters x items matrix with NaN for missing scores."""
    import krippendorff

    pairable = (np.isfinite(matrix).sum(axis=0) >= 2).sum()
    if pairable < 1:
        return undefined("no item was scored by two raters or more")
    values = np.unique(matrix[np.isfinite(matrix)])
    if len(values) < 2:
        return undefined(f"every score is {int(values[0])}, so there is no disagreement to expect")
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            value = krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal", value_domain=scale)
    except (ValueError, ZeroDivisionError) as err:
        return undefined(f"alpha is not defined for these scores ({err})")
    if not math.isfinite(value):
        return undefined("alpha is not defined for these scores")
    return {"value": float(value), "reason": None}
