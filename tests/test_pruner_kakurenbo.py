"""KAKURENBO against its public rule (TruongThaoNguyen/kakurenbo, the CIFAR training scripts:
the move-back loop, adjust_fraction, adjust_learning_rate) on fixed scores."""

from __future__ import annotations

import pytest
import torch

from prunebench.pruners import create_pruner
from prunebench.pruners.kakurenbo import prediction_confidence

N = 20


def public_hidden(losses: list[float], correct: list[bool], prob: list[float], fraction: float):
    """The public move-back loop in a few lines: of the int(F * n) lowest losses, hide those
    predicted correctly with probability >= 0.7, move the others back."""
    order = sorted(range(len(losses)), key=lambda i: losses[i])
    return {i for i in order[: int(fraction * len(losses))] if correct[i] and prob[i] >= 0.7}


def test_hidden_samples_are_the_confident_correct_among_the_lowest_losses():
    losses = [(i * 7) % N / 10 for i in range(N)]  # a permutation of 0.0..1.9
    correct = [i % 3 != 0 for i in range(N)]
    prob = [0.5 + (i % 5) / 10 for i in range(N)]  # 0.5..0.9
    pruner = create_pruner("kakurenbo", n=N, epochs=200, seed=0, prune_ratio=0.5)
    indices = torch.arange(N)
    pruner.observe(indices, torch.tensor(losses))
    confident = torch.where(torch.tensor(correct), torch.tensor(prob), torch.tensor(0.0))
    pruner.observe_predictions(indices, confident)
    plan = pruner.plan_epoch(1)
    expected_hidden = public_hidden(losses, correct, prob, 0.5)
    assert 0 < len(expected_hidden) < 10
    assert set(plan.indices.tolist()) == set(range(N)) - expected_hidden
    assert plan.weights is None
    # The hidden samples are what the next epoch asks a forward-only pass for.
    assert set(pruner.scoring_request(2).tolist()) == expected_hidden


def test_first_epoch_trains_everything_and_scores_nothing():
    pruner = create_pruner("kakurenbo", n=N, epochs=200, seed=0)
    assert pruner.scoring_request(0) is None
    assert pruner.plan_epoch(0).indices.numel() == N


@pytest.mark.parametrize(
    ("epoch", "fraction"), [(0, 0.3), (119, 0.3), (120, 0.24), (159, 0.24), (160, 0.18)]
)
def test_fraction_and_lr_scale_follow_the_cifar_schedule(epoch, fraction):
    # F = 0.3 until epoch 120 of 200, then 0.8 F, then 0.6 F from epoch 160.
    pruner = create_pruner("kakurenbo", n=N, epochs=200, seed=0, prune_ratio=0.3)
    pruner.plan_epoch(epoch)
    assert pruner.fraction == pytest.approx(fraction)
    assert pruner.lr_scale() == pytest.approx(1 / (1 - fraction))
    off = create_pruner("kakurenbo", n=N, epochs=200, seed=0, prune_ratio=0.3, scale_lr=False)
    off.plan_epoch(epoch)
    assert off.lr_scale() == 1.0


def test_confidence_over_classes_and_the_public_batch_softmax():
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 2.0, 0.0]])
    labels = torch.tensor([0, 1, 0, 1])  # the third is predicted wrongly
    by_class = prediction_confidence(logits, labels, "class_softmax")
    expected = torch.softmax(logits, dim=1).amax(dim=1) * torch.tensor([1.0, 1.0, 0.0, 1.0])
    assert torch.allclose(by_class, expected)
    # The public lines: probabilities = softmax(output, dim=0); prob = probabilities.max(1)[0];
    # fness = output.max(1)[1] == target.
    probabilities = torch.nn.functional.softmax(logits, dim=0)
    public = probabilities.max(1, keepdim=True)[0].squeeze(1)
    fness = logits.max(1, keepdim=True)[1].squeeze(1).eq(labels)
    batch = prediction_confidence(logits, labels, "batch_softmax")
    assert torch.allclose(batch, torch.where(fness, public, torch.zeros_like(public)))
    assert not torch.allclose(batch, by_class)
