"""The report's ties to MLflow's UI: run-page links, and device utilization from system metrics.

Links are ``ui_links.run_url`` (the UI's run page, opened on its model-training view).
Utilization is the mean over a run's ``system/*`` history (MLflow's system metrics, logged by
suite runs): GPU runs read ``system/gpu_<i>_utilization_percentage`` of their device index, every
run reads ``system/cpu_utilization_percentage`` (the whole machine's CPUs).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from prunebench import record
from prunebench.reports.frame import CELL, keys
from prunebench.reports.ui_links import run_url

CPU_METRIC = "system/cpu_utilization_percentage"


@dataclass(frozen=True)
class RunLinks:
    """Table cell of links to run pages; ``str`` gives the run names (Markdown, CSV)."""

    runs: tuple[tuple[str, str], ...]  # (label, url or "")

    def __str__(self) -> str:
        return ", ".join(label for label, _ in self.runs)

    def __html__(self) -> str:
        return ", ".join(
            f'<a href="{html.escape(url)}">{html.escape(label)}</a>' if url else html.escape(label)
            for label, url in self.runs
        )


def links(ui_url: str, experiment_id: str, run_ids: Sequence[str], labels: Sequence[str]):
    """A RunLinks cell (plain labels when ``ui_url`` is empty)."""
    return RunLinks(
        tuple(
            (label, run_url(ui_url, experiment_id, run_id) if ui_url else "")
            for run_id, label in zip(run_ids, labels, strict=True)
        )
    )


def cell_run_links(
    board: pd.DataFrame, usable: pd.DataFrame, ui_url: str, experiment_id: str
) -> list[RunLinks]:
    """Per leaderboard row, links to its seeds' runs (labelled ``s<seed>``), by seed."""
    usable = usable.sort_values("seed", kind="stable")
    by_cell = dict(list(usable.groupby(keys(usable, CELL), sort=False))) if len(usable) else {}
    out = []
    for cell_key in keys(board, CELL):
        runs = by_cell.get(cell_key, usable.iloc[:0])
        labels = [f"s{seed:g}" if pd.notna(seed) else "run" for seed in runs["seed"]]
        out.append(links(ui_url, experiment_id, runs["run_id"].tolist(), labels))
    return out


def gpu_index(device: str, nvml: str = "") -> int | None:
    """NVML index of a run's GPU: its ``nvml_index`` param, else its ``device`` param's ordinal
    ("cuda:1" -> 1, "cuda" -> 0; right when CUDA_VISIBLE_DEVICES was unset); None off GPUs."""
    if not isinstance(device, str) or not device.startswith("cuda"):
        return None
    if isinstance(nvml, str) and nvml.isdigit():
        return int(nvml)
    _, _, index = device.partition(":")
    return int(index) if index.isdigit() else 0


def run_utilization(client, runs: pd.DataFrame) -> pd.DataFrame:
    """Per run: mean CPU and GPU utilization (%) over its system-metrics history, and samples."""
    rows = []
    nvml = _param(runs, record.PARAM_NVML_INDEX)
    for run_id, device, nvml_index in zip(
        runs["run_id"], _param(runs, "device"), nvml, strict=True
    ):
        cpu = _history(client, run_id, CPU_METRIC)
        index = gpu_index(device, nvml_index)
        gpu_metric = f"system/gpu_{index}_utilization_percentage"
        gpu = [] if index is None else _history(client, run_id, gpu_metric)
        rows.append(
            {
                "run_id": run_id,
                "cpu_utilization_mean": float(np.mean(cpu)) if cpu else np.nan,
                "gpu_utilization_mean": float(np.mean(gpu)) if gpu else np.nan,
                "samples": len(cpu),
            }
        )
    return pd.DataFrame(
        rows, columns=["run_id", "cpu_utilization_mean", "gpu_utilization_mean", "samples"]
    )


def _history(client, run_id: str, key: str) -> list[float]:
    return [metric.value for metric in client.get_metric_history(run_id, key)]


def _param(runs: pd.DataFrame, name: str) -> Iterable[str]:
    if f"params.{name}" in runs:
        return runs[f"params.{name}"].fillna("").astype(str)
    return [""] * len(runs)


def utilization_table(
    board: pd.DataFrame, usable: pd.DataFrame, utilization: pd.DataFrame
) -> pd.DataFrame:
    """Per leaderboard row: train device-hours and mean utilization over its sampled seeds."""
    merged = usable[[*CELL, "run_id"]].merge(utilization, on="run_id", how="inner")
    merged = merged[merged["samples"] > 0]
    merged_keys = keys(merged, CELL)
    rows = []
    for cell_key, (_, row) in zip(keys(board, CELL), board.iterrows(), strict=True):
        sampled = merged[merged_keys == cell_key]
        rows.append(
            {
                "pruner_label": row["pruner_label"],
                "target_prune_ratio": row["target_prune_ratio"],
                "train_device_hours_mean": row["train_device_hours_mean"],
                "gpu_utilization_mean": sampled["gpu_utilization_mean"].mean(),
                "cpu_utilization_mean": sampled["cpu_utilization_mean"].mean(),
                "sampled_runs": f"{len(sampled)}/{row['n_seeds']}",
            }
        )
    return pd.DataFrame(rows)


def format_utilization(table: pd.DataFrame) -> pd.DataFrame:
    """Human-readable utilization table (percent, device-hours)."""
    if table.empty:
        return table

    def pct(value: float) -> str:
        return "—" if pd.isna(value) else f"{value:.0f}"

    return pd.DataFrame(
        {
            "Pruner": table["pruner_label"],
            "Target ratio (%)": (100 * table["target_prune_ratio"]).map("{:.1f}".format),
            "Train device-h": table["train_device_hours_mean"].map(
                lambda v: "—" if pd.isna(v) else f"{v:.3g}"
            ),
            "GPU utilization (%)": table["gpu_utilization_mean"].map(pct),
            "CPU utilization (%)": table["cpu_utilization_mean"].map(pct),
            "Seeds with system metrics": table["sampled_runs"],
        }
    )
