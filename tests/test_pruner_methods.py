"""Method-specific behaviour of each pruner, against hand-computed cases and their theory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from prunebench.pruners import create_pruner
from prunebench.pruners.theory import orderdp_inclusion


def set_losses(pruner, losses) -> None:
    losses = torch.as_tensor(losses, dtype=torch.float32)
    pruner.observe(torch.arange(losses.numel()), losses)


# ----------------------------------------------------------------------------------- OrderDP
@pytest.mark.parametrize(
    "n,a,b",
    [(50_000, 0.5, 0.6), (1000, 0.75, 0.85), (777, 0.8, 0.375), (100, 0.29, 1.0), (10, 0.3, 0.34)],
)
def test_orderdp_keeps_exactly_floor_b_floor_a_n_every_epoch(n, a, b):
    pruner = create_pruner("orderdp", n=n, epochs=5, seed=0, exploration=a, exploitation=b)
    q = math.floor(b * math.floor(a * n + 1e-9) + 1e-9)
    for epoch in range(5):
        plan = pruner.plan_epoch(epoch)
        assert plan.num_samples == q
        assert plan.realized_prune_ratio == pytest.approx(1 - q / n)
        pruner.observe(plan.indices, torch.rand(q, generator=torch.Generator().manual_seed(epoch)))


def test_orderdp_per_rank_inclusion_matches_theory():
    # Fixed, distinct scores (index i has rank i + 1); 20,000 epochs, seed 0. Each rank's kept
    # frequency must be within 5 binomial standard errors of gamma_j (exactly 0 where gamma_j = 0).
    n, s, q, epochs = 40, 20, 6, 20_000
    pruner = create_pruner("orderdp", n=n, epochs=epochs, seed=0, exploration=0.5, exploitation=0.3)
    set_losses(pruner, torch.arange(n, 0, -1))
    counts = torch.zeros(n)
    for epoch in range(epochs):
        counts[pruner.plan_epoch(epoch).indices] += 1
    freq = counts.numpy() / epochs
    gamma = orderdp_inclusion(n, s, q)
    se = np.sqrt(gamma * (1 - gamma) / epochs)
    assert np.all(np.abs(freq - gamma) <= 5 * se + 1e-12)
    assert np.all(freq[gamma == 0] == 0)


def test_orderdp_default_decomposition_is_balanced():
    pruner = create_pruner("orderdp", n=50_000, epochs=1, seed=0, prune_ratio=0.7)
    assert pruner.exploration == pytest.approx(math.sqrt(0.3))
    assert pruner.exploitation == pytest.approx(math.sqrt(0.3))
    assert pruner.nominal_prune_ratio == pytest.approx(0.7, abs=1e-4)


def test_orderdp_infinite_initial_score_tries_untrained_samples_first():
    # Pool = everything, losses above the default initial score 3.0: with inf every sample is
    # trained once before any repeats; with 3.0 the first subset is kept forever.
    def coverage(initial_score):
        pruner = create_pruner(
            "orderdp", n=100, epochs=4, seed=0, exploration=1.0, exploitation=0.3,
            initial_score=initial_score,
        )  # fmt: skip
        seen = []
        for epoch in range(4):
            plan = pruner.plan_epoch(epoch)
            pruner.observe(plan.indices, torch.full((plan.num_samples,), 5.0))
            seen.append(plan.indices)
        return [torch.cat(seen[: k + 1]).unique().numel() for k in range(4)]

    assert coverage(float("inf")) == [30, 60, 90, 100]
    assert coverage(3.0) == [30, 30, 30, 30]


@pytest.mark.parametrize(
    "params,message",
    [
        ({"exploration": 0.5}, "both exploration and exploitation"),
        ({"prune_ratio": 0.5, "exploration": 0.5, "exploitation": 0.5}, "not both"),
        ({}, "needs prune_ratio"),
        ({"exploration": 0.0, "exploitation": 0.5}, r"exploration must be in \(0, 1\]"),
        ({"exploration": 0.5, "exploitation": 1.2}, r"exploitation must be in \(0, 1\]"),
        ({"exploration": 0.01, "exploitation": 0.5}, "raise a or b"),
        ({"prune_ratio": 0.5, "initial_score": "high"}, "initial_score"),
    ],
)
def test_orderdp_validation(params, message):
    with pytest.raises(ValueError, match=message):
        create_pruner("orderdp", n=50, epochs=1, seed=0, **params)


# --------------------------------------------------------------------------------- InfoBatch
LOSSES = [0.1, 0.2, 0.3, 0.4, 0.5, 2.5, 3.0, 4.0, 5.0, 6.0]  # mean 2.2: indices 0-4 below


def infobatch(**params):
    pruner = create_pruner("infobatch", n=10, epochs=8, seed=0, **params)
    set_losses(pruner, LOSSES)
    return pruner


def test_infobatch_hand_computed_plan():
    plan = infobatch(prune_ratio=0.5).plan_epoch(1)
    kept = dict(zip(plan.indices.tolist(), plan.weights.tolist(), strict=True))
    assert {5, 6, 7, 8, 9} <= set(kept) and all(kept[i] == 1.0 for i in range(5, 10))
    below = [i for i in kept if i < 5]
    assert len(below) == math.floor(0.5 * 5) == 2
    assert all(kept[i] == 2.0 for i in below)
    assert plan.realized_prune_ratio == pytest.approx(0.3)


def test_infobatch_keep_fraction_is_clamped_to_a_tenth():
    pruner = create_pruner("infobatch", n=100, epochs=3, seed=0, prune_ratio=0.95)
    set_losses(pruner, [0.0] * 50 + [1.0] * 50)
    plan = pruner.plan_epoch(1)
    assert plan.num_samples == 50 + 5
    assert sorted(set(plan.weights.tolist())) == [1.0, pytest.approx(10.0)]


def test_infobatch_first_epoch_full_and_annealing():
    # epochs = 8, delta = 0.875: epochs 1..6 prune, epoch 7 (>= floor(7.0)) anneals to full data.
    annealed = infobatch(prune_ratio=0.5, anneal=True)
    sizes = [annealed.plan_epoch(e).num_samples for e in range(8)]
    assert sizes == [10, 7, 7, 7, 7, 7, 7, 10]
    assert annealed.plan_epoch(7).weights is None and annealed.plan_epoch(0).weights is None
    plain = infobatch(prune_ratio=0.5, anneal=False)
    assert [plain.plan_epoch(e).num_samples for e in range(8)] == [10] + [7] * 7
    odd = create_pruner("infobatch", n=10, epochs=10, seed=0, prune_ratio=0.5, delta=0.875)
    assert odd.anneal_epoch == 8  # floor(8.75): epochs 8 and 9 are full


def test_infobatch_realized_ratio_is_below_nominal_at_high_ratios():
    gen = torch.Generator().manual_seed(0)
    n = 10_000
    for r in (0.5, 0.7, 0.9):
        pruner = create_pruner("infobatch", n=n, epochs=10, seed=0, prune_ratio=r, anneal=False)
        set_losses(pruner, torch.empty(n).exponential_(generator=gen))
        plan = pruner.plan_epoch(1)
        below = int((pruner.scores < pruner.scores.mean()).sum())
        assert plan.num_samples == n - below + math.floor((1 - r) * below)
        assert plan.realized_prune_ratio < 0.7 * r  # about r * (1 - 1/e) for exponential losses


# -------------------------------------------------------------------------------------- RS2
def test_rs2_uses_every_sample_once_before_any_repeats():
    n, epochs = 10, 23
    pruner = create_pruner("rs2", n=n, epochs=epochs, seed=0, prune_ratio=0.7)  # chunks of 3
    stream = torch.cat([pruner.plan_epoch(e).indices for e in range(epochs)])
    assert stream.numel() == 3 * epochs
    for start in range(0, stream.numel() - n + 1, n):
        assert sorted(stream[start : start + n].tolist()) == list(range(n))


# -------------------------------------------------------------------- UCB and epsilon-greedy
@pytest.mark.parametrize("name", ["ucb", "epsilon_greedy"])
def test_bandits_explore_unseen_samples_first(name):
    pruner = (
        create_pruner(name, n=100, epochs=3, seed=0, prune_ratio=0.5, epsilon=0.0)
        if (name == "epsilon_greedy")
        else create_pruner(name, n=100, epochs=3, seed=0, prune_ratio=0.5)
    )
    first = pruner.plan_epoch(0).indices
    pruner.observe(first, torch.full((50,), 100.0))
    second = pruner.plan_epoch(1).indices
    assert set(first.tolist()).isdisjoint(second.tolist())


def test_ucb_ema_statistics_and_ranking():
    pruner = create_pruner("ucb", n=3, epochs=1, seed=0, prune_ratio=0.6, momentum=0.8, c=1.0)
    pruner.observe(torch.tensor([0, 1, 2]), torch.tensor([1.0, 2.0, 1.5]))
    pruner.observe(torch.tensor([0, 1]), torch.tensor([5.0, 2.0]))
    # sample 0: mean 0.8*1 + 0.2*5 = 1.8, var 0.2 * (5 - 1)^2 = 3.2 -> UCB 5.0
    # sample 1: mean 2.0, var 0 -> 2.0; sample 2: mean 1.5 (seen once), var 0 -> 1.5
    torch.testing.assert_close(pruner.loss_mean, torch.tensor([1.8, 2.0, 1.5]))
    torch.testing.assert_close(pruner.loss_var, torch.tensor([3.2, 0.0, 0.0]))
    assert pruner.plan_epoch(0).indices.tolist() == [0]  # round(0.4 * 3) = 1 kept: the top UCB
    greedy = create_pruner("epsilon_greedy", n=3, epochs=1, seed=0, prune_ratio=0.6, epsilon=0.0)
    greedy.load_state_dict({**pruner.state_dict(), "name": "epsilon_greedy"})
    assert greedy.plan_epoch(0).indices.tolist() == [1]  # by mean alone, sample 1 leads


def test_epsilon_greedy_explores_an_epsilon_share_uniformly():
    # Fixed stats; kept = 50, epsilon 0.2: the top 40 by mean always, 10 of the other 60 uniformly.
    # 4,000 re-selections, seed 0; each other sample's frequency within 5 SE of 10/60.
    n, rounds = 100, 4_000
    pruner = create_pruner(
        "epsilon_greedy", n=n, epochs=rounds, seed=0, prune_ratio=0.5, epsilon=0.2
    )
    set_losses(pruner, torch.arange(n, 0, -1))  # sample i has the (i+1)-th highest loss
    counts = torch.zeros(n)
    for epoch in range(rounds):
        counts[pruner.plan_epoch(epoch).indices] += 1
    freq = counts / rounds
    assert torch.all(freq[:40] == 1.0)
    p = 10 / 60
    assert torch.all((freq[40:] - p).abs() <= 5 * math.sqrt(p * (1 - p) / rounds))


@pytest.mark.parametrize("name", ["ucb", "epsilon_greedy"])
def test_bandits_reselect_every_period_epochs(name):
    pruner = create_pruner(name, n=200, epochs=9, seed=0, prune_ratio=0.5, period=3)
    sets = []
    for epoch in range(9):
        plan = pruner.plan_epoch(epoch)
        sets.append(frozenset(plan.indices.tolist()))
        pruner.observe(
            plan.indices,
            torch.rand(plan.num_samples, generator=torch.Generator().manual_seed(epoch)),
        )
    assert sets[0] == sets[1] == sets[2] and sets[3] == sets[4] == sets[5]
    assert sets[2] != sets[3] and sets[5] != sets[6]
