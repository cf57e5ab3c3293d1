"""The report states what the numbers rest on (issue 21): the sample passes of a pruned row and
of the same-compute full data beside it, InfoBatch's signed ratio shortfall in its row, and the
same realized-ratio groups in figures as in the leaderboard."""

from __future__ import annotations

import pandas as pd
import pytest

from prunebench.reports import figures as fig
from prunebench.reports.comparisons import assign_sections
from prunebench.reports.frame import usable_runs
from prunebench.reports.leaderboard import leaderboard
from prunebench.reports.sections.leaderboard import format_leaderboard
from prunebench.reports.stability import epoch_end_progress, per_run_phases, tta_curves


def _run(label, pruner, target, realized, accuracy, seed, samples, comparison="main", **metrics):
    return {
        "dataset": "d", "model": "m", "budget": "epochs:10", "pruner_label": label,
        "pruner": pruner, "target_prune_ratio": target, "seed": seed, "status": "FINISHED",
        "start_time": seed, "run_id": f"{label}-{target}-{seed}-{comparison}", "run_name": label,
        "failure_reason": None, "expected_seeds": 3, "comparison": comparison,
        "metrics.final_test_accuracy": accuracy, "metrics.realized_prune_ratio": realized,
        "metrics.samples_trained_total": samples, "metrics.train_device_hours": 1.0,
        **{f"metrics.{key}": value for key, value in metrics.items()},
    }  # fmt: skip


def _train() -> pd.DataFrame:
    rows = []
    for seed in range(3):
        wobble = 0.001 * seed
        rows += [
            _run("full", "full", 0.0, 0.0, 0.90 + wobble, seed, 10_000.0),
            _run("random", "random", 0.7, 0.7, 0.86 + wobble, seed, 3_000.0),
            _run(
                "infobatch",
                "infobatch",
                0.7,
                0.63,
                0.88 + wobble,
                seed,
                3_700.0,
                ratio_shortfall=-0.07,
            ),
            _run(
                "infobatch",
                "infobatch",
                0.3,
                0.302,
                0.89 + wobble,
                seed,
                7_000.0,
                ratio_shortfall=0.002,
            ),
            _run(
                "full (same compute)",
                "full",
                0.7,
                0.0,
                0.85 + wobble,
                seed,
                3_000.0,
                comparison="same_compute",
            ),
        ]
    return pd.DataFrame(rows)


def test_rows_state_their_passes_and_the_same_compute_passes_beside_them():
    board = leaderboard(_train()).set_index(["pruner_label", "target_prune_ratio"])
    assert board.loc[("random", 0.7), "samples_trained_mean"] == 3_000
    assert board.loc[("random", 0.7), "same_compute_samples_mean"] == 3_000
    # InfoBatch realized 0.63: another ratio group, no same-compute row to stand beside.
    assert pd.isna(board.loc[("infobatch", 0.7), "same_compute_samples_mean"])
    shown = format_leaderboard(board.reset_index()).set_index("Pruner")
    assert "3,000 (3,000)" in shown["Sample passes (same compute)"].tolist()


def test_a_signed_shortfall_beyond_the_tolerance_is_shown_in_the_row():
    board = leaderboard(_train()).set_index(["pruner_label", "target_prune_ratio"])
    assert board.loc[("infobatch", 0.7), "ratio_shortfall_mean"] == -0.07
    notes = board.loc[("infobatch", 0.7), "notes"]
    assert "infobatch cannot reach 70% on this data: realized 63% (-7.0 pts)" in notes
    # Within RATIO_TOLERANCE (0.005): no note; rows without the metric: none either.
    assert "reach" not in board.loc[("infobatch", 0.3), "notes"]
    assert "reach" not in board.loc[("random", 0.7), "notes"]


def _nominal_infobatch_train() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A nominal-mode InfoBatch cell at target 50% that realized 34%, beside random at 50%;
    with per-epoch accuracy histories for the time-to-accuracy curves."""
    rows, history = [], []
    for seed in range(2):
        rows += [
            _run("full", "full", 0.0, 0.0, 0.90, seed, 10_000.0),
            _run("random", "random", 0.5, 0.5, 0.88, seed, 5_000.0),
            _run("infobatch-nominal", "infobatch", 0.5, 0.34, 0.89, seed, 6_600.0),
        ]
        for row in rows[-3:]:
            for step in range(3):
                history.append(
                    {
                        "run_id": row["run_id"],
                        "step": step,
                        "test_accuracy": 0.5 + 0.1 * step,
                        "train_seconds": 1.0 + step,
                    }
                )
    return pd.DataFrame(rows), pd.DataFrame(history)


def test_figures_group_a_nominal_infobatch_run_where_the_leaderboard_puts_it():
    train, histories = _nominal_infobatch_train()
    board = leaderboard(train)
    row = board[board["pruner_label"] == "infobatch-nominal"].iloc[0]
    assert row["prune_ratio"] == 0.34  # the leaderboard's realized-ratio key
    usable = fig.with_ratio_groups(usable_runs(train), board)
    nominal = usable[usable["pruner_label"] == "infobatch-nominal"]
    assert nominal[fig.RATIO_GROUP].tolist() == [0.34, 0.34]
    curves = fig.with_ratio_groups(tta_curves(histories, usable), board)
    figure = fig.tta_figure(curves, board, fig.pruner_palette(board["pruner_label"]), 0.6)
    panels = {ax.get_title(): ax for ax in figure.axes}
    assert set(panels) == {"realized prune ratio 34%", "realized prune ratio 50%"}
    legend = [t.get_text() for t in panels["realized prune ratio 34%"].get_legend().get_texts()]
    assert any(text.startswith("infobatch-nominal") for text in legend)
    legend = [t.get_text() for t in panels["realized prune ratio 50%"].get_legend().get_texts()]
    assert not any(text.startswith("infobatch-nominal") for text in legend)
    usage = fig.usage_figure(usable, {})
    titles = {ax.get_title() for ax in usage.axes if ax.axison}
    assert "infobatch-nominal @ 34%" in titles and "random @ 50%" in titles


def test_table_9_phases_follow_budget_progress_not_epoch_counts():
    """Under samples:1000 a run whose epochs trained 100, 100, 100, 400 and 300 passes is at
    progress 0.1, 0.2, 0.3, 0.7 and 1.0 after them: phases 0-30% (epochs 0-2), 50-70% (epoch 3)
    and 70-100% (epoch 4); counting epochs would put one in each phase. Under time:10 the
    progress is training seconds / 10."""
    histories = pd.DataFrame(
        {
            "run_id": ["s"] * 5 + ["t"] * 3,
            "step": [0, 1, 2, 3, 4, 0, 1, 2],
            "samples_trained": [100, 200, 300, 700, 1000, 50, 100, 150],
            "train_seconds": [1.0, 2.0, 3.0, 4.0, 5.0, 2.9, 4.5, 10.2],
            "test_accuracy": [1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0, 3.0],
        }
    )
    usable = pd.DataFrame(
        {
            "run_id": ["s", "t"], "dataset": "d", "model": "m",
            "budget": ["samples:1000", "time:10"], "pruner_label": ["p", "q"],
            "target_prune_ratio": 0.5, "metrics.epochs_run": [4.6, 3.0],
        }
    )  # fmt: skip
    assert epoch_end_progress(histories, usable).tolist() == pytest.approx(
        [0.1, 0.2, 0.3, 0.7, 1.0, 0.29, 0.45, 1.0]
    )
    phases = per_run_phases(histories, usable, "test_accuracy").set_index("run_id")
    assert phases.loc["s", "0-30%"] == 2.0 and pd.isna(phases.loc["s", "30-50%"])
    assert phases.loc["s", "50-70%"] == 4.0 and phases.loc["s", "70-100%"] == 5.0
    assert phases.loc["t", "0-30%"] == 1.0 and phases.loc["t", "30-50%"] == 2.0
    assert phases.loc["t", "70-100%"] == 3.0


def test_a_time_budget_same_compute_run_serves_its_time_section():
    """A same-compute run under a time budget logs budget "same-compute:0.5" (resolved to the
    pruned runs' passes): it serves the time section of its dataset and model, not another."""
    main = pd.DataFrame(
        {
            "dataset": "d", "model": "m", "budget": ["time:10", "epochs:5"],
            "train_size": 100.0, "pruner": "full", "pruner_label": "full",
            "target_prune_ratio": 0.0, "comparison": "main", "status": "FINISHED",
            "seed": 0.0, "start_time": 0, "metrics.train_seconds_total": [10.0, 8.0],
        }
    )  # fmt: skip
    same = pd.DataFrame(
        {
            "dataset": ["d"], "model": ["m"], "budget": ["same-compute:0.5"],
            "comparison": ["same_compute"], "matched_prune_ratio": [0.5],
            "time_budget_seconds": [float("nan")], "time_budget_fraction": [float("nan")],
        }
    )  # fmt: skip
    assigned = assign_sections(same, main)
    assert assigned["budget"].tolist() == ["time:10"]
    assert assigned["run_budget"].tolist() == ["same-compute:0.5"]
    # Under epochs:5 on 100 samples the matched passes are kept_count(100, 0.5) * 5 = 250.
    epochs_run = same.assign(budget="samples:250")
    assert assign_sections(epochs_run, main)["budget"].tolist() == ["epochs:5"]
