"""The search's answer confirmed on fresh seeds (suite.confirm): the fixed sequence, rounds of
seeds while undecided, and the false-lossless rate of the whole procedure, simulated."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prunebench.stats import lossless_test
from prunebench.suite.confirm import CONFIRM_SEED_START, MAX_CANDIDATES, confirm

MARGIN = 0.004
LEVEL = 0.05


def _candidates(*ratios: float) -> list[dict]:
    return [{"prune_ratio": r, "params": {"prune_ratio": r}} for r in ratios]


def _planted(loss_by_ratio: dict[float, float], spread: float, seed: int = 0):
    """A train function: full data at 0.88, a candidate at 0.88 - its loss, normal noise of
    ``spread`` drawn from (seed, run seed, ratio): the same run gives the same accuracy."""
    calls = []

    def train(params, run_seed):
        ratio = None if params is None else params["prune_ratio"]
        calls.append((ratio, run_seed))
        key = 0 if ratio is None else 1 + round(ratio * 1000)
        rng = np.random.default_rng([seed, run_seed, key])
        mean = 0.88 if ratio is None else 0.88 - loss_by_ratio[ratio]
        return float(mean + spread * rng.standard_normal()), ratio or 0.0

    return train, calls


def test_the_two_largest_are_tested_smallest_first_and_the_sequence_stops_at_a_failure():
    train, calls = _planted({0.1: 0.0, 0.3: 0.0, 0.7: 0.05}, spread=0.001)
    confirmation = confirm(_candidates(0.1, 0.7, 0.3), train, seeds=5, margin=MARGIN, level=LEVEL)
    assert MAX_CANDIDATES == 2
    assert [a.searched_ratio for a in confirmation.attempts] == [0.3, 0.7]  # 0.1 never trained
    assert [a.verdict.verdict for a in confirmation.attempts] == ["lossless", "lossy"]
    assert confirmation.confirmed.searched_ratio == 0.3
    assert {ratio for ratio, _ in calls} == {None, 0.3, 0.7}
    assert {seed for _, seed in calls} == set(range(CONFIRM_SEED_START, CONFIRM_SEED_START + 5))
    assert confirmation.training_runs == len(calls) == 15  # full data trained once, not twice


def test_a_failed_first_candidate_confirms_nothing_even_if_the_larger_would_pass():
    # The sequence stops at the first ratio not lossless: the larger one is never tried.
    train, calls = _planted({0.3: 0.05, 0.5: 0.0}, spread=0.001)
    confirmation = confirm(_candidates(0.3, 0.5), train, seeds=5, margin=MARGIN, level=LEVEL)
    assert [a.searched_ratio for a in confirmation.attempts] == [0.3]
    assert confirmation.confirmed is None
    assert 0.5 not in {ratio for ratio, _ in calls}


def test_an_undecided_candidate_gets_rounds_of_seeds_and_a_decided_one_none():
    # A true loss of 0.2 points at a spread of 0.2 points: 5 seeds a side rarely decide at a
    # margin of 0.4, 15 usually do: the first planted noise that leaves the first look undecided.
    loss, spread = 0.002, 0.002
    undecided_first = next(
        seed
        for seed in range(100)
        if lossless_test(
            [_planted({0.3: loss}, spread, seed)[0]({"prune_ratio": 0.3}, s)[0] for s in
             range(CONFIRM_SEED_START, CONFIRM_SEED_START + 5)],
            [_planted({0.3: loss}, spread, seed)[0](None, s)[0] for s in
             range(CONFIRM_SEED_START, CONFIRM_SEED_START + 5)],
            margin=MARGIN, level=LEVEL / 3,
        ).verdict == "undecided"
    )  # fmt: skip
    train, calls = _planted({0.3: loss}, spread, undecided_first)
    confirmation = confirm(_candidates(0.3), train, 5, MARGIN, LEVEL, max_seeds=15)
    (attempt,) = confirmation.attempts
    assert attempt.looks >= 2 and attempt.seeds == 5 * attempt.looks
    assert len(calls) == 2 * attempt.seeds  # each seed trained once per side, across rounds
    assert "3 looks: each at 0.01667" in confirmation.rule
    # A clearly lossless candidate is decided at the first look: no second round.
    train, calls = _planted({0.3: 0.0}, spread=0.0005)
    confirmation = confirm(_candidates(0.3), train, 5, MARGIN, LEVEL, max_seeds=15)
    assert [(a.looks, a.seeds) for a in confirmation.attempts] == [(1, 5)]
    assert len(calls) == 10


# Simulation: every candidate truly loses exactly the margin (the boundary of "lossy", where a
# false "lossless" is likeliest). Size and seed stated; the bound is the level, with a tolerance
# of three binomial standard errors at that size.
SIMULATIONS = 1500
SIMULATION_SEED = 20261207


def _false_lossless_rate(max_seeds: int, per_look_level: float | None = None) -> float:
    spread = 0.002
    false = 0
    for simulation in range(SIMULATIONS):
        train, _ = _planted({0.3: MARGIN, 0.5: MARGIN}, spread, SIMULATION_SEED + simulation)
        if per_look_level is None:
            confirmation = confirm(_candidates(0.3, 0.5), train, 5, MARGIN, LEVEL, max_seeds)
            false += confirmation.confirmed is not None
            continue
        # The naive design: every look of every round at the full level, no sequence split.
        for n in range(5, max_seeds + 1, 5):
            seeds = range(CONFIRM_SEED_START, CONFIRM_SEED_START + n)
            pruned = [train({"prune_ratio": 0.3}, s)[0] for s in seeds]
            full = [train(None, s)[0] for s in seeds]
            verdict = lossless_test(pruned, full, margin=MARGIN, level=per_look_level).verdict
            if verdict != "undecided":
                false += verdict == "lossless"
                break
    return false / SIMULATIONS


def test_the_false_lossless_rate_of_the_whole_confirmation_is_at_most_the_level():
    tolerance = 3 * math.sqrt(LEVEL * (1 - LEVEL) / SIMULATIONS)
    rate = _false_lossless_rate(max_seeds=15)
    assert rate <= LEVEL + tolerance, rate
    # The simulation can see an inflated rate: testing each of 3 looks at the full level does.
    naive = _false_lossless_rate(max_seeds=15, per_look_level=LEVEL)
    assert naive > rate


@pytest.mark.parametrize("bad", [0, -1])
def test_no_candidates_trains_nothing(bad):
    train, calls = _planted({}, spread=0.001)
    confirmation = confirm([], train, 5, MARGIN, LEVEL, max_seeds=5 + bad)
    assert confirmation.attempts == [] and calls == [] and confirmation.confirmed is None
