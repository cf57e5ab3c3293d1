"""Data-parallel runs on the CPU: 2 gloo processes started by prunebench's launcher (real DDP).

Starting 2 processes costs seconds, so every 2-process scenario runs in ONE launch (the
``group`` fixture): the ranks train every pruner, a time-budgeted run with gradient alignment,
whole and interrupted-then-resumed MLflow runs, and return plain data the tests assert on. The
worker functions live at module level so the spawned processes can import them. Plans, shards
and the FFCV loader's shard-following need no process group and are checked in this process.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from datasets_fixtures import require_ffcv
from mlflow import MlflowClient

from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig
from prunebench.bench.devices import check_batch_size
from prunebench.bench.distributed import Dist, RanksOutOfSync, shard_plan, state_fingerprint
from prunebench.bench.launch import launch, process_group
from prunebench.bench.run import train_run
from prunebench.bench.trainer import Trainer
from prunebench.datasets import build_loader
from prunebench.errors import ConfigError
from prunebench.pruners import available_pruners, create_pruner, pruner_class

WORLD = 2
SUBSET = 250
BATCH = 32  # global; 16 per rank. 250 = 7 * 32 + 26: the last global batch is a short one.
EPOCHS = 2
TIME_BUDGET = "time:1.5"  # seconds: a few epochs of SUBSET samples, whatever the machine's load

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


SHARDED_PRUNERS = [name for name in available_pruners() if not pruner_class(name).selects_per_step]
"""The pruners that run on several processes (per-step selection runs on one)."""


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
        "num_threads": 1,  # per process: 2 processes on a 2-core machine
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


def infobatch_plans() -> list:
    """Two InfoBatch plans: epoch 0 keeps everything, epoch 1 prunes and carries weights."""
    pruner = create_pruner("infobatch", n=SUBSET, epochs=4, seed=1, prune_ratio=0.5)
    pruner.observe(torch.arange(SUBSET), torch.rand(SUBSET, generator=torch.Generator()))
    return [pruner.plan_epoch(epoch) for epoch in range(2)]


def served_batches(loader, plans: list, rank: int) -> list[list[tuple]]:
    """Per epoch, (indices, weights, counted) of each batch ``loader`` serves for rank's part."""
    epochs = []
    for epoch, plan in enumerate(plans):
        shard = shard_plan(plan.indices, plan.weights, rank, WORLD, BATCH)
        loader.set_plan(shard.indices, epoch)
        batches, local = [], 0
        for _, _, indices in loader:
            size = indices.numel()
            weights = shard.weights[local : local + size] if shard.weights is not None else None
            counted = (
                shard.counted[local : local + size]
                if shard.counted is not None
                else torch.ones(size, dtype=torch.bool)
            )
            assert torch.equal(indices, shard.indices[local : local + size])  # its order
            batches.append((indices.clone(), weights, counted))
            local += size
        epochs.append(batches)
    return epochs


def assert_ranks_train_each_plan_exactly(plans: list, per_rank: list[list[list[tuple]]]) -> None:
    """Over the ranks, each epoch's trained indices are the plan (a multiset), weights aligned."""
    for epoch, plan in enumerate(plans):
        trained, trained_weights = [], []
        steps = [len(epochs[epoch]) for epochs in per_rank]
        assert steps == [-(-plan.num_samples // BATCH)] * WORLD  # equal step counts
        for epochs in per_rank:
            for indices, weights, counted in epochs[epoch]:
                trained.append(indices[counted])
                if weights is not None:
                    trained_weights.append(weights[counted])
        trained = torch.cat(trained)
        assert sorted(trained.tolist()) == sorted(plan.indices.tolist())
        if plan.weights is not None:
            weight_of = dict(zip(plan.indices.tolist(), plan.weights.tolist(), strict=True))
            assert torch.cat(trained_weights).tolist() == [weight_of[i] for i in trained.tolist()]
    assert plans[1].weights is not None  # the weighted case was exercised


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
    # Loss sum / divisor, averaged over 4 ranks by DDP: the global batch's mean (8, then 1).
    assert shards[1].loss_divisor(0) == 8 / 4 and shards[1].loss_divisor(1) == 1 / 4
    one = shard_plan(plan, None, 0, 1, 8)
    assert one.loss_divisor(0) == 8 and one.loss_divisor(1) == 1  # one process: the batch mean


def test_batch_size_must_divide_among_processes():
    assert check_batch_size(128, 4) == 32
    with pytest.raises(ConfigError, match="multiple of 3"):
        check_batch_size(128, 3)


def test_nproc_names_another_checkpoint_but_the_same_cell():
    one, two = make_config(), make_config(nproc=2)
    assert one.config_hash() != two.config_hash()  # its own checkpoint path
    assert one.cell() == two.cell()  # the same comparison cell
    assert one.logged_params()["nproc"] == 1 and two.logged_params()["nproc"] == 2
    # nproc = 1 keeps the hash main computed for this config before the field existed.
    assert one.config_hash() == "cbad1af59298d04c"
    with pytest.raises(ConfigError, match="batch size 32 does not divide among 3 processes"):
        make_config(nproc=3).validate()


def test_fingerprint_sees_a_swap_of_two_scores():
    pruner = create_pruner("orderdp", n=50, epochs=2, seed=0, prune_ratio=0.5)
    pruner.observe(torch.arange(50), torch.linspace(0, 1, 50))
    before = state_fingerprint(pruner.state_dict())
    pruner.observe(torch.tensor([3, 7]), pruner.scores[[7, 3]].clone())
    assert not torch.equal(before, state_fingerprint(pruner.state_dict()))


@pytest.mark.slow
def test_ffcv_loader_serves_each_ranks_part_of_the_plan(tmp_path):
    # The loaders know no ranks: each is handed its rank's shard. FFCV's own traversal does not
    # take custom orders; prunebench's FFCV loader does, and serves exactly the shard.
    require_ffcv()
    loader = build_loader(
        "synthetic",
        "train",
        backend="ffcv",
        batch_size=BATCH // WORLD,
        subset=SUBSET,
        data_dir=tmp_path,
        num_workers=1,
    )
    plans = infobatch_plans()
    assert_ranks_train_each_plan_exactly(
        plans, [served_batches(loader, plans, rank) for rank in range(WORLD)]
    )


# ---------------------------------------------------------------------------- the 2 processes
def _train_pruner(dist: Dist, name: str) -> dict:
    """Train ``name`` for EPOCHS epochs; its state and next plan after each."""
    trainer = Trainer(make_config(name, nproc=WORLD), dist)
    states, plans = [], [next_plan(trainer, 0)]
    for epoch in range(EPOCHS):
        trainer.train_epoch(show_progress=False)
        states.append(trainer.pruner.state_dict())
        plans.append(next_plan(trainer, epoch + 1))
    return {
        "states": states,
        "plans": plans,
        "history": trainer.counters.history,
        "samples_trained": trainer.counters.samples_trained,
        "usage": trainer.usage.clone(),
        "summary": trainer.summary(),
    }


def _time_budget_with_diagnostics(dist: Dist) -> dict:
    """A time budget, one evaluation at the end, gradient alignment at the default checkpoints."""
    cfg = make_config(
        budget=parse_budget(TIME_BUDGET),
        eval_points=1,
        grad_alignment=True,
        grad_alignment_probe=64,
        nproc=WORLD,
    )
    trainer = Trainer(cfg, dist)
    counters = trainer.counters
    while not trainer.budget.exhausted(
        counters.epoch, counters.samples_trained, counters.train_seconds
    ):
        trainer.train_epoch(show_progress=False)
    return {"history": counters.history, "usage": int(trainer.usage.sum())}


def _out_of_sync(dist: Dist) -> str | None:
    """The failure reason when the ranks' pruners observed different losses."""
    pruner = create_pruner("orderdp", n=50, epochs=2, seed=0, prune_ratio=0.5)
    pruner.observe(torch.arange(50), torch.full((50,), float(dist.rank)))
    try:
        dist.check_in_sync(pruner, epoch=0)
    except RanksOutOfSync as error:
        return str(error)
    return None


def _runs(dist: Dist, root: Path) -> dict:
    """A whole run on per-rank paths (only rank 0's may fill); a shared one cut, then resumed."""
    own = root / f"rank{dist.rank}"
    whole = train_run(
        make_config(nproc=WORLD),
        tracking_uri=f"sqlite:///{own / 'mlflow.db'}",
        experiment="whole",
        checkpoint_dir=own / "ck",
    )
    shared = {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "experiment": "cut"}
    cut = train_run(
        make_config(nproc=WORLD), checkpoint_dir=root / "ck", stop_after_epochs=1, **shared
    )
    resumed = train_run(make_config(nproc=WORLD), checkpoint_dir=root / "ck", resume=True, **shared)
    return {"whole": whole, "cut": cut, "resumed": resumed}


def _group_worker(root: str) -> dict:
    """One rank of the 2-process scenarios (see the module docstring)."""
    torch.set_num_threads(1)
    with process_group("cpu") as dist:
        plans = infobatch_plans()
        loader = build_loader(
            "synthetic", "train", batch_size=dist.per_rank_batch(BATCH), subset=SUBSET
        )
        return {
            "rank": dist.rank,
            "loader": served_batches(loader, plans, dist.rank),
            "pruners": {name: _train_pruner(dist, name) for name in SHARDED_PRUNERS},
            "timed": _time_budget_with_diagnostics(dist),
            "out_of_sync": _out_of_sync(dist),
            "runs": _runs(dist, Path(root)),
        }


@pytest.fixture(scope="module")
def group(tmp_path_factory, _mlflow_template):
    root = tmp_path_factory.mktemp("dist")
    for directory in ("rank0", "rank1"):
        (root / directory).mkdir()
    # Migrated stores where rank 0 writes; rank 1's folder stays empty if it writes nothing.
    shutil.copyfile(_mlflow_template, root / "mlflow.db")
    shutil.copyfile(_mlflow_template, root / "rank0" / "mlflow.db")
    ranks = launch(WORLD, _group_worker, str(root))
    assert [rank["rank"] for rank in ranks] == [0, 1]
    return {"ranks": ranks, "root": root}


@pytest.fixture(scope="module")
def one_process():
    """The same training on one process (the reference for the 2-process one)."""
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


# ---------------------------------------------------------------------------- tests
@pytest.mark.slow
def test_ranks_train_the_plan_exactly_with_its_weights(group):
    assert_ranks_train_each_plan_exactly(
        infobatch_plans(), [rank["loader"] for rank in group["ranks"]]
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", SHARDED_PRUNERS)
def test_pruner_state_is_identical_on_both_ranks_every_epoch(group, name):
    rank0, rank1 = (rank["pruners"][name] for rank in group["ranks"])
    for epoch, (state0, state1) in enumerate(zip(rank0["states"], rank1["states"], strict=True)):
        assert state0["extra"] == state1["extra"], epoch
        assert torch.equal(state0["generator"], state1["generator"]), epoch
        assert state0["tensors"].keys() == state1["tensors"].keys()
        for key, tensor in state0["tensors"].items():
            assert torch.equal(tensor, state1["tensors"][key]), (epoch, key)
    for plan0, plan1 in zip(rank0["plans"], rank1["plans"], strict=True):
        assert torch.equal(plan0, plan1)
    # Each planned sample counts once over both ranks: usage sums to the samples trained, which
    # sum the plans, and the realized ratio is the plans' (on every rank alike).
    planned = sum(len(plan) for plan in rank0["plans"][:EPOCHS])
    assert rank0["samples_trained"] == int(rank0["usage"].sum()) == planned
    assert rank1["samples_trained"] == planned
    realized = rank0["summary"]["realized_prune_ratio"]
    assert realized == pytest.approx(1 - planned / (EPOCHS * SUBSET), abs=1e-12)
    assert rank1["summary"]["realized_prune_ratio"] == realized
    for entry0, entry1 in zip(rank0["history"], rank1["history"], strict=True):
        assert entry0.keys() == entry1.keys()  # both evaluate at the same epochs
        for key in ("test_accuracy", "test_loss", "train_loss", "grad_norm", "samples_trained"):
            assert entry0.get(key) == entry1.get(key), key  # reduced: the same on every rank
    assert "test_accuracy" in rank0["history"][-1]  # the end is always evaluated


@pytest.mark.slow
def test_every_planned_sample_is_observed_once_across_ranks(group):
    # OrderDP's scores start at 3.0; after epoch 0 exactly the epoch-0 plan holds observed losses.
    rank0 = group["ranks"][0]["pruners"]["orderdp"]
    scores = rank0["states"][0]["tensors"]["scores"]
    observed = torch.nonzero(scores != 3.0).squeeze(1)
    assert sorted(observed.tolist()) == sorted(rank0["plans"][0].tolist())


@pytest.mark.slow
def test_two_processes_plan_like_one(group, one_process):
    two_runs = group["ranks"][0]["pruners"]
    # Plans depend only on the pruner state: identical wherever they do not depend on losses.
    for name in ("orderdp", "rs2"):
        assert torch.equal(two_runs[name]["plans"][0], one_process[name]["plans"][0]), name
    for two_plan, one_plan in zip(
        two_runs["rs2"]["plans"], one_process["rs2"]["plans"], strict=True
    ):
        assert torch.equal(two_plan, one_plan)
    # OrderDP's epoch-1 plan ranks samples by epoch-0 losses. BatchNorm normalizes each rank's
    # 16 samples, not 32, so the losses differ slightly and a few near-ties may swap: the plans
    # must still share at least 80% of their samples.
    two_plan, one_plan = two_runs["orderdp"]["plans"][1], one_process["orderdp"]["plans"][1]
    shared = len(set(two_plan.tolist()) & set(one_plan.tolist())) / len(one_plan)
    assert shared >= 0.8, shared
    # Final accuracies within 0.08 (seed 0, EPOCHS epochs on 250 synthetic samples, 2,000 test).
    for name in ("orderdp", "rs2"):
        two_acc = two_runs[name]["history"][-1]["test_accuracy"]
        one_acc = one_process[name]["history"][-1]["test_accuracy"]
        assert abs(two_acc - one_acc) <= 0.08, (name, two_acc, one_acc)


@pytest.mark.slow
def test_time_budget_eval_points_and_alignment_agree_across_ranks(group):
    rank0, rank1 = (rank["timed"] for rank in group["ranks"])
    assert len(rank0["history"]) == len(rank1["history"]) >= 2
    # One clock (the slowest rank's): the same steps, samples, seconds and LR on both ranks.
    for entry0, entry1 in zip(rank0["history"], rank1["history"], strict=True):
        assert entry0.keys() == entry1.keys()
        for key in ("train_steps", "samples_trained", "train_seconds", "lr", "train_loss"):
            assert entry0[key] == entry1[key], key
        if "grad_cosine" in entry0:  # measured on the same weights and data by each rank
            assert entry0["grad_cosine"] == pytest.approx(entry1["grad_cosine"], abs=1e-6)
    last = rank0["history"][-1]
    assert last["train_seconds"] >= float(TIME_BUDGET.split(":")[1])
    # eval_points 1: one evaluation, at the end; alignment reaches checkpoint 1.0 there too.
    assert "test_accuracy" in last
    assert sum("test_accuracy" in entry for entry in rank0["history"]) == 1
    assert "grad_cosine" in last and -1 <= last["grad_cosine"] <= 1
    assert rank0["usage"] == int(last["samples_trained"])


@pytest.mark.slow
def test_ranks_that_observed_different_losses_fail_with_a_reason(group):
    for rank in group["ranks"]:
        reason = rank["out_of_sync"]
        assert reason is not None and "pruner state differs across the 2 processes" in reason


@pytest.mark.slow
def test_interrupted_run_resumes_in_the_same_mlflow_run(group):
    runs0, runs1 = (rank["runs"] for rank in group["ranks"])
    whole, cut, resumed = runs0["whole"], runs0["cut"], runs0["resumed"]
    assert cut.status == "RUNNING" and cut.run_id == runs1["cut"].run_id
    assert resumed.status == "FINISHED" and resumed.run_id == cut.run_id
    assert runs1["resumed"].run_id == cut.run_id
    # Plans continue: the resumed run retraces the uninterrupted one epoch by epoch.
    assert len(resumed.history) == len(whole.history) == EPOCHS
    for resumed_entry, whole_entry in zip(resumed.history, whole.history, strict=True):
        assert ("test_accuracy" in resumed_entry) == ("test_accuracy" in whole_entry)
        for key in ("test_accuracy", "train_loss", "kept_fraction", "samples_trained"):
            if key in whole_entry:  # test_accuracy: at the epochs reaching an eval point
                assert resumed_entry[key] == pytest.approx(whole_entry[key], rel=1e-6), key
    store = f"sqlite:///{group['root'] / 'mlflow.db'}"
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("cut")
    runs = client.search_runs([experiment.experiment_id])
    assert [run.info.run_id for run in runs] == [cut.run_id]  # one run, written by rank 0 only
    steps = [m.step for m in client.get_metric_history(cut.run_id, "train_loss")]
    assert steps == list(range(EPOCHS))
    evaluated = [epoch for epoch, entry in enumerate(whole.history) if "test_accuracy" in entry]
    steps = [m.step for m in client.get_metric_history(cut.run_id, "test_accuracy")]
    assert steps == evaluated
    params = runs[0].data.params
    assert params["nproc"] == "2" and params["device_count"] == "2"
    assert params["batch_size"] == str(BATCH) and params["batch_size_per_device"] == str(BATCH // 2)
    assert params["num_threads"] == "1"  # per process
    summary = resumed.metrics
    assert summary["train_device_hours"] == pytest.approx(
        2 * summary["train_seconds_total"] / 3600, rel=1e-9
    )


@pytest.mark.slow
def test_only_rank_0_writes_mlflow_and_checkpoints(group):
    root = group["root"]
    whole0, whole1 = (rank["runs"]["whole"] for rank in group["ranks"])
    assert whole0.status == whole1.status == "FINISHED" and whole0.run_id == whole1.run_id
    assert sorted(os.listdir(root / "rank0" / "ck")) == [f"{whole0.config_hash}.pt"]
    client = MlflowClient(f"sqlite:///{root / 'rank0' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("whole").experiment_id])
    assert run.info.run_id == whole0.run_id
    assert not (root / "rank1" / "mlflow.db").exists()  # no store
    assert not (root / "rank1" / "ck").exists()  # no checkpoint folder
