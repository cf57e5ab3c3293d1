"""The shared statistical rules on constructed accuracies (fractions; margins in fractions)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as scipy_stats

from prunebench.stats import lossless_test, mean_ci, rank_groups, time_to_accuracy

NAN = math.nan


# ------------------------------------------------------------------------ mean and interval
def test_mean_ci_is_student_t_over_seeds():
    ci = mean_ci([0.90, 0.91, 0.92])
    half = scipy_stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)  # 4.303 * sem, sem = 0.00577
    assert ci.mean == pytest.approx(0.91)
    assert (ci.low, ci.high) == (pytest.approx(0.91 - half), pytest.approx(0.91 + half))
    assert ci.half_width == pytest.approx(0.02484, abs=1e-5)
    assert ci.text() == "91.00 ± 2.48 (95% CI, 3 seeds)"


def test_mean_ci_edge_cases_say_so():
    one = mean_ci([0.9])
    assert one.mean == 0.9 and not one.has_interval and math.isnan(one.low)
    assert one.text() == "90.00 (1 seed: no interval)"
    equal = mean_ci([0.9, 0.9, 0.9])
    assert (equal.low, equal.high) == (0.9, 0.9)  # zero spread: a zero-width interval
    assert mean_ci([]).text() == "no runs"
    with pytest.raises(ValueError, match="finite"):
        mean_ci([0.9, NAN])


# ------------------------------------------------------------------------ non-inferiority
FULL = [0.910, 0.912, 0.908, 0.911, 0.909]  # mean 0.910, sd 0.0016


def test_clearly_lossless():
    result = lossless_test([0.911, 0.913, 0.910, 0.912, 0.914], FULL)  # +0.2 points
    assert result.verdict == "lossless" and result.lossless
    assert result.p_value == pytest.approx(0.0085, abs=1e-4)  # t = 3.0 on 8 df
    assert result.ci_low > -0.001  # the lower one-sided 95% bound clears the margin
    assert (result.n_pruned, result.n_full) == (5, 5)
    assert result.difference == pytest.approx(0.002)
    assert result.sentence.startswith("lossless: non-inferior")
    assert "5 pruned vs 5 full-data seeds" in result.sentence


def test_clearly_lossy():
    result = lossless_test([0.890, 0.893, 0.888, 0.891, 0.889], FULL)  # -1.98 points
    assert result.verdict == "lossy" and not result.lossless
    assert result.ci_high < -0.001  # the upper one-sided 95% bound is below -margin
    assert result.p_value > 0.999


def test_two_seeds_cannot_decide_a_near_tie():
    # The same +-0.2-point seed noise as a real run: two seeds a side leave it undecided.
    result = lossless_test([0.905, 0.915], [0.912, 0.908])
    assert result.verdict == "undecided"
    assert 0.05 < result.p_value < 0.95
    assert result.ci_low < -0.001 < result.ci_high
    assert result.sentence.startswith("undecided: cannot tell at this level")


def test_too_few_seeds_are_undecided_whatever_the_gap():
    for pruned, full in (([0.95], FULL), (FULL, [0.5]), ([0.2], [0.9])):
        result = lossless_test(pruned, full)
        assert result.verdict == "undecided" and math.isnan(result.p_value)
        assert "too few seeds to test (need 2 each)" in result.sentence


def test_zero_spread_is_one_test_image_of_spread():
    # Equal seeds get the spread of one test image (1e-4), never none: a tie is decided by
    # its bound, not at p = 0, and a difference exactly on the margin stays on it.
    tie = lossless_test([0.9, 0.9], [0.9, 0.9])
    bound = scipy_stats.t.ppf(0.95, 2) * 1e-4  # se = 1e-4 on 2 Welch df
    assert tie.verdict == "lossless" and tie.ci_low == pytest.approx(-bound)
    assert 0 < tie.p_value < 0.05
    assert lossless_test([0.85, 0.85], [0.9, 0.9]).verdict == "lossy"
    assert lossless_test([0.5, 0.5], [0.75, 0.75], margin=0.25).verdict == "undecided"  # on it


def test_margin_and_level_are_the_stated_rule():
    # -0.4 points: lossy at the 0.1-point margin, lossless at a 1-point margin.
    pruned, full = [0.905, 0.906, 0.907], [0.91, 0.911, 0.909]
    assert lossless_test(pruned, full).verdict == "lossy"
    assert lossless_test(pruned, full, margin=0.01).verdict == "lossless"
    with pytest.raises(ValueError, match="level"):
        lossless_test(pruned, full, level=0.5)


def test_verdict_is_the_confidence_bound_rule_on_random_cases():
    # 300 random cases (numpy seed 0): "lossless" iff the lower bound clears -margin,
    # "lossy" iff the upper bound is below it, both from the same 90% two-sided interval.
    rng = np.random.default_rng(0)
    for _ in range(300):
        n_a, n_b = rng.integers(2, 7, size=2)
        shift = rng.normal(0, 0.004)
        pruned = 0.9 + shift + rng.normal(0, 0.003, n_a)
        full = 0.9 + rng.normal(0, 0.003, n_b)
        result = lossless_test(pruned, full)
        assert (result.verdict == "lossless") == (result.ci_low > -0.001)
        assert (result.verdict == "lossy") == (result.ci_high < -0.001)


# ------------------------------------------------------------------------ ranks
def test_pruners_within_noise_share_a_rank_and_a_letter():
    ranks = rank_groups(
        {
            "orderdp": [0.910, 0.912, 0.911],
            "infobatch": [0.911, 0.909, 0.913],
            "random": [0.880, 0.882, 0.881],
            "rs2": [0.879, 0.883, 0.880],
        }
    )
    assert {k: r.rank for k, r in ranks.items()} == {
        "orderdp": 1,
        "infobatch": 1,
        "random": 3,
        "rs2": 3,
    }
    assert {k: r.letters for k, r in ranks.items()} == {
        "orderdp": "a",
        "infobatch": "a",
        "random": "b",
        "rs2": "b",
    }


# ------------------------------------------------------------------------ time to accuracy
def test_tta_drops_fastest_and_slowest_from_five_runs():
    result = time_to_accuracy([10.0, 12.0, 11.0, 14.0, 13.0])
    assert result.value == pytest.approx(12.0)  # mean of 11, 12, 13
    assert (result.reached, result.runs) == (5, 5)
    assert "MLPerf" in result.rule


def test_tta_allows_one_run_that_never_converges():
    one = time_to_accuracy([10.0, 12.0, 11.0, NAN, 13.0])
    assert one.value == pytest.approx(12.0)  # 10 and the non-converged run dropped
    assert (one.reached, one.runs) == (4, 5)
    two = time_to_accuracy([10.0, 12.0, NAN, NAN, 13.0])
    assert math.isnan(two.value) and two.reached == 3
    assert two.text().startswith("not reached (3 of 5 seeds reached it")


def test_tta_with_fewer_runs_is_the_median():
    assert time_to_accuracy([10.0, NAN, 12.0]).value == pytest.approx(12.0)  # one slow ignored
    assert time_to_accuracy([10.0, 11.0, 20.0, NAN]).value == pytest.approx(15.5)
    assert math.isnan(time_to_accuracy([10.0, NAN]).value)  # two runs: both must converge
    assert time_to_accuracy([10.0, 14.0]).value == pytest.approx(12.0)
    assert time_to_accuracy([7.0]).value == 7.0
    assert time_to_accuracy([]).runs == 0


def test_seeds_with_equal_accuracy_on_one_side_test_quietly_and_exactly():
    """Two seeds at exactly 78.74% (seen in the demo) made scipy warn of catastrophic
    cancellation. Now that side's spread is one test image (1e-4): Welch on floored spreads."""
    pruned, full = [0.7874, 0.7874], [0.7777, 0.7775]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        verdict = lossless_test(pruned, full)
        ranks = rank_groups({"pruned": pruned, "full": full})
    s_a, s_b = 1e-4, np.std(full, ddof=1)
    v_a, v_b = s_a**2 / 2, s_b**2 / 2
    df = (v_a + v_b) ** 2 / (v_a**2 + v_b**2)
    t = (np.mean(pruned) - np.mean(full) + 0.001) / np.sqrt(v_a + v_b)
    assert verdict.p_value == pytest.approx(scipy_stats.t.sf(t, df=df), rel=1e-9)
    assert verdict.verdict == "lossless"
    assert ranks["pruned"].rank == 1 and ranks["full"].rank == 2
