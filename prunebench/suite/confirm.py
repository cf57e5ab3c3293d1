"""The search's answer confirmed on fresh seeds: the winner's curse, removed.

The largest lossless ratio a search finds is the best of its trials judged on the seeds that
chose it, so it overstates itself. Here the candidates (the ``MAX_CANDIDATES`` largest ratios
the search's own seeds call lossless) are trained again on CONFIRM_SEED_START,
CONFIRM_SEED_START + 1, ... seeds no trial and no suite cell used, against full data trained on
those same fresh seeds, and decided by the same lossless rule.

Two rules keep the false-lossless rate of the confirmed answer at most ``level``:

- **Fixed sequence.** The candidates are tested in a fixed order, smallest ratio first, each at
  the full level, and the sequence stops at the first that is not lossless; the confirmed answer
  is the largest ratio passed. Every false "lossless" would be the sequence's first error, so
  the family-wise rate is at most ``level`` without splitting it (tests/test_confirm.py simulates
  it).
- **Rounds of fresh seeds until decided.** A candidate still undecided gets another round of
  ``seeds`` fresh seeds (full data too), up to ``max_seeds`` a side; each of its at most L looks
  tests at ``level / L`` (stats.sequential, the rule ``--until-decided`` uses).

The cost is bounded (``MAX_CANDIDATES`` x ``max_seeds`` runs, plus full data's) and recorded.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prunebench.stats import NonInferiority, look_level, lossless_test, planned_looks
from prunebench.stats.sequential import rule_text

log = logging.getLogger(__name__)

CONFIRM_SEED_START = 1000
"""Fresh seeds start here: presets and searches use small seeds (0, 1, ...)."""
MAX_CANDIDATES = 2
"""Candidates tried on fresh seeds: the largest lossless ratios of the search's own seeds."""

Train = Callable[[dict[str, Any] | None, int], tuple[float, float]]
"""(pruner params, or None for full data; seed) -> (test accuracy, realized prune ratio)."""
TrainFull = Callable[[list[int]], list[float]]
"""Fresh seeds -> full data's test accuracies on them (a search trains them once per machine,
its workers side by side)."""


def confirmation_seeds(count: int) -> list[int]:
    """The fresh seeds a confirmation trains on."""
    return list(range(CONFIRM_SEED_START, CONFIRM_SEED_START + count))


@dataclass(frozen=True)
class Attempt:
    """One candidate retrained on fresh seeds, in one or more rounds."""

    searched_ratio: float
    """The candidate's ratio on the search's own seeds."""
    prune_ratio: float
    """Its realized ratio on the fresh seeds."""
    params: dict[str, Any]
    verdict: NonInferiority
    """The verdict of its last look (at that look's level)."""
    looks: int = 1
    """Looks taken: rounds of fresh seeds it was tested after."""

    @property
    def seeds(self) -> int:
        """Fresh seeds a side its verdict rests on."""
        return self.verdict.n_pruned

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "searched_ratio": self.searched_ratio,
            "prune_ratio": self.prune_ratio,
            "params": self.params,
            "verdict": self.verdict.verdict,
            "lower_bound": self.verdict.lower_bound,
            "seeds": self.seeds,
            "looks": self.looks,
            "sentence": self.verdict.sentence,
        }


@dataclass(frozen=True)
class Confirmation:
    """What the fresh seeds said of the search's candidates."""

    seeds: list[int]
    """Every fresh seed trained (the longest candidate's)."""
    attempts: list[Attempt] = field(default_factory=list)
    training_runs: int = 0
    """Runs the confirmation asked for (full data's included; reused runs count too)."""
    rule: str = ""
    """The error rule in words (fixed sequence, looks and the level of each)."""

    @property
    def confirmed(self) -> Attempt | None:
        """The largest candidate the fixed sequence passed (None: none confirmed)."""
        passed = [attempt for attempt in self.attempts if attempt.verdict.lossless]
        return passed[-1] if passed else None


def candidate_order(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fixed sequence: the ``MAX_CANDIDATES`` largest ratios, smallest of them first."""
    largest = sorted(candidates, key=lambda row: -row["prune_ratio"])[:MAX_CANDIDATES]
    return largest[::-1]


def confirm(
    candidates: list[dict[str, Any]],
    train: Train,
    seeds: int,
    margin: float,
    level: float,
    max_seeds: int | None = None,
    train_full: TrainFull | None = None,
) -> Confirmation:
    """Retrain ``candidates`` (frontier rows: prune_ratio, params) on fresh seeds in the fixed
    sequence, each in rounds of ``seeds`` until decided or ``max_seeds`` a side (default:
    ``seeds``, one look), against full data on the same seeds (``train_full``, default
    ``train`` a seed at a time)."""
    if train_full is None:

        def train_full(seeds: list[int]) -> list[float]:
            return [train(None, seed)[0] for seed in seeds]

    max_seeds = max(seeds, max_seeds or seeds)
    looks = planned_looks(seeds, max_seeds, seeds)
    each = look_level(looks, level)
    rule = (
        f"fixed sequence over at most {MAX_CANDIDATES} candidates, smallest ratio first, "
        f"stopping at the first not lossless; rounds of {seeds} fresh seeds up to {max_seeds}: "
        + rule_text(looks, level)
    )
    ordered = candidate_order(candidates)
    full: list[float] = []  # full data on the fresh seeds, grown as rounds need them
    runs, attempts, trained = 0, [], 0
    for row in ordered:
        outcomes: list[tuple[float, float]] = []
        n, look = seeds, 0
        while True:
            look += 1
            fresh = confirmation_seeds(n)
            new_pruned, new_full = fresh[len(outcomes) :], fresh[len(full) :]
            outcomes += [train(row["params"], seed) for seed in new_pruned]
            full += train_full(new_full) if new_full else []
            runs, trained = runs + len(new_pruned) + len(new_full), max(trained, n)
            accuracies = [accuracy for accuracy, _ in outcomes]
            if any(a != a for a in accuracies + full[:n]):  # NaN: a fresh run failed
                log.warning("a fresh run of candidate %s failed: the sequence stops", row)
                return Confirmation(confirmation_seeds(trained), attempts, runs, rule)
            verdict = lossless_test(accuracies, full[:n], margin=margin, level=each)
            if verdict.verdict != "undecided" or n >= max_seeds:
                break
            n = min(n + seeds, max_seeds)
        ratio = statistics.fmean(ratio for _, ratio in outcomes)
        attempts.append(Attempt(row["prune_ratio"], ratio, row["params"], verdict, look))
        if not verdict.lossless:
            break
    return Confirmation(confirmation_seeds(trained), attempts, runs, rule)
