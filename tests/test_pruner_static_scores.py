"""The static baselines against their published rules: EL2N and GraNd (Paul et al. 2021) and
forgetting events (Toneva et al. 2019), on fixed predictions."""

from __future__ import annotations

import numpy as np
import torch

from prunebench.pruners import create_pruner
from prunebench.pruners.el2n import el2n_scores
from prunebench.pruners.grand import logit_gradient_norms

N = 12


def test_el2n_is_the_error_vector_norm():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0], [-3.0, 4.0, 1.0]])
    labels = torch.tensor([0, 2, 0])
    p = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)
    expected = np.linalg.norm(p - np.eye(3)[labels.numpy()], axis=1)
    np.testing.assert_allclose(el2n_scores(logits, labels).numpy(), expected, rtol=1e-6)


def test_el2n_trains_all_then_scores_everyone_once_then_keeps_the_highest():
    pruner = create_pruner("el2n", n=N, epochs=10, seed=0, prune_ratio=0.75, score_epochs=2)
    for epoch in range(2):  # the scoring phase: full data, nothing scored
        assert pruner.scoring_request(epoch) is None
        assert sorted(pruner.plan_epoch(epoch).indices.tolist()) == list(range(N))
    request = pruner.scoring_request(2)
    assert request.tolist() == list(range(N))  # n forward-only passes, once
    scores = torch.tensor([0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.05, 0.6, 0.4, 0.5, 0.0, 0.35])
    pruner.observe_predictions(request, scores)
    kept = {1, 3, 5}  # round(0.25 * 12) = 3 highest EL2N
    for epoch in range(2, 6):
        assert set(pruner.plan_epoch(epoch).indices.tolist()) == kept
        assert pruner.scoring_request(epoch + 1) is None


def test_grand_norm_is_the_loss_gradient_norm_at_the_logits():
    # Checked against autograd: the per-sample gradient of the summed cross-entropy with respect
    # to the logits is row i's own gradient (rows do not interact), tolerance 1e-5.
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(16, 7, generator=generator, requires_grad=True)
    labels = torch.randint(0, 7, (16,), generator=generator)
    torch.nn.functional.cross_entropy(logits, labels, reduction="sum").backward()
    expected = logits.grad.norm(dim=1)
    got = logit_gradient_norms(logits.detach(), labels)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_grand_keeps_the_highest_norm_averaged_over_the_scoring_phase():
    pruner = create_pruner("grand", n=N, epochs=10, seed=0, prune_ratio=0.75, score_epochs=2)
    rng = np.random.default_rng(5)
    passes = rng.random((3, N)).astype(np.float32)  # two training epochs and the final pass
    # Sample 0 scores highest at the end (EL2N would keep it) but lowest on average.
    passes[:, 0] = [0.0, 0.0, 1.0]
    passes[:, 1] = [0.95, 0.95, 0.5]
    for epoch in range(2):
        assert pruner.scoring_request(epoch) is None
        plan = pruner.plan_epoch(epoch)
        assert sorted(plan.indices.tolist()) == list(range(N))
        pruner.observe_predictions(plan.indices, torch.from_numpy(passes[epoch])[plan.indices])
    request = pruner.scoring_request(2)
    assert request.tolist() == list(range(N))  # n forward-only passes, once
    pruner.observe_predictions(request, torch.from_numpy(passes[2]))
    mean = passes.mean(axis=0)
    np.testing.assert_allclose(pruner.static_scores().numpy(), mean, rtol=1e-6)
    kept = set(np.argsort(-mean)[:3].tolist())  # round(0.25 * 12) = 3 highest means
    assert 1 in kept and 0 not in kept
    for epoch in range(2, 5):
        assert set(pruner.plan_epoch(epoch).indices.tolist()) == kept
        assert pruner.scoring_request(epoch + 1) is None
    # The scores freeze once the subset is chosen.
    pruner.observe_predictions(torch.arange(N), torch.full((N,), 9.0))
    np.testing.assert_allclose(pruner.static_scores().numpy(), mean, rtol=1e-6)


def test_grand_resumes_its_scoring_phase_exactly():
    first = create_pruner("grand", n=N, epochs=6, seed=2, prune_ratio=0.5, score_epochs=2)
    plan = first.plan_epoch(0)
    first.observe_predictions(plan.indices, plan.indices.float() % 5)
    second = create_pruner("grand", n=N, epochs=6, seed=2, prune_ratio=0.5, score_epochs=2)
    second.load_state_dict(first.state_dict())
    for pruner in (first, second):
        pruner.observe_predictions(torch.arange(N), torch.arange(N).float() % 3)
        pruner.plan_epoch(1)
    assert torch.equal(first.plan_epoch(2).indices, second.plan_epoch(2).indices)


def public_forgetting_counts(correct_history: np.ndarray) -> np.ndarray:
    """Toneva et al.'s count in a few lines: transitions correct -> wrong between consecutive
    presentations; never correct: infinitely forgotten."""
    events = ((correct_history[:-1] == 1) & (correct_history[1:] == 0)).sum(axis=0).astype(float)
    events[correct_history.max(axis=0) == 0] = np.inf
    return events


def test_forgetting_counts_events_and_keeps_the_most_forgotten():
    rng = np.random.default_rng(4)
    history = (rng.random((5, N)) < 0.6).astype(int)  # 5 scoring epochs, correct w.p. 0.6
    history[:, 0] = 0  # never learned
    history[:, 1] = [1, 0, 1, 0, 1]  # forgotten twice
    history[:, 2] = 1  # never forgotten
    pruner = create_pruner("forgetting", n=N, epochs=20, seed=1, prune_ratio=0.5, score_epochs=5)
    for epoch, row in enumerate(history):
        plan = pruner.plan_epoch(epoch)
        assert plan.indices.numel() == N
        pruner.observe_predictions(
            plan.indices, torch.tensor(row, dtype=torch.float32)[plan.indices]
        )
    counts = public_forgetting_counts(history)
    assert np.array_equal(
        pruner.static_scores().numpy(), np.where(np.isinf(counts), 2.0**63, counts)
    )
    kept = set(pruner.plan_epoch(5).indices.tolist())
    assert len(kept) == 6 and {0, 1} <= kept  # never learned (inf) and forgotten twice
    threshold = np.sort(counts)[::-1][5]  # the 6th largest count
    assert all(counts[i] >= threshold for i in kept)
    assert all(counts[i] <= threshold for i in set(range(N)) - kept)
    # Counts freeze once the subset is chosen.
    pruner.observe_predictions(torch.arange(N), torch.zeros(N))
    assert np.array_equal(
        pruner.static_scores().numpy(), np.where(np.isinf(counts), 2.0**63, counts)
    )
