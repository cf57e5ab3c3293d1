"""The harness's pieces without a training loop: config, budgets, LR schedule, metrics, stores."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from prunebench.bench.budgets import (
    TIME_BUDGET_PRUNER_EPOCHS,
    Budget,
    eval_interval,
    eval_points_reached,
    parse_budget,
)
from prunebench.bench.checkpoint import load_checkpoint, save_checkpoint
from prunebench.bench.config import RunConfig, parse_param
from prunebench.bench.metrics import jaccard, subset_mask, summarize, time_to_accuracy
from prunebench.bench.schedule import one_cycle_lr
from prunebench.errors import ConfigError, UsageError
from prunebench.mlflow_store import check_tracking_uri


def make_config(**overrides) -> RunConfig:
    values = {
        "dataset": "synthetic",
        "model": "small_cnn",
        "pruner": "orderdp",
        "pruner_params": {"prune_ratio": 0.5},
        "budget": parse_budget("epochs:3"),
        "subset": 500,
    }
    values.update(overrides)
    return RunConfig(**values)


# ---------------------------------------------------------------------------- budgets
@pytest.mark.parametrize(
    ("text", "kind", "amount"),
    [
        ("epochs:200", "epochs", 200),
        ("samples:1e6", "samples", 1_000_000),
        ("time:2.5", "time", 2.5),
    ],
)
def test_parse_budget(text, kind, amount):
    budget = parse_budget(text)
    assert (budget.kind, budget.amount) == (kind, amount)
    assert parse_budget(str(budget)) == budget


@pytest.mark.parametrize(
    "text",
    [
        "epochs:0",
        "samples:-5",
        "time:0",
        "time:-1",
        "weeks:3",
        "epochs:x",
        "epochs",
        "",
        "epochs:2.5",
        "time:inf",
    ],
)
def test_parse_budget_rejects(text):
    with pytest.raises(ConfigError):
        parse_budget(text)


def test_budget_progress_and_stop():
    epochs = Budget("epochs", 4)
    assert epochs.progress(1, 0.5, 0, 0.0) == pytest.approx(1.5 / 4)
    assert epochs.exhausted(4, 0, 0.0) and not epochs.exhausted(3, 10**9, 1e9)
    samples = Budget("samples", 1000)
    assert samples.progress(7, 0.9, 250, 99.0) == 0.25
    assert samples.exhausted(0, 1000, 0.0) and not samples.exhausted(100, 999, 1e9)
    time_budget = Budget("time", 10.0)
    assert time_budget.progress(0, 0.0, 0, 2.5) == 0.25
    assert time_budget.progress(0, 0.0, 0, 12.0) == 1.0  # clamped past the budget
    assert time_budget.exhausted(0, 0, 10.0)


def test_pruner_epochs_estimates():
    assert Budget("epochs", 7).pruner_epochs(1000, 0.5) == 7
    # 2500 samples at 500 kept per epoch: the pruner is told 5 epochs.
    assert Budget("samples", 2500).pruner_epochs(1000, 0.5) == 5
    assert Budget("samples", 2501).pruner_epochs(1000, 0.5) == 6
    assert Budget("time", 60).pruner_epochs(1000, 0.5) == TIME_BUDGET_PRUNER_EPOCHS


def evaluated_epochs(budget: Budget, epochs: int, points: int, n: int = 1000) -> list[int]:
    """The epochs (0-based) of a full-data run whose end passes an eval point."""
    interval = eval_interval(budget, n, points)
    reached = [eval_points_reached(budget, interval, epoch * n, 0.0) for epoch in range(epochs + 1)]
    return [e for e in range(epochs) if reached[e + 1] > reached[e]]


@pytest.mark.parametrize(
    ("epochs", "points", "expected"),
    [
        (8, 4, [1, 3, 5, 7]),  # every 2 full-data epochs of passes
        (10, 3, [3, 6, 9]),  # every 3.33 n passes: first reached at 4 n, then 7 n and 10 n
        (10, 10, list(range(10))),  # 3/10 * 10 is not exactly 3.0 in floats: still reached
        (4, 6, [0, 1, 2, 3]),  # more points than epochs: never finer than n (one per epoch)
        (5, 1, [4]),  # one point: the end
        (5, 0, [0, 1, 2, 3, 4]),  # 0: every full-data epoch of passes
    ],
)
def test_eval_points_by_sample_passes(epochs, points, expected):
    assert evaluated_epochs(Budget("epochs", epochs), epochs, points) == expected


def test_eval_points_under_samples_and_time_budgets():
    samples = Budget("samples", 1000)
    assert eval_interval(samples, 100, 4) == 250  # the same for every pruner of the cell
    assert eval_points_reached(samples, 250, 249, 0.0) == 0
    assert eval_points_reached(samples, 250, 250, 0.0) == 1
    assert eval_interval(samples, 100, 0) == 100  # 0 points: every full-data epoch of passes
    assert eval_interval(samples, 400, 4) == 400  # never finer than one full-data epoch
    time = Budget("time", 60)
    assert eval_interval(time, 100, 4) == 15 and eval_interval(time, 100, 0) == 3
    assert eval_points_reached(time, 15, 10_000, 29.9) == 1  # seconds, not samples


# ---------------------------------------------------------------------------- LR schedule
def test_one_cycle_endpoints_and_shape():
    max_lr = 0.2
    assert one_cycle_lr(0.0, max_lr) == pytest.approx(max_lr / 25)
    assert one_cycle_lr(0.25, max_lr) == pytest.approx(max_lr)
    assert one_cycle_lr(1.0, max_lr) == pytest.approx(max_lr / 25 / 1e4)
    grid = np.linspace(0, 1, 1001)
    rates = np.array([one_cycle_lr(p, max_lr) for p in grid])
    peak = int(np.argmax(rates))
    assert grid[peak] == pytest.approx(0.25)
    assert np.all(np.diff(rates[: peak + 1]) >= 0) and np.all(np.diff(rates[peak:]) <= 0)


def test_one_cycle_matches_torch_onecycle_by_progress():
    # torch's OneCycleLR over T steps, read at progress step / (T - 1): equal up to O(1/T).
    steps, max_lr = 4000, 0.2
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=max_lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr, total_steps=steps, pct_start=0.25, cycle_momentum=False
    )
    worst = 0.0
    for step in range(steps):
        ours = one_cycle_lr(step / (steps - 1), max_lr)
        worst = max(worst, abs(optimizer.param_groups[0]["lr"] - ours))
        optimizer.step()
        if step < steps - 1:  # torch refuses to step past total_steps
            scheduler.step()
    assert worst < 2e-3 * max_lr


# ---------------------------------------------------------------------------- params and config
@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ("exploration=0.5", "exploration", 0.5),
        ("period=3", "period", 3),
        ("anneal=true", "anneal", True),
        ("initial_score=inf", "initial_score", math.inf),
        ("mode=fast", "mode", "fast"),
        ('mode="fast"', "mode", "fast"),
    ],
)
def test_parse_param(text, key, value):
    assert parse_param(text) == (key, value)


@pytest.mark.parametrize("text", ["noequals", "=3", "a=", "a=[1, 2]", "a b=1", "a=1 2"])
def test_parse_param_rejects(text):
    with pytest.raises(ConfigError, match="--param"):
        parse_param(text)


def test_config_hash_identity():
    base = make_config()
    assert base.config_hash() == make_config().config_hash()
    assert len(base.config_hash()) == 16
    assert base.config_hash() != make_config(seed=1).config_hash()
    assert base.config_hash() != make_config(pruner_params={"prune_ratio": 0.3}).config_hash()
    # Where the data lives is not what is computed; 1 and 1.0 are the same value.
    assert base.config_hash() == make_config(data_dir="/elsewhere").config_hash()
    # eval_points is hashed only when set: runs recorded before it existed keep their hash.
    assert base.config_hash() == make_config(eval_points=0).config_hash()
    assert base.config_hash() != make_config(eval_points=4).config_hash()
    assert (
        make_config(pruner="full", pruner_params={"prune_ratio": 0.0}).config_hash()
        == make_config(pruner="full", pruner_params={}).config_hash()
    )
    assert (
        make_config(pruner="rs2", pruner_params={"prune_ratio": 0}).config_hash()
        == make_config(pruner="rs2", pruner_params={"prune_ratio": 0.0}).config_hash()
    )


def test_target_ratio_cell_and_run_name():
    assert make_config().target_prune_ratio() == 0.5
    decomposed = make_config(pruner_params={"exploration": 0.5, "exploitation": 0.6})
    assert decomposed.target_prune_ratio() == pytest.approx(0.7)
    assert make_config(pruner="full", pruner_params={}).target_prune_ratio() == 0.0
    assert make_config(pruner="infobatch", pruner_params={}).target_prune_ratio() == 0.5
    labelled = make_config(pruner_label="orderdp-wide", seed=3)
    assert labelled.cell() == "synthetic/small_cnn/orderdp-wide/0.5"
    assert labelled.run_name() == "orderdp-wide-p0.5-s3"
    assert make_config(pruner="full", pruner_params={}).cell() == "synthetic/small_cnn/full/0"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dataset": "mnist"}, "unknown dataset 'mnist'; choose one of: cifar10"),
        ({"model": "vgg"}, "unknown model 'vgg'; choose one of: mlp, resnet18"),
        ({"pruner": "magic"}, "unknown pruner 'magic'; choose one of: "),
        ({"pruner_params": {"prune_ratio": 1.0}}, r"prune ratio must be in \[0, 1\)"),
        ({"pruner_params": {"prune_ratio": -0.1}}, r"prune ratio must be in \[0, 1\)"),
        ({"pruner_params": {"exploration": 0.5, "exploitation": 1.5}}, "exploitation"),
        ({"pruner_params": {"prune_ratio": 0.5, "bogus": 1}}, "no parameter 'bogus'"),
        ({"pruner": "full", "pruner_params": {"prune_ratio": 0.5}}, "must be 0"),
        ({"batch_size": 0}, "batch size must be a positive integer"),
        ({"batch_size": -8}, "batch size must be a positive integer"),
        ({"lr": 0.0}, "learning rate"),
        ({"lr": float("nan")}, "learning rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"label_smoothing": -0.1}, "label smoothing"),
        ({"subset": 0}, "subset"),
        ({"subset": 10**9}, "larger than"),
        ({"seed": -1}, "seed"),
        ({"eval_points": -1}, "eval points must be an integer >= 0"),
        ({"eval_points": 2.5}, "eval points must be an integer >= 0"),
        ({"loader": "dali"}, "unknown loader 'dali'"),
        ({"device": "tpu"}, "device"),
        ({"data_dir": "/etc/passwd"}, "data directory /etc/passwd: /etc/passwd is not a"),
        ({"accuracy_targets": (0.5, 1.5)}, "accuracy target"),
        ({"budget": Budget("epochs", 0)}, "positive"),
    ],
)
def test_validate_rejects(overrides, message):
    with pytest.raises(ConfigError, match=message):
        make_config(**overrides).validate()


def test_validate_accepts_full_with_zero_ratio():
    config = make_config(pruner="full", pruner_params={"prune_ratio": 0.0})
    config.validate()
    assert config.pruner_kwargs() == {}


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message; a GPU is present")
def test_validate_rejects_cuda_without_gpu():
    with pytest.raises(ConfigError, match="no CUDA device is available; use --device cpu"):
        make_config(device="cuda").validate()


# ---------------------------------------------------------------------------- metrics
def test_time_to_accuracy_from_known_curve():
    accuracies = [0.30, 0.55, 0.50, 0.92, 0.91]
    seconds = [1.0, 2.5, 3.5, 4.0, 5.0]
    samples = [100, 200, 300, 400, 500]
    reached = time_to_accuracy(accuracies, seconds, samples, (0.5, 0.9, 0.95))
    assert reached == {
        "tta_seconds_0.50": 2.5,
        "tta_samples_0.50": 200.0,
        "tta_seconds_0.90": 4.0,
        "tta_samples_0.90": 400.0,
    }  # 0.95 never reached: absent


def test_jaccard_of_masks():
    previous = subset_mask(torch.tensor([0, 1, 2, 3]), 10)
    current = subset_mask(torch.tensor([2, 3, 4, 5, 6, 7]), 10)
    assert jaccard(previous, current).item() == pytest.approx(2 / 8)
    assert jaccard(current, current).item() == 1.0


def test_summarize_realized_ratio_and_usage():
    history = [
        {
            "test_accuracy": 0.4,
            "train_seconds": 1.0,
            "eval_seconds": 0.2,
            "samples_trained": 50,
            "scoring_forward_passes": 0,
        },
        {
            "test_accuracy": 0.6,
            "train_seconds": 2.0,
            "eval_seconds": 0.4,
            "samples_trained": 75,
            "scoring_forward_passes": 0,
        },
    ]
    # Second epoch trained 25 of a 50-sample plan (budget cut): 1.5 epochs of a 100-sample set.
    usage = torch.tensor([2, 1, 0, 0] + [1] * 96)
    summary = summarize(history, usage, 100, 1.5, (0.5,), device_count=1)
    assert summary["realized_prune_ratio"] == pytest.approx(0.5)
    assert summary["zero_usage_samples"] == 2
    assert summary["final_test_accuracy"] == 0.6 and summary["best_test_accuracy"] == 0.6
    assert summary["train_device_hours"] == pytest.approx(2.0 / 3600)
    assert summary["total_device_hours"] == pytest.approx(2.4 / 3600)
    assert summary["tta_seconds_0.50"] == 2.0
    assert summary["evaluations"] == 2


def test_summarize_reads_accuracy_from_the_evaluations_only():
    def epoch(samples: int, accuracy: float | None = None) -> dict[str, float]:
        entry = {
            "train_seconds": samples / 100,
            "eval_seconds": 0.0,
            "samples_trained": samples,
            "scoring_forward_passes": 0,
        }
        return entry | ({"test_accuracy": accuracy} if accuracy is not None else {})

    # Evaluated at epochs 1 and 3 only: a target first met there is timed there.
    history = [epoch(100), epoch(200, 0.55), epoch(300), epoch(400, 0.52)]
    summary = summarize(history, torch.ones(100), 100, 4.0, (0.5, 0.6))
    assert summary["evaluations"] == 2
    assert summary["final_test_accuracy"] == 0.52 and summary["best_test_accuracy"] == 0.55
    assert summary["tta_samples_0.50"] == 200.0 and summary["tta_seconds_0.50"] == 2.0
    assert "tta_samples_0.60" not in summary
    unevaluated = summarize(history[:1], torch.ones(100), 100, 1.0, (0.5,))
    assert unevaluated["evaluations"] == 0 and "final_test_accuracy" not in unevaluated


# ---------------------------------------------------------------------------- stores
def test_check_tracking_uri(tmp_path):
    check_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    check_tracking_uri(str(tmp_path / "mlruns"))
    assert not any(tmp_path.iterdir()), "the check must write nothing"
    with pytest.raises(UsageError, match="does not exist"):
        check_tracking_uri(f"sqlite:///{tmp_path}/missing/mlflow.db")
    with pytest.raises(UsageError, match="unreachable"):
        check_tracking_uri("http://127.0.0.1:9", timeout_s=2)


def test_checkpoint_roundtrip_and_corruption(tmp_path):
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"weights": torch.arange(4), "note": "x"})
    state = load_checkpoint(path, torch.device("cpu"))
    assert torch.equal(state["weights"], torch.arange(4)) and state["note"] == "x"
    assert os.listdir(tmp_path) == ["run.pt"], "no temporary file is left behind"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UsageError, match="unreadable"):
        load_checkpoint(path, torch.device("cpu"))
