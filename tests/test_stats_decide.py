"""Verdicts that decide: bounds, seeds needed, Holm ranks and sequential looks, on constructed
accuracies and simulations (each states its seed, size and tolerance)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower

from prunebench.stats import (
    look_level,
    lossless_test,
    planned_looks,
    rank_groups,
    seeds_for_margin,
    supported_margin,
)
from prunebench.stats.ranks import compact_letters, holm_reject

MARGIN = 0.003  # 0.3 points
FULL = [0.9000, 0.9012, 0.8991, 0.9005, 0.8995]


def test_welch_above_the_floor_is_scipys():
    pruned = [0.8981, 0.9002, 0.8975, 0.8990, 0.8999]
    result = lossless_test(pruned, FULL, margin=MARGIN)
    scipy = scipy_stats.ttest_ind(pruned, np.asarray(FULL) - MARGIN, equal_var=False,
                                  alternative="greater")  # fmt: skip
    interval = scipy_stats.ttest_ind(pruned, FULL, equal_var=False).confidence_interval(0.90)
    assert result.p_value == pytest.approx(scipy.pvalue, rel=1e-9)
    assert result.lower_bound == pytest.approx(interval.low, rel=1e-9)
    assert result.ci_high == pytest.approx(interval.high, rel=1e-9)


@pytest.mark.parametrize(
    ("pruned", "full", "verdict"),
    [
        ([0.9001, 0.8995, 0.9010, 0.9003, 0.8998], FULL, "lossless"),  # clearly within
        ([0.8901, 0.8895, 0.8910, 0.8903, 0.8898], FULL, "lossy"),  # -1 point
        ([0.8950, 0.8990, 0.8930, 0.9000, 0.8960], FULL, "undecided"),  # straddles -0.3
        ([0.9003, 0.9003, 0.9003], FULL, "lossless"),  # zero spread on one side
        ([0.9003, 0.9003], [0.9003, 0.9003], "lossless"),  # zero spread on both
        ([0.8800, 0.8800], [0.9003, 0.9003], "lossy"),  # zero spread, far below
        ([0.897, 0.897], [0.900, 0.900], "undecided"),  # exactly on the margin
        ([0.950, 0.950], [0.951, 0.951], "lossless"),  # 0.1 points above a 0.3 margin
    ],
)
def test_the_verdict_follows_from_the_bounds(pruned, full, verdict):
    result = lossless_test(pruned, full, margin=MARGIN)
    assert result.verdict == verdict
    low, high = round(result.lower_bound, 9), round(result.ci_high, 9)
    assert (result.verdict == "lossless") == (low > -MARGIN)
    assert (result.verdict == "lossy") == (high < -MARGIN)
    if result.lower_bound < 0:
        assert result.loss_text() == f"loses at most {-100 * result.lower_bound:.2f} points"


def test_a_difference_on_the_margin_is_never_lossy_through_float_error():
    # 0.95 - 0.951 is -0.0010000000000000009 in floats: exactly the 0.1-point margin.
    result = lossless_test([0.95, 0.95], [0.951, 0.951], margin=0.001)
    assert result.verdict == "undecided"
    assert math.isinf(result.seeds_needed)  # on the margin, no number of seeds decides


def test_supported_margin_matches_the_reference_example():
    # REFERENCE.md section 7: sigma 0.15 points, 5 seeds a side -> about 0.3 points; a 0.1-point
    # margin needs about 30 seeds a side (the normal approximation gives 28).
    assert supported_margin(0.0015, 5, 0.05) == pytest.approx(0.0026, abs=2e-4)
    assert 28 <= seeds_for_margin(0.0015, 0.001, 0.05) <= 36


def test_seeds_needed_decides_at_about_the_stated_power():
    # A pruner truly as good as full data (difference 0), spread 0.2 points, margin 0.3 points:
    # k is the fewest seeds a side whose power is at least 0.8 (k - 1 fall short). 4,000
    # simulated experiments (numpy seed 7) declare it lossless at the power the formula gives
    # for k, within 0.03 (five binomial sds), and at k - 2 seeds clearly less often.
    sigma, rng = 0.002, np.random.default_rng(7)
    k = int(seeds_for_margin(sigma, MARGIN, 0.05))
    assert 5 <= k <= 12
    power = TTestIndPower().power(MARGIN / sigma, nobs1=k, alpha=0.05, alternative="larger")
    short = TTestIndPower().power(MARGIN / sigma, nobs1=k - 1, alpha=0.05, alternative="larger")
    assert power >= 0.8 > short

    def rate(seeds: int) -> float:
        pruned = 0.9 + sigma * rng.standard_normal((4000, seeds))
        full = 0.9 + sigma * rng.standard_normal((4000, seeds))
        hits = [
            lossless_test(p, f, margin=MARGIN).lossless for p, f in zip(pruned, full, strict=True)
        ]
        return float(np.mean(hits))

    assert rate(k) == pytest.approx(power, abs=0.03)
    assert rate(k - 2) < 0.74
    observed = lossless_test(0.9 + sigma * rng.standard_normal(k),
                             0.9 + sigma * rng.standard_normal(k), margin=MARGIN)  # fmt: skip
    assert 2 <= observed.seeds_needed < math.inf


def test_identical_pruners_split_at_most_at_the_level():
    # 8 identical pruners, 3 seeds each, spread 0.2 points: under Holm's correction the rate of
    # ANY split into groups over 2,000 simulations (numpy seed 3) is at most 0.05 plus three
    # binomial sds (0.015). The old leader-chain rule split 31.6% of them.
    rng = np.random.default_rng(3)
    splits = 0
    for _ in range(2000):
        samples = {f"p{i}": 0.9 + 0.002 * rng.standard_normal(3) for i in range(8)}
        ranks = rank_groups(samples, 0.05)
        splits += len({r.rank for r in ranks.values()}) > 1
    assert splits / 2000 <= 0.065


def test_holm_decides_as_statsmodels_does():
    # 30 families of 1-30 p-values (numpy seed 5), some tiny, some tied: the same rejections
    # (30, not more: each multipletests call runs a full garbage collection).
    rng = np.random.default_rng(5)
    for _ in range(30):
        size = int(rng.integers(1, 31))
        p = np.round(rng.beta(0.3, 1.0, size), 3)
        level = float(rng.choice([0.01, 0.05, 0.1]))
        expected = multipletests(p, alpha=level, method="holm")[0]
        assert (holm_reject(p, level) == expected).all(), (p, level)


def test_letters_are_transitive_groups():
    # a ~ b, b ~ c, a differs from c: a "a", b "ab", c "b".
    letters = compact_letters(["a", "b", "c"], {frozenset(("a", "c"))})
    assert letters == {"a": "a", "b": "ab", "c": "b"}
    ranks = rank_groups({"x": [0.91, 0.911, 0.909], "y": [0.85, 0.851, 0.849]})
    assert (ranks["x"].rank, ranks["x"].letters, ranks["y"].rank, ranks["y"].letters) == (
        1,
        "a",
        2,
        "b",
    )


def test_seeds_until_decided_keep_the_false_lossless_rate_at_the_level():
    # A pruner exactly one margin worse than full data (H0 true at its boundary), spread 0.2
    # points: start at 5 seeds a side, add 5 a round up to 20 (4 looks, each at 0.05 / 4). Over
    # 3,000 simulated designs (numpy seed 11) "lossless" at any look happens at most at 0.05 plus
    # three binomial sds (0.012). Testing every look at 0.05 instead exceeds it.
    rng = np.random.default_rng(11)
    looks = planned_looks(5, 20, 5)
    assert looks == 4

    def false_lossless_rate(level_each: float) -> float:
        hits = 0
        for _ in range(3000):
            pruned = 0.9 - MARGIN + 0.002 * rng.standard_normal(20)
            full = 0.9 + 0.002 * rng.standard_normal(20)
            for seeds in (5, 10, 15, 20):
                verdict = lossless_test(
                    pruned[:seeds], full[:seeds], margin=MARGIN, level=level_each
                ).verdict
                if verdict != "undecided":
                    hits += verdict == "lossless"
                    break
        return hits / 3000

    assert false_lossless_rate(look_level(looks, 0.05)) <= 0.062
    assert false_lossless_rate(0.05) > 0.062
