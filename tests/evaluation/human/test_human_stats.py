"""Agreement statistics against published worked examples, and the edge cases where they are undefined."""

from __future__ import annotations

import numpy as np
import pytest

from hiwar.evaluation.human.stats import (
    WEIGHTINGS,
    bootstrap_kappa,
    cohen_kappa,
    kappa_from_counts,
    ordinal_alpha,
    pair_stats,
    spearman,
)

SCALE_4 = [1, 2, 3, 4]
SCALE_5 = [1, 2, 3, 4, 5]


def expand(table: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Rater A's and rater B's scores (1-based categories) from a contingency table (rows A, columns B)."""
    a, b = [], []
    for i, row in enumerate(table):
        for j, count in enumerate(row):
            a += [i + 1] * count
            b += [j + 1] * count
    return np.array(a), np.array(b)


# Two radiologists classify 85 xeromammograms as normal, benign, suspected cancer, cancer (Boyd et al. 1982,
# via Altman 1991, Practical Statistics for Medical Research, pp. 403-405). Published in StataCorp, Stata Base
# Reference Manual, [R] kappa, examples with the rate2 data: kappa 0.4728 (unweighted), 0.5684 with
# wgt(w) (weights 1 - |i-j|/(k-1), i.e. linear) and 0.6714 with wgt(w2) (1 - ((i-j)/(k-1))^2, quadratic).
XEROMAMMOGRAMS = [[21, 12, 0, 0], [4, 17, 1, 0], [3, 9, 15, 2], [0, 0, 0, 1]]

# Two dermatologists rate 88 patients' skin condition as terrible, poor, marginal, clear: SAS/STAT User's
# Guide, PROC FREQ, "Getting Started: Agreement Study" (data from Fleiss, Levin and Paik).
# Published simple kappa: 0.3449.
SKIN_CONDITION = [[10, 4, 1, 0], [5, 10, 12, 2], [2, 4, 12, 5], [0, 2, 6, 13]]


@pytest.mark.parametrize(
    ("weighting", "published"), [("unweighted", 0.4728), ("linear", 0.5684), ("quadratic", 0.6714)]
)
def test_kappa_matches_stata_manual_xeromammograms(weighting: str, published: float) -> None:
    a, b = expand(XEROMAMMOGRAMS)
    assert len(a) == 85
    result = cohen_kappa(a, b, SCALE_4, weighting)
    assert result["reason"] is None
    assert result["value"] == pytest.approx(published, abs=5e-5)


def test_kappa_matches_sas_skin_condition() -> None:
    a, b = expand(SKIN_CONDITION)
    assert cohen_kappa(a, b, SCALE_4, "unweighted")["value"] == pytest.approx(0.3449, abs=5e-5)


def test_kappa_two_categories_wikipedia_example() -> None:
    # Wikipedia, "Cohen's kappa", worked example: 50 grant proposals, both yes 20, A yes/B no 5,
    # A no/B yes 10, both no 15: p_o = 0.7, p_e = 0.5, kappa = 0.4. With two categories all weightings agree.
    a, b = expand([[20, 5], [10, 15]])
    for weighting in WEIGHTINGS:
        assert cohen_kappa(a, b, [1, 2], weighting)["value"] == pytest.approx(0.4, abs=1e-12)


def test_spearman_matches_wikipedia_worked_example() -> None:
    # Wikipedia, "Spearman's rank correlation coefficient", example: IQ vs hours of TV per week for 10 people,
    # rho = -29/165 = -0.175757..., p = 0.627188 (t-distribution).
    iq = np.array([106, 100, 86, 101, 99, 103, 97, 113, 112, 110])
    tv = np.array([7, 27, 2, 50, 28, 29, 20, 12, 6, 17])
    result = spearman(iq, tv)
    assert result["rho"] == pytest.approx(-29 / 165, abs=1e-12)
    assert result["p"] == pytest.approx(0.627188, abs=1e-6)


def test_perfect_agreement_gives_one_everywhere() -> None:
    a = np.array([1, 2, 3, 4, 5, 3, 2, 4])
    stats = pair_stats(a, a.copy(), ("r1", "r2"), SCALE_5, 200, 0.95, np.random.default_rng(0))
    for weighting in WEIGHTINGS:
        assert stats["kappa"][weighting]["value"] == pytest.approx(1.0)
        assert stats["kappa"][weighting]["ci"] == pytest.approx([1.0, 1.0])
    assert stats["spearman"]["rho"] == pytest.approx(1.0)
    assert stats["exact_agreement"] == 1.0 and stats["within_one"] == 1.0


def test_chance_agreement_gives_zero() -> None:
    # Every pair of scores exactly once: observed = expected cell by cell, so every kappa and rho is 0.
    a = np.repeat(SCALE_5, 5)
    b = np.tile(SCALE_5, 5)
    for weighting in WEIGHTINGS:
        assert cohen_kappa(a, b, SCALE_5, weighting)["value"] == pytest.approx(0.0, abs=1e-12)
    assert spearman(a, b)["rho"] == pytest.approx(0.0, abs=1e-12)
    stats = pair_stats(a, b, ("r1", "r2"), SCALE_5, 0, 0.95, np.random.default_rng(0))
    assert stats["exact_agreement"] == pytest.approx(5 / 25)
    assert stats["within_one"] == pytest.approx(13 / 25)  # 5 on the diagonal + 2 * 4 one step off it


def test_constant_rater_is_undefined_not_a_crash() -> None:
    a = np.array([4, 4, 4, 4, 4, 4])
    b = np.array([4, 5, 4, 3, 4, 4])
    stats = pair_stats(a, b, ("rater-1", "rater-2"), SCALE_5, 100, 0.95, np.random.default_rng(0))
    for weighting in WEIGHTINGS:
        kappa = stats["kappa"][weighting]
        assert kappa["value"] is None and kappa["ci"] is None
        assert "rater-1 gave every item the same score (4)" in kappa["reason"]
    assert stats["spearman"]["rho"] is None and "rater-1" in stats["spearman"]["reason"]
    assert stats["exact_agreement"] == pytest.approx(4 / 6)


def test_too_few_items_is_undefined() -> None:
    assert cohen_kappa(np.array([3]), np.array([3]), SCALE_5, "linear")["value"] is None
    assert spearman(np.array([1, 2]), np.array([2, 1]))["reason"].startswith("fewer than 3")


def loop_kappa(a: np.ndarray, b: np.ndarray, k: int, weighting: str) -> float:
    """Textbook weighted kappa with agreement weights, (p_o - p_e) / (1 - p_e), one pair of categories at a
    time: an independent form of the vectorised disagreement-weight formula."""
    n = len(a)
    pa = [sum(1 for x in a if x == i + 1) / n for i in range(k)]
    pb = [sum(1 for x in b if x == j + 1) / n for j in range(k)]

    def agree(i: int, j: int) -> float:
        if weighting == "unweighted":
            return 1.0 if i == j else 0.0
        d = abs(i - j) / (k - 1)
        return 1 - (d if weighting == "linear" else d * d)

    p_o = sum(agree(x - 1, y - 1) for x, y in zip(a, b, strict=True)) / n
    p_e = sum(agree(i, j) * pa[i] * pb[j] for i in range(k) for j in range(k))
    return (p_o - p_e) / (1 - p_e)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_vectorised_bootstrap_kappa_equals_textbook_loop(weighting: str) -> None:
    rng = np.random.default_rng(7)
    stack, expected = [], []
    for _ in range(20):
        a, b = rng.integers(1, 6, 40), rng.integers(1, 6, 40)
        b[:20] = a[:20]  # some agreement, so kappa varies
        counts = np.zeros((5, 5))
        np.add.at(counts, (a - 1, b - 1), 1)
        stack.append(counts)
        expected.append(loop_kappa(a, b, 5, weighting))
        assert cohen_kappa(a, b, SCALE_5, weighting)["value"] == pytest.approx(expected[-1], abs=1e-12)
    assert kappa_from_counts(np.array(stack), weighting) == pytest.approx(expected, abs=1e-12)


def test_bootstrap_interval_brackets_estimate_and_is_seeded() -> None:
    a, b = expand(XEROMAMMOGRAMS)
    first = bootstrap_kappa(a, b, SCALE_4, 500, 0.95, np.random.default_rng(3))
    again = bootstrap_kappa(a, b, SCALE_4, 500, 0.95, np.random.default_rng(3))
    assert first == again
    for weighting, published in (("unweighted", 0.4728), ("linear", 0.5684), ("quadratic", 0.6714)):
        low, high = first[weighting]["ci"]
        assert low < published < high and high - low < 0.5


def test_krippendorff_alpha_ordinal_matches_published_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", example C: 4 observers, 12 units,
    # values 1-5 with missing data; published alpha: nominal 0.743, ordinal 0.815, interval 0.849.
    nan = np.nan
    data = np.array(
        [
            [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
            [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
        ]
    )
    assert ordinal_alpha(data, SCALE_5)["value"] == pytest.approx(0.815, abs=5e-4)


def test_krippendorff_alpha_undefined_cases() -> None:
    same = np.full((3, 4), 3.0)
    assert "every score is 3" in ordinal_alpha(same, SCALE_5)["reason"]
    lonely = np.array([[1, np.nan], [np.nan, 2], [np.nan, np.nan]])
    assert ordinal_alpha(lonely, SCALE_5)["value"] is None


def test_intervals_below_the_minimum_n_are_withheld_with_their_reason() -> None:
    a, b = np.array([2, 4]), np.array([2, 4])  # kappa 1; every resample of two items is a copy of them
    # Seed 2: more than half of the resamples mix both items, so kappa is defined in enough of them for an interval.
    shown = pair_stats(a, b, ("rater-1", "rater-2"), SCALE_5, 200, 0.95, np.random.default_rng(2), min_interval_n=2)
    assert shown["kappa"]["unweighted"]["ci"] == [1.0, 1.0]  # zero width: what a reader would take for certainty
    hidden = pair_stats(a, b, ("rater-1", "rater-2"), SCALE_5, 200, 0.95, np.random.default_rng(2), min_interval_n=10)
    for weighting in WEIGHTINGS:
        kappa = hidden["kappa"][weighting]
        assert kappa["value"] == pytest.approx(1.0) and kappa["ci"] is None
        assert kappa["ci_reason"] == "n=2 is below human_eval.min_interval_n=10"
    off = pair_stats(a, b, ("rater-1", "rater-2"), SCALE_5, 0, 0.95, np.random.default_rng(0))
    assert off["kappa"]["linear"]["ci_reason"] == "bootstrap off (human_eval.bootstrap_samples=0)"
