"""Does pairing runs by seed reduce the variance of pruned - full? Reads a suite from MLflow.

For every main pruned cell with at least 4 seeds shared with full data: the correlation of the
two sides' accuracies across seeds, and the variance of the per-seed difference against the sum
of the two sides' variances (what an unpaired test uses). A ratio below 1 means pairing helps.

    python tools/pairing.py --experiment demo-fmnist --tracking-uri sqlite:///mlflow.db
"""

from __future__ import annotations

import argparse

import numpy as np

from prunebench import mlflow_store, record
from prunebench.reports.frame import is_full, usable_runs
from prunebench.reports.runs import load_experiment, training_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="demo-fmnist")
    parser.add_argument("--tracking-uri", default="sqlite:///mlflow.db")
    args = parser.parse_args()
    client = mlflow_store.open_store(args.tracking_uri)
    runs = training_runs(load_experiment(client, args.experiment, args.tracking_uri).runs)
    runs = usable_runs(runs[runs["comparison"] == record.COMPARISON_MAIN])
    accuracy = f"metrics.{record.METRIC_FINAL_ACCURACY}"
    full = runs[is_full(runs)].set_index("seed")[accuracy] * 100
    ratios, correlations = [], []
    for (label, ratio), cell in runs[~is_full(runs)].groupby(
        ["pruner_label", "target_prune_ratio"]
    ):
        pruned = cell.set_index("seed")[accuracy] * 100
        seeds = sorted(set(pruned.index) & set(full.index))
        if len(seeds) < 4:
            continue
        a, f = pruned[seeds].to_numpy(), full[seeds].to_numpy()
        share = np.var(a - f, ddof=1) / (np.var(a, ddof=1) + np.var(f, ddof=1))
        r = float(np.corrcoef(a, f)[0, 1])
        ratios.append(share)
        correlations.append(r)
        print(f"{label:>18} {ratio:.2f}: r = {r:+.2f}, var(paired) / var(unpaired) = {share:.2f}")
    print(
        f"{len(ratios)} cells: mean r {np.mean(correlations):+.2f}, variance ratio median "
        f"{np.median(ratios):.2f}, mean {np.mean(ratios):.2f}"
    )


if __name__ == "__main__":
    main()
