"""Time figures say when they cannot be trusted (issue 21): every run records its training
throughput and process CPU time, and the report flags the time-derived figures of a run whose
throughput is far off its suite's runs on the same dataset, model and device. Real training on
synthetic data; one run is slowed on purpose by a busy Python thread beside it (GIL contention)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from mlflow import MlflowClient

from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig
from prunebench.bench.run import train_run
from prunebench.reports.frame import THROUGHPUT_FACTOR, usable_runs
from prunebench.reports.leaderboard import leaderboard
from prunebench.reports.runs import load_experiment, training_runs
from prunebench.reports.sections.leaderboard import format_leaderboard

CONFIG = {
    "dataset": "synthetic", "model": "small_cnn", "pruner": "full", "pruner_params": {},
    "subset": 256, "batch_size": 16, "lr": 0.05, "device": "cpu", "num_threads": 1,
    "accuracy_targets": (0.2,),
}  # fmt: skip


@contextlib.contextmanager
def busy_thread() -> Iterator[None]:
    """A thread spinning in pure Python beside the run: it holds the GIL between the
    training loop's switches, as a competing job holds a shared core."""
    stop = threading.Event()

    def spin() -> None:
        count = 0
        while not stop.is_set():
            count += 1

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_a_run_slowed_on_purpose_has_its_time_figures_flagged(tmp_path, mlflow_sqlite):
    """Three seeds as they are and one (another label, same dataset, model and device) beside
    a busy thread: only the slowed run's throughput is more than THROUGHPUT_FACTOR (1.5) off
    the median, so only its row's device-hours, saved % and time to accuracy are marked."""
    budget = parse_budget("epochs:2")
    for seed in range(3):
        cfg = RunConfig(**CONFIG, seed=seed, budget=budget)
        train_run(cfg, mlflow_sqlite, "trust", tmp_path / f"ckpt-{seed}", quiet=True)
    slowed = RunConfig(**CONFIG, seed=0, budget=budget, pruner_label="full-slowed")
    with busy_thread():
        train_run(slowed, mlflow_sqlite, "trust", tmp_path / "ckpt-slowed", quiet=True)

    data = load_experiment(MlflowClient(mlflow_sqlite), "trust", mlflow_sqlite)
    train = training_runs(data.runs)
    runs = usable_runs(train).set_index("pruner_label")
    for metric in ("train_samples_per_second", "process_cpu_seconds_total"):
        assert (runs[f"metrics.{metric}"] > 0).all(), metric
    speed = runs["metrics.train_samples_per_second"]
    assert speed["full-slowed"] * THROUGHPUT_FACTOR < speed["full"].min(), speed

    board = leaderboard(train, histories=data.histories).set_index("pruner_label")
    assert bool(board.loc["full-slowed", "time_flag"])
    assert "time figures not trusted" in board.loc["full-slowed", "notes"]
    assert not bool(board.loc["full", "time_flag"]), board.loc["full", "notes"]
    shown = format_leaderboard(board.reset_index()).set_index("Pruner")
    assert shown.loc["full-slowed", "Train device-h"].endswith("(!)")
    assert not shown.loc["full", "Train device-h"].endswith("(!)")
    # The hardware-independent saving is there beside it (both train every sample: 0%).
    assert shown.loc["full-slowed", "Saved passes vs full (%)"] == "0.0"
