"""The paper's diagnostics tables (8, 9, 11) from constructed per-epoch histories, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prunebench.reports.diagnostics import (
    alignment_checkpoints,
    format_checkpoints,
    format_stability,
    grad_norm_phases,
    jaccard_checkpoints,
    stability_phases,
    unmeasured_cells,
)


def _usable(run_ids, epochs, labels=None, ratios=None) -> pd.DataFrame:
    n = len(run_ids)
    return pd.DataFrame(
        {
            "run_id": run_ids,
            "dataset": "d",
            "model": "m",
            "budget": "epochs:10",
            "pruner_label": labels or ["p"] * n,
            "target_prune_ratio": ratios or [0.5] * n,
            "metrics.epochs_run": epochs,
        }
    )


def test_checkpoints_are_the_first_epochs_reaching_them_in_budget_progress():
    """20% of 10 epochs ends at epoch 1 exactly; 6 epochs end at 33, 50, 67, 83, 100%; a run of
    20.22 epochs (a budget-truncated last epoch) reads 100% at its last epoch, 20, not 19; under
    samples:1000 the epoch whose samples reach each fifth is read."""
    rows = []
    for run, epochs in (("ten", 10), ("six", 6), ("cut", 21), ("samples", 8)):
        for step in range(epochs):  # epoch 0 logs no Jaccard
            jaccard = np.nan if step == 0 else float(step)
            rows.append({"run_id": run, "step": step, "subset_jaccard": jaccard})
    histories = pd.DataFrame(rows)
    samples = histories["run_id"] == "samples"
    histories.loc[samples, "samples_trained"] = 150.0 * (histories.loc[samples, "step"] + 1)
    usable = _usable(
        ["ten", "six", "cut", "samples"], [10, 6, 20.22, 6.67], labels=["a", "b", "c", "d"]
    )
    usable.loc[3, "budget"] = "samples:1000"
    table = jaccard_checkpoints(histories, usable).set_index("pruner_label")
    read = {
        label: [table.loc[label, f"{c}%_mean"] for c in (20, 40, 60, 80, 100)] for label in "abcd"
    }
    assert read["a"] == [1, 3, 5, 7, 9]
    assert read["b"] == [1, 2, 3, 4, 5]
    assert read["c"] == [4, 8, 12, 16, 20]  # ceil(0.2 x 20.22) - 1 = 4, ..., the last epoch
    assert read["d"] == [1, 2, 3, 5, 6]  # 300 >= 200, 450 >= 400, 600 >= 600, 900, 1050


def test_jaccard_at_checkpoints_mean_and_std_over_seeds():
    rows = []
    for run, offset in (("a", 0.0), ("b", 0.1)):
        for step in range(1, 10):  # absent at epoch 0, as logged
            rows.append({"run_id": run, "step": step, "subset_jaccard": step / 10 + offset})
    histories = pd.DataFrame(rows)
    table = jaccard_checkpoints(histories, _usable(["a", "b"], [10, 10]))
    row = table.iloc[0]
    assert row["n_seeds"] == 2
    for name, step in (("20%", 1), ("40%", 3), ("60%", 5), ("80%", 7), ("100%", 9)):
        assert row[f"{name}_mean"] == pytest.approx(step / 10 + 0.05)
        assert row[f"{name}_std"] == pytest.approx(np.std([0.0, 0.1], ddof=1))
    shown = format_checkpoints(table)
    assert list(shown.columns) == [
        "Pruner", "Target ratio (%)", "Seeds", "20%", "40%", "60%", "80%", "100%",
    ]  # fmt: skip
    assert shown.loc[0, "20%"] == "0.150 ± 0.071"


def _epochs_of_steps(rng, steps_per_epoch):
    """Per-step norms of each epoch and the epoch's logged (mean, ddof-0 std, steps)."""
    norms = [rng.gamma(4.0, 0.5, size=n) for n in steps_per_epoch]
    return norms, [(x.mean(), x.std(), len(x)) for x in norms]


def test_grad_norm_phases_pool_epochs_exactly_as_numpy_over_the_steps():
    rng = np.random.default_rng(12)
    steps_per_epoch = [5, 3, 7, 4, 6, 2, 5, 8, 3, 4]  # unequal: equal weights would be wrong
    norms, logged = _epochs_of_steps(rng, steps_per_epoch)
    histories = pd.DataFrame(
        {
            "run_id": "a",
            "step": np.arange(10),
            "grad_norm": [m for m, _, _ in logged],
            "grad_norm_std": [s for _, s, _ in logged],
            "train_steps": [float(n) for _, _, n in logged],
        }
    )
    table, exact = grad_norm_phases(histories, _usable(["a"], [10]))
    assert exact
    row = table.iloc[0]
    phases = {"0-30%": [0, 1, 2], "30-50%": [3, 4], "50-70%": [5, 6], "70-100%": [7, 8, 9]}
    for phase, epochs in phases.items():
        steps = np.concatenate([norms[e] for e in epochs])
        assert row[f"{phase}_grad"] == pytest.approx(steps.mean(), rel=1e-12)
        assert row[f"{phase}_grad_std"] == pytest.approx(steps.std(ddof=0), rel=1e-9)
    assert row["final_grad"] == pytest.approx(norms[9].mean())
    assert row["final_grad_std"] == pytest.approx(norms[9].std())


def test_grad_norm_phases_without_step_counts_weigh_epochs_equally_and_say_so():
    histories = pd.DataFrame(
        {
            "run_id": "a",
            "step": np.arange(10),
            "grad_norm": np.arange(10, dtype=float),
            "grad_norm_std": np.zeros(10),
        }
    )
    table, exact = grad_norm_phases(histories, _usable(["a"], [10]))
    assert not exact
    # Epochs 0-2, equal weights, zero within-epoch spread: the spread of the epoch means.
    assert table.iloc[0]["0-30%_grad"] == pytest.approx(1.0)
    assert table.iloc[0]["0-30%_grad_std"] == pytest.approx(np.std([0.0, 1.0, 2.0]))


def test_stability_phases_put_accuracy_over_seeds_next_to_within_run_spread():
    rows = []
    for run, acc_offset, spread in (("a", 0.0, 0.2), ("b", 0.02, 0.4)):
        for step in range(10):
            rows.append(
                {
                    "run_id": run,
                    "step": step,
                    "test_accuracy": 0.5 + 0.01 * step + acc_offset,
                    "grad_norm": 1.0,
                    "grad_norm_std": spread,
                    "train_steps": 4.0,
                }
            )
    table, exact = stability_phases(pd.DataFrame(rows), _usable(["a", "b"], [10, 10]))
    assert exact
    row = table.iloc[0]
    assert row["n_seeds"] == 2
    # 0-30%: epochs 0-2 -> run means 0.51 and 0.53.
    assert row["0-30%_acc_mean"] == pytest.approx(0.52)
    assert row["0-30%_acc_std"] == pytest.approx(np.std([0.51, 0.53], ddof=1))
    assert row["0-30%_grad_mean"] == pytest.approx(1.0)
    # Equal epoch means: the within-run std is the epochs' own, averaged over the seeds.
    assert row["0-30%_grad_std_mean"] == pytest.approx(0.3)
    assert row["final_acc_mean"] == pytest.approx(0.60)
    shown = format_stability(table)
    assert shown.loc[0, "0-30% Acc (%)"] == "52.00 ± 1.41"
    assert shown.loc[0, "0-30% Grad ± Std"] == "1.000 ± 0.300"
    assert shown.loc[0, "Seeds"] == 2
    assert [c for c in shown.columns if c.endswith("Acc (%)")] == [
        "0-30% Acc (%)", "30-50% Acc (%)", "50-70% Acc (%)", "70-100% Acc (%)", "final Acc (%)",
    ]  # fmt: skip


def test_alignment_reads_the_first_measurement_at_or_after_each_checkpoint():
    # Run a measured at the ends of epochs 1, 3, 5, 7, 9 of 10 (progress 0.2 ... 1.0); run b
    # (5 epochs) crossed two checkpoints at once at epoch 1 (progress 0.4) and so on.
    rows = [
        {"run_id": "a", "step": s, "grad_cosine": 0.9 - 0.1 * k, "grad_alignment_progress": p}
        for k, (s, p) in enumerate([(1, 0.2), (3, 0.4), (5, 0.6), (7, 0.8), (9, 1.0)])
    ]
    rows += [
        {"run_id": "b", "step": s, "grad_cosine": c, "grad_alignment_progress": p}
        for s, c, p in [(0, 0.95, 0.2), (1, 0.7, 0.4), (2, 0.6, 0.6), (3, 0.5, 0.8), (4, 0.4, 1.0)]
    ]
    rows += [{"run_id": "c", "step": s, "grad_cosine": np.nan} for s in range(3)]
    usable = _usable(["a", "b", "c"], [10, 5, 3], labels=["p", "p", "q"])
    table = alignment_checkpoints(pd.DataFrame(rows), usable)
    assert len(table) == 1 and table.iloc[0]["n_seeds"] == 2  # run c never measured
    row = table.iloc[0]
    assert row["20%_mean"] == pytest.approx((0.9 + 0.95) / 2)
    assert row["100%_mean"] == pytest.approx((0.5 + 0.4) / 2)
    assert row["100%_std"] == pytest.approx(np.std([0.5, 0.4], ddof=1))
    missing = unmeasured_cells(usable, table)
    assert missing["pruner_label"].tolist() == ["q"]
