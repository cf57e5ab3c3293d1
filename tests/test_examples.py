"""The worked examples in examples/ run as a user runs them and do what they say."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_own_loop_example_trains_with_half_the_samples():
    main = runpy.run_path(str(EXAMPLES / "own_loop.py"))["main"]
    pruned = main(["--pruner", "orderdp", "--prune-ratio", "0.5"])
    # OrderDP keeps floor(b floor(a n)) = 1999 of 4000 samples every epoch (a = b = sqrt(0.5)).
    assert pruned["realized_prune_ratio"] == pytest.approx(1 - 1999 / 4000)
    assert pruned["samples_trained"] == 10 * 1999
    # Three classes with 10% flipped labels: chance is 1/3, the Bayes rate about 0.93; a model
    # that learned nothing from the pruned loop would not pass 0.8 (seeded, deterministic).
    assert pruned["test_accuracy"] > 0.8
