"""What one run records beyond the loss: time-to-accuracy, subset overlap, usage, the summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from prunebench import record
from prunebench.record import DIAGNOSTICS_SECONDS_TOTAL, target_key


def mean_and_std(total: float, total_squares: float, count: int) -> tuple[float, float]:
    """Mean and population standard deviation (ddof=0, numpy's default) from float64 sums."""
    mean = total / count
    # Rounding can push sum(x^2)/n - mean^2 a hair below zero for constant values.
    variance = max(total_squares / count - mean * mean, 0.0)
    return mean, math.sqrt(variance)


def time_to_accuracy(
    accuracies: Sequence[float],
    seconds: Sequence[float],
    samples: Sequence[float],
    targets: Sequence[float],
) -> dict[str, float]:
    """Cumulative training seconds and samples at the first evaluation reaching each target.

    The sequences hold one value per evaluation (at its sample passes and training seconds); a
    target never reached has no entry.
    """
    reached: dict[str, float] = {}
    accuracy = np.asarray(accuracies, dtype=np.float64)
    for target in targets:
        hits = np.flatnonzero(accuracy >= target)
        if hits.size:
            first = int(hits[0])
            reached[target_key(record.TTA_SECONDS, target)] = float(seconds[first])
            reached[target_key(record.TTA_SAMPLES, target)] = float(samples[first])
    return reached


def subset_mask(indices: torch.Tensor, n: int) -> torch.Tensor:
    """Boolean membership mask of ``indices`` in range(n), on the indices' device."""
    mask = torch.zeros(n, dtype=torch.bool, device=indices.device)
    mask[indices] = True
    return mask


def jaccard(previous: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """|A ∩ B| / |A ∪ B| of two membership masks, as a 0-d device tensor (no host sync)."""
    intersection = (previous & current).sum()
    union = (previous | current).sum().clamp_min(1)
    return intersection.double() / union.double()


def summarize(
    history: Sequence[dict[str, float]],
    usage_counts: torch.Tensor,
    train_size: int,
    epochs_run: float,
    accuracy_targets: Sequence[float],
    device_count: int = 1,
) -> dict[str, float]:
    """Summary metrics of a run from its per-epoch history and per-sample usage counts.

    ``epochs_run`` counts a budget-truncated last epoch by the fraction of its plan trained, so
    the realized prune ratio 1 - samples / (epochs_run * n) is what the pruner's plans realized.
    Accuracies and time-to-accuracy come from the epochs that evaluated (those with a
    ``test_accuracy``); ``evaluations`` says how many, the resolution of time-to-accuracy.
    """
    if not history:
        return {}
    last = history[-1]
    train_seconds = float(last["train_seconds"])
    eval_seconds = float(last["eval_seconds"])
    samples = float(last["samples_trained"])
    evaluated = [entry for entry in history if "test_accuracy" in entry]
    summary = {
        record.METRIC_REALIZED_RATIO: 1.0 - samples / (epochs_run * train_size),
        record.METRIC_TRAIN_SECONDS_TOTAL: train_seconds,
        record.METRIC_EVAL_SECONDS_TOTAL: eval_seconds,
        record.METRIC_TRAIN_DEVICE_HOURS: train_seconds / 3600.0 * device_count,
        record.METRIC_TOTAL_DEVICE_HOURS: (train_seconds + eval_seconds) / 3600.0 * device_count,
        record.METRIC_SAMPLES_TRAINED_TOTAL: samples,
        # Beside the wall clock, so a report can tell a slow machine from a shared one.
        record.METRIC_SAMPLES_PER_SECOND: samples / train_seconds
        if train_seconds > 0
        else math.nan,
        record.METRIC_SCORING_PASSES_TOTAL: float(last["scoring_forward_passes"]),
        record.METRIC_EPOCHS_RUN: float(epochs_run),
        record.METRIC_EVALUATIONS: float(len(evaluated)),
        record.METRIC_ZERO_USAGE: float((usage_counts == 0).sum().item()),
    }
    if "process_cpu_seconds" in last:
        summary[record.METRIC_CPU_SECONDS_TOTAL] = float(last["process_cpu_seconds"])
    if "diagnostics_seconds" in last:
        summary[DIAGNOSTICS_SECONDS_TOTAL] = float(last["diagnostics_seconds"])
    if not evaluated:
        return summary
    accuracies = [entry["test_accuracy"] for entry in evaluated]
    summary[record.METRIC_FINAL_ACCURACY] = float(accuracies[-1])
    summary[record.METRIC_BEST_ACCURACY] = float(max(accuracies))
    summary.update(
        time_to_accuracy(
            accuracies,
            [entry.get("eval_train_seconds", entry["train_seconds"]) for entry in evaluated],
            [entry.get("eval_samples_trained", entry["samples_trained"]) for entry in evaluated],
            accuracy_targets,
        )
    )
    return summary


def save_usage_histogram(counts: np.ndarray, path: Path, title: str) -> None:
    """Write a histogram of per-sample usage counts (epochs each sample was trained in)."""
    # A bare Figure (no pyplot) renders to a file without touching the global backend.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.add_subplot()
    top = int(counts.max()) if counts.size else 0
    axes.hist(counts, bins=np.arange(top + 2) - 0.5, color="#4c72b0")
    axes.set_xlabel("times trained (per-sample usage)")
    axes.set_ylabel("samples")
    axes.set_title(f"{title}\nzero usage: {int((counts == 0).sum())} of {counts.size}")
    figure.tight_layout()
    figure.savefig(path)
