"""Selective Backprop against its public rule (angelajiang/SelectiveBackprop lib/calculators.py,
lib/hist.py, lib/selectors.py) on constructed loss histories."""

from __future__ import annotations

import collections

import pytest
import torch

from prunebench.pruners import create_pruner, pruner_class
from prunebench.pruners.selective_backprop import backprop_probability

N = 500


def public_probabilities(history: collections.deque, losses: list[float], beta: float):
    """``BatchedRelativeProbabilityCalculator.get_probability`` in a few lines: append the batch
    to the bounded history, then percentile = share strictly below, to the power beta."""
    history.extend(losses)
    return [(sum(h < loss for h in history) / len(history)) ** beta for loss in losses]


def test_probability_is_the_percentile_to_the_power_beta():
    history = torch.arange(1.0, 11.0)  # 1..10
    losses = torch.tensor([0.5, 1.0, 5.5, 10.0, 11.0])
    expected = torch.tensor([0.0, 0.0, 0.5**3, 0.9**3, 1.0])
    assert torch.allclose(backprop_probability(history, losses, 3.0), expected)


def test_selection_follows_the_public_rule_over_a_rolling_history():
    pruner = create_pruner("selective_backprop", n=N, epochs=3, seed=7)  # beta 3, history 1024
    twin = torch.Generator()
    twin.set_state(pruner.generator.get_state())
    public_history = collections.deque(maxlen=1024)
    losses_stream = torch.rand(40, 64, generator=torch.Generator().manual_seed(1)) * 4
    for losses in losses_stream:  # 2,560 losses: the history wraps twice
        indices = torch.arange(64)
        keep = pruner.select_step(indices, losses)
        expected = torch.tensor(public_probabilities(public_history, losses.tolist(), 3.0))
        draws = torch.rand(64, generator=twin)
        assert torch.equal(keep, draws < expected.float())
    assert sorted(pruner.history.tolist()) == sorted(public_history)


def test_kept_share_is_one_over_beta_plus_one_for_iid_losses():
    # Pruner seed 3, losses seed 1234 (not the pruner's: equal streams would make draws equal
    # losses), 300 batches of 64 i.i.d. losses: percentiles are about uniform, so the kept share
    # is about 1 / (beta + 1) = 0.25; binomial sd over 17,920 draws is 0.003, tolerance 0.02.
    pruner = create_pruner("selective_backprop", n=N, epochs=3, seed=3, prune_ratio=0.75)
    assert pruner.beta == pytest.approx(3.0)
    stream = torch.rand(300, 64, generator=torch.Generator().manual_seed(1234))
    kept = torch.stack([pruner.select_step(torch.arange(64), losses) for losses in stream])
    assert kept[20:].float().mean().item() == pytest.approx(0.25, abs=0.02)


def test_first_epoch_trains_everything_then_every_sample_is_a_candidate():
    pruner = create_pruner("selective_backprop", n=N, epochs=3, seed=0)
    first, second = pruner.plan_epoch(0), pruner.plan_epoch(1)
    assert not first.per_step and second.per_step
    for plan in (first, second):
        assert torch.equal(plan.indices.sort().values, torch.arange(N))
    assert pruner_class("selective_backprop").target_prune_ratio({"beta": 3.0}) == 0.75


def test_resume_mid_run_gives_identical_selections():
    def run(pruner, epochs):
        out = []
        for epoch in epochs:
            plan = pruner.plan_epoch(epoch)
            out.append(plan.indices)
            if plan.per_step:
                for batch in plan.indices.split(64):
                    out.append(pruner.select_step(batch, (batch % 97).float() / 10 + epoch))
        return out

    make = lambda seed: create_pruner("selective_backprop", n=N, epochs=4, seed=seed)  # noqa: E731
    whole = run(make(0), range(4))
    first = make(0)
    head = run(first, range(2))
    resumed = make(99)
    resumed.load_state_dict(first.state_dict())
    tail = run(resumed, range(2, 4))
    assert len(whole) == len(head + tail)
    assert all(torch.equal(a, b) for a, b in zip(whole, head + tail, strict=True))


def test_stale_variant_reuses_stored_losses_between_fresh_epochs():
    n, batch = 200, 32
    pruner = create_pruner("selective_backprop", n=n, epochs=8, seed=2, staleness=3)
    pruner.follow_batch_size(batch)
    stored = torch.rand(n, generator=torch.Generator().manual_seed(11)) * 3
    kinds = []
    public_history = collections.deque(maxlen=1024)
    for epoch in range(6):
        twin = torch.Generator()
        twin.set_state(pruner.generator.get_state())
        plan = pruner.plan_epoch(epoch)
        kinds.append("fresh" if plan.per_step else "full" if plan.indices.numel() == n else "stale")
        if plan.per_step:  # a fresh epoch: forward-only losses of every candidate
            assert torch.equal(plan.indices, torch.randperm(n, generator=twin))
            for candidates in plan.indices.split(batch):
                keep = pruner.select_step(candidates, stored[candidates])
                probabilities = public_probabilities(
                    public_history, stored[candidates].tolist(), 3.0
                )
                twin_draws = torch.rand(candidates.numel(), generator=twin)
                assert torch.equal(keep, twin_draws < torch.tensor(probabilities))
        elif kinds[-1] == "stale":  # the public rule over the stored losses, no new pass
            order = torch.randperm(n, generator=twin)
            expected = []
            for candidates in order.split(batch):
                probabilities = public_probabilities(
                    public_history, stored[candidates].tolist(), 3.0
                )
                draws = torch.rand(candidates.numel(), generator=twin)
                expected.append(candidates[draws < torch.tensor(probabilities)])
            assert torch.equal(plan.indices, torch.cat(expected))
    assert kinds == ["full", "fresh", "stale", "stale", "fresh", "stale"]
