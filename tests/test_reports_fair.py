"""The fair verdict in the report: realized-ratio rows, CIs, non-inferiority verdicts against full
data and same-compute full data, ties, MLPerf time to accuracy and the equal-time table, on a real
MLflow store of constructed runs (tests/reports_fixtures.fair_suite)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from reports_fixtures import FAIR, FAIR_EXPERIMENT, fill_fair_store

from prunebench import mlflow_store
from prunebench.reports.build import build
from prunebench.reports.runs import runs_frame
from prunebench.reports.searches import trial_verdicts
from prunebench.stats import lossless_test, mean_ci, rank_groups, time_to_accuracy
from prunebench.suite.presets import load_preset
from prunebench.suite.search import run_search

# Building the store and the report takes ~60 s on the 2-core machines: label it.
pytestmark = pytest.mark.slow

LONG = ("synthetic", "small_cnn", "epochs:20")


@pytest.fixture(scope="module")
def fair(tmp_path_factory):
    """(report directory, run specs) of the constructed fair suite."""
    uri, specs = fill_fair_store(tmp_path_factory.mktemp("fair-store"))
    out, _ = build(FAIR_EXPERIMENT, tmp_path_factory.mktemp("fair") / "report", uri, log_run=False)
    return out, specs


@pytest.fixture(scope="module")
def board(fair) -> pd.DataFrame:
    return pd.read_csv(fair[0] / "leaderboard.csv")


def _row(board: pd.DataFrame, label: str, ratio: float, section=FAIR) -> pd.Series:
    match = (
        (board["budget"] == section[2])
        & (board["pruner_label"] == label)
        & np.isclose(board["target_prune_ratio"], ratio)
    )
    assert match.sum() == 1, (label, ratio)
    return board[match].iloc[0]


def _accuracies(specs, pruner, ratio, budget="epochs:10", comparison="") -> np.ndarray:
    return np.array(
        [
            s.final_accuracy
            for s in specs
            if s.pruner == pruner
            and s.ratio == ratio
            and s.budget == budget
            and s.comparison == comparison
        ]
    )


def test_verdicts_against_full_data(fair, board):
    _, specs = fair
    full = _accuracies(specs, "full", 0.0)
    expected = {
        ("orderdp", 0.3): "lossless",  # 0.1 points above full data, tight seeds
        ("random", 0.3): "lossy",  # 2.85 points below
        ("rs2", 0.3): "undecided",  # two seeds 1 point apart: cannot tell
        ("random", 0.5): "undecided",  # one seed: too few to decide
    }
    for (label, ratio), verdict in expected.items():
        row = _row(board, label, ratio)
        acc = _accuracies(specs, label, ratio)
        test = lossless_test(acc, full, margin=0.001, level=0.05)
        assert row["lossless_verdict"] == test.verdict == verdict, label
        assert row["lossless_p_value"] == pytest.approx(test.p_value, nan_ok=True)
        assert row["n_seeds"] == acc.size and row["full_n_seeds"] == 3
        ci = mean_ci(acc)
        assert row["accuracy_mean"] == pytest.approx(acc.mean())
        assert row["accuracy_ci_low"] == pytest.approx(ci.low, nan_ok=True)
        assert row["accuracy_ci_high"] == pytest.approx(ci.high, nan_ok=True)
    assert _row(board, "orderdp", 0.3)["lossless_p_value"] < 0.01
    assert _row(board, "rs2", 0.3)["lossless_p_value"] == pytest.approx(0.468, abs=0.001)
    assert bool(_row(board, "random", 0.5)["lossless_too_few_seeds"])
    assert not bool(_row(board, "rs2", 0.3)["lossless_too_few_seeds"])
    # 95% CI of the two rs2 seeds: 0.910 ± t(0.975, 1) * 0.005 = ± 6.35 points.
    assert _row(board, "rs2", 0.3)["accuracy_ci_high"] == pytest.approx(0.9735, abs=1e-4)
    markdown = (fair[0] / "leaderboard.md").read_text()
    # Each verdict with its one-sided 95% lower bound (points) and the seeds it rests on.
    orderdp = lossless_test(_accuracies(specs, "orderdp", 0.3), full, margin=0.001)
    rs2 = lossless_test(_accuracies(specs, "rs2", 0.3), full, margin=0.001)
    assert orderdp.lower_bound > 0 > rs2.lower_bound
    assert f"| lossless: gains ≥ {100 * orderdp.lower_bound:.2f} (3 vs 3 seeds; " in markdown
    assert f"| undecided: loses ≤ {-100 * rs2.lower_bound:.2f} (2 vs 3 seeds; " in markdown
    assert "| undecided: too few seeds to decide (1 vs 3) |" in markdown
    assert "| 91.15 ± 0.12 |" in markdown  # orderdp: mean ± half the 95% CI
    assert "margin 0.1 accuracy points and level 0.05" in markdown


def test_same_compute_delta_and_verdict(fair, board):
    _, specs = fair
    same = _accuracies(specs, "full", 0.0, "samples:1400", "same_compute")
    # The same-compute runs serve the epochs:10 section (round(0.7 * 200 * 10) = 1400 passes),
    # not epochs:20, and are not a section of their own.
    assert set(board["budget"]) == {"epochs:10", "epochs:20"}
    reference = _row(board, "full (same compute)", 0.3)
    assert reference["accuracy_mean"] == pytest.approx(same.mean())
    assert reference["lossless_verdict"] == "lossy"  # it is ~1 point below full data
    for label, verdict in (("orderdp", "lossless"), ("random", "lossy"), ("rs2", "undecided")):
        row = _row(board, label, 0.3)
        acc = _accuracies(specs, label, 0.3)
        assert row["delta_to_same_compute"] == pytest.approx(acc.mean() - same.mean())
        assert row["same_compute_verdict"] == verdict
        test = lossless_test(acc, same, margin=0.001, level=0.05)
        assert row["same_compute_p_value"] == pytest.approx(test.p_value)
    # No same-compute run at the realized 0.48: nothing to compare with.
    infobatch = _row(board, "infobatch", 0.7)
    assert pd.isna(infobatch["delta_to_same_compute"])
    assert pd.isna(infobatch["same_compute_verdict"])
    markdown = (fair[0] / "leaderboard.md").read_text()
    orderdp = lossless_test(_accuracies(specs, "orderdp", 0.3), same, margin=0.001)
    assert orderdp.difference == pytest.approx(0.0105, abs=1e-4)  # +1.05 points
    assert f"| lossless: gains ≥ {100 * orderdp.lower_bound:.2f} (3 vs 3 seeds; " in markdown


def test_rows_keyed_by_realized_ratio_and_misses_flagged(fair, board):
    infobatch = _row(board, "infobatch", 0.7)
    assert infobatch["prune_ratio"] == pytest.approx(0.48)  # nominal 0.7 realized 0.48
    assert infobatch["ratio_flag"] and infobatch["ratio_miss_runs"] == 3
    assert "misses its target 70.0% by more than 0.01" in infobatch["notes"]
    section = board[board["budget"] == "epochs:10"]
    assert not np.isclose(section["prune_ratio"], 0.7).any()  # no 0.7 row
    assert not section.loc[section["pruner_label"] != "infobatch", "ratio_flag"].any()
    # Alone at 0.48: not ranked against the 0.3 pruners it trains 1.35x fewer passes than.
    assert infobatch["rank"] == 1 and infobatch["letters"] == "a"
    markdown = (fair[0] / "leaderboard.md").read_text()
    assert "| 48 | infobatch | 1 (a) | 48.0 (!) |" in markdown


def test_ties_share_a_rank(fair, board):
    _, specs = fair
    at_30 = board[(board["budget"] == "epochs:10") & np.isclose(board["prune_ratio"], 0.3)]
    ranks = dict(zip(at_30["pruner_label"], at_30["rank"], strict=True))
    samples = {label: _accuracies(specs, label, 0.3) for label in ("orderdp", "rs2", "random")}
    samples["full (same compute)"] = _accuracies(specs, "full", 0.0, "samples:1400", "same_compute")
    expected = rank_groups(samples, 0.05)  # Holm-corrected pairwise Welch tests
    assert ranks == {label: place.rank for label, place in expected.items()}
    # orderdp and rs2 (two spread seeds) cannot be told apart: one shared rank and letter.
    assert ranks["orderdp"] == ranks["rs2"] == 1
    shared = set(_row(board, "orderdp", 0.3)["letters"]) & set(_row(board, "rs2", 0.3)["letters"])
    assert shared  # a letter in common: not significantly different
    markdown = (fair[0] / "leaderboard.md").read_text()
    letters = _row(board, "orderdp", 0.3)["letters"]
    assert f"| 30 | orderdp | 1 ({letters}) |" in markdown


def test_time_to_accuracy_the_mlperf_way(fair, board):
    _, specs = fair
    # Five seeds, one never reaching 0.90: drop the fastest and slowest (the non-converged).
    five = _row(board, "orderdp", 0.5, LONG)
    logged = [
        s.logged.get("tta_seconds_0.90", np.nan)
        for s in specs
        if s.budget == "epochs:20" and s.pruner == "orderdp"
    ]
    assert sorted(logged[:4]) == [10.0, 20.0, 30.0, 40.0] and np.isnan(logged[4])
    assert five["tta_seconds_0.90"] == pytest.approx(30.0)  # mean of 20, 30, 40
    assert five["tta_seconds_0.90_mean"] == pytest.approx(25.0)  # the naive mean, not shown
    assert five["tta_reached_0.90"] == 4
    assert five["tta_seconds_0.90"] == pytest.approx(time_to_accuracy(logged).value)
    # Three seeds: the median.
    orderdp = _row(board, "orderdp", 0.3)
    assert orderdp["tta_seconds_0.80"] == pytest.approx(7.0)  # 1.4 s per epoch, epoch 4
    random = _row(board, "random", 0.3)
    assert random["tta_reached_0.90"] == 0 and pd.isna(random["tta_seconds_0.90"])
    # Resolution: every run evaluates 10 times, one evaluation per epoch's seconds.
    assert orderdp["eval_points"] == 10 and orderdp["eval_interval_seconds"] == pytest.approx(1.4)
    markdown = (fair[0] / "leaderboard.md").read_text()
    assert "Time to accuracy resolution: 10 evaluation points per run, one every 1–2 s" in markdown
    assert "| 7 s (3/3 seeds) |" in markdown


def test_equal_time_table(fair):
    out, specs = fair
    table = pd.read_csv(out / "tables" / "equal_time.csv")
    assert set(table["budget"]) == {"epochs:10"}  # half of its full data's 20 s, not epochs:20
    assert table["time_budget_fraction"].tolist() == [0.5] * 3
    assert table["time_budget_seconds"].tolist() == [10.0] * 3
    rows = table.set_index("pruner_label")
    full = _accuracies(specs, "full", 0.0, "time:10", "equal_time")
    for label in ("orderdp", "random"):
        acc = _accuracies(specs, label, 0.3, "time:10", "equal_time")
        test = lossless_test(acc, full, margin=0.001, level=0.05)
        assert rows.loc[label, "lossless_verdict"] == test.verdict == "lossless"
        assert rows.loc[label, "delta_to_full"] == pytest.approx(acc.mean() - full.mean())
        assert rows.loc[label, "accuracy_ci_low"] == pytest.approx(mean_ci(acc).low)
    # orderdp (89.10) and random (89.15) cannot be told apart; full data trails them both, by
    # as much as Holm-corrected pairwise tests can tell.
    samples = {
        label: _accuracies(specs, label, ratio, "time:10", "equal_time")
        for label, ratio in (("random", 0.3), ("orderdp", 0.3), ("full", 0.0))
    }
    expected = rank_groups(samples, 0.05)
    assert rows["rank"].to_dict() == {label: place.rank for label, place in expected.items()}
    assert rows.loc["random", "rank"] == rows.loc["orderdp", "rank"] == 1
    assert table["pruner_label"].tolist() == ["random", "orderdp", "full"]
    assert rows.loc["random", "letters"] == rows.loc["orderdp", "letters"] == "a"
    assert pd.isna(rows.loc["full", "lossless_verdict"])
    page = (out / "index.html").read_text()
    assert "Equal time budget" in page
    assert "50% of full data&#x27;s training time (10 s)" in page
    markdown = (out / "leaderboard.md").read_text()
    assert "| 1 (a) | random | 30.0 | 30.0 | 89.15 ± 0.62 | 3 | 10 |" in markdown


# ------------------------------------------------------------------ the search's verdict
SEARCH_PRESET = """
name = "search-verdict"
datasets = ["synthetic"]
models = ["small_cnn"]
budget = "epochs:2"
seeds = [0, 1]
prune_ratios = [0.5]

[[pruners]]
name = "full"

[[pruners]]
name = "random"
"""


def _logging_evaluate(tracking_uri: str, preset):
    """A planted evaluator that also records each seed as a real MLflow training run, tagged as
    the search asks (its trials' runs nested under the trial), so the report can re-decide."""
    client = MlflowClient(tracking_uri)

    def evaluate(pruner: str, params: dict, seed: int, tags: dict) -> tuple[float, float]:
        ratio = float(params.get("prune_ratio", 0.0))
        if ratio <= 0.4:  # clearly lossless: full data's accuracies exactly
            accuracy = 0.9 + 0.0002 * seed
        elif ratio <= 0.7:  # one point of seed noise around -0.1 points: undecided
            accuracy = 0.899 + 0.01 * seed
        else:  # ten points below: lossy
            accuracy = 0.8 + 0.0002 * seed
        experiment = client.get_experiment_by_name(preset.name).experiment_id
        run = client.create_run(experiment, tags={"prunebench.kind": "train", **tags})
        params = {
            "dataset": "synthetic", "model": "small_cnn", "pruner": pruner,
            "pruner_label": pruner, "target_prune_ratio": ratio, "seed": seed,
            "budget": preset.budget,
        }  # fmt: skip
        client.log_batch(
            run.info.run_id,
            metrics=[
                Metric("final_test_accuracy", accuracy, 0, 0),
                Metric("realized_prune_ratio", ratio, 0, 0),
            ],
            params=[Param(k, str(v)) for k, v in params.items()],
        )
        client.set_terminated(run.info.run_id, "FINISHED")
        return accuracy, ratio

    return evaluate


def test_search_and_report_give_the_same_verdict(tmp_path, mlflow_sqlite):
    (tmp_path / "preset.toml").write_text(SEARCH_PRESET)
    preset = load_preset(str(tmp_path / "preset.toml"))
    result = run_search(
        preset, "random", trials=12, seeds=2, tracking_uri=mlflow_sqlite,
        storage_url=f"sqlite:///{tmp_path / 'optuna.db'}",
        evaluate=_logging_evaluate(mlflow_sqlite, preset), sampler_seed=3,
    )  # fmt: skip
    out, _ = build(preset.name, tmp_path / "report", mlflow_sqlite, log_run=False)
    runs = runs_frame(
        mlflow_store.search_all_runs(
            mlflow_store.client(mlflow_sqlite),
            mlflow_store.find_experiment_id(mlflow_store.client(mlflow_sqlite), preset.name),
        )
    )
    full = runs[(runs["kind"] == "train") & (runs["pruner"] == "full")]
    verdicts = trial_verdicts(runs, full)
    # Every trial re-decided from its two seeds' runs against the two full-data runs.
    assert len(verdicts) == 12 and set(verdicts["n_seeds"]) == {2}
    assert set(verdicts["full_n_seeds"]) == {2}
    assert verdicts["agrees"].all()
    searched = {row["prune_ratio"]: row["lossless"] for row in result.frontier}
    for ratio, verdict in zip(verdicts["prune_ratio"], verdicts["verdict"], strict=True):
        assert searched[ratio] == (verdict == "lossless")
        assert verdict == ("lossless" if ratio <= 0.4 else "undecided" if ratio <= 0.7 else "lossy")
    assert {"lossless", "undecided", "lossy"} == set(verdicts["verdict"])
    table = pd.read_csv(out / "tables" / "searches.csv")
    (row,) = table.itertuples()
    assert row.report_decided_trials == 12 and row.verdict_disagreements == 0
    assert row.report_largest_lossless_ratio == pytest.approx(result.best["prune_ratio"])
    assert row.largest_lossless_ratio == pytest.approx(result.best["prune_ratio"])
    assert "<td>yes</td>" in (out / "index.html").read_text()  # "Verdicts agree"
