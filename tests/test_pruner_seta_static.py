"""SeTa against its public rule (mrazhou/SeTa seta.py) on fixed scores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prunebench.pruners import create_pruner
from prunebench.pruners.seta import kmeans_1d

N = 1000


def public_kmeans_groups(scores: np.ndarray, groups: int) -> np.ndarray:
    """The public ``kmeans_group`` in a few lines: sklearn KMeans(random_state=0), groups
    renumbered by ascending mean score."""
    cluster = pytest.importorskip("sklearn.cluster")
    labels = cluster.KMeans(n_clusters=groups, random_state=0).fit(scores[:, None]).labels_
    means = np.array([scores[labels == g].mean() for g in range(groups)])
    rank = np.empty(groups, dtype=np.int64)
    rank[np.argsort(means)] = np.arange(groups)
    return rank[labels]


def within_group_squares(scores: np.ndarray, ids: np.ndarray) -> float:
    return float(sum(((scores[ids == g] - scores[ids == g].mean()) ** 2).sum() for g in set(ids)))


def test_kmeans_matches_the_public_groups_on_separated_losses():
    rng = np.random.default_rng(0)
    centers = np.array([0.05, 0.4, 1.0, 2.0, 3.5])
    scores = np.concatenate([c + 0.03 * rng.standard_normal(200) for c in centers])
    rng.shuffle(scores)
    ours = kmeans_1d(torch.from_numpy(scores).float(), 5).numpy()
    np.testing.assert_array_equal(ours, public_kmeans_groups(scores.astype(np.float32), 5))


def test_kmeans_objective_is_no_worse_than_the_public_on_skewed_losses():
    # Exponential losses (seed 1, 5,000 values): no true clusters, so local optima may differ;
    # ours must reach the public objective within 1%.
    scores = np.random.default_rng(1).exponential(0.5, 5000).astype(np.float32)
    ours = kmeans_1d(torch.from_numpy(scores), 5).numpy()
    public = public_kmeans_groups(scores, 5)
    assert within_group_squares(scores, ours) <= 1.01 * within_group_squares(scores, public)
    means = [scores[ours == g].mean() for g in range(5)]
    assert means == sorted(means)  # group 0 is the easiest


def test_equal_scores_fall_into_equal_chunks_in_order():
    assert kmeans_1d(torch.full((10,), 3.0), 5).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]


def test_window_slides_easy_to_hard_as_the_public_code():
    seta = create_pruner("seta", n=N, epochs=100, seed=0)  # groups 5, window_scale 0.9
    assert seta.window == 4  # round(4.5) == 4 in Python
    assert [list(seta.window_groups(e, 5)) for e in range(4)] == [
        [0, 1, 2, 3, 4],  # the first epoch trains every group
        [1, 2, 3, 4],  # start = 1 % (5 - 4 + 1)
        [0, 1, 2, 3],
        [1, 2, 3, 4],
    ]


def test_plan_is_the_random_keep_cut_to_the_window_then_a_random_tail():
    epochs = 16  # delta 0.875: epochs e with e + 1 > 14 (14 and 15) are the random tail
    seta = create_pruner("seta", n=N, epochs=epochs, seed=3, prune_ratio=0.2)
    kept = int(0.8 * N)
    # Fixed scores in five separated bands: sample i's band is i % 5 (0 easiest).
    band = torch.arange(N) % 5
    first = seta.plan_epoch(0)
    assert first.indices.numel() == kept and first.indices.unique().numel() == kept
    for epoch in range(1, epochs):
        seta.scores = band.float() + 0.01 * (torch.arange(N) % 7).float()
        twin = torch.Generator()
        twin.set_state(seta.generator.get_state())
        chosen = torch.randperm(N, generator=twin)[:kept]  # the public random keep
        plan = seta.plan_epoch(epoch)
        if epoch >= 14:
            assert torch.equal(plan.indices, chosen), epoch
            continue
        window = [1, 2, 3, 4] if epoch % 2 else [0, 1, 2, 3]
        expected = chosen[torch.isin(band[chosen], torch.tensor(window))]
        assert set(plan.indices.tolist()) == set(expected.tolist()), epoch
        assert plan.weights is None and plan.scoring_forward_passes == 0


def test_static_random_trains_one_fixed_uniform_subset_in_fresh_orders():
    pruner = create_pruner("static_random", n=N, epochs=4, seed=5, prune_ratio=0.7)
    twin = torch.Generator()
    twin.manual_seed(5)
    subset = torch.randperm(N, generator=twin)[:300]  # drawn once, before training
    plans = [pruner.plan_epoch(epoch).indices for epoch in range(4)]
    for plan in plans:
        assert torch.equal(plan.sort().values, subset.sort().values)
    assert not torch.equal(plans[0], plans[1])  # a fresh visiting order each epoch
