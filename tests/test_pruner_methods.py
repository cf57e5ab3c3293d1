"""Method-specific behaviour of each pruner, against hand-computed cases and their theory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from prunebench.errors import ConfigError
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
    # epochs = 8, delta = 0.875: epochs 1..6 prune, epoch 7 (progress 7/8 >= delta) is full data.
    annealed = infobatch(prune_ratio=0.5, anneal=True)
    sizes = [annealed.plan_epoch(e).num_samples for e in range(8)]
    assert sizes == [10, 7, 7, 7, 7, 7, 7, 10]
    assert annealed.plan_epoch(7).weights is None and annealed.plan_epoch(0).weights is None
    plain = infobatch(prune_ratio=0.5, anneal=False)
    assert [plain.plan_epoch(e).num_samples for e in range(8)] == [10] + [7] * 7
    # As the public code: epoch e prunes while e + 1 <= delta * epochs; epochs = 10,
    # delta = 0.875 -> epochs 1-7 prune, 8 and 9 (floor(8.75) on) are full.
    odd = create_pruner("infobatch", n=10, epochs=10, seed=0, prune_ratio=0.5, delta=0.875)
    set_losses(odd, LOSSES)
    assert [odd.is_pruning_epoch(e) for e in range(10)] == [False] + [True] * 7 + [False] * 2


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


def public_rescored_ucb(rescores: np.ndarray, momentum: float, c: float, kept: int) -> list:
    """The re-scoring variant in a few lines: every selection observes every sample's re-scored
    loss (the first sets the mean), EMA mean and squared deviation, top ``kept`` by mean + c*var."""
    mean, var, chosen = rescores[0].copy(), np.zeros_like(rescores[0]), []
    for row, losses in enumerate(rescores):
        if row:
            var = momentum * var + (1 - momentum) * (losses - mean) ** 2
            mean = momentum * mean + (1 - momentum) * losses
        chosen.append(set(np.argsort(-(mean + c * var))[:kept].tolist()))
    return chosen


@pytest.mark.parametrize("name", ["ucb", "epsilon_greedy"])
def test_rescoring_bandits_ask_for_every_sample_before_each_selection_only(name):
    plain = create_pruner(name, n=30, epochs=7, seed=0, prune_ratio=0.5, period=3)
    variant = create_pruner(name, n=30, epochs=7, seed=0, prune_ratio=0.5, period=3, rescore=True)
    assert variant.params["rescore"] is True and plain.params["rescore"] is False
    for epoch in range(7):
        assert plain.scoring_request(epoch) is None  # the default spends no extra pass
        request = variant.scoring_request(epoch)
        if epoch % 3 == 0:  # a selection epoch: n forward-only passes
            assert request.tolist() == list(range(30))
            variant.observe_scoring(request, torch.rand(30, generator=torch.Generator()))
        else:
            assert request is None
        variant.plan_epoch(epoch)
    with pytest.raises(ConfigError, match="rescore"):
        create_pruner(name, n=30, epochs=7, seed=0, rescore=1)


def test_rescored_ucb_updates_every_sample_from_the_rescoring_passes_only():
    n, epochs, momentum = 40, 12, 0.8
    rng = np.random.default_rng(9)
    rescores = rng.gamma(2.0, 1.0, size=(epochs // 2, n)).astype(np.float32)  # period 2
    expected = public_rescored_ucb(rescores, momentum, 1.0, kept=10)
    pruner = create_pruner(
        "ucb", n=n, epochs=epochs, seed=3, prune_ratio=0.75, period=2, rescore=True
    )
    for epoch in range(epochs):
        request = pruner.scoring_request(epoch)
        if request is not None:
            pruner.observe_scoring(request, torch.from_numpy(rescores[epoch // 2]))
        plan = pruner.plan_epoch(epoch)
        assert set(plan.indices.tolist()) == expected[epoch // 2], f"epoch {epoch}"
        # Training losses do not move the statistics of the variant.
        pruner.observe(plan.indices, torch.full((plan.num_samples,), 1e6))
    assert bool(pruner.seen.all())  # untrained samples were scored too


def test_rescored_bandit_resumes_exactly():
    options = {"n": 50, "epochs": 6, "seed": 4, "prune_ratio": 0.5, "period": 2, "rescore": True}

    def epoch_of(pruner, epoch: int) -> torch.Tensor:
        request = pruner.scoring_request(epoch)
        if request is not None:
            pruner.observe_scoring(request, (request * 37 % 11).float() + epoch)
        return pruner.plan_epoch(epoch).indices

    first = create_pruner("epsilon_greedy", **options)
    for epoch in range(3):
        epoch_of(first, epoch)
    second = create_pruner("epsilon_greedy", **options)
    second.load_state_dict(first.state_dict())
    for epoch in range(3, 6):  # epoch 4 selects after a re-scoring pass
        assert torch.equal(epoch_of(first, epoch), epoch_of(second, epoch)), f"epoch {epoch}"


# ------------------------------------------------- InfoBatch at a target realized ratio
# Fixed skewed scores: lognormal losses (sigma 2.5, torch seed 0), so about 94% of the samples
# are below the mean; every epoch observes the same per-sample losses.
SKEW_N, SKEW_EPOCHS = 2000, 40


def skewed_losses(n: int = SKEW_N) -> torch.Tensor:
    return torch.exp(2.5 * torch.randn(n, generator=torch.Generator().manual_seed(0)))


def simulate(pruner, losses: torch.Tensor, progress=None) -> tuple[list, list[float]]:
    """Plan and observe every epoch; returns the plans and the r_e the pruner used each epoch."""
    plans, rates = [], []
    for epoch in range(pruner.epochs):
        plan = pruner.plan_epoch(epoch, None if progress is None else progress(epoch))
        plans.append(plan)
        rates.append(pruner.last_rate)
        for batch in plan.indices.split(256):
            pruner.observe(batch, losses[batch])
    return plans, rates


@pytest.mark.parametrize("anneal", [False, True])
@pytest.mark.parametrize("target", [0.3, 0.5, 0.7])
def test_infobatch_meets_a_target_realized_ratio(target, anneal):
    losses = skewed_losses()
    pruner = create_pruner(
        "infobatch", n=SKEW_N, epochs=SKEW_EPOCHS, seed=0, prune_ratio=target, anneal=anneal,
        ratio_mode="realized",
    )  # fmt: skip
    plans, rates = simulate(pruner, losses)
    trained = sum(plan.num_samples for plan in plans)
    realized = 1 - trained / (SKEW_EPOCHS * SKEW_N)
    assert abs(realized - target) <= 0.005
    assert pruner.run_summary["capped_epochs"] == 0
    assert pruner.run_summary["max_weight"] <= 10.0
    below = losses < losses.mean()  # scores never change: the same below-mean set every epoch
    for epoch, (plan, rate) in enumerate(zip(plans, rates, strict=True)):
        full_epoch = epoch == 0 or (anneal and epoch >= 35)  # floor(0.875 * 40) = 35
        if full_epoch:
            assert plan.num_samples == SKEW_N and plan.weights is None and rate == 0.0
            continue
        kept_below = below[plan.indices]
        count = int(below.sum())
        assert int(kept_below.sum()) == count - round(rate * count)  # r_e = pruned / count
        assert torch.all(plan.weights[~kept_below] == 1.0)
        expected = torch.tensor(1.0 / (1.0 - rate), dtype=torch.float32)
        assert torch.allclose(plan.weights[kept_below], expected, rtol=1e-6, atol=0)


def test_infobatch_nominal_mode_is_the_default_and_labelled():
    pruner = create_pruner("infobatch", n=10, epochs=8, seed=0, prune_ratio=0.5)
    assert pruner.params["ratio_mode"] == "nominal" and "ratio_shortfall" not in pruner.run_summary
    with pytest.raises(ConfigError, match="ratio_mode must be one of nominal, realized"):
        create_pruner("infobatch", n=10, epochs=8, seed=0, ratio_mode="real")


def test_infobatch_unreachable_target_stops_at_the_public_cap():
    # 50 of 100 samples below the mean; target 0.8 over 10 epochs with epoch 0 full would need
    # 800 pruned in epochs 1..9 (89 a epoch). The public cap keeps a tenth of the 50 below-mean
    # samples (weight 10), so 45 a epoch, 405 in all: realized 0.405, no catch-up beyond it.
    pruner = create_pruner(
        "infobatch", n=100, epochs=10, seed=0, prune_ratio=0.8, anneal=False, ratio_mode="realized"
    )
    losses = torch.tensor([0.0] * 50 + [1.0] * 50)
    plans, rates = simulate(pruner, losses)
    assert [plan.num_samples for plan in plans] == [100] + [55] * 9
    assert rates == [0.0] + [pytest.approx(0.9)] * 9
    assert all(sorted(set(plan.weights.tolist())) == [1.0, 10.0] for plan in plans[1:])
    summary = pruner.run_summary
    assert summary["planned_prune_ratio"] == pytest.approx(0.405)
    assert summary["capped_epochs"] == 9
    assert summary["max_weight"] == 10.0


@pytest.mark.parametrize("kind", ["epochs", "samples", "time"])
@pytest.mark.parametrize("mode", ["nominal", "realized"])
def test_infobatch_anneals_at_delta_of_budget_progress(kind, mode):
    # Progress handed in as the trainer does. Under "samples"/"time" it is not e / epochs: here
    # it runs ahead (1.5 e / epochs), so epoch-based annealing would come too late.
    epochs, delta = 20, 0.5
    pruner = create_pruner(
        "infobatch", n=200, epochs=epochs, seed=0, prune_ratio=0.3, delta=delta, ratio_mode=mode
    )
    pruner.follow_budget(kind)
    losses = skewed_losses(200)
    pace = 1.0 if kind == "epochs" else 1.5
    plans, _ = simulate(pruner, losses, progress=lambda e: min(1.0, pace * e / epochs))
    first_full = next(e for e in range(1, epochs) if pace * e / epochs >= delta)
    assert first_full == (10 if kind == "epochs" else 7)
    for epoch, plan in enumerate(plans):
        assert (plan.weights is None) == (epoch == 0 or epoch >= first_full), epoch


@pytest.mark.parametrize("target", [0.3, 0.5, 0.7])
def test_infobatch_realized_under_a_samples_budget_anneals_at_delta(target):
    # A samples budget of N = 40 * (1 - target) * n passes, simulated as the trainer runs it
    # (progress = samples / N, the last plan cut). Annealing starts exactly at progress 0.875;
    # whole pruning epochs shift the epoch count by up to half an epoch, so the ratio by up to
    # (1 - target) * 0.5 / (40 - 0.5).
    n, losses = SKEW_N, skewed_losses()
    budget = round(SKEW_EPOCHS * (1 - target) * n)
    pruner = create_pruner(
        "infobatch", n=n, epochs=math.ceil(budget / round((1 - target) * n)), seed=0,
        prune_ratio=target, ratio_mode="realized",
    )  # fmt: skip
    pruner.follow_budget("samples")
    samples, epochs_run, epoch, annealed_at = 0, 0.0, 0, None
    while samples < budget:
        plan = pruner.plan_epoch(epoch, samples / budget)
        if epoch > 0 and plan.weights is None and annealed_at is None:
            annealed_at = samples / budget
        if annealed_at is None and epoch > 0:
            assert plan.weights is not None  # pruning until the anneal, never in between
        trained = min(plan.num_samples, budget - samples)
        epochs_run += trained / plan.num_samples
        samples += trained
        pruner.observe(plan.indices, losses[plan.indices])
        epoch += 1
    assert annealed_at == pytest.approx(0.875, abs=1 / budget)
    realized = 1 - budget / (epochs_run * n)
    assert abs(realized - target) <= (1 - target) / (2 * SKEW_EPOCHS - 1) + 1e-9
    assert pruner.run_summary["capped_epochs"] == 0


def test_infobatch_realized_mode_resumes_exactly():
    # The controller's counts are part of the state: stop after epoch 4, restore, continue.
    def make():
        return create_pruner(
            "infobatch", n=300, epochs=12, seed=5, prune_ratio=0.5, ratio_mode="realized"
        )

    losses = skewed_losses(300)
    whole, _ = simulate(make(), losses)
    first = make()
    for epoch in range(5):
        plan = first.plan_epoch(epoch)
        first.observe(plan.indices, losses[plan.indices])
    second = make()
    second.load_state_dict(first.state_dict())
    for epoch in range(5, 12):
        plan = second.plan_epoch(epoch)
        assert torch.equal(plan.indices, whole[epoch].indices)
        expected = whole[epoch].weights
        assert (plan.weights is None) == (expected is None)  # floor(0.875 * 12) = 10 on anneal
        assert expected is None or torch.equal(plan.weights, expected)
        second.observe(plan.indices, losses[plan.indices])
