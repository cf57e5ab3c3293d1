"""Pure parts of the report: lossless rule, Pareto sets, training phases, curves, presets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prunebench.cli.report import read_preset
from prunebench.errors import ConfigError
from prunebench.reports.pareto import pareto_front, pareto_mask
from prunebench.reports.stability import phase_of, phase_table, tta_curves
from prunebench.stats.lossless import is_lossless, lossless_tolerance, lossless_verdict

# ---------------------------------------------------------------- lossless rule


def test_tolerance_is_the_margin_whatever_the_full_seeds():
    # The non-inferiority test weighs the seeds' spread itself; the margin stays as stated.
    assert lossless_tolerance([0.90, 0.92, 0.91]) == 0.001
    assert lossless_tolerance([0.91], min_tolerance=0.005) == 0.005


def test_is_lossless_is_the_non_inferiority_verdict():
    # Seeds fixed by hand; margin 0.1 points, level 0.05 (the defaults).
    assert is_lossless([0.9110, 0.9115, 0.9120], [0.9100, 0.9105, 0.9110])  # p = 0.004
    assert not is_lossless([0.905, 0.895, 0.906], [0.90, 0.92, 0.91])  # undecided, p = 0.815
    assert not is_lossless([0.911], [0.910, 0.9105])  # one pruned seed: undecided
    verdict = lossless_verdict([0.85, 0.86], [0.91, 0.92])
    assert verdict.verdict == "lossy" and not verdict.lossless
    # A 1-point margin lets -0.4 points pass (p = 0.0009).
    assert is_lossless([0.905, 0.906, 0.907], [0.91, 0.911, 0.909], min_tolerance=0.01)
    with pytest.raises(ValueError):
        is_lossless([], [0.9, 0.91])


# ---------------------------------------------------------------- Pareto


def test_pareto_mask_on_a_constructed_example():
    # (realized ratio, accuracy): the leaderboard's synthetic suite plus a tie and a NaN.
    points = np.array(
        [
            [0.00, 0.910],  # full: best accuracy -> front
            [0.37, 0.909],  # infobatch -> front
            [0.50, 0.902],  # orderdp 50 -> front
            [0.50, 0.885],  # random 50: dominated by orderdp 50 (same ratio, lower acc)
            [0.70, 0.885],  # orderdp 70 -> front (largest ratio)
            [0.30, 0.850],  # dominated by infobatch
            [0.70, 0.885],  # identical to orderdp 70: ties stay together
            [np.nan, 0.99],  # missing ratio: never on the front
        ]
    )
    mask = pareto_mask(points[:, 0], points[:, 1])
    assert mask.tolist() == [True, True, True, False, True, False, True, False]
    # Minimizing x instead (device-hours): random 50 and the 0.85 point are beaten by the
    # cheaper, equally accurate orderdp 70; a NaN cost is off the front even at 99%.
    hours = np.array([0.010, 0.0065, 0.005, 0.0054, 0.003, 0.004, 0.003, np.nan])
    mask = pareto_mask(hours, points[:, 1], maximize_x=False)
    assert mask.tolist() == [True, True, True, False, True, False, True, False]
    # A cheaper and more accurate point dominates everything else.
    hours[-1] = 0.001
    assert pareto_mask(hours, points[:, 1], maximize_x=False).tolist() == [False] * 7 + [True]


def test_pareto_mask_matches_the_definition_on_random_points():
    rng = np.random.default_rng(1234)  # seed stated; small integer grids force many ties
    for _ in range(200):
        size = int(rng.integers(1, 12))
        x, y = rng.integers(0, 5, size).astype(float), rng.integers(0, 5, size).astype(float)
        maximize_x = bool(rng.integers(0, 2))
        sx = x if maximize_x else -x
        expected = [
            not any(
                sx[j] >= sx[i] and y[j] >= y[i] and (sx[j] > sx[i] or y[j] > y[i])
                for j in range(size)
            )
            for i in range(size)
        ]
        assert pareto_mask(x, y, maximize_x=maximize_x).tolist() == expected


def test_pareto_front_sorts_along_the_axis():
    board = pd.DataFrame(
        {
            "pruner_label": ["full", "a", "b", "c"],
            "realized_prune_ratio_mean": [0.0, 0.5, 0.3, 0.5],
            "train_device_hours_mean": [1.0, 0.5, 0.7, 0.4],
            "accuracy_mean": [0.9, 0.88, 0.87, 0.80],
        }
    )
    assert pareto_front(board, "ratio")["pruner_label"].tolist() == ["full", "a"]
    assert pareto_front(board, "device_hours")["pruner_label"].tolist() == ["c", "a", "full"]


# ---------------------------------------------------------------- phases and curves


def test_phase_boundaries_are_exact():
    assert phase_of(np.arange(10), np.full(10, 10)).tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
    assert phase_of(np.arange(3), np.full(3, 3)).tolist() == [1, 2, 3]  # 33%, 67%, 100%
    steps = np.array([58, 59, 60, 99, 100, 139, 140, 199])
    assert phase_of(steps, np.full(8, 200)).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def _history(run_id: str, values: list[float], metric: str = "test_accuracy") -> pd.DataFrame:
    return pd.DataFrame({"run_id": run_id, "step": np.arange(len(values)), metric: values})


def _usable(run_ids: list[str], epochs: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": run_ids,
            "dataset": "d",
            "model": "m",
            "budget": "epochs:10",
            "pruner_label": "p",
            "target_prune_ratio": 0.5,
            "metrics.epochs_run": epochs,
        }
    )


def test_phase_table_is_mean_within_run_then_mean_and_std_over_seeds():
    a = [float(v) for v in range(10)]  # phase means: 1, 3.5, 5.5, 8; final 9
    b = [float(v) + 2 for v in range(10)]  # phase means: 3, 5.5, 7.5, 10; final 11
    histories = pd.concat([_history("a", a), _history("b", b)], ignore_index=True)
    table = phase_table(histories, _usable(["a", "b"], [10, 10]), "test_accuracy")
    row = table.iloc[0]
    assert row["n_seeds"] == 2
    for phase, mean in (("0-30%", 2.0), ("30-50%", 4.5), ("50-70%", 6.5), ("70-100%", 9.0)):
        assert row[f"{phase}_mean"] == pytest.approx(mean)
        assert row[f"{phase}_std"] == pytest.approx(np.sqrt(2.0))  # |2| apart, ddof=1
    assert row["final_mean"] == pytest.approx(10.0)


def test_phase_table_with_few_epochs_leaves_empty_phases_nan():
    # Four epochs: progress 25%, 50%, 75%, 100%; nothing falls in 50-70%.
    histories = _history("a", [1.0, 2.0, 3.0, 4.0])
    table = phase_table(histories, _usable(["a"], [4]), "test_accuracy")
    row = table.iloc[0]
    assert row["0-30%_mean"] == 1.0  # 25%
    assert row["30-50%_mean"] == 2.0  # 50%
    assert np.isnan(row["50-70%_mean"])
    assert row["70-100%_mean"] == pytest.approx(3.5)  # 75% and 100%
    assert np.isnan(row["0-30%_std"])  # one seed: no spread


def test_tta_curves_align_seeds_by_epoch():
    histories = pd.DataFrame(
        {
            "run_id": ["a"] * 3 + ["b"] * 2,
            "step": [0, 1, 2, 0, 1],
            "train_seconds": [1.0, 2.0, 3.0, 3.0, 6.0],  # b's clock is slower; b stopped early
            "test_accuracy": [0.1, 0.2, 0.3, 0.3, 0.4],
        }
    )
    curves = tta_curves(histories, _usable(["a", "b"], [3, 2]))
    assert curves["train_seconds"].tolist() == [2.0, 4.0, 3.0]
    assert curves["accuracy_mean"].tolist() == pytest.approx([0.2, 0.3, 0.3])
    assert curves["accuracy_std"].tolist() == pytest.approx([np.sqrt(0.02), np.sqrt(0.02), 0.0])
    assert curves["n_seeds"].tolist() == [2, 2, 1]


# ---------------------------------------------------------------- presets

PRESET = """
name = "demo"
datasets = ["synthetic"]
models = ["small_cnn"]
budget = "epochs:4"
seeds = [2, 0, 1]
prune_ratios = [0.3]

[[pruners]]
name = "full"

[[pruners]]
name = "infobatch"
label = "infobatch-anneal"
params = { anneal = true }
prune_ratios = [0.5, 0.7]
"""


def test_read_preset_gives_name_seeds_and_planned_cells(tmp_path):
    path = tmp_path / "demo.toml"
    path.write_text(PRESET)
    name, seeds, cells = read_preset(str(path))
    assert (name, seeds) == ("demo", [0, 1, 2])
    assert cells[["pruner_label", "target_prune_ratio", "pruner"]].values.tolist() == [
        ["full", 0.0, "full"],
        ["infobatch-anneal", 0.5, "infobatch"],
        ["infobatch-anneal", 0.7, "infobatch"],
    ]
    assert set(cells["budget"]) == {"epochs:4"} and set(cells["dataset"]) == {"synthetic"}
    # A bare name is looked up in the named presets (package data), like `prunebench suite` does.
    assert read_preset("demo-fmnist")[0] == "demo-fmnist"


def test_read_preset_plans_only_main_cells(tmp_path):
    """Same-compute (samples:S) and equal-time cells are rows of the main budget's section: the
    demo's report showed a "samples:12000" section whose full-data cell was "not run"."""
    path = tmp_path / "fair.toml"
    path.write_text(
        PRESET.replace(
            'budget = "epochs:4"', 'budget = "epochs:4"\nsame_compute = true\nequal_time = [0.5]'
        )
    )
    _, _, cells = read_preset(str(path))
    assert set(cells["budget"]) == {"epochs:4"} and len(cells) == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [("name = ", "not valid TOML"), (PRESET.replace('name = "demo"', ""), "name")],
)
def test_read_preset_errors(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_preset(str(path))
    with pytest.raises(ConfigError, match="preset"):
        read_preset(str(tmp_path / "missing.toml"))


def test_phase_names_cover_progress_without_gaps():
    # Every epoch of every run length up to 60 lands in exactly one phase, in order.
    for epochs in range(1, 61):
        phases = phase_of(np.arange(epochs), np.full(epochs, epochs))
        assert (np.diff(phases) >= 0).all()
        assert phases[-1] == 3
