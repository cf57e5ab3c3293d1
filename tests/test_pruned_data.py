"""PrunedData: a registered pruner in a plain PyTorch loop trains what ``prunebench run`` trains.

The reference is a real run (``train_run``, what ``prunebench run`` calls) stopped after every
epoch and resumed, so its checkpoint shows each epoch's usage counts and pruner state. The plain
loop trains the same model (same builder and seed), optimizer and LR schedule on the tensor data
of the run's own loader, with OrderDP, whose later plans depend on every observed loss: equal
usage per epoch therefore means equal losses and equal plans, bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mlflow import MlflowClient
from torch.utils.data import DataLoader, TensorDataset

from prunebench import MlflowCallback, PrunedData
from prunebench.bench.budgets import parse_budget
from prunebench.bench.checkpoint import load_checkpoint
from prunebench.bench.config import RunConfig
from prunebench.bench.launch import launch, process_group
from prunebench.bench.models import build_model
from prunebench.bench.run import train_run
from prunebench.bench.schedule import OneCycle
from prunebench.bench.trainer import derive_seed
from prunebench.datasets import build_loader
from prunebench.errors import ConfigError
from prunebench.pruners import create_pruner

SUBSET = 256
EPOCHS = 3
BATCH = 64
SEED = 3


def run_config() -> RunConfig:
    return RunConfig(
        dataset="synthetic",
        model="small_cnn",
        pruner="orderdp",
        pruner_params={"prune_ratio": 0.5},
        budget=parse_budget(f"epochs:{EPOCHS}"),
        subset=SUBSET,
        batch_size=BATCH,
        lr=0.05,
        seed=SEED,
        device="cpu",
        loader="tensor",
        augment=False,
        eval_points=1,
        num_threads=1,
    )


def run_tensors(cfg: RunConfig) -> TensorDataset:
    """The run's training split as its tensor loader serves it (normalized, in index order)."""
    loader = build_loader(cfg.dataset, "train", batch_size=512, subset=cfg.subset, seed=cfg.seed)
    images, labels = zip(*[(x, y) for x, y, _ in loader], strict=True)
    return TensorDataset(torch.cat(images), torch.cat(labels))


def plain_loop(cfg: RunConfig, train_set: TensorDataset) -> list[dict]:
    """A user's loop with PrunedData; per epoch: its plan, usage counts and pruner scores."""
    spec = build_loader(cfg.dataset, "test", batch_size=8, subset=None).spec
    model = build_model(cfg.model, spec, derive_seed(cfg.seed, "model"))
    optimizer = torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    schedule = OneCycle.from_config(cfg)
    data = PrunedData(train_set, pruner="orderdp", prune_ratio=0.5, epochs=EPOCHS, seed=cfg.seed)
    loader = DataLoader(data, batch_sampler=data.batch_sampler(batch_size=BATCH))
    epochs = []
    for epoch in range(EPOCHS):
        plan = data.set_epoch(epoch)
        trained = 0
        for idx, x, y in loader:
            progress = (epoch + trained / plan.num_samples) / EPOCHS  # as the epochs budget
            for group in optimizer.param_groups:
                group["lr"] = schedule.lr(progress)
            per_sample = F.cross_entropy(model(x), y, reduction="none")
            loss = data.loss(idx, per_sample)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            trained += len(idx)
        data.end_epoch()
        epochs.append(
            {
                "plan": plan.indices.clone(),
                "usage": data.usage_counts(),
                "scores": data.pruner.state_dict()["tensors"]["scores"],
            }
        )
    epochs[-1]["data"] = data
    return epochs


def test_plain_loop_trains_the_same_samples_as_prunebench_run(tmp_path, mlflow_sqlite):
    cfg = run_config()
    before = torch.get_num_threads()
    try:
        reference = []
        for _ in range(EPOCHS):  # one epoch per call: the checkpoint shows each epoch's result
            result = train_run(
                cfg,
                tracking_uri=mlflow_sqlite,
                checkpoint_dir=tmp_path / "ck",
                resume=True,
                stop_after_epochs=1,
            )
            state = load_checkpoint(result.checkpoint_path, torch.device("cpu"))["trainer"]
            reference.append(
                {"usage": state["usage"], "scores": state["pruner"]["tensors"]["scores"]}
            )
        assert result.status == "FINISHED"
        torch.set_num_threads(1)  # the run's own thread count (num_threads=1)
        own = plain_loop(cfg, run_tensors(cfg))
    finally:
        torch.set_num_threads(before)

    previous = torch.zeros(SUBSET, dtype=torch.int64)
    for epoch, (mine, theirs) in enumerate(zip(own, reference, strict=True)):
        trained = theirs["usage"] - previous  # the samples the run trained in this epoch
        assert torch.equal(mine["usage"], theirs["usage"]), f"epoch {epoch}"
        assert torch.equal(trained, torch.bincount(mine["plan"], minlength=SUBSET)), epoch
        assert torch.equal(mine["scores"], theirs["scores"]), f"epoch {epoch}"
        previous = theirs["usage"]
    # The run's usage artifact, and its realized ratio, are the plain loop's.
    client = MlflowClient(mlflow_sqlite)
    counts = np.load(client.download_artifacts(result.run_id, "usage.npz", str(tmp_path)))
    data = own[-1]["data"]
    assert np.array_equal(counts["counts"], data.usage_counts().numpy())
    metrics = client.get_run(result.run_id).data.metrics
    assert data.realized_prune_ratio == pytest.approx(metrics["realized_prune_ratio"], abs=1e-12)
    # OrderDP keeps floor(b floor(a n)) with a = b = sqrt(0.5): a pool of 181, 127 of them.
    assert data.realized_prune_ratio == pytest.approx(1 - 127 / 256)


def linear_losses(x: torch.Tensor) -> torch.Tensor:
    """Per-sample losses that depend on the sample only (the same on every rank)."""
    return x.square().sum(dim=1)


def own_loop(data: PrunedData, epochs: int, batch_size: int) -> dict:
    loader = DataLoader(data, batch_sampler=data.batch_sampler(batch_size=batch_size))
    served, plans = [], []
    for epoch in range(epochs):
        plans.append(data.set_epoch(epoch).indices.clone())
        batches = []
        for idx, x, _ in loader:
            data.loss(idx, linear_losses(x))
            batches.append(idx)
        served.append(torch.cat(batches))
    data.end_epoch()
    return {
        "served": served,
        "plans": plans,
        "usage": data.usage_counts(),
        "pruner": data.pruner.state_dict(),
    }


def features(n: int = 250) -> TensorDataset:
    generator = torch.Generator().manual_seed(7)
    return TensorDataset(torch.randn(n, 4, generator=generator), torch.zeros(n, dtype=torch.long))


def _rank_worker() -> dict:
    torch.set_num_threads(1)
    with process_group("cpu"):
        data = PrunedData(features(), pruner="orderdp", prune_ratio=0.4, epochs=3, seed=5)
        # 16 per rank: 250 is no multiple of the global batch 32, so the last step is short.
        return {"rank": data.rank, "world": data.world_size, **own_loop(data, 3, 16)}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_two_gloo_ranks_train_disjoint_shards_that_make_up_the_plan():
    ranks = launch(2, _rank_worker)
    alone = own_loop(
        PrunedData(features(), pruner="orderdp", prune_ratio=0.4, epochs=3, seed=5), 3, 32
    )
    assert [(r["rank"], r["world"]) for r in ranks] == [(0, 2), (1, 2)]
    for epoch in range(3):
        plan = ranks[0]["plans"][epoch]
        assert torch.equal(plan, ranks[1]["plans"][epoch])  # every rank plans the same epoch
        assert torch.equal(plan, alone["plans"][epoch])  # and as one process would
        first, second = ranks[0]["served"][epoch], ranks[1]["served"][epoch]
        assert not set(first.tolist()) & set(second.tolist()), f"epoch {epoch}: shards overlap"
        assert sorted(first.tolist() + second.tolist()) == sorted(plan.tolist())
    for rank in ranks:
        assert torch.equal(rank["usage"], alone["usage"])
        assert torch.equal(
            rank["pruner"]["tensors"]["scores"], alone["pruner"]["tensors"]["scores"]
        )


def test_weights_scale_the_loss_and_the_state_resumes_exactly():
    train_set = features(200)
    options = {"pruner": "infobatch", "prune_ratio": 0.5, "epochs": 4, "seed": 1}
    data = PrunedData(train_set, **options)
    sampler = data.batch_sampler(batch_size=50)
    loader = DataLoader(data, batch_sampler=sampler)
    for epoch in range(2):
        plan = data.set_epoch(epoch)
        for idx, x, _ in loader:
            per_sample = linear_losses(x)
            loss = data.loss(idx, per_sample)
            positions = torch.cat([torch.nonzero(plan.indices == i) for i in idx]).squeeze(1)
            weights = plan.weights[positions] if plan.weights is not None else 1.0
            assert loss == pytest.approx(float((per_sample * weights).sum() / len(idx)), rel=1e-6)
    assert plan.weights is not None and float(plan.weights.max()) > 1  # epoch 1 is rescaled
    saved = data.state_dict()
    twin = PrunedData(train_set, **options)
    twin.load_state_dict(saved)
    assert torch.equal(twin.set_epoch(2).indices, data.set_epoch(2).indices)
    assert torch.equal(twin.usage_counts(), data.usage_counts())
    # The coreset ranks by InfoBatch's scores (the last losses): the k largest squared norms.
    top = data.coreset(10)
    scores = data.pruner.state_dict()["tensors"]["scores"]
    assert torch.equal(scores[top], torch.sort(scores, descending=True).values[:10])
    with pytest.raises(ValueError, match="no per-sample scores"):
        PrunedData(train_set, pruner="random", prune_ratio=0.5, epochs=2).coreset(3)


def test_the_mlflow_callback_logs_a_runs_data_metrics(tmp_path, mlflow_sqlite):
    client = MlflowClient(mlflow_sqlite)
    run = client.create_run(client.create_experiment("own-loop"))
    data = PrunedData(features(100), pruner="orderdp", prune_ratio=0.5, epochs=3, seed=2)
    callback = MlflowCallback(data, run_id=run.info.run_id, tracking_uri=mlflow_sqlite)
    loader = DataLoader(data, batch_sampler=data.batch_sampler(batch_size=20))
    for epoch in range(3):
        data.set_epoch(epoch)
        for idx, x, _ in loader:
            data.loss(idx, linear_losses(x))
        data.end_epoch()
        callback.on_epoch_end(epoch)
    callback.on_train_end()

    logged = client.get_run(run.info.run_id).data
    assert logged.params["pruner"] == "orderdp" and logged.params["train_size"] == "100"
    assert {"pruner.exploration", "pruner.keep_size"} <= logged.params.keys()
    history = client.get_metric_history(run.info.run_id, "kept_fraction")
    assert [(m.step, m.value) for m in history] == [(e, 0.49) for e in range(3)]
    jaccard = client.get_metric_history(run.info.run_id, "subset_jaccard")
    assert [m.step for m in jaccard] == [1, 2]  # none at epoch 0, as a run
    assert logged.metrics["realized_prune_ratio"] == pytest.approx(0.51)
    assert logged.metrics["samples_trained_total"] == 3 * 49
    counts = np.load(client.download_artifacts(run.info.run_id, "usage.npz", str(tmp_path)))
    assert np.array_equal(counts["counts"], data.usage_counts().numpy())
    assert logged.metrics["zero_usage_samples"] == float((counts["counts"] == 0).sum())


PER_STEP = {"selective_backprop": {"prune_ratio": 0.5}, "orderdp_iteration": {"prune_ratio": 0.5}}


def labelled(n: int = 120) -> TensorDataset:
    generator = torch.Generator().manual_seed(11)
    x = torch.randn(n, 4, generator=generator)
    return TensorDataset(x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long())


def frozen_losses(x: torch.Tensor) -> torch.Tensor:
    """A model that does not change: every pass gives a sample the same loss."""
    return x.square().sum(dim=1) + x[:, 0]


@pytest.mark.parametrize("name", sorted(PER_STEP))
def test_per_step_pruners_train_what_their_selection_keeps(name):
    # Oracle: the same pruner driven by hand, as the trainer drives it (each batch of the plan
    # scored, select_step's kept samples trained in candidate order); frozen losses make the
    # scores known, so PrunedData must train exactly these samples, in this order.
    batch, epochs, n = 16, 3, 120
    data = PrunedData(labelled(n), pruner=name, epochs=epochs, seed=4, **PER_STEP[name])
    loader = DataLoader(data, batch_sampler=data.batch_sampler(batch_size=batch))
    twin = create_pruner(name, n=n, epochs=epochs, seed=4, **PER_STEP[name])
    twin.follow_batch_size(batch)
    features_of = labelled(n).tensors[0]
    scored = 0
    for epoch in range(epochs):
        plan = data.set_epoch(epoch)
        expected_plan = twin.plan_epoch(epoch)
        assert torch.equal(plan.indices, expected_plan.indices)
        expected = expected_plan.indices
        if expected_plan.per_step:
            kept = []
            for chunk in expected_plan.indices.split(batch):
                kept.append(chunk[twin.select_step(chunk, frozen_losses(features_of[chunk]))])
            expected = torch.cat(kept)
            scored += expected_plan.num_samples
        trained, sizes = [], []
        for idx, x, _ in data.steps(loader, lambda x, y: frozen_losses(x)):
            data.loss(idx, frozen_losses(x))
            trained.append(idx)
            sizes.append(len(idx))
        assert torch.equal(torch.cat(trained), expected), f"epoch {epoch}"
        step = (expected_plan.step_batch_size or batch) if expected_plan.per_step else batch
        assert all(size == step for size in sizes[:-1])  # kept samples queued into full batches
        twin.observe(expected, frozen_losses(features_of[expected]))
        data.end_epoch()
        assert data.history[-1]["scoring_forward_passes"] == scored
        assert data.history[-1]["kept_fraction"] == pytest.approx(len(expected) / n)
    assert scored > 0 and data.summary()["scoring_forward_passes_total"] == scored
    assert int(data.usage_counts().sum()) == data.samples_trained
    assert data.epochs_run == pytest.approx(epochs)  # every candidate consumed
    if name == "orderdp_iteration":  # q = floor(b * s) of each candidate batch of s = 16
        q = twin.trained_per_step
        assert sizes == [q] * len(sizes) and q < batch


@pytest.mark.parametrize("name", sorted(PER_STEP))
def test_a_plain_sgd_loop_trains_with_a_per_step_pruner_and_resumes(name):
    model = torch.nn.Linear(4, 3)
    with torch.no_grad():  # a seeded initialization that leaves the global RNG alone
        model.weight.copy_(0.1 * torch.randn(3, 4, generator=torch.Generator().manual_seed(0)))
        model.bias.zero_()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    data = PrunedData(labelled(), pruner=name, epochs=4, seed=1, **PER_STEP[name])
    loader = DataLoader(data, batch_sampler=data.batch_sampler(batch_size=20))

    def score(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        model.eval()
        losses = F.cross_entropy(model(x), y, reduction="none")
        model.train()
        return losses

    losses_by_epoch = []
    for epoch in range(3):
        data.set_epoch(epoch)
        total = count = 0.0
        for idx, x, y in data.steps(loader, score):
            loss = data.loss(idx, F.cross_entropy(model(x), y, reduction="none"))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, count = total + float(loss.detach()) * len(idx), count + len(idx)
        losses_by_epoch.append(total / count)
    data.end_epoch()
    saved = data.state_dict()  # at an epoch boundary, as a checkpoint
    assert losses_by_epoch[-1] < losses_by_epoch[0]  # it learns
    summary = data.summary()
    assert 0 < summary["realized_prune_ratio"] < 1
    assert summary["scoring_forward_passes_total"] > 0
    assert summary["samples_trained_total"] == int(data.usage_counts().sum())
    # Iterating the loader itself would train candidates unselected: refused.
    data.set_epoch(3)
    if data.plan.per_step:
        idx, x, y = next(iter(loader))
        with pytest.raises(RuntimeError, match=r"data\.steps"):
            data.loss(idx, F.cross_entropy(model(x), y, reduction="none"))
    twin = PrunedData(labelled(), pruner=name, epochs=4, seed=1, **PER_STEP[name])
    twin.batch_sampler(batch_size=20)
    twin.load_state_dict(saved)
    data.load_state_dict(saved)
    assert torch.equal(twin.set_epoch(3).indices, data.set_epoch(3).indices)


SCORING = {
    "ucb": {"prune_ratio": 0.5, "period": 2, "rescore": True},
    "epsilon_greedy": {"prune_ratio": 0.5, "period": 2, "rescore": True},
    "ies": {"threshold": 0.5, "window": 1},
}


@pytest.mark.parametrize("name", sorted(SCORING))
def test_scoring_requests_are_answered_and_counted(name):
    # Oracle: the same pruner driven by hand on frozen losses, each request answered as the
    # trainer answers it (observe_scoring before planning); the plans must be equal.
    batch, epochs, n = 16, 6, 120
    data = PrunedData(labelled(n), pruner=name, epochs=epochs, seed=2, **SCORING[name])
    loader = DataLoader(data, batch_sampler=data.batch_sampler(batch_size=batch))
    twin = create_pruner(name, n=n, epochs=epochs, seed=2, **SCORING[name])
    features_of = labelled(n).tensors[0]
    requested = 0
    for epoch in range(epochs):
        request = twin.scoring_request(epoch)
        if request is not None:
            twin.observe_scoring(request, frozen_losses(features_of[request]))
            requested += request.numel()
        expected = twin.plan_epoch(epoch)
        plan = data.set_epoch(epoch, score=lambda x, y: frozen_losses(x))
        assert torch.equal(plan.indices, expected.indices), f"epoch {epoch}"
        for idx, x, _ in loader:
            data.loss(idx, frozen_losses(x))
        twin.observe(expected.indices, frozen_losses(features_of[expected.indices]))
    data.end_epoch()
    assert requested > 0 and data.scoring_forward_passes == requested
    assert data.history[-1]["scoring_forward_passes"] == requested


def test_a_request_without_a_score_function_names_the_fix():
    data = PrunedData(labelled(), pruner="ucb", epochs=3, **SCORING["ucb"])
    with pytest.raises(RuntimeError, match=r"set_epoch\(epoch, score=score\)"):
        data.set_epoch(0)  # rescore: every sample is scored before the first selection


def test_pruners_that_read_predictions_are_refused():
    for name in ("el2n", "grand", "forgetting", "kakurenbo"):
        with pytest.raises(ConfigError, match="predictions"):
            PrunedData(labelled(), pruner=name, epochs=3)
