"""IES against its public rule (tmllab/2025_ICLR_IES cifar_main.py) on fixed loss curves."""

from __future__ import annotations

import numpy as np
import torch

from prunebench.pruners import create_pruner


def public_excluded(history: list[float], threshold: float, ma: int = 3, k: int = 1) -> bool:
    """The public per-sample rule in a few lines: second differences of the loss history (one
    per epoch from the third loss on, the last ma + k kept), a moving average of their absolute
    values over ma, the sum of the last k of those below the threshold."""
    derivatives = [
        history[t] - 2 * history[t - 1] + history[t - 2] for t in range(2, len(history))
    ][-(ma + k) :]
    if len(derivatives) < ma + k:
        return False
    absolute = np.abs(derivatives)
    averages = [absolute[i : i + ma].mean() for i in range(len(absolute) - ma + 1)]
    return float(np.abs(averages[-k:]).sum()) < threshold


# Six samples' per-epoch losses: flat, linear (zero second difference), noisy, still falling
# fast, one that flattens only late, one that is flat and then jumps (and so comes back).
CURVES = torch.tensor(
    [
        [2.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
        [2.0, 1.75, 1.5, 1.25, 1.0, 0.75, 0.5, 0.25, 0.0],
        [2.0, 1.0, 1.5, 0.7, 1.2, 0.4, 0.9, 0.3, 0.8],
        [2.0, 1.0, 0.5, 0.25, 0.125, 0.0625, 0.03, 0.015, 0.007],
        [3.0, 2.0, 1.0, 0.6, 0.3, 0.1, 0.1, 0.1, 0.1],
        [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1.5, 1.5],
    ]
)


def test_exclusion_follows_the_public_rule_epoch_by_epoch():
    threshold = 0.05
    n, epochs = CURVES.shape
    pruner = create_pruner("ies", n=n, epochs=epochs, seed=0, threshold=threshold)
    excluded_by_epoch = []
    for epoch in range(epochs):
        request = pruner.scoring_request(epoch)
        if request is not None:  # excluded last epoch: a forward-only pass gives that loss
            pruner.observe_scoring(request, CURVES[request, epoch - 1])
        plan = pruner.plan_epoch(epoch)
        excluded = set(range(n)) - set(plan.indices.tolist())
        # The plan of epoch e judges every sample's losses of epochs 0..e-1.
        expected = {i for i in range(n) if public_excluded(CURVES[i, :epoch].tolist(), threshold)}
        assert excluded == expected, epoch
        excluded_by_epoch.append(excluded)
        pruner.observe(plan.indices, CURVES[plan.indices, epoch])
    assert {0, 1} <= excluded and 2 not in excluded  # the comparison had teeth
    assert 5 in excluded_by_epoch[7] and 5 not in excluded  # back after its loss jumped


def test_an_excluded_sample_comes_back_when_its_loss_moves():
    pruner = create_pruner("ies", n=3, epochs=20, seed=0, threshold=0.05)
    for epoch in range(6):  # samples 0 and 1 flat, sample 2 zigzagging
        pruner.observe(torch.arange(3), torch.tensor([1.0, 1.0, 1.0 + epoch % 2]))
        pruner.plan_epoch(epoch)
    assert pruner.excluded.tolist() == [True, True, False]
    # The forward-only pass over the excluded: sample 0's loss jumps, sample 1's stays.
    pruner.observe_scoring(torch.tensor([0, 1]), torch.tensor([3.0, 1.0]))
    plan = pruner.plan_epoch(6)
    assert sorted(plan.indices.tolist()) == [0, 2]
    assert pruner.excluded.tolist() == [False, True, False]


def test_a_ratio_cap_excludes_the_flattest_first():
    pruner = create_pruner("ies", n=4, epochs=20, seed=0, threshold=1.0, prune_ratio=0.5)
    slopes = torch.tensor([0.0, 0.01, 0.02, 0.03])  # second differences grow with the index
    for epoch in range(6):
        pruner.observe(torch.arange(4), 1.0 + slopes * epoch**2)
        pruner.plan_epoch(epoch)
    assert pruner.excluded.tolist() == [True, True, False, False]
