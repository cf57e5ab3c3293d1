"""A tiny synthetic suite written into a real MLflow store exactly per the MLflow layout contract.

The numbers are chosen so the leaderboard can be computed by hand (see SUITE); every run logs
params, tags, per-epoch metrics with steps, summary metrics and a usage.npz artifact like
prunebench.bench does. Nothing here imports prunebench.reports.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

EXPERIMENT = "tiny-suite"
TRAIN_SIZE = 200
EPOCHS = 10
TARGETS = (0.80, 0.90)
ALIGNED = ("full", "orderdp")
"""Pruners whose synthetic runs logged gradient alignment (grad_cosine)."""


@dataclass
class RunSpec:
    """One training run of the synthetic suite."""

    pruner: str
    ratio: float
    seed: int
    final_accuracy: float = float("nan")
    epoch_seconds: float = 1.0
    realized: float | None = None  # default: the target ratio
    label: str | None = None
    status: str = "FINISHED"
    reason: str = ""
    dataset: str = "synthetic"
    model: str = "small_cnn"
    budget: str = "epochs:10"
    expected_seeds: int = 3
    parent: str | None = None  # key of a RunSpec/trial this run is nested under
    comparison: str = ""  # the prunebench.comparison tag ("" = not tagged, an ordinary cell)
    extra_params: dict = field(default_factory=dict)  # e.g. matched_prune_ratio
    key: str = ""
    logged: dict = field(default_factory=dict)
    run_id: str = ""


def suite() -> list[RunSpec]:
    """The synthetic suite, in start-time order (later runs of the same seed supersede)."""
    full_s = [3.6, 3.96, 3.24]  # 10 epochs -> 36, 39.6, 32.4 s -> 0.010, 0.011, 0.009 h
    return [
        *(
            RunSpec("full", 0.0, s, acc, sec)
            for s, acc, sec in zip((0, 1, 2), (0.90, 0.92, 0.91), full_s, strict=True)
        ),
        *(
            RunSpec("orderdp", 0.5, s, acc, sec)
            for s, acc, sec in zip((0, 1, 2), (0.905, 0.895, 0.906), (1.8, 1.98, 1.62), strict=True)
        ),
        # seed 1 of orderdp@0.7 failed first, then was rerun successfully (superseded failure).
        RunSpec("orderdp", 0.7, 1, status="FAILED", reason="killed by the OOM killer"),
        *(
            RunSpec("orderdp", 0.7, s, acc, sec)
            for s, acc, sec in zip((0, 1, 2), (0.89, 0.885, 0.88), (1.08, 1.08, 1.08), strict=True)
        ),
        *(
            RunSpec("random", 0.5, s, acc, sec)
            for s, acc, sec in zip((0, 1), (0.88, 0.89), (1.9, 2.0), strict=True)
        ),
        RunSpec("random", 0.5, 2, status="FAILED", reason="diverged: train loss is nan at epoch 3"),
        # infobatch: seed 2 simply missing; realized ratio well below the target.
        *(
            RunSpec("infobatch", 0.5, s, acc, sec, realized=r)
            for s, acc, sec, r in zip(
                (0, 1), (0.912, 0.906), (2.34, 2.34), (0.38, 0.36), strict=True
            )
        ),
        RunSpec("ucb", 0.5, 0, status="FAILED", reason="CUDA out of memory"),
        # A second section: another dataset and budget, one seed expected.
        RunSpec(
            "full",
            0.0,
            0,
            0.85,
            5.0,
            dataset="fashion_mnist",
            budget="samples:2000",
            expected_seeds=1,
        ),
        RunSpec(
            "orderdp",
            0.3,
            0,
            0.84,
            3.5,
            dataset="fashion_mnist",
            budget="samples:2000",
            expected_seeds=1,
        ),
        RunSpec(
            "orderdp",
            0.3,
            1,
            status="RUNNING",
            dataset="fashion_mnist",
            budget="samples:2000",
            expected_seeds=1,
        ),
    ]


def _usage_counts(spec: RunSpec, kept: int) -> np.ndarray:
    """Per-sample usage: each epoch trains `kept` distinct samples drawn by a seeded generator."""
    rng = np.random.default_rng([spec.seed, int(spec.ratio * 100), len(spec.pruner)])
    chosen = np.argsort(rng.random((EPOCHS, TRAIN_SIZE)), axis=1)[:, :kept]
    return np.bincount(chosen.ravel(), minlength=TRAIN_SIZE).astype(np.int64)


def _curves(spec: RunSpec) -> tuple[dict[str, np.ndarray], int]:
    """Per-epoch metrics: accuracy rising linearly by 2 points per epoch to the final value."""
    epochs = np.arange(EPOCHS)
    realized = spec.ratio if spec.realized is None else spec.realized
    kept = round((1 - realized) * TRAIN_SIZE)
    curves = {
        "test_accuracy": spec.final_accuracy - 0.02 * (EPOCHS - 1 - epochs),
        "test_loss": 1.0 - 0.05 * epochs,
        "train_loss": 1.2 - 0.06 * epochs,
        "lr": 0.1 * (1 - epochs / EPOCHS),
        "kept_fraction": np.full(EPOCHS, kept / TRAIN_SIZE),
        "train_seconds": spec.epoch_seconds * (epochs + 1),
        "eval_seconds": 0.1 * (epochs + 1),
        "samples_trained": kept * (epochs + 1.0),
        "scoring_forward_passes": np.zeros(EPOCHS),
        "grad_norm": 2.0 - 0.1 * epochs + 0.05 * spec.seed + spec.ratio,
        # Within-epoch spread of the per-step norms over 4 or 5 steps per epoch.
        "grad_norm_std": 0.1 + 0.01 * epochs + 0.02 * spec.seed,
        "train_steps": 4.0 + epochs % 2,
        # Epoch e's subset vs epoch e-1's: a per-cell level plus a small seed offset.
        "subset_jaccard": np.full(
            EPOCHS, 1.0 if spec.ratio == 0 else 0.5 - 0.3 * spec.ratio + 0.01 * spec.seed
        ),
    }
    if spec.pruner in ALIGNED and spec.dataset == "synthetic":
        # Gradient alignment measured at the ends of epochs 1, 3, ..., 9 (20%, ..., 100%).
        measured = epochs % 2 == 1
        level = 0.98 if spec.ratio == 0 else 0.9 - 0.2 * spec.ratio
        curves["grad_cosine"] = np.where(measured, level - 0.01 * epochs + 0.01 * spec.seed, np.nan)
        curves["grad_alignment_progress"] = np.where(measured, (epochs + 1) / EPOCHS, np.nan)
    return curves, kept


def _log_training_run(
    client: MlflowClient, experiment_id: str, spec: RunSpec, start_ms: int, tmp: Path, parent=""
) -> str:
    label = spec.label or spec.pruner
    tags = {
        "prunebench.kind": "train",
        "prunebench.cell": f"{spec.dataset}/{spec.model}/{label}/{spec.ratio}",
        "prunebench.config_hash": hashlib.sha256(
            f"{spec.dataset}/{spec.budget}/{label}/{spec.ratio}/{spec.seed}".encode()
        ).hexdigest()[:16],
        "prunebench.status": spec.status,
        "prunebench.preset": EXPERIMENT,
        "prunebench.expected_seeds": str(spec.expected_seeds),
    }
    if spec.reason:
        tags["prunebench.failure_reason"] = spec.reason
    if spec.comparison:
        tags["prunebench.comparison"] = spec.comparison
    if parent:
        tags["mlflow.parentRunId"] = parent
    run = client.create_run(
        experiment_id,
        start_time=start_ms,
        tags=tags,
        run_name=f"{label}-p{spec.ratio}-s{spec.seed}",
    )
    run_id = run.info.run_id
    kind, amount = spec.budget.split(":")
    params = {
        "dataset": spec.dataset,
        "model": spec.model,
        "pruner": spec.pruner,
        "pruner_label": label,
        "target_prune_ratio": spec.ratio,
        "seed": spec.seed,
        "budget": spec.budget,
        "budget_kind": kind,
        "budget_amount": amount,
        "batch_size": 32,
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "label_smoothing": 0.0,
        "loader": "tensor",
        "device": "cpu",
        "device_kind": "cpu",
        "subset": "None",
        "train_size": TRAIN_SIZE,
        "prunebench_version": "0.1.0",
        "config_hash": tags["prunebench.config_hash"],
    }
    if spec.pruner != "full":
        params["pruner.prune_ratio"] = spec.ratio
    params.update(spec.extra_params)
    metrics: list[Metric] = []
    if spec.status == "FINISHED":
        curves, kept = _curves(spec)
        for key, values in curves.items():
            for step, value in enumerate(values):
                if (key == "subset_jaccard" and step == 0) or np.isnan(value):
                    continue  # absent at epoch 0 per the contract; alignment where measured
                metrics.append(Metric(key, float(value), start_ms + step, step))
        usage = _usage_counts(spec, kept)
        train_seconds = float(curves["train_seconds"][-1])
        summary = {
            "final_test_accuracy": float(curves["test_accuracy"][-1]),
            "best_test_accuracy": float(curves["test_accuracy"].max()),
            "realized_prune_ratio": 1
            - float(curves["samples_trained"][-1]) / (EPOCHS * TRAIN_SIZE),
            "train_seconds_total": train_seconds,
            "eval_seconds_total": float(curves["eval_seconds"][-1]),
            "train_device_hours": train_seconds / 3600,
            "total_device_hours": (train_seconds + float(curves["eval_seconds"][-1])) / 3600,
            "samples_trained_total": float(curves["samples_trained"][-1]),
            "epochs_run": float(EPOCHS),
            "zero_usage_samples": float((usage == 0).sum()),
        }
        for target in TARGETS:
            reached = np.flatnonzero(curves["test_accuracy"] >= target)
            if reached.size:  # a target never reached is simply not logged
                summary[f"tta_seconds_{target:.2f}"] = float(curves["train_seconds"][reached[0]])
                summary[f"tta_samples_{target:.2f}"] = float(curves["samples_trained"][reached[0]])
        metrics += [Metric(k, v, start_ms + 100, 0) for k, v in summary.items()]
        spec.logged = summary
        path = tmp / f"{run_id}" / "usage.npz"
        path.parent.mkdir(parents=True)
        np.savez(path, counts=usage)
        client.log_artifact(run_id, str(path))
        (path.parent / "config.json").write_text(json.dumps(params))
        client.log_artifact(run_id, str(path.parent / "config.json"))
    client.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()])
    if spec.status != "RUNNING":
        client.set_terminated(run_id, spec.status, end_time=start_ms + 1000)
    spec.run_id = run_id
    return run_id


def _log_search(
    client: MlflowClient, experiment_id: str, start_ms: int, tmp: Path
) -> dict[str, str]:
    """An OrderDP search with three trials (one trial's training run nested under it) and a
    failed InfoBatch search."""
    tags = {"prunebench.kind": "search", "prunebench.status": "FINISHED"}
    search = client.create_run(experiment_id, start_time=start_ms, tags=tags, run_name="search-o")
    sid = search.info.run_id
    params = {
        "search_pruner": "orderdp",
        "search_dataset": "synthetic",
        "search_model": "small_cnn",
        "search_seeds": "3",
        "tolerance": "0.01",
    }
    metrics = {
        "full_accuracy_mean": 0.91,
        "full_accuracy_std": 0.01,
        "largest_lossless_ratio": 0.552,
    }
    client.log_batch(
        sid,
        metrics=[Metric(k, v, start_ms, 0) for k, v in metrics.items()],
        params=[Param(k, v) for k, v in params.items()],
        # As prunebench.suite.search logs them: tags, since later trials may improve them.
        tags=[RunTag("best.exploration", "0.7"), RunTag("best.exploitation", "0.64")],
    )
    trial_ids = []
    for i, (ratio, lossless) in enumerate(((0.3, 1.0), (0.552, 1.0), (0.8, 0.0))):
        trial = client.create_run(
            experiment_id,
            start_time=start_ms + 1 + i,
            tags={"prunebench.kind": "trial", "mlflow.parentRunId": sid},
            run_name=f"trial-{i}",
        )
        client.log_batch(
            trial.info.run_id,
            metrics=[
                Metric("prune_ratio", ratio, start_ms, 0),
                Metric("accuracy_mean", 0.9, start_ms, 0),
                Metric("accuracy_std", 0.01, start_ms, 0),
                Metric("lossless", lossless, start_ms, 0),
            ],
        )
        client.set_terminated(trial.info.run_id, "FINISHED")
        trial_ids.append(trial.info.run_id)
    # A training run of the search, nested under a trial: it must NOT enter the leaderboard.
    nested = RunSpec("orderdp", 0.5, 0, 0.10, 1.0)
    _log_training_run(client, experiment_id, nested, start_ms + 10, tmp, parent=trial_ids[0])
    client.set_terminated(sid, "FINISHED")
    failed = client.create_run(
        experiment_id,
        start_time=start_ms + 20,
        tags={
            "prunebench.kind": "search",
            "prunebench.status": "FAILED",
            "prunebench.failure_reason": "optuna storage unreachable",
        },
        run_name="search-i",
    )
    client.log_batch(
        failed.info.run_id,
        params=[
            Param("search_pruner", "infobatch"),
            Param("search_dataset", "synthetic"),
            Param("search_model", "small_cnn"),
        ],
    )
    client.set_terminated(failed.info.run_id, "FAILED")
    return {"search": sid, "failed_search": failed.info.run_id, "nested_train": nested.run_id}


def fill_store(root: Path) -> tuple[str, list[RunSpec], dict[str, str]]:
    """Create a sqlite MLflow store under ``root`` holding the synthetic suite; returns its URI."""
    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(
        EXPERIMENT, artifact_location=(root / "artifacts").as_uri()
    )
    specs = suite()
    start = 1_700_000_000_000
    for i, spec in enumerate(specs):
        _log_training_run(client, experiment_id, spec, start + 10_000 * i, root / "tmp")
    extra = _log_search(client, experiment_id, start + 10_000 * len(specs), root / "tmp")
    return uri, specs, extra


FAIR_EXPERIMENT = "fair-suite"
FAIR = ("synthetic", "small_cnn", "epochs:10")
"""The fair suite's main section; a second one (epochs:20) shares its dataset and model."""


def fair_suite() -> list[RunSpec]:
    """Constructed accuracies with known verdicts (margin 0.1 points, level 0.05).

    Section epochs:10, full data 0.9100 / 0.9105 / 0.9110:
    - orderdp@0.3, 0.9110 / 0.9115 / 0.9120: clearly lossless (non-inferior, p < 0.01);
    - random@0.3, 0.880 / 0.882 / 0.884: clearly lossy (3 points below);
    - rs2@0.3, two seeds 0.905 / 0.915: undecidable, and not told apart from orderdp;
    - infobatch at nominal 0.7 that realized 0.48: keyed 0.48 and flagged;
    - random@0.5, one seed: too few seeds to decide;
    - full data on the sample passes of ratio 0.3 (samples:1400): 0.900 / 0.901 / 0.902;
    - equal time (half of full data's 20 s): full 0.880-0.882, orderdp 0.890-0.892,
      random 0.889-0.894 (not told apart from orderdp).
    Section epochs:20 (same dataset and model, its full data trains 40 s): two full seeds and
    orderdp@0.5 with five seeds, one never reaching 0.90 (MLPerf time to accuracy).
    """
    same = {"matched_prune_ratio": 0.3}
    half = {"time_budget_fraction": 0.5, "time_budget_seconds": 10.0}
    long = {"budget": "epochs:20", "expected_seeds": 2}

    def cell(pruner, ratio, accuracies, seconds=1.0, **kw):
        return [
            RunSpec(pruner, ratio, seed, acc, seconds, **kw) for seed, acc in enumerate(accuracies)
        ]

    return [
        *cell("full", 0.0, (0.9100, 0.9105, 0.9110), 2.0),
        *cell("orderdp", 0.3, (0.9110, 0.9115, 0.9120), 1.4),
        *cell("random", 0.3, (0.880, 0.882, 0.884), 1.4),
        *cell("rs2", 0.3, (0.905, 0.915), 1.4),
        *cell("infobatch", 0.7, (0.905, 0.906, 0.907), 1.1, realized=0.48),
        *cell("random", 0.5, (0.90,), 1.0),
        *cell(
            "full", 0.0, (0.900, 0.901, 0.902), 1.4, budget="samples:1400",
            comparison="same_compute", extra_params=same,
        ),
        *(
            RunSpec(
                pruner, ratio, seed, acc, 1.0, budget="time:10", comparison="equal_time",
                extra_params=half,
            )
            for pruner, ratio, accuracies in (
                ("full", 0.0, (0.880, 0.881, 0.882)),
                ("orderdp", 0.3, (0.890, 0.891, 0.892)),
                ("random", 0.3, (0.889, 0.8915, 0.894)),
            )
            for seed, acc in enumerate(accuracies)
        ),
        *cell("full", 0.0, (0.91, 0.912), 4.0, **long),
        *(
            RunSpec("orderdp", 0.5, seed, acc, seconds, **{**long, "expected_seeds": 5})
            for seed, (acc, seconds) in enumerate(
                ((0.90, 1.0), (0.905, 2.0), (0.91, 3.0), (0.915, 4.0), (0.88, 5.0))
            )
        ),
    ]  # fmt: skip


def fill_fair_store(root: Path) -> tuple[str, list[RunSpec]]:
    """A sqlite MLflow store under ``root`` holding :func:`fair_suite`; returns its URI."""
    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(
        FAIR_EXPERIMENT, artifact_location=(root / "artifacts").as_uri()
    )
    specs = fair_suite()
    start = 1_700_000_000_000
    for i, spec in enumerate(specs):
        _log_training_run(client, experiment_id, spec, start + 10_000 * i, root / "tmp")
    return uri, specs
