"""Gradient alignment, within-run gradient-norm spread, and the OneCycle recipe against torch.

Hand computations are independent of prunebench's code path: the closed-form softmax
cross-entropy of a linear model, differentiated by torch.autograd.grad in float64. prunebench's
path computes in float32 (the per-sample loss is float32 as in training), hence the tolerances.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from torch import nn

from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig
from prunebench.bench.diagnostics import (
    checkpoints_reached,
    gradient_alignment,
    probe_indices,
    tensor_batches,
)
from prunebench.bench.distributed import Dist
from prunebench.bench.metrics import mean_and_std
from prunebench.bench.run import train_run
from prunebench.bench.schedule import PUBLIC_RECIPE, OneCycle
from prunebench.bench.trainer import Trainer
from prunebench.errors import ConfigError
from prunebench.suite.preset_toml import parse_preset
from prunebench.suite.presets import load_preset

FLOAT32_TOLERANCE = 1e-5
"""Relative error of a float32 gradient path against the float64 hand computation."""


pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------- known data
N, FEATURES, CLASSES, SMOOTHING = 12, 3, 4, 0.1


def known_data() -> tuple[torch.Tensor, torch.Tensor, nn.Linear]:
    """Fixed features, labels and a linear model with fixed weights."""
    generator = torch.Generator().manual_seed(1234)
    features = torch.randn(N, FEATURES, generator=generator)
    labels = torch.arange(N) % CLASSES
    model = nn.Linear(FEATURES, CLASSES)
    with torch.no_grad():
        model.weight.copy_(torch.randn(CLASSES, FEATURES, generator=generator))
        model.bias.copy_(torch.randn(CLASSES, generator=generator))
    return features, labels, model


def closed_form_gradient(
    model: nn.Linear, features: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor
) -> np.ndarray:
    """d/d(W, b) of mean_i w_i * CE_smoothed(W x_i + b, y_i), written out, in float64."""
    weight = model.weight.detach().double().clone().requires_grad_(True)
    bias = model.bias.detach().double().clone().requires_grad_(True)
    logits = features.double() @ weight.T + bias
    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    target = torch.full((len(labels), CLASSES), SMOOTHING / CLASSES, dtype=torch.float64)
    target[torch.arange(len(labels)), labels] += 1.0 - SMOOTHING
    losses = -(target * log_probs).sum(dim=1)
    loss = (weights.double() * losses).mean()
    grad_w, grad_b = torch.autograd.grad(loss, (weight, bias))
    return torch.cat([grad_w.reshape(-1), grad_b]).numpy()


def test_grad_cosine_is_one_for_all_data_with_unit_weights():
    features, labels, model = known_data()
    order = torch.randperm(N, generator=torch.Generator().manual_seed(5))
    result = gradient_alignment(
        model,
        tensor_batches(features, labels, 5),
        tensor_batches(features[order], labels[order], 4),  # other order, other batching
        torch.ones(N),
        label_smoothing=SMOOTHING,
    )
    assert result.grad_cosine == pytest.approx(1.0, abs=FLOAT32_TOLERANCE)
    expected = np.linalg.norm(closed_form_gradient(model, features, labels, torch.ones(N)))
    assert result.full_grad_norm == pytest.approx(expected, rel=FLOAT32_TOLERANCE)
    assert result.plan_grad_norm == pytest.approx(expected, rel=FLOAT32_TOLERANCE)
    assert result.seconds >= 0


def test_grad_cosine_equals_the_hand_computation_for_a_weighted_subset():
    features, labels, model = known_data()
    plan = torch.tensor([7, 0, 3, 3, 9, 11, 2])  # a subset with a repeat
    weights = torch.tensor([1.5, 0.5, 2.0, 1.0, 3.0, 0.25, 1.0])
    full = closed_form_gradient(model, features, labels, torch.ones(N))
    subset = closed_form_gradient(model, features[plan], labels[plan], weights)
    cosine = float(full @ subset / (np.linalg.norm(full) * np.linalg.norm(subset)))
    assert cosine < 0.99  # the constructed subset really points elsewhere

    result = gradient_alignment(
        model,
        tensor_batches(features, labels, 5),
        tensor_batches(features[plan], labels[plan], 3),
        weights,
        label_smoothing=SMOOTHING,
    )
    assert result.grad_cosine == pytest.approx(cosine, abs=FLOAT32_TOLERANCE)
    assert result.full_grad_norm == pytest.approx(np.linalg.norm(full), rel=FLOAT32_TOLERANCE)
    assert result.plan_grad_norm == pytest.approx(np.linalg.norm(subset), rel=FLOAT32_TOLERANCE)


def test_measuring_changes_no_weight_optimizer_state_running_stat_or_rng():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(40, 6, generator=generator)
    labels = torch.randint(0, 3, (40,), generator=generator)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for images, targets, _ in tensor_batches(features, labels, 16):  # real steps: state exists
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(images), targets).backward()
        optimizer.step()
    model.eval()  # the measurement runs in train mode and must restore this
    weights_before = copy.deepcopy(model.state_dict())  # includes running stats and counters
    optimizer_before = copy.deepcopy(optimizer.state_dict())
    grads_before = [p.grad.clone() for p in model.parameters()]
    rng_before = torch.get_rng_state()
    assert int(model[1].num_batches_tracked) == 3

    result = gradient_alignment(
        model,
        tensor_batches(features, labels, 16),
        tensor_batches(features[:10], labels[:10], 16),
        torch.full((10,), 2.0),
        label_smoothing=SMOOTHING,
    )
    assert -1.0 <= result.grad_cosine <= 1.0 and result.full_grad_norm > 0
    assert not model.training and not model[1].training
    state = model.state_dict()
    assert state.keys() == weights_before.keys()
    for key, value in weights_before.items():
        assert torch.equal(state[key], value), key
    optimizer_after = optimizer.state_dict()
    assert optimizer_after["param_groups"] == optimizer_before["param_groups"]
    for index, entry in optimizer_before["state"].items():
        assert torch.equal(
            optimizer_after["state"][index]["momentum_buffer"], entry["momentum_buffer"]
        )
    for parameter, grad in zip(model.parameters(), grads_before, strict=True):
        assert torch.equal(parameter.grad, grad)
    assert torch.equal(torch.get_rng_state(), rng_before)  # Dropout drew, fork_rng restored


def test_checkpoints_reached_at_the_first_epoch_end_at_or_past_them():
    points = (0.2, 0.4, 0.6, 0.8, 1.0)
    budget = parse_budget("epochs:3")
    ends = [budget.progress(epoch, 0.0, 0, 0.0) for epoch in range(4)]
    crossed = [checkpoints_reached(points, a, b) for a, b in itertools.pairwise(ends)]
    assert crossed == [[0.2], [0.4, 0.6], [0.8, 1.0]]
    budget = parse_budget("epochs:5")  # 3/5 is 0.6 exactly, and counts once
    ends = [budget.progress(epoch, 0.0, 0, 0.0) for epoch in range(6)]
    crossed = [checkpoints_reached(points, a, b) for a, b in itertools.pairwise(ends)]
    assert crossed == [[p] for p in points]
    assert checkpoints_reached(points, 0.41, 0.59) == []


def test_probe_is_fixed_sorted_and_of_the_stated_size():
    probe = probe_indices(1000, 64, seed=3)
    assert len(probe) == 64 and len(set(probe.tolist())) == 64
    assert torch.equal(probe, probe.sort().values) and int(probe.max()) < 1000
    assert torch.equal(probe, probe_indices(1000, 64, seed=3))
    assert not torch.equal(probe, probe_indices(1000, 64, seed=4))
    assert torch.equal(probe_indices(10, None, seed=3), torch.arange(10))
    assert torch.equal(probe_indices(10, 50, seed=3), torch.arange(10))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"grad_alignment_checkpoints": ()}, "grad_alignment_checkpoints"),
        ({"grad_alignment_checkpoints": (0.5, 0.2)}, "increase"),
        ({"grad_alignment_checkpoints": (0.0, 1.0)}, "checkpoint"),
        ({"grad_alignment_probe": 0}, "grad_alignment_probe"),
        ({"lr_pct_start": 1.0}, "lr_pct_start"),
        ({"lr_div_factor": 0}, "lr_div_factor"),
        ({"base_momentum": 0.96}, "swap"),
        ({"cycle_momentum": 1}, "cycle_momentum"),
    ],
)
def test_recipe_and_alignment_settings_are_validated(overrides, match):
    cfg = synthetic_config(**overrides)
    with pytest.raises(ConfigError, match=match):
        cfg.validate()


# ---------------------------------------------------------------------------- in a real run
def synthetic_config(**overrides) -> RunConfig:
    values = {
        "dataset": "synthetic",
        "model": "small_cnn",
        "pruner": "infobatch",
        "pruner_params": {"prune_ratio": 0.5},
        "budget": parse_budget("epochs:3"),
        "subset": 300,
        "batch_size": 32,
        "lr": 0.05,
        "device": "cpu",
        "accuracy_targets": (0.5,),
    }
    values.update(overrides)
    return RunConfig(**values)


class RecordingTrainer(Trainer):
    """The real trainer, also keeping every step's gradient norm (a host read per step)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.step_norms: list[float] = []

    def _step(self, images, labels, weights, divisor):
        losses, grad_norm, logits = super()._step(images, labels, weights, divisor)
        self.step_norms.append(float(grad_norm))
        return losses, grad_norm, logits


def test_within_run_grad_norm_std_equals_numpy_over_recorded_steps():
    trainer = RecordingTrainer(synthetic_config(), Dist(torch.device("cpu")))
    for _ in range(2):
        trainer.step_norms.clear()
        entry = trainer.train_epoch(show_progress=False)
        norms = np.asarray(trainer.step_norms, dtype=np.float64)
        assert len(norms) > 3 and np.std(norms) > 0
        # ddof=0: the population spread of the epoch's steps (numpy's default).
        assert entry["grad_norm_std"] == pytest.approx(np.std(norms, ddof=0), rel=1e-9)
        assert entry["grad_norm"] == pytest.approx(np.mean(norms), rel=1e-12)
        assert entry["train_steps"] == len(norms)  # the weight that pools epochs into phases


def test_mean_and_std_of_sums():
    values = np.random.default_rng(0).normal(3.0, 0.5, size=257)
    mean, std = mean_and_std(float(values.sum()), float((values**2).sum()), len(values))
    assert mean == pytest.approx(values.mean(), rel=1e-12)
    assert std == pytest.approx(values.std(ddof=0), rel=1e-9)
    assert mean_and_std(3 * 0.1, 3 * 0.1**2, 3) == (pytest.approx(0.1), 0.0)  # never NaN


def test_alignment_in_a_run_is_logged_and_leaves_training_unchanged(mlflow_sqlite, tmp_path):
    on = synthetic_config(grad_alignment=True, grad_alignment_probe=200)
    off = synthetic_config()
    assert on.config_hash() != off.config_hash()
    kwargs = {"tracking_uri": mlflow_sqlite, "experiment": "diag"}
    measured = train_run(on, checkpoint_dir=tmp_path / "on", **kwargs)
    plain = train_run(off, checkpoint_dir=tmp_path / "off", **kwargs)
    assert measured.status == plain.status == "FINISHED"
    for with_, without in zip(measured.history, plain.history, strict=True):
        assert ("test_accuracy" in with_) == ("test_accuracy" in without)  # same eval points
        for key in ("test_accuracy", "test_loss", "train_loss", "grad_norm", "grad_norm_std"):
            # bit for bit: the measurement changed nothing
            assert with_.get(key) == without.get(key), key

    # epochs:3 crosses 0.2 at epoch 0, 0.4 and 0.6 at epoch 1, 0.8 and 1.0 at epoch 2.
    progress = [entry["grad_alignment_progress"] for entry in measured.history]
    assert progress == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert all(-1 <= entry["grad_cosine"] <= 1 for entry in measured.history)
    assert all(entry["grad_norm_full"] > 0 for entry in measured.history)
    seconds = [entry["diagnostics_seconds"] for entry in measured.history]
    assert seconds == sorted(seconds) and seconds[0] > 0
    assert measured.metrics["diagnostics_seconds_total"] == seconds[-1]
    assert "diagnostics_seconds_total" not in plain.metrics

    client = MlflowClient(mlflow_sqlite)
    history = client.get_metric_history(measured.run_id, "grad_cosine")
    assert [m.step for m in history] == [0, 1, 2]
    params = client.get_run(measured.run_id).data.params
    assert params["grad_alignment"] == "True" and params["grad_alignment_probe"] == "200"
    assert params["autocast_dtype"] == "none" and params["label_smoothing"] == "0.0"
    assert params["lr_pct_start"] == "0.25" and params["cycle_momentum"] == "False"


def test_an_epoch_without_checkpoint_logs_no_alignment():
    cfg = synthetic_config(
        grad_alignment=True, grad_alignment_checkpoints=(1.0,), budget=parse_budget("epochs:2")
    )
    trainer = Trainer(cfg, Dist(torch.device("cpu")))
    first = trainer.train_epoch(show_progress=False)
    second = trainer.train_epoch(show_progress=False)
    assert "grad_cosine" not in first and first["diagnostics_seconds"] == 0.0
    assert second["grad_alignment_progress"] == 1.0 and second["diagnostics_seconds"] > 0


# ---------------------------------------------------------------------------- the recipe
def test_lr_and_momentum_follow_torch_onecycle_at_step_over_total_steps():
    total_steps, max_lr = 1000, 0.2
    schedule = OneCycle(
        max_lr=max_lr,
        pct_start=0.3,
        div_factor=25.0,
        final_div_factor=1e4,
        cycle_momentum=True,
        base_momentum=0.85,
        max_momentum=0.95,
    )
    parameter = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=max_lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr,
        total_steps=total_steps,
        pct_start=0.3,
        anneal_strategy="cos",
        cycle_momentum=True,
        base_momentum=0.85,
        max_momentum=0.95,
        div_factor=25.0,
        final_div_factor=1e4,
    )
    # Tolerance: torch's phase fraction at step s differs from progress s / T's by at most
    # 1 / (pct_start * T - 1) (warm-up) or 1 / ((1 - pct_start) * T) (anneal), and a cosine
    # from a to b moves at most pi/2 * |a - b| per unit fraction.
    initial, final = max_lr / 25.0, max_lr / 25.0 / 1e4
    shift = max(1 / (0.3 * total_steps - 1), 1 / (0.7 * total_steps))
    lr_tolerance = math.pi / 2 * max(max_lr - initial, max_lr - final) * shift
    momentum_tolerance = math.pi / 2 * (0.95 - 0.85) * shift
    checked = set()
    for step in range(total_steps):
        group = optimizer.param_groups[0]
        if step in (0, 1, 150, 298, 299, 300, 301, 500, 777, 998, 999) or step % 37 == 0:
            progress = step / total_steps
            assert schedule.lr(progress) == pytest.approx(group["lr"], abs=lr_tolerance), step
            assert schedule.momentum_at(progress) == pytest.approx(
                group["momentum"], abs=momentum_tolerance
            ), step
            checked.add(step)
        optimizer.step()
        if step < total_steps - 1:  # torch refuses to step past total_steps
            scheduler.step()
    assert len(checked) > 30
    # The ends agree exactly: torch starts at max_lr / 25 and momentum 0.95.
    assert schedule.lr(0.0) == pytest.approx(initial, rel=1e-12)
    assert schedule.momentum_at(0.0) == pytest.approx(0.95, rel=1e-12)
    assert schedule.lr(1.0) == pytest.approx(final, rel=1e-12)
    assert schedule.momentum_at(0.3) == pytest.approx(0.85, rel=1e-12)


def test_fixed_momentum_without_cycling():
    schedule = OneCycle(max_lr=0.2, momentum=0.9)
    assert {schedule.momentum_at(p) for p in (0.0, 0.25, 0.6, 1.0)} == {0.9}


def test_paper_presets_use_the_public_recipe_and_short_presets_keep_their_own():
    defaults = synthetic_config()
    for name in ("paper-cifar10-r18", "paper-cifar100-r18"):
        cfg = load_preset(name).cells()[0]
        for key, value in PUBLIC_RECIPE.items():
            assert getattr(cfg, key) == value, (name, key)
        assert cfg.grad_alignment is True
    for name in ("demo-fmnist", "quick-cifar10"):
        for cfg in load_preset(name).cells():
            for key in PUBLIC_RECIPE:
                assert getattr(cfg, key) == getattr(defaults, key), (name, key)
    assert not any(cfg.grad_alignment for cfg in load_preset("quick-cifar10").cells())


def test_demo_measures_alignment_for_full_data_and_orderdp_infobatch_at_its_top_ratio():
    # The small-CNN demo, kept as the unsaturated contrast (the MLP demo measures OrderDP only).
    preset = load_preset("unsaturated-fmnist-cnn")
    top = max(max(entry.prune_ratios) for entry in preset.pruners)
    measured = {
        (cfg.label, cfg.target_prune_ratio()) for cfg in preset.cells() if cfg.grad_alignment
    }
    assert measured == {("full", 0.0), ("orderdp", top), ("infobatch", top)}
    # Overriding the ratios keeps the per-ratio settings only where their ratio is still run.
    narrowed = load_preset("unsaturated-fmnist-cnn", prune_ratios=[0.5])
    assert {cfg.label for cfg in narrowed.cells() if cfg.grad_alignment} == {"full"}


PRESET = {
    "name": "t",
    "datasets": ["synthetic"],
    "models": ["small_cnn"],
    "budget": "epochs:2",
    "seeds": [0],
    "prune_ratios": [0.3, 0.7],
    "subset": 256,
}


def _preset(**entry):
    return parse_preset({**PRESET, "pruners": [{"name": "full"}, entry]}, "t.toml")


def test_pruner_entry_settings_apply_to_its_cells_at_the_chosen_ratios():
    preset = _preset(
        name="orderdp",
        settings={"grad_alignment": True, "grad_alignment_checkpoints": [0.5, 1]},
        settings_ratios=[0.7],
    )
    by_ratio = {cfg.target_prune_ratio(): cfg for cfg in preset.cells()}
    assert by_ratio[0.7].grad_alignment
    assert by_ratio[0.7].grad_alignment_checkpoints == (0.5, 1.0)
    assert not by_ratio[0.3].grad_alignment and not by_ratio[0.0].grad_alignment
    everywhere = _preset(name="random", settings={"label_smoothing": 0.1})
    smoothing = {cfg.label: cfg.label_smoothing for cfg in everywhere.cells()}
    assert smoothing == {"full": 0.0, "random": 0.1}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"settings": {"grad_alignmnt": True}}, "unknown run setting 'grad_alignmnt'"),
        ({"settings": {"grad_alignment": 1}}, "'grad_alignment' has the wrong type"),
        ({"settings": {"lr_pct_start": 0.0}}, "lr_pct_start must be in"),
        ({"settings": {"grad_alignment": True}, "settings_ratios": [0.5]}, "is not one of"),
        ({"settings_ratios": [0.7]}, "needs a 'settings' table"),
        ({"settings": "on"}, "'settings' must be a table"),
    ],
)
def test_bad_pruner_entry_settings_are_config_errors(entry, message):
    with pytest.raises(ConfigError, match=message):
        _preset(name="orderdp", **entry)
