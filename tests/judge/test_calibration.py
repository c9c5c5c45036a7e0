"""Judge-vs-human calibration statistics against independent implementations (scikit-learn's kappa, SciPy's
Spearman, the ``krippendorff`` package) on hand-made scores, including a judge that gives one score to every item."""

from __future__ import annotations

import numpy as np
import pytest

from hiwar.evaluation.human.validate import Ratings
from hiwar.judge.calibration import calibrate

R1 = [1, 2, 3, 4, 5, 3, 2, 4, 5, 1, 3, 4]
R2 = [2, 2, 3, 5, 4, 3, 1, 4, 5, 2, 3, 3]
JUDGE = [1, 3, 3, 4, 4, 2, 2, 5, 5, 1, 4, 4]
CODES = [f"Q{i:04d}" for i in range(1, len(R1) + 1)]
SCALE = [1, 2, 3, 4, 5]


def key() -> dict:
    return {
        "export_id": "x",
        "raters": ["rater-1", "rater-2"],
        "criteria": ["fluency"],
        "scale": {"min": 1, "max": 5},
        "items": {c: {"model": "m", "item_id": c, "topic": "t"} for c in CODES},
    }


def ratings() -> Ratings:
    return Ratings(
        scores={
            "rater-1": {c: {"fluency": s} for c, s in zip(CODES, R1, strict=True)},
            "rater-2": {c: {"fluency": s} for c, s in zip(CODES, R2, strict=True)},
        }
    )


def judge_scores(values: list[int]) -> dict:
    return {c: {"fluency": v} for c, v in zip(CODES, values, strict=True)}


def kappa(a, b, weights):
    sklearn = pytest.importorskip("sklearn.metrics")
    return sklearn.cohen_kappa_score(a, b, labels=SCALE, weights=weights)


def test_judge_against_raters_matches_independent_implementations():
    import krippendorff
    from scipy.stats import spearmanr

    cal = calibrate(key(), ratings(), judge_scores(JUDGE), n_boot=300, conf=0.95, seed=1)
    part = cal["criteria"]["fluency"]
    assert (cal["items"], cal["judged_items"], part["judge_scored"]) == (12, 12, 12)
    for pair, rater in zip(part["judge_vs_rater"], (R1, R2), strict=True):
        assert pair["n"] == 12
        for name, weights in (("unweighted", None), ("linear", "linear"), ("quadratic", "quadratic")):
            assert pair["kappa"][name]["value"] == pytest.approx(kappa(JUDGE, rater, weights))
            low, high = pair["kappa"][name]["ci"]
            assert low <= high
        assert pair["spearman"]["rho"] == pytest.approx(spearmanr(JUDGE, rater).statistic)
        assert pair["spearman"]["ci"][0] <= pair["spearman"]["rho"] <= pair["spearman"]["ci"][1]
        assert pair["exact_agreement"] == pytest.approx(np.mean(np.array(JUDGE) == np.array(rater)))
    mean = (np.array(R1) + np.array(R2)) / 2
    rounded = np.floor(mean + 0.5).astype(int)
    vs_mean = part["judge_vs_mean"]
    assert vs_mean["kappa"]["quadratic"]["value"] == pytest.approx(kappa(JUDGE, rounded, "quadratic"))
    assert vs_mean["spearman"]["rho"] == pytest.approx(spearmanr(JUDGE, mean).statistic)
    (human,) = part["human_pairs"]
    assert human["raters"] == ["rater-1", "rater-2"]
    assert human["kappa"]["linear"]["value"] == pytest.approx(kappa(R1, R2, "linear"))
    alpha = krippendorff.alpha(reliability_data=[R1, R2, JUDGE], level_of_measurement="ordinal", value_domain=SCALE)
    assert part["alpha_raters_and_judge"]["value"] == pytest.approx(alpha)
    alpha_h = krippendorff.alpha(reliability_data=[R1, R2], level_of_measurement="ordinal", value_domain=SCALE)
    assert part["alpha_raters"]["value"] == pytest.approx(alpha_h)
    low, high = part["alpha_raters_and_judge"]["ci"]
    assert low <= alpha <= high


def test_a_constant_judge_is_undefined_not_zero():
    import krippendorff

    cal = calibrate(key(), ratings(), judge_scores([3] * 12), n_boot=200, conf=0.95, seed=1)
    part = cal["criteria"]["fluency"]
    for pair in [*part["judge_vs_rater"], part["judge_vs_mean"]]:
        for stat in pair["kappa"].values():
            assert stat["value"] is None and stat["ci"] is None
            assert "judge gave every item the same score (3)" in stat["reason"]
        assert pair["spearman"]["rho"] is None and pair["spearman"]["ci"] is None
        assert "judge gave every item the same score" in pair["spearman"]["reason"]
    # The raters still disagree with the judge in places, so alpha is defined, and the raters' own figures stand.
    alpha = krippendorff.alpha(reliability_data=[R1, R2, [3] * 12], level_of_measurement="ordinal", value_domain=SCALE)
    assert part["alpha_raters_and_judge"]["value"] == pytest.approx(alpha)
    assert part["human_pairs"][0]["kappa"]["unweighted"]["value"] == pytest.approx(kappa(R1, R2, None))


def test_missing_judge_scores_are_left_out():
    judge = judge_scores(JUDGE)
    del judge[CODES[0]], judge[CODES[5]]
    cal = calibrate(key(), ratings(), judge, n_boot=0, conf=0.95, seed=1)
    part = cal["criteria"]["fluency"]
    assert cal["judged_items"] == 10 and part["judge_scored"] == 10
    keep = [i for i in range(12) if i not in (0, 5)]
    pair = part["judge_vs_rater"][0]
    assert pair["n"] == 10 and pair["kappa"]["unweighted"]["ci"] is None  # no resamples asked for
    assert pair["kappa"]["linear"]["value"] == pytest.approx(
        kappa([JUDGE[i] for i in keep], [R1[i] for i in keep], "linear")
    )
