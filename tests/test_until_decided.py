"""Seeds until decided: undecided cells get rounds of seeds, decided ones none."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from prunebench.reports.sections.answer import rounds, verdict_table
from prunebench.suite.preset_toml import parse_preset
from prunebench.suite.until_decided import SAME_COMPUTE, run_until_decided

PRESET = {
    "name": "rounds",
    "datasets": ["synthetic"],
    "models": ["small_cnn"],
    "budget": "epochs:2",
    "seeds": [0, 1, 2],
    "prune_ratios": [0.5],
    "subset": 200,
    "pruners": [{"name": "full"}, {"name": "random"}, {"name": "rs2"}],
}
# Planted truths (accuracy means; spread 0.2 points, numpy seed = run seed): random is exactly
# one margin below full data (undecided at every look, H0's boundary), rs2 far below (lossy).
TRUTH = {"full": 0.90, "random": 0.897, "rs2": 0.85}


def test_an_undecided_cell_gets_more_seeds_and_a_decided_one_does_not(mlflow_sqlite):
    preset = parse_preset(PRESET, "test")
    trained: dict[tuple[str, float], dict[int, float]] = {}

    def run_round(current):
        for cfg in current.main_cells():
            key = (cfg.pruner_label, round(cfg.target_prune_ratio(), 9))
            noise = 0.002 * np.random.default_rng(cfg.seed + 100 * len(key[0])).standard_normal()
            trained.setdefault(key, {})[cfg.seed] = TRUTH[cfg.pruner_label] + noise

    looks = run_until_decided(
        preset, run_round, mlflow_sqlite, max_seeds=9, round_seeds=3, margin=0.003,
        results=lambda current: trained,
    )  # fmt: skip
    assert len(looks) == 3  # 3, 6, 9 seeds: the design's 3 looks
    assert sorted(trained[("rs2", 0.5)]) == [0, 1, 2]  # lossy at the first look: no more seeds
    assert len(trained[("random", 0.5)]) == 9  # undecided to the end
    assert len(trained[("full", 0.0)]) == 9  # the reference it is undecided against, too
    assert looks[0].added[("random", 0.5)] == [3, 4, 5]
    assert ("rs2", 0.5) not in looks[0].added
    assert all(key[0] != SAME_COMPUTE for key in looks[0].added)  # the preset has none
    experiment = MlflowClient(mlflow_sqlite).get_experiment_by_name("rounds")
    assert experiment.tags["prunebench.looks"] == "3"  # the report tests at 0.05 / 3
    assert experiment.tags["prunebench.rounds"] == "3+3"  # 3 seeds, then 3 a round


def test_the_report_says_how_many_rounds_and_seeds_each_verdict_rests_on():
    board = pd.DataFrame(
        {
            "is_full": [False, False],
            "comparison": ["main", "main"],
            "n_seeds": [3, 9],
            "prune_ratio": [0.5, 0.5],
            "pruner_label": ["rs2", "random"],
            "lossless_verdict": ["lossy", "undecided"],
            "lossless_lower_bound": [-0.05, -0.004],
            "same_compute_verdict": [pd.NA, pd.NA],
            "same_compute_lower_bound": [float("nan"), float("nan")],
        }
    )
    table = verdict_table(board, design=(3, 3)).set_index("Pruner")
    assert table.loc["rs2", "Seeds (rounds)"] == "3 (1)"  # decided at the first look
    assert table.loc["random", "Seeds (rounds)"] == "9 (3)"  # two rounds added
    assert list(table.index) == ["random", "rs2"]  # the better lower bound first
    assert "Seeds (rounds)" not in verdict_table(board).columns  # no design: not shown
    assert [rounds(n, (5, 5)) for n in (5, 6, 10, 11, 20)] == [1, 2, 2, 3, 4]
