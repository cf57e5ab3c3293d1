"""OrderDP per iteration against Algorithm 1: a fresh uniform S^t of size s, train its top q."""

from __future__ import annotations

import itertools

import pytest
import torch
from scipy import stats

from prunebench.pruners import create_pruner
from prunebench.pruners.orderdp_iteration import draw_candidate_batches


def test_candidate_batches_are_uniform_subsets_with_distinct_members():
    # 5,000 draws of 2 from 5 (seed 0): each of the 10 subsets expected 500 times; chi-square
    # goodness of fit must not reject uniformity at the 0.001 level.
    generator = torch.Generator().manual_seed(0)
    rows = draw_candidate_batches(5000, 2, 5, generator)
    assert (rows[:, 0] != rows[:, 1]).all()
    subsets = list(itertools.combinations(range(5), 2))
    counts = [
        int(((rows.min(1).values == a) & (rows.max(1).values == b)).sum()) for a, b in subsets
    ]
    assert sum(counts) == 5000
    assert stats.chisquare(counts).pvalue > 1e-3
    # Order within a row is random too: the smaller member comes first about half the time.
    first_smaller = float((rows[:, 0] < rows[:, 1]).float().mean())
    assert first_smaller == pytest.approx(0.5, abs=0.03)  # sd 0.007 over 5,000 rows


def test_a_plan_is_independent_candidate_batches_of_the_batch_size():
    n, batch = 1000, 64
    pruner = create_pruner("orderdp_iteration", n=n, epochs=5, seed=1, prune_ratio=0.36)
    pruner.follow_batch_size(batch)
    plan = pruner.plan_epoch(0)
    # a = b = sqrt(1 - 0.36) = 0.8: 800 candidates per epoch, in 13 batches of 64.
    steps = -(-pruner.pool_size // batch)
    assert pruner.pool_size == 800 and steps == 13
    assert plan.per_step and plan.indices.numel() == steps * batch
    assert plan.step_batch_size == pruner.trained_per_step == 51  # floor(0.8 * 64)
    rows = plan.indices.reshape(steps, batch)
    assert all(row.unique().numel() == batch for row in rows)
    assert plan.indices.unique().numel() < steps * batch  # independent draws: repeats across


def test_each_step_trains_the_top_q_of_its_candidates_by_current_loss():
    pruner = create_pruner("orderdp_iteration", n=100, epochs=5, seed=1, prune_ratio=0.75)
    pruner.follow_batch_size(8)
    losses = torch.tensor([0.3, 2.0, 0.1, 1.5, 0.9, 3.0, 0.2, 1.0])
    keep = pruner.select_step(torch.arange(8), losses)
    assert pruner.trained_per_step == 4  # b = sqrt(0.25) = 0.5, q = floor(0.5 * 8)
    assert keep.tolist() == [False, True, False, True, False, True, False, True]
