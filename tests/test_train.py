"""End-to-end training runs on synthetic data (seconds each) and a Fashion-MNIST subset (slow).

Every run here is real: the synthetic dataset through the tensor loader, a real pruner, a real
MLflow SQLite store in a temporary directory, real checkpoints.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from prunebench import record
from prunebench.bench.budgets import parse_budget
from prunebench.bench.checkpoint import load_checkpoint
from prunebench.bench.config import RunConfig
from prunebench.bench.run import train_run
from prunebench.errors import ConfigError
from prunebench.pruners import create_pruner

SUBSET = 600
TIMING_METRICS = {
    "train_seconds",
    "eval_seconds",
    "eval_train_seconds",
    "process_cpu_seconds",
    "process_cpu_seconds_total",
    "train_samples_per_second",
    "train_seconds_total",
    "eval_seconds_total",
    "train_device_hours",
    "total_device_hours",
}
PARAMS = {
    "dataset", "model", "pruner", "pruner_label", "target_prune_ratio", "seed", "budget",
    "budget_kind", "budget_amount", "batch_size", "lr", "momentum", "weight_decay",
    "label_smoothing", "loader", "device", "device_kind", "subset", "train_size", "eval_points",
    "prunebench_version", "config_hash", "autocast_dtype", "lr_schedule", "lr_anneal_strategy",
    "lr_pct_start", "lr_div_factor", "lr_final_div_factor", "cycle_momentum", "base_momentum",
    "max_momentum", "grad_alignment", "grad_alignment_probe", "grad_alignment_checkpoints",
}  # fmt: skip
EPOCH_METRICS = {
    "test_accuracy", "test_loss", "train_loss", "lr", "kept_fraction", "train_seconds",
    "eval_seconds", "samples_trained", "scoring_forward_passes", "grad_norm", "subset_jaccard",
    "momentum", "grad_norm_std", "train_steps", "eval_samples_trained", "eval_train_seconds",
}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A working directory holding the module's MLflow store (its artifacts land under it)."""
    path = tmp_path_factory.mktemp("train")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(path)
        yield path


@pytest.fixture(scope="module")
def store(workdir) -> str:
    return f"sqlite:///{workdir / 'mlflow.db'}"


def make_config(**overrides) -> RunConfig:
    values = {
        "dataset": "synthetic",
        "model": "small_cnn",
        "pruner": "orderdp",
        "pruner_params": {"prune_ratio": 0.5},
        "budget": parse_budget("epochs:3"),
        "subset": SUBSET,
        "batch_size": 64,
        "lr": 0.05,
        "device": "cpu",
        "accuracy_targets": (0.15, 0.99),
    }
    values.update(overrides)
    return RunConfig(**values)


def run(store: str, cfg: RunConfig, checkpoints: Path, experiment: str = "tests", **options):
    return train_run(
        cfg, tracking_uri=store, experiment=experiment, checkpoint_dir=checkpoints, **options
    )


def untimed(metrics: dict[str, float]) -> dict[str, float]:
    return {
        key: value
        for key, value in metrics.items()
        if key not in TIMING_METRICS and not key.startswith("tta_seconds")
    }


def test_epochs_run_logs_the_mlflow_contract(store, workdir):
    cfg = make_config()
    result = run(store, cfg, workdir / "ckpt-contract", tags={"prunebench.preset": "unit"})
    assert result.status == "FINISHED" and result.failure_reason is None

    client = MlflowClient(store)
    mlflow_run = client.get_run(result.run_id)
    assert mlflow_run.info.status == "FINISHED"
    tags = mlflow_run.data.tags
    assert tags["prunebench.kind"] == "train"
    assert tags["prunebench.status"] == "FINISHED"
    assert tags["prunebench.cell"] == "synthetic/small_cnn/orderdp/0.5"
    assert tags["prunebench.config_hash"] == cfg.config_hash()
    assert tags["prunebench.preset"] == "unit"
    assert tags["mlflow.runName"] == "orderdp-p0.5-s0"
    params = mlflow_run.data.params
    assert params.keys() >= PARAMS
    assert params["budget"] == "epochs:3" and params["train_size"] == str(SUBSET)
    assert params["device_kind"] == "cpu" and params["pruner"] == "orderdp"
    assert {"pruner.prune_ratio", "pruner.exploration", "pruner.exploitation"} <= params.keys()

    # Evaluations at the epochs whose training reached a multiple of SUBSET sample passes (one
    # full-data epoch; this run trains about half of it an epoch), and after the last epoch.
    passes = [0.0] + [entry["samples_trained"] for entry in result.history]
    evaluated = [
        epoch
        for epoch, (before, after) in enumerate(itertools.pairwise(passes))
        if after // SUBSET > before // SUBSET or epoch == 2
    ]
    evaluation_metrics = {
        "test_accuracy",
        "test_loss",
        "eval_samples_trained",
        "eval_train_seconds",
    }
    for key in EPOCH_METRICS:
        steps = [m.step for m in client.get_metric_history(result.run_id, key)]
        expected = evaluated if key in evaluation_metrics else [0, 1, 2]
        assert steps == ([1, 2] if key == "subset_jaccard" else expected), key
    assert mlflow_run.data.metrics.keys() >= set(record.SUMMARY_METRICS)
    assert "tta_seconds_0.15" in mlflow_run.data.metrics  # reached by chance level on 10 classes
    assert "tta_seconds_0.99" not in mlflow_run.data.metrics  # never reached: not logged

    # The pruner's exact keep size: OrderDP trains q = floor(b * floor(a * n)) samples per epoch.
    pruner = create_pruner("orderdp", n=SUBSET, epochs=3, seed=0, prune_ratio=0.5)
    kept = pruner.keep_size
    metrics = result.metrics
    assert metrics["samples_trained_total"] == 3 * kept
    assert metrics["realized_prune_ratio"] == pytest.approx(1 - kept / SUBSET, abs=1e-12)
    assert metrics["epochs_run"] == 3
    assert all(entry["kept_fraction"] == kept / SUBSET for entry in result.history)
    assert all(0 < entry["subset_jaccard"] < 1 for entry in result.history[1:])
    assert all(
        entry["grad_norm"] > 0 and math.isfinite(entry["grad_norm"]) for entry in result.history
    )
    assert metrics["train_device_hours"] == pytest.approx(metrics["train_seconds_total"] / 3600)

    artifacts = {item.path for item in client.list_artifacts(result.run_id)}
    assert artifacts >= {"usage.npz", "usage_histogram.png", "config.json", "scores.pt"}
    folder = Path(client.download_artifacts(result.run_id, "", str(workdir / "download")))
    counts = np.load(folder / "usage.npz")["counts"]
    assert counts.dtype == np.int64 and counts.shape == (SUBSET,)
    assert counts.sum() == metrics["samples_trained_total"]
    assert (counts == 0).sum() == metrics["zero_usage_samples"]
    assert json.loads((folder / "config.json").read_text()) == json.loads(json.dumps(cfg.to_dict()))


@pytest.mark.parametrize(
    ("budget", "pruner", "params"),
    [
        ("epochs:2", "full", {}),
        ("samples:1000", "orderdp", {"prune_ratio": 0.5}),
        ("samples:1000", "infobatch", {"prune_ratio": 0.5}),
        ("time:1.5", "random", {"prune_ratio": 0.3}),
    ],
)
def test_each_budget_stops_where_it_should(store, workdir, budget, pruner, params):
    cfg = make_config(budget=parse_budget(budget), pruner=pruner, pruner_params=params)
    result = run(store, cfg, workdir / "ckpt-budget")
    metrics, history = result.metrics, result.history
    assert result.status == "FINISHED"
    if cfg.budget.kind == "epochs":
        assert metrics["epochs_run"] == 2 and len(history) == 2
        assert metrics["samples_trained_total"] == 2 * SUBSET
        assert metrics["zero_usage_samples"] == 0
        assert all(entry["subset_jaccard"] == 1.0 for entry in history[1:])  # full data
    elif cfg.budget.kind == "samples":
        assert metrics["samples_trained_total"] == 1000  # exactly, the last plan cut short
    else:
        # Stops at the first step boundary past the budget, so it overruns by about one step
        # (bounded loosely: these CPUs are shared), and evaluation is not on the clock.
        before = history[-2] if len(history) > 1 else {"train_seconds": 0, "samples_trained": 0}
        last_epoch_seconds = history[-1]["train_seconds"] - before["train_seconds"]
        last_epoch_steps = math.ceil(
            (history[-1]["samples_trained"] - before["samples_trained"]) / cfg.batch_size
        )
        overrun = metrics["train_seconds_total"] - 1.5
        assert 0 <= overrun < max(0.5, 5 * last_epoch_seconds / last_epoch_steps)
        assert metrics["eval_seconds_total"] > 0
    # Realized ratio = what the pruner's plans kept, epoch by epoch (a cut epoch by its share).
    kept = [entry["kept_fraction"] for entry in history]
    assert metrics["realized_prune_ratio"] == pytest.approx(
        1 - metrics["samples_trained_total"] / (metrics["epochs_run"] * SUBSET), abs=1e-12
    )
    if cfg.budget.kind == "epochs" or pruner == "orderdp":
        assert metrics["realized_prune_ratio"] == pytest.approx(1 - np.mean(kept), abs=1e-12)
    # Time to accuracy is read off the per-epoch curve (a time budget on a busy CPU may end
    # before the target is reached: then the metric must be absent).
    first = next((entry for entry in history if entry.get("test_accuracy", 0) >= 0.15), None)
    if first is None:
        assert "tta_seconds_0.15" not in metrics and "tta_samples_0.15" not in metrics
    else:  # at the evaluation's own clock (it may fall inside the epoch)
        assert metrics["tta_seconds_0.15"] == first["eval_train_seconds"]
        assert metrics["tta_samples_0.15"] == first["eval_samples_trained"]


def test_eval_points_under_a_time_budget_evaluate_where_the_clock_passes_a_point(store, workdir):
    # Under a time budget the points are crossed by the training clock: an epoch is evaluated
    # exactly when its end passes a point its start had not (and the last epoch always).
    cfg = make_config(pruner="full", pruner_params={}, budget=parse_budget("time:3"), eval_points=4)
    result = run(store, cfg, workdir / "ckpt-eval-time")
    assert result.status == "FINISHED"
    seconds = [0.0] + [entry["train_seconds"] for entry in result.history]
    points = [k * 3.0 / 4 for k in range(1, 5)]
    crossing = [
        any(before < point <= after for point in points)
        for before, after in itertools.pairwise(seconds)
    ]
    crossing[-1] = True
    evaluated = ["test_accuracy" in entry for entry in result.history]
    assert evaluated == crossing


def test_eval_points_evaluate_at_budget_progress_points_and_the_end(store, workdir):
    cfg = make_config(
        pruner="full",
        pruner_params={},
        budget=parse_budget("epochs:8"),
        eval_points=4,
        accuracy_targets=(0.01, 0.3),
    )
    result = run(store, cfg, workdir / "ckpt-eval-points")
    assert result.status == "FINISHED"
    client = MlflowClient(store)
    # Points 0.25, 0.5, 0.75, 1.0 of 8 epochs: the ends of epochs 1, 3, 5 and 7 (the last).
    for key in ("test_accuracy", "test_loss"):
        assert [m.step for m in client.get_metric_history(result.run_id, key)] == [1, 3, 5, 7]
    for key in ("train_loss", "lr", "train_seconds", "eval_seconds", "samples_trained"):
        assert [m.step for m in client.get_metric_history(result.run_id, key)] == list(range(8))
    evaluated = [entry for entry in result.history if "test_accuracy" in entry]
    assert [entry["samples_trained"] for entry in evaluated] == [k * SUBSET for k in (2, 4, 6, 8)]
    mlflow_run = client.get_run(result.run_id)
    assert mlflow_run.data.params["eval_points"] == "4"
    metrics = result.metrics
    assert metrics["evaluations"] == 4
    assert metrics["final_test_accuracy"] == evaluated[-1]["test_accuracy"]
    # Evaluation time accrues only at evaluations, outside the training clock.
    eval_seconds = [entry["eval_seconds"] for entry in result.history]
    assert eval_seconds[0] == 0 and eval_seconds[1] > 0 and eval_seconds[2] == eval_seconds[1]
    # Time to accuracy is read off the evaluations: 1% is met at the first one (epoch 1).
    assert metrics["tta_samples_0.01"] == 2 * SUBSET
    assert metrics["tta_seconds_0.01"] == result.history[1]["train_seconds"]
    first = next((entry for entry in evaluated if entry["test_accuracy"] >= 0.3), None)
    if first is None:
        assert "tta_samples_0.30" not in metrics
    else:
        assert metrics["tta_samples_0.30"] == first["samples_trained"]


def test_infobatch_realized_ratio_is_planned_not_nominal(store, workdir):
    cfg = make_config(pruner="infobatch", pruner_params={"prune_ratio": 0.5, "anneal": False})
    result = run(store, cfg, workdir / "ckpt-infobatch")
    kept = np.array([entry["kept_fraction"] for entry in result.history])
    assert kept[0] == 1.0 and np.all(kept[1:] < 1.0)  # epoch 0 trains on everything
    realized = result.metrics["realized_prune_ratio"]
    assert realized == pytest.approx(1 - kept.mean(), abs=1e-12)
    assert realized < 0.5  # nominal r = 0.5 is never reached (epoch 0 full, above-mean kept)


@pytest.mark.parametrize(
    ("pruner", "params", "budget"),
    [
        ("orderdp", {"prune_ratio": 0.5}, "epochs:4"),
        ("infobatch", {"prune_ratio": 0.5, "anneal": True}, "samples:1700"),
    ],
)
def test_resume_equals_uninterrupted_run(store, workdir, pruner, params, budget):
    cfg = make_config(pruner=pruner, pruner_params=params, budget=parse_budget(budget))
    whole = run(store, cfg, workdir / f"ckpt-whole-{pruner}", experiment="whole")

    checkpoints = workdir / f"ckpt-parts-{pruner}"
    first = run(store, cfg, checkpoints, experiment="parts", stop_after_epochs=2)
    assert first.status == "RUNNING" and len(first.history) == 2
    assert MlflowClient(store).get_run(first.run_id).data.tags["prunebench.status"] == "RUNNING"
    rest = run(store, cfg, checkpoints, experiment="parts", resume=True)
    assert rest.status == "FINISHED" and rest.run_id == first.run_id

    assert untimed(rest.metrics) == untimed(whole.metrics)
    assert [untimed(e) for e in rest.history] == [untimed(e) for e in whole.history]
    # Bitwise: model, optimizer, pruner state and usage counts.
    end_whole = load_checkpoint(whole.checkpoint_path, torch.device("cpu"))["trainer"]
    end_parts = load_checkpoint(rest.checkpoint_path, torch.device("cpu"))["trainer"]
    for key, tensor in end_whole["model"].items():
        assert torch.equal(tensor, end_parts["model"][key]), key
    assert torch.equal(end_whole["usage"], end_parts["usage"])
    for key, tensor in end_whole["pruner"]["tensors"].items():
        assert torch.equal(tensor, end_parts["pruner"]["tensors"][key]), key
    momentum_whole = [s["momentum_buffer"] for s in end_whole["optimizer"]["state"].values()]
    momentum_parts = [s["momentum_buffer"] for s in end_parts["optimizer"]["state"].values()]
    assert all(torch.equal(a, b) for a, b in zip(momentum_whole, momentum_parts, strict=True))

    # The continued MLflow run holds every epoch once, and only one run was made.
    client = MlflowClient(store)
    steps = [m.step for m in client.get_metric_history(rest.run_id, "train_loss")]
    assert steps == list(range(len(whole.history)))
    evaluated = [epoch for epoch, entry in enumerate(whole.history) if "test_accuracy" in entry]
    steps = [m.step for m in client.get_metric_history(rest.run_id, "test_accuracy")]
    assert steps == evaluated  # the epochs whose training reached an evaluation point
    assert client.get_run(rest.run_id).info.status == "FINISHED"
    experiment = client.get_experiment_by_name("parts").experiment_id
    runs = client.search_runs(
        [experiment], f"tags.`prunebench.config_hash` = '{cfg.config_hash()}'"
    )
    assert len(runs) == 1

    # Resuming a finished run trains nothing more.
    again = run(store, cfg, checkpoints, experiment="parts", resume=True)
    assert again.run_id == rest.run_id and again.history == rest.history
    if pruner == "orderdp":
        # The same config in another experiment does not continue this one's run.
        elsewhere = run(store, cfg, checkpoints, experiment="elsewhere", resume=True)
        assert elsewhere.run_id != rest.run_id
        assert untimed(elsewhere.metrics) == untimed(whole.metrics)


def test_diverged_run_is_failed_with_reason(store, workdir):
    cfg = make_config(pruner="full", pruner_params={}, lr=1e9)
    result = run(store, cfg, workdir / "ckpt-nan")
    assert result.status == "FAILED"
    assert result.failure_reason.startswith("training loss became nan at epoch")
    mlflow_run = MlflowClient(store).get_run(result.run_id)
    assert mlflow_run.info.status == "FAILED"
    assert mlflow_run.data.tags["prunebench.status"] == "FAILED"
    assert mlflow_run.data.tags["prunebench.failure_reason"] == result.failure_reason


def test_bad_config_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = make_config(pruner="orderdp", pruner_params={"exploration": 0.5, "exploitation": 1.2})
    with pytest.raises(ConfigError, match="exploitation"):
        train_run(cfg, checkpoint_dir=tmp_path / "checkpoints")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_fashion_mnist_subset_learns(store, workdir):
    cfg = RunConfig(
        dataset="fashion_mnist",
        model="small_cnn",
        pruner="orderdp",
        pruner_params={"prune_ratio": 0.3},
        budget=parse_budget("epochs:2"),
        subset=2000,
        batch_size=32,
        lr=0.1,
        device="cpu",
        accuracy_targets=(0.5, 0.7),
    )
    result = run(store, cfg, workdir / "ckpt-fmnist", experiment="fmnist")
    assert result.status == "FINISHED"
    # Real data, 2 short epochs: well above chance (0.10); measured 0.627 (seed 0, 1 thread).
    assert result.metrics["final_test_accuracy"] > 0.5
    assert result.metrics["tta_seconds_0.50"] <= result.metrics["train_seconds_total"]
    params = MlflowClient(store).get_run(result.run_id).data.params
    assert params["train_size"] == "2000" and params["dataset"] == "fashion_mnist"


@pytest.mark.parametrize("budget", ["epochs:4", "samples:1800", "time:2"])
def test_infobatch_anneals_at_delta_of_budget_progress(store, workdir, budget):
    # delta = 0.5: every epoch that starts at budget progress >= 0.5 trains on all the data
    # (weights 1), every other epoch but the first prunes (nominal r = 0.5 always drops some).
    cfg = make_config(
        pruner="infobatch",
        pruner_params={"prune_ratio": 0.5, "anneal": True, "delta": 0.5},
        budget=parse_budget(budget),
    )
    result = run(store, cfg, workdir / "ckpt-anneal")
    assert result.status == "FINISHED"
    history, amount = result.history, cfg.budget.amount
    clock = {"epochs": None, "samples": "samples_trained", "time": "train_seconds"}
    starts = [0.0]
    for epoch, entry in enumerate(history[:-1], start=1):
        used = epoch if cfg.budget.kind == "epochs" else entry[clock[cfg.budget.kind]]
        starts.append(used / amount)
    kept = [entry["kept_fraction"] for entry in history]
    assert kept[0] == 1.0
    for epoch in range(1, len(history)):
        assert (kept[epoch] == 1.0) == (starts[epoch] >= 0.5), (epoch, starts[epoch], kept)
    if cfg.budget.kind != "time":  # deterministic: both phases happen
        assert 1.0 in kept[1:] and min(kept) < 1.0


def test_infobatch_realized_ratio_run_meets_its_target(store, workdir):
    cfg = make_config(
        pruner="infobatch",
        pruner_params={"prune_ratio": 0.3, "anneal": False, "ratio_mode": "realized"},
        budget=parse_budget("epochs:6"),
    )
    result = run(store, cfg, workdir / "ckpt-realized")
    # round(0.3 * 6 * 600) = 1080 samples pruned over epochs 1-5: exactly the target.
    assert result.metrics["realized_prune_ratio"] == pytest.approx(0.3, abs=1e-12)
    logged = MlflowClient(store).get_run(result.run_id).data
    assert logged.params["pruner.ratio_mode"] == "realized"
    assert logged.metrics["ratio_shortfall"] == pytest.approx(0.0, abs=1e-12)  # realized - target
    assert logged.metrics["pruner.max_weight"] <= 10.0
    assert logged.metrics["pruner.planned_prune_ratio"] == pytest.approx(0.3)


def test_every_pruner_of_a_cell_evaluates_at_the_same_sample_passes(store, workdir):
    """epochs:4 on 600 samples, batch 64: evaluation points are every 600 sample passes (one
    full-data epoch) for every pruner, so full data, random at 50% and InfoBatch steering to
    50% are evaluated at the same passes, each within one batch past the point (a pruned epoch
    is shorter than the interval, so the point may fall inside it), plus once at the end."""
    evaluations = {}
    for name, params in [
        ("full", {}),
        ("random", {"prune_ratio": 0.5}),
        ("infobatch", {"prune_ratio": 0.5, "anneal": False, "ratio_mode": "realized"}),
    ]:
        cfg = make_config(pruner=name, pruner_params=params, budget=parse_budget("epochs:4"))
        result = run(store, cfg, workdir / f"ckpt-eval-{name}")
        evaluated = [e["eval_samples_trained"] for e in result.history if "test_accuracy" in e]
        total = result.metrics["samples_trained_total"]
        assert evaluated[-1] == total  # the end is always evaluated
        points = [k * SUBSET for k in range(1, int(total // SUBSET) + 1)]
        at_points = evaluated if total in points else evaluated[:-1]
        assert len(at_points) == len(points), (name, evaluated)
        for point, passes in zip(points, at_points, strict=True):
            assert 0 <= passes - point < cfg.batch_size, (name, evaluated)
        evaluations[name] = points
        assert result.metrics["evaluations"] == len(evaluated)
    assert evaluations["full"] == [600, 1200, 1800, 2400]
    assert evaluations["random"] == [600, 1200]
    assert evaluations["infobatch"] == evaluations["full"][: len(evaluations["infobatch"])]
