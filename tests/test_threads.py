"""A run pins its torch thread count: the same config gives bit-identical results in any process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from mlflow import MlflowClient

from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig
from prunebench.bench.run import train_run

REPO = Path(__file__).resolve().parents[1]
TIMINGS = {"train_seconds", "eval_seconds", "eval_train_seconds", "process_cpu_seconds"}
CONFIG = {
    "dataset": "synthetic", "model": "small_cnn", "pruner": "infobatch",
    "pruner_params": {"prune_ratio": 0.5}, "subset": 300, "batch_size": 32, "lr": 0.05,
    "device": "cpu", "num_threads": 2,
}  # fmt: skip
BUDGET = "epochs:2"
DRIVER = """
import json, sys, torch
from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig
from prunebench.bench.run import train_run
torch.set_num_threads(3)  # what a suite worker process might have had: the run overrides it
cfg = RunConfig(**json.loads(sys.argv[3]), budget=parse_budget(sys.argv[4]))
result = train_run(cfg, sys.argv[1], "threads", sys.argv[2], quiet=True)
print(json.dumps(result.history))
"""


def _without_timings(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in entry.items() if k not in TIMINGS} for entry in history]


def test_a_run_pins_its_thread_count_so_results_do_not_depend_on_the_process(
    tmp_path, mlflow_sqlite
):
    torch.set_num_threads(1)  # this process: one thread, the other: three
    try:
        cfg = RunConfig(**CONFIG, budget=parse_budget(BUDGET))
        here = train_run(cfg, mlflow_sqlite, "threads", tmp_path / "a")
    finally:
        torch.set_num_threads(1)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    there = subprocess.run(
        [
            sys.executable,
            "-c",
            DRIVER,
            mlflow_sqlite,
            str(tmp_path / "b"),
            json.dumps(CONFIG),
            BUDGET,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert there.returncode == 0, there.stderr[-3000:]
    history = json.loads(there.stdout.strip().splitlines()[-1])
    assert _without_timings(history) == _without_timings(here.history)  # exact, not approximate
    client = MlflowClient(mlflow_sqlite)
    experiment = client.get_experiment_by_name("threads").experiment_id
    runs = client.search_runs([experiment])
    assert len(runs) == 2 and {run.data.params["num_threads"] for run in runs} == {"2"}
