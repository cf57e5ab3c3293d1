"""The static baselines against their published rules: EL2N (Paul et al. 2021) and forgetting
events (Toneva et al. 2019), on fixed predictions."""

from __future__ import annotations

import numpy as np
import torch

from prunebench.pruners import create_pruner
from prunebench.pruners.el2n import el2n_scores

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
