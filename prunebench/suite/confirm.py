"""The search's answer confirmed on fresh seeds: the winner's curse, removed.

The largest lossless ratio a search finds is the best of its trials judged on the seeds that
chose it, so it overstates itself. Here the candidates (the search's lossless trials, largest
ratio first) are trained again on CONFIRM_SEED_START, CONFIRM_SEED_START + 1, ... seeds no trial
and no suite cell used, against full data trained on those same fresh seeds, and decided by the
same lossless rule. The first candidate the fresh seeds call lossless is the confirmed answer;
at most ``MAX_CANDIDATES`` are tried, so the cost is bounded and recorded.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prunebench.stats import NonInferiority, lossless_test

CONFIRM_SEED_START = 1000
"""Fresh seeds start here: presets and searches use small seeds (0, 1, ...)."""
MAX_CANDIDATES = 2
"""Candidates tried on fresh seeds before the search reports none confirmed."""

Train = Callable[[dict[str, Any] | None, int], tuple[float, float]]
"""(pruner params, or None for full data; seed) -> (test accuracy, realized prune ratio)."""


def confirmation_seeds(count: int) -> list[int]:
    """The fresh seeds a confirmation trains on."""
    return list(range(CONFIRM_SEED_START, CONFIRM_SEED_START + count))


@dataclass(frozen=True)
class Attempt:
    """One candidate retrained on fresh seeds."""

    searched_ratio: float
    """The candidate's ratio on the search's own seeds."""
    prune_ratio: float
    """Its realized ratio on the fresh seeds."""
    params: dict[str, Any]
    verdict: NonInferiority

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "searched_ratio": self.searched_ratio,
            "prune_ratio": self.prune_ratio,
            "params": self.params,
            "verdict": self.verdict.verdict,
            "lower_bound": self.verdict.lower_bound,
            "sentence": self.verdict.sentence,
        }


@dataclass(frozen=True)
class Confirmation:
    """What the fresh seeds said of the search's candidates."""

    seeds: list[int]
    attempts: list[Attempt] = field(default_factory=list)
    training_runs: int = 0
    """Runs the confirmation asked for (full data's included; reused runs count too)."""

    @property
    def confirmed(self) -> Attempt | None:
        """The largest candidate the fresh seeds call lossless (None: none confirmed)."""
        return next((a for a in self.attempts if a.verdict.lossless), None)


def confirm(
    candidates: list[dict[str, Any]],
    train: Train,
    seeds: int,
    margin: float,
    level: float,
) -> Confirmation:
    """Retrain ``candidates`` (frontier rows: prune_ratio, params), largest ratio first, on
    ``seeds`` fresh seeds until one is lossless against full data on the same seeds."""
    fresh = confirmation_seeds(seeds)
    ordered = sorted(candidates, key=lambda row: -row["prune_ratio"])[:MAX_CANDIDATES]
    if not ordered:
        return Confirmation(fresh)
    full = [train(None, seed)[0] for seed in fresh]
    runs, attempts = len(fresh), []
    for row in ordered:
        outcomes = [train(row["params"], seed) for seed in fresh]
        runs += len(fresh)
        accuracies = [accuracy for accuracy, _ in outcomes]
        if any(a != a for a in accuracies + full):  # NaN: a fresh run failed
            continue
        verdict = lossless_test(accuracies, full, margin=margin, level=level)
        ratio = statistics.fmean(ratio for _, ratio in outcomes)
        attempts.append(Attempt(row["prune_ratio"], ratio, row["params"], verdict))
        if verdict.lossless:
            break
    return Confirmation(fresh, attempts, runs)
