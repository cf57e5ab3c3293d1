"""Fair comparisons in a suite (issue 15): same-compute full data, equal time, annealing by
budget progress. Real training on synthetic data, real MLflow and Optuna stores."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from prunebench import record
from prunebench.cli.main import main
from prunebench.suite.presets import load_preset
from prunebench.suite.runner import WAITS_FOR_FULL_DATA, WAITS_FOR_PRUNED, plan, run_suite

FAIR = """
name = "fair"
datasets = ["synthetic"]
models = ["small_cnn"]
budget = "{budget}"
seeds = [0]
prune_ratios = [0.5]
subset = 64
batch_size = 64                          # one step per epoch: "one step" is one epoch here
lr = 0.05
accuracy_targets = [0.3]
same_compute = {same_compute}
equal_time = {equal_time}

[[pruners]]
name = "full"

[[pruners]]
name = "random"

[[pruners]]
name = "infobatch"
label = "infobatch-anneal"
params = {{ anneal = true, delta = 0.5, ratio_mode = "realized" }}
"""
N = 64
DELTA = 0.5


def write(tmp_path, budget="epochs:8", same_compute="true", equal_time="[0.5]"):
    path = tmp_path / "fair.toml"
    path.write_text(FAIR.format(budget=budget, same_compute=same_compute, equal_time=equal_time))
    return path


@pytest.fixture
def stores(tmp_path, monkeypatch, mlflow_sqlite):
    monkeypatch.chdir(tmp_path)
    return {
        "tracking_uri": mlflow_sqlite,
        "storage_url": f"sqlite:///{tmp_path / 'optuna.db'}",
        "checkpoint_dir": tmp_path / "checkpoints",
    }


def train_runs(tracking_uri: str) -> list:
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("fair")
    if experiment is None:
        return []
    return client.search_runs(
        [experiment.experiment_id], filter_string=record.train_filter(), max_results=1000
    )


def history(tracking_uri: str, run, key: str) -> list[float]:
    points = MlflowClient(tracking_uri).get_metric_history(run.info.run_id, key)
    return [p.value for p in sorted(points, key=lambda p: p.step)]


def by_comparison(runs, comparison: str) -> list:
    return [r for r in runs if r.data.tags[record.TAG_COMPARISON] == comparison]


def label_of(run) -> str:
    return run.data.params["pruner_label"]


def assert_anneals_at_delta(tracking_uri: str, run, start_progress: list[float]) -> None:
    """Epochs that start at budget progress >= delta train on all data; before them (epoch 0
    aside) InfoBatch prunes: annealing happens, at delta of the budget."""
    kept = history(tracking_uri, run, "kept_fraction")
    assert len(kept) == len(start_progress)
    annealed = [e for e, p in enumerate(start_progress) if p >= DELTA - 1e-9]
    assert annealed, f"the run never reached progress {DELTA}: {start_progress}"
    assert all(kept[e] == 1.0 for e in annealed), (kept, start_progress)
    assert min(kept[1 : annealed[0]], default=0.0) < 1.0, (kept, start_progress)


def test_dry_run_lists_same_compute_and_waiting_equal_time_cells(stores, tmp_path, capsys):
    path = write(tmp_path)
    preset = load_preset(str(path))
    # 3 main cells, 1 same-compute full run (ratio 0.5), 3 equal-time cells (every main cell).
    assert [cfg.comparison() for cfg in preset.cells()] == ["main"] * 3 + ["same_compute"] + [
        "equal_time"
    ] * 3
    args = ["suite", str(path), "--dry-run", "--tracking-uri", stores["tracking_uri"],
            "--storage", stores["storage_url"],
            "--checkpoint-dir", str(stores["checkpoint_dir"])]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "7 cells (7 runs)" in out
    assert "synthetic/small_cnn/full/0 (same_compute samples:256)" in out  # 0.5 * 64 * 8 passes
    assert out.count(f"(equal_time time-fraction:0.5) seed 0   runs  [{WAITS_FOR_FULL_DATA}]") == 3
    assert train_runs(stores["tracking_uri"]) == []  # a dry run writes no run


def test_equal_time_and_same_compute_suite(stores, tmp_path):
    """Under epochs:8 on 64 samples, one step per epoch: the same-compute full run trains the
    passes of the pruned runs that meet ratio 0.5 (tolerance: per-epoch rounding, at most 0.5
    sample an epoch); each
    equal-time run trains half the full-data run's seconds, stopping within one step of them;
    InfoBatch anneals at delta of the epochs budget and of the time budget."""
    preset = load_preset(str(write(tmp_path)))
    final = run_suite(preset, **stores)
    assert [state.action for state in final] == ["done"] * 7
    runs = train_runs(stores["tracking_uri"])
    main_runs = {label_of(r): r for r in by_comparison(runs, "main")}
    (same,) = by_comparison(runs, "same_compute")
    equal = {label_of(r): r for r in by_comparison(runs, "equal_time")}
    assert set(main_runs) == set(equal) == {"full", "random", "infobatch-anneal"}

    # Same compute: samples:round((1 - 0.5) * 64 * 8) = 256, the pruned runs' passes.
    assert same.data.params["pruner"] == "full"
    assert float(same.data.params[record.PARAM_MATCHED_PRUNE_RATIO]) == 0.5
    assert same.data.params["budget"] == "samples:256"
    assert same.data.metrics["samples_trained_total"] == 256
    # random keeps round(0.5 * 64) a epoch; InfoBatch annealing from epoch 4 cannot reach 0.5
    # here (its pruning epochs would have to drop more than the public cap allows) and records
    # that signed shortfall: realized minus target, negative.
    pruned = main_runs["random"].data.metrics["samples_trained_total"]
    assert abs(pruned - 256) <= 0.5 * 8, pruned
    infobatch = main_runs["infobatch-anneal"].data.metrics
    assert infobatch["ratio_shortfall"] < 0
    assert infobatch["ratio_shortfall"] == pytest.approx(infobatch["realized_prune_ratio"] - 0.5)
    assert infobatch["pruner.max_weight"] <= 10.0

    # Equal time: 0.5 x the full-data main run's measured training seconds, for every pruner.
    full_seconds = main_runs["full"].data.metrics["train_seconds_total"]
    for label, run in equal.items():
        budget = float(run.data.params[record.PARAM_TIME_BUDGET_SECONDS])
        assert float(run.data.params[record.PARAM_TIME_BUDGET_FRACTION]) == 0.5
        assert budget == pytest.approx(0.5 * full_seconds, rel=1e-9)
        seconds = history(stores["tracking_uri"], run, "train_seconds")
        # The run stops at the first step end at or past the budget: one step (= one epoch
        # here) before the end it was still under it.
        assert [0.0, *seconds][-2] < budget <= seconds[-1], (label, seconds, budget)
        assert run.data.metrics["train_seconds_total"] == pytest.approx(seconds[-1])

    # Annealing at delta: epochs budget (main run) and time budget (equal-time run).
    epochs = [e / 8 for e in range(8)]
    assert_anneals_at_delta(stores["tracking_uri"], main_runs["infobatch-anneal"], epochs)
    timed = equal["infobatch-anneal"]
    budget = float(timed.data.params[record.PARAM_TIME_BUDGET_SECONDS])
    seconds = history(stores["tracking_uri"], timed, "train_seconds")
    starts = [s / budget for s in [0.0, *seconds[:-1]]]
    assert_anneals_at_delta(stores["tracking_uri"], timed, starts)

    # A rerun finds every cell done: the equal-time cells' identity does not depend on the
    # seconds they resolved to.
    assert [s.action for s in plan(preset, stores["tracking_uri"], stores["checkpoint_dir"])] == [
        "done"
    ] * 7


def test_samples_budget_same_compute_and_annealing(stores, tmp_path):
    """Under samples:512 every pruned run trains exactly 512 passes, so the same-compute full
    run gets 512 too (not round(0.5 * 512)); InfoBatch anneals at delta of the samples budget."""
    preset = load_preset(str(write(tmp_path, budget="samples:512", equal_time="[]")))
    assert len(preset.cells()) == 4
    run_suite(preset, **stores)
    runs = train_runs(stores["tracking_uri"])
    (same,) = by_comparison(runs, "same_compute")
    assert same.data.params["budget"] == "samples:512"
    assert same.data.metrics["samples_trained_total"] == 512
    pruned = [r for r in by_comparison(runs, "main") if label_of(r) != "full"]
    assert [r.data.metrics["samples_trained_total"] for r in pruned] == [512, 512]
    (infobatch,) = [r for r in by_comparison(runs, "main") if label_of(r) == "infobatch-anneal"]
    samples = history(stores["tracking_uri"], infobatch, "samples_trained")
    assert samples[-1] == 512
    assert_anneals_at_delta(
        stores["tracking_uri"], infobatch, [s / 512 for s in [0.0, *samples[:-1]]]
    )


def test_time_budget_same_compute_trains_the_pruned_runs_mean_passes(stores, tmp_path):
    """Under time:0.15 the pruned runs' passes are known only after they ran: the same-compute
    cell waits for them (second phase), then trains their mean samples_trained_total exactly
    (rounded), within one batch (64 samples) of the passes of the pruned runs it matches."""
    path = write(tmp_path, budget="time:0.15", equal_time="[]")
    preset = load_preset(str(path))
    (same_cfg,) = [cfg for cfg in preset.cells() if cfg.comparison() == "same_compute"]
    assert str(same_cfg.budget) == "same-compute:0.5"
    states = plan(preset, stores["tracking_uri"], stores["checkpoint_dir"])
    assert [s.reason for s in states if s.config.comparison() == "same_compute"] == [
        WAITS_FOR_PRUNED
    ]
    final = run_suite(preset, **stores)
    assert [state.action for state in final] == ["done"] * 4
    runs = train_runs(stores["tracking_uri"])
    (same,) = by_comparison(runs, "same_compute")
    pruned = [r for r in by_comparison(runs, "main") if label_of(r) != "full"]
    passes = [r.data.metrics["samples_trained_total"] for r in pruned]
    mean = sum(passes) / len(passes)
    assert same.data.params["budget_kind"] == "samples"
    assert same.data.metrics["samples_trained_total"] == round(mean)
    assert abs(same.data.metrics["samples_trained_total"] - mean) <= 64
    # A rerun finds it done: its identity does not depend on the passes it resolved to.
    assert [s.action for s in plan(preset, stores["tracking_uri"], stores["checkpoint_dir"])] == [
        "done"
    ] * 4
