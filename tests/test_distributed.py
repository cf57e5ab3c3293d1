"""Data-parallel runs on the CPU: 2 gloo processes started by prunebench's launcher (real DDP).

Each multi-process scenario runs once per module (starting 2 processes takes seconds) and
returns plain data; the tests assert on it. The worker functions live at module level so the
spawned processes can import them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig
from prunebench.bench.distributed import (
    Dist,
    check_batch_size,
    launch,
    process_group,
    shard_plan,
    state_fingerprint,
)
from prunebench.bench.run import train_run
from prunebench.bench.trainer import Trainer
from prunebench.datasets import build_loader
from prunebench.errors import ConfigError
from prunebench.pruners import available_pruners, create_pruner

WORLD = 2
SUBSET = 250
BATCH = 32  # global; 16 per rank. 250 = 7 * 32 + 26: the last global batch is a short one.
EPOCHS = 3

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def pruner_params(name: str) -> dict:
    return {} if name == "full" else {"prune_ratio": 0.5}


def make_config(pruner: str = "orderdp", **overrides) -> RunConfig:
    values = {
        "dataset": "synthetic",
        "model": "small_cnn",
        "pruner": pruner,
        "pruner_params": pruner_params(pruner),
        "budget": parse_budget(f"epochs:{EPOCHS}"),
        "subset": SUBSET,
        "batch_size": BATCH,
        "lr": 0.05,
        "device": "cpu",
        "accuracy_targets": (0.15,),
    }
    values.update(overrides)
    return RunConfig(**values)


def next_plan(trainer: Trainer, epoch: int) -> torch.Tensor:
    """The plan the trainer's pruner will make for ``epoch``, drawn by a twin (it is untouched)."""
    cfg = trainer.cfg
    twin = create_pruner(
        cfg.pruner, n=trainer.n, epochs=trainer.pruner_epochs, seed=cfg.seed, **cfg.pruner_kwargs()
    )
    twin.load_state_dict(trainer.pruner.state_dict())
    return twin.plan_epoch(epoch).indices


# ------------------------------------------------------------------- sharding (no processes)
@pytest.mark.parametrize(
    ("planned", "batch", "world"),
    [(250, 32, 2), (224, 32, 2), (1, 32, 2), (97, 8, 4), (9, 8, 4), (0, 8, 2), (61, 12, 3)],
)
def test_shards_partition_the_plan_with_equal_steps(planned, batch, world):
    generator = torch.Generator().manual_seed(planned)
    plan = torch.randperm(1000, generator=generator)[:planned]
    weights = torch.rand(planned, generator=generator)
    shards = [shard_plan(plan, weights, rank, world, batch) for rank in range(world)]
    per_rank = batch // world
    steps = {-(-len(shard.indices) // per_rank) for shard in shards}
    assert steps == {-(-planned // batch)}  # every rank: the global number of steps
    kept = [shard.counted if shard.counted is not None else slice(None) for shard in shards]
    indices = torch.cat([shard.indices[keep] for shard, keep in zip(shards, kept, strict=True)])
    trained_weights = torch.cat(
        [shard.weights[keep] for shard, keep in zip(shards, kept, strict=True)]
    )
    assert sorted(indices.tolist()) == sorted(plan.tolist())  # disjoint, and together the plan
    weight_of = dict(zip(plan.tolist(), weights.tolist(), strict=True))
    assert trained_weights.tolist() == [weight_of[i] for i in indices.tolist()]
    for shard in shards:
        if shard.counted is not None:  # padding: one entry, weight 0, only in the last step
            assert (~shard.counted).sum() == 1 and shard.weights[~shard.counted].item() == 0
    assert shards[0].trained_after(shards[0].steps) == planned


def test_padding_only_when_the_last_batch_has_fewer_samples_than_ranks():
    plan = torch.arange(9)  # 9 = 8 + 1 with 4 ranks: ranks 1..3 have nothing in the last step
    shards = [shard_plan(plan, None, rank, 4, 8) for rank in range(4)]
    assert [shard.counted is None for shard in shards] == [True, False, False, False]
    assert [len(shard.indices) for shard in shards] == [3, 3, 3, 3]
    assert shards[1].loss_scale(0) == 4 / 8 and shards[1].loss_scale(1) == 4 / 1


def test_batch_size_must_divide_among_processes():
    assert check_batch_size(128, 4) == 32
    with pytest.raises(ConfigError, match="multiple of 3"):
        check_batch_size(128, 3)


def test_nproc_names_another_checkpoint_but_the_same_cell():
    one, two = make_config(), make_config(nproc=2)
    assert one.config_hash() != two.config_hash()  # its own checkpoint path
    assert one.cell() == two.cell()  # the same comparison cell
    assert one.logged_params()["nproc"] == 1 and two.logged_params()["nproc"] == 2
    # nproc = 1 keeps the hash this config had before the field existed (main at 66fd441).
    assert one.config_hash() == "5f0cb1b13a961624"
    with pytest.raises(ConfigError, match="batch size 32 does not divide among 3 processes"):
        make_config(nproc=3).validate()


def test_fingerprint_sees_a_swap_of_two_scores():
    pruner = create_pruner("orderdp", n=50, epochs=2, seed=0, prune_ratio=0.5)
    pruner.observe(torch.arange(50), torch.linspace(0, 1, 50))
    before = state_fingerprint(pruner.state_dict())
    pruner.observe(torch.tensor([3, 7]), pruner.scores[[7, 3]].clone())
    assert not torch.equal(before, state_fingerprint(pruner.state_dict()))


# ---------------------------------------------------------------------------- 2-process workers
def _loader_worker(data_dir: str, backends: list[str]) -> dict:
    """Each rank: shard InfoBatch's weighted plans and iterate its loader over its part."""
    with process_group("cpu") as dist:
        pruner = create_pruner("infobatch", n=SUBSET, epochs=4, seed=1, prune_ratio=0.5)
        pruner.observe(torch.arange(SUBSET), torch.rand(SUBSET, generator=torch.Generator()))
        plans = [pruner.plan_epoch(epoch) for epoch in range(2)]  # epoch 1 prunes and weights
        out: dict = {"rank": dist.rank, "plans": [], "loaders": {}}
        for plan in plans:
            out["plans"].append((plan.indices.clone(), plan.weights))
        for backend in backends:
            loader = build_loader(
                "synthetic",
                "train",
                backend=backend,
                batch_size=dist.per_rank_batch(BATCH),
                subset=SUBSET,
                data_dir=data_dir,
                num_workers=1,
            )
            epochs = []
            for epoch, plan in enumerate(plans):
                shard = dist.shard(plan.indices, plan.weights, BATCH)
                loader.set_plan(shard.indices, epoch)
                batches, local = [], 0
                for _, _, indices in loader:
                    size = indices.numel()
                    weights = (
                        shard.weights[local : local + size] if shard.weights is not None else None
                    )
                    counted = (
                        shard.counted[local : local + size]
                        if shard.counted is not None
                        else torch.ones(size, dtype=torch.bool)
                    )
                    batches.append((indices.clone(), weights, counted))
                    local += size
                epochs.append(batches)
            out["loaders"][backend] = epochs
        return out


def _pruners_worker(pruners: list[str]) -> dict:
    """Each rank: train every pruner for EPOCHS epochs; record its state and next plan per epoch."""
    torch.set_num_threads(1)
    out: dict = {}
    with process_group("cpu") as dist:
        for name in pruners:
            trainer = Trainer(make_config(name), dist)
            states, plans = [], [next_plan(trainer, 0)]
            for epoch in range(EPOCHS):
                trainer.train_epoch(show_progress=False)
                states.append(trainer.pruner.state_dict())
                plans.append(next_plan(trainer, epoch + 1))
            out[name] = {
                "states": states,
                "plans": plans,
                "history": trainer.counters.history,
                "samples_trained": trainer.counters.samples_trained,
                "usage": trainer.usage.clone(),
            }
    return out


def _runs_worker(store: str, root: str) -> dict:
    """Each rank: an uninterrupted run, an interrupted one, and one with per-rank output paths."""
    torch.set_num_threads(1)
    root_path = Path(root)
    with process_group("cpu") as dist:
        whole = train_run(
            make_config(nproc=WORLD),
            tracking_uri=store,
            experiment="whole",
            checkpoint_dir=root_path / "ck",
        )
        cut = train_run(
            make_config(nproc=WORLD),
            tracking_uri=store,
            experiment="cut",
            checkpoint_dir=root_path / "ck-cut",
            stop_after_epochs=1,
        )
        # Rank r is handed its own store and checkpoint folder: only rank 0's may fill.
        own = root_path / f"rank{dist.rank}"
        own.mkdir()
        alone = train_run(
            make_config(budget=parse_budget("epochs:1"), nproc=WORLD),
            tracking_uri=f"sqlite:///{own / 'mlflow.db'}",
            experiment="alone",
            checkpoint_dir=own / "ck",
        )
    return {"whole": whole, "cut": cut, "alone": alone}


# ---------------------------------------------------------------------------- fixtures
def _ffcv_available() -> bool:
    try:
        import ffcv  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def loader_ranks(tmp_path_factory):
    backends = ["tensor", "ffcv"] if _ffcv_available() else ["tensor"]
    data_dir = tmp_path_factory.mktemp("dist-data")
    return launch(WORLD, _loader_worker, str(data_dir), backends)


@pytest.fixture(scope="module")
def pruner_ranks():
    return launch(WORLD, _pruners_worker, available_pruners())


@pytest.fixture(scope="module")
def one_process():
    """The same runs on one process (the reference for the 2-process ones)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = {}
    try:
        for name in ("orderdp", "rs2"):
            trainer = Trainer(make_config(name), Dist(torch.device("cpu")))
            plans = [next_plan(trainer, 0)]
            for epoch in range(EPOCHS):
                trainer.train_epoch(show_progress=False)
                plans.append(next_plan(trainer, epoch + 1))
            out[name] = {"plans": plans, "history": trainer.counters.history}
    finally:
        torch.set_num_threads(before)
    return out


@pytest.fixture(scope="module")
def run_ranks(tmp_path_factory, _mlflow_template):
    import shutil

    root = tmp_path_factory.mktemp("dist-runs")
    shutil.copyfile(_mlflow_template, root / "mlflow.db")
    store = f"sqlite:///{root / 'mlflow.db'}"
    first = launch(WORLD, _runs_worker, store, str(root))
    # Resumed from this (plain) process: train_run with nproc=2 starts the 2 processes itself
    # and returns rank 0's result.
    resumed = train_run(
        make_config(nproc=WORLD),
        tracking_uri=store,
        experiment="cut",
        checkpoint_dir=root / "ck-cut",
        resume=True,
    )
    return {"store": store, "root": root, "first": first, "resumed": resumed}


# ---------------------------------------------------------------------------- tests
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensor", "ffcv"])
def test_ranks_train_the_plan_exactly_with_its_weights(loader_ranks, backend):
    if backend not in loader_ranks[0]["loaders"]:
        pytest.skip("FFCV is not importable here")
    for epoch in range(2):
        plan, weights = loader_ranks[0]["plans"][epoch]
        assert torch.equal(plan, loader_ranks[1]["plans"][epoch][0])  # same plan everywhere
        trained, trained_weights, steps = [], [], []
        for rank in loader_ranks:
            batches = rank["loaders"][backend][epoch]
            steps.append(len(batches))
            for indices, batch_weights, counted in batches:
                trained.append(indices[counted])
                if batch_weights is not None:
                    trained_weights.append(batch_weights[counted])
        assert steps[0] == steps[1] == -(-len(plan) // BATCH)
        trained = torch.cat(trained)
        assert sorted(trained.tolist()) == sorted(plan.tolist())  # the plan, as a multiset
        if weights is not None:
            weight_of = dict(zip(plan.tolist(), weights.tolist(), strict=True))
            assert torch.cat(trained_weights).tolist() == [weight_of[i] for i in trained.tolist()]
    assert loader_ranks[0]["plans"][1][1] is not None  # epoch 1 of InfoBatch carries weights


@pytest.mark.slow
@pytest.mark.parametrize("name", available_pruners())
def test_pruner_state_is_identical_on_both_ranks_every_epoch(pruner_ranks, name):
    rank0, rank1 = pruner_ranks[0][name], pruner_ranks[1][name]
    for epoch, (state0, state1) in enumerate(zip(rank0["states"], rank1["states"], strict=True)):
        assert state0["extra"] == state1["extra"], epoch
        assert torch.equal(state0["generator"], state1["generator"]), epoch
        assert state0["tensors"].keys() == state1["tensors"].keys()
        for key, tensor in state0["tensors"].items():
            assert torch.equal(tensor, state1["tensors"][key]), (epoch, key)
    for plan0, plan1 in zip(rank0["plans"], rank1["plans"], strict=True):
        assert torch.equal(plan0, plan1)
    # The counters count each planned sample once over both ranks: usage sums to samples trained.
    assert rank0["samples_trained"] == int(rank0["usage"].sum()) == rank1["samples_trained"]
    for entry0, entry1 in zip(rank0["history"], rank1["history"], strict=True):
        for key in ("test_accuracy", "test_loss", "train_loss", "grad_norm", "samples_trained"):
            assert entry0[key] == entry1[key], key  # reduced values: the same on every rank


@pytest.mark.slow
def test_every_planned_sample_is_observed_once_across_ranks(pruner_ranks):
    # OrderDP's scores start at 3.0; after epoch 0 exactly the epoch-0 plan holds observed losses.
    rank0 = pruner_ranks[0]["orderdp"]
    scores = rank0["states"][0]["tensors"]["scores"]
    observed = torch.nonzero(scores != 3.0).squeeze(1)
    assert sorted(observed.tolist()) == sorted(rank0["plans"][0].tolist())


@pytest.mark.slow
def test_two_processes_plan_like_one(pruner_ranks, one_process):
    # Plans depend only on the pruner state: identical wherever they do not depend on losses.
    for name in ("orderdp", "rs2"):
        two, one = pruner_ranks[0][name], one_process[name]
        assert torch.equal(two["plans"][0], one["plans"][0]), name
    rs2_two, rs2_one = pruner_ranks[0]["rs2"]["plans"], one_process["rs2"]["plans"]
    for two_plan, one_plan in zip(rs2_two, rs2_one, strict=True):
        assert torch.equal(two_plan, one_plan)
    # OrderDP's epoch-1 plan ranks samples by epoch-0 losses. Batch-norm statistics are per rank
    # (16 samples, not 32), so the losses differ slightly and a few near-ties may swap: the
    # plans must still share at least 80% of their samples.
    two_plan, one_plan = pruner_ranks[0]["orderdp"]["plans"][1], one_process["orderdp"]["plans"][1]
    shared = len(set(two_plan.tolist()) & set(one_plan.tolist())) / len(one_plan)
    assert shared >= 0.8, shared
    # Final accuracies within 0.08 (seed 0, 3 epochs on 250 synthetic samples, 2,000 test).
    for name in ("orderdp", "rs2"):
        two_acc = pruner_ranks[0][name]["history"][-1]["test_accuracy"]
        one_acc = one_process[name]["history"][-1]["test_accuracy"]
        assert abs(two_acc - one_acc) <= 0.08, (name, two_acc, one_acc)


@pytest.mark.slow
def test_interrupted_run_resumes_in_the_same_mlflow_run(run_ranks):
    whole = run_ranks["first"][0]["whole"]
    cut0, cut1 = run_ranks["first"][0]["cut"], run_ranks["first"][1]["cut"]
    resumed0 = run_ranks["resumed"]
    assert cut0.status == "RUNNING" and cut0.run_id == cut1.run_id
    assert resumed0.status == "FINISHED" and resumed0.run_id == cut0.run_id
    # Plans continue: the resumed run retraces the uninterrupted one epoch by epoch.
    for resumed_entry, whole_entry in zip(resumed0.history, whole.history, strict=True):
        for key in ("test_accuracy", "train_loss", "kept_fraction", "samples_trained"):
            assert resumed_entry[key] == pytest.approx(whole_entry[key], rel=1e-6), key
    client = MlflowClient(run_ranks["store"])
    experiment = client.get_experiment_by_name("cut")
    runs = client.search_runs([experiment.experiment_id])
    assert [run.info.run_id for run in runs] == [cut0.run_id]  # one run, written by rank 0 only
    steps = [m.step for m in client.get_metric_history(cut0.run_id, "test_accuracy")]
    assert steps == list(range(EPOCHS))
    params = runs[0].data.params
    assert params["nproc"] == "2" and params["device_count"] == "2"
    assert params["batch_size"] == str(BATCH) and params["batch_size_per_device"] == str(BATCH // 2)
    summary = resumed0.metrics
    assert summary["train_device_hours"] == pytest.approx(
        2 * summary["train_seconds_total"] / 3600, rel=1e-9
    )


@pytest.mark.slow
def test_only_rank_0_writes_mlflow_and_checkpoints(run_ranks):
    root = run_ranks["root"]
    alone0, alone1 = run_ranks["first"][0]["alone"], run_ranks["first"][1]["alone"]
    assert alone0.status == alone1.status == "FINISHED" and alone0.run_id == alone1.run_id
    assert sorted(os.listdir(root / "rank0" / "ck")) == [f"{alone0.config_hash}.pt"]
    assert (root / "rank0" / "mlflow.db").is_file()
    assert sorted(os.listdir(root / "rank1")) == []  # no store, no checkpoint folder
