"""The one MLflow record schema: the names a prunebench run is written and found again by.

Tag keys, run kinds, per-epoch and summary metric names, shared parameter names and artifact
names live here, once, with the checks that a run logs only these. Names only: how they reach a
store (the tracking URI rule, store checks, the client, the write path) is
``prunebench.mlflow_store``.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------- where
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
"""MLflow's embedded default: a SQLite file in the working directory."""
DEFAULT_EXPERIMENT = "prunebench"
DEFAULT_CHECKPOINT_DIR = "checkpoints"
"""Where runs keep their resumable checkpoints (relative to the working directory)."""

# ---------------------------------------------------------------------------- tags
TAG_KIND = "prunebench.kind"
"""What the run is: one of the KIND_* values below."""
TAG_STATUS = "prunebench.status"
"""prunebench's own status (RUNNING until the run records its end; see :func:`end_tags`)."""
TAG_FAILURE_REASON = "prunebench.failure_reason"
TAG_CELL = "prunebench.cell"
"""``<dataset>/<model>/<pruner_label>/<target ratio>``: the cell a training run belongs to."""
TAG_CONFIG_HASH = "prunebench.config_hash"
"""The run config's hash: a suite's record of which cell is done."""
TAG_PRESET = "prunebench.preset"
TAG_SUITE = "prunebench.suite"
"""A suite generation (its work-queue root): group the runs table by it to compare one suite."""
TAG_EXPECTED_SEEDS = "prunebench.expected_seeds"
TAG_COMPARISON = "prunebench.comparison"
"""Which comparison a suite's training run serves: one of the COMPARISON_* values below."""
TAG_SEARCH = "prunebench.search"
"""The Optuna study name of a search run and of its trials and their training runs."""
TAG_VARIANT = "prunebench.variant"
"""The preset label of the pruner variant a search (and its trials and training runs) explores."""
TAG_LOOKS = "prunebench.looks"
"""On an experiment run with --until-decided: the design's number of looks L (its verdicts
test at level / L)."""
TAG_ROUNDS = "prunebench.rounds"
"""On an experiment run with --until-decided: "INITIAL+ROUND", its seeds before the first look
and the seeds each round adds (a verdict on N seeds rests on 1 + ceil((N - INITIAL) / ROUND)
rounds)."""
TAG_MARGIN = "prunebench.margin"
"""On an experiment run with --until-decided: the margin its rounds decided at."""
TAG_CONFIRMATION = "prunebench.confirmation"
"""On a search's training runs on fresh seeds that confirm (or not) its answer: "true"."""
TAG_PARENT_RUN = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"
TAG_TRIAL_NUMBER = "optuna.trial_number"
TAG_BEST_PREFIX = "best."
"""A search's best parameters, as tags ``best.<param>`` (a later trial may improve them)."""
TAG_DATA_SOURCE = "prunebench.source"
"""On a generated (synthetic) dataset input: the generator that made it."""
TAG_PROCESS = "prunebench.process"
"""``<host>:<pid>:<process start time>`` of the process training a run (set at each start or
resume): a RUNNING run whose process is gone from this host is an orphan."""

# ---------------------------------------------------------------------------- experiment tags
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
"""MLflow 3's experiment kind; its UI shows training runs for TRAINING_KIND."""
TRAINING_KIND = "custom_model_development"
"""MLflow 3's experiment kind for model training (vs ``genai_development``)."""
DESCRIPTION_TAG = "mlflow.note.content"
"""The experiment description shown above its runs in the MLflow UI."""
EXPERIMENT_DESCRIPTION = (
    f"prunebench training runs. Compare a cell's seeds by grouping the runs table by the tag "
    f"{TAG_CELL} (one suite generation: {TAG_SUITE}); nested runs under a search are its Optuna "
    "trials."
)
NEW_EXPERIMENT_TAGS = {EXPERIMENT_KIND_TAG: TRAINING_KIND, DESCRIPTION_TAG: EXPERIMENT_DESCRIPTION}
"""Tags of an experiment prunebench creates (an existing experiment's tags are never changed)."""

# ---------------------------------------------------------------------------- run kinds
KIND_TRAIN = "train"
KIND_SEARCH = "search"
KIND_TRIAL = "trial"
KIND_SEARCH_TRAIN = "search_train"
KIND_REPORT = "report"
SEARCH_KINDS = (KIND_SEARCH, KIND_TRIAL)
"""Kinds whose nested training runs are a search's, not the benchmark grid's."""

# ---------------------------------------------------------------------------- comparisons
COMPARISON_MAIN = "main"
"""The preset's ordinary cells (full data on the full budget included); untagged runs too."""
COMPARISON_SAME_COMPUTE = "same_compute"
"""Full data given the sample passes of the pruned runs at one prune ratio."""
COMPARISON_EQUAL_TIME = "equal_time"
"""Every pruner given the same wall-clock training seconds."""
COMPARISON_SATURATION = "saturation"
"""Full data on a multiple of the budget: how much more training would still gain."""
COMPARISONS = (
    COMPARISON_MAIN,
    COMPARISON_SAME_COMPUTE,
    COMPARISON_EQUAL_TIME,
    COMPARISON_SATURATION,
)

# ---------------------------------------------------------------------------- metrics
PROGRESS_CHECKPOINTS = (0.2, 0.4, 0.6, 0.8, 1.0)
"""Training-progress checkpoints of the paper's Tables 8 and 11: where gradient alignment is
measured by default and where the report reads coreset Jaccard and ``grad_cosine``."""
ALIGNMENT_METRICS = (
    "grad_cosine",
    "grad_norm_full",
    "grad_norm_plan",
    "grad_alignment_progress",
    "diagnostics_seconds",
)
"""Per-epoch metrics of runs with ``grad_alignment`` on (bench/diagnostics.py): the first four at
the epochs that reached a progress checkpoint, ``diagnostics_seconds`` (cumulative) every epoch."""
EPOCH_METRICS = (
    "test_accuracy",
    "test_loss",
    "eval_samples_trained",
    "eval_train_seconds",
    "train_loss",
    "lr",
    "momentum",
    "kept_fraction",
    "train_seconds",
    "eval_seconds",
    "process_cpu_seconds",
    "samples_trained",
    "scoring_forward_passes",
    "train_steps",
    "grad_norm",
    "grad_norm_std",
    "subset_jaccard",
    *ALIGNMENT_METRICS,
)
"""Per-epoch metrics of a training run (step = epoch; ``subset_jaccard`` absent at epoch 0;
``test_accuracy`` and ``test_loss`` only at the epochs that evaluated, see ``eval_points``, with
``eval_samples_trained`` and ``eval_train_seconds``: the sample passes and training seconds at
that evaluation, which happens where the run's clock reached an evaluation point common to every
pruner of the cell (budgets.eval_interval), within the epoch when the point fell inside it).

``grad_norm`` and ``grad_norm_std`` are the mean and population std (ddof=0) of the epoch's
per-step gradient norms over its ``train_steps`` optimizer steps, so the epochs of a training
phase pool exactly into the phase's mean and std (Table 9's within-run fluctuation).

The trainer logs exactly these (:func:`check_epoch_metrics`) and the report reads these
histories: a new per-epoch metric is one name here and the trainer line that computes it."""
METRIC_FINAL_ACCURACY = "final_test_accuracy"
METRIC_BEST_ACCURACY = "best_test_accuracy"
METRIC_REALIZED_RATIO = "realized_prune_ratio"
METRIC_TRAIN_SECONDS_TOTAL = "train_seconds_total"
METRIC_EVAL_SECONDS_TOTAL = "eval_seconds_total"
METRIC_TRAIN_DEVICE_HOURS = "train_device_hours"
METRIC_TOTAL_DEVICE_HOURS = "total_device_hours"
METRIC_SAMPLES_TRAINED_TOTAL = "samples_trained_total"
METRIC_SAMPLES_PER_SECOND = "train_samples_per_second"
METRIC_CPU_SECONDS_TOTAL = "process_cpu_seconds_total"
METRIC_SCORING_PASSES_TOTAL = "scoring_forward_passes_total"
METRIC_EPOCHS_RUN = "epochs_run"
METRIC_EVALUATIONS = "evaluations"
METRIC_ZERO_USAGE = "zero_usage_samples"
SUMMARY_METRICS = (
    METRIC_FINAL_ACCURACY,
    METRIC_BEST_ACCURACY,
    METRIC_REALIZED_RATIO,
    METRIC_TRAIN_SECONDS_TOTAL,
    METRIC_EVAL_SECONDS_TOTAL,
    METRIC_TRAIN_DEVICE_HOURS,
    METRIC_TOTAL_DEVICE_HOURS,
    METRIC_SAMPLES_TRAINED_TOTAL,
    METRIC_SAMPLES_PER_SECOND,
    METRIC_CPU_SECONDS_TOTAL,
    METRIC_SCORING_PASSES_TOTAL,
    METRIC_EPOCHS_RUN,
    METRIC_EVALUATIONS,
    METRIC_ZERO_USAGE,
)
"""Summary metrics logged once at the end of a training run (plus ``tta_*`` per target).

``train_samples_per_second`` (samples trained / training seconds) and ``process_cpu_seconds_total``
(the process's CPU time over its epochs, evaluation included) say whether the wall clock can be
trusted: the report flags the time figures of a run whose throughput deviates from its suite's
runs of the same dataset, model and device.

``evaluations`` is the number of test evaluations the accuracies and ``tta_*`` rest on (param
``eval_points`` says how they were scheduled): time-to-accuracy is known to that resolution.
``diagnostics_seconds_total`` is logged as well when gradient alignment was measured."""
DIAGNOSTICS_SECONDS_TOTAL = "diagnostics_seconds_total"
"""Gradient-alignment measurement seconds of a run: outside the training and evaluation clocks."""
METRIC_RATIO_SHORTFALL = "ratio_shortfall"
"""Of a run whose pruner steers to a target realized ratio (InfoBatch's realized mode): the run's
realized prune ratio minus that target, signed (negative: the target was not reached)."""
METRIC_PRUNER_PREFIX = "pruner."
"""A pruner's own end-of-run summary (:attr:`Pruner.run_summary`) is logged as ``pruner.<name>``
metrics (e.g. InfoBatch's largest loss weight, ``pruner.max_weight``)."""


TTA_SECONDS = "tta_seconds"
"""Prefix of the time-to-accuracy metrics: training seconds to reach a target (target_key)."""
TTA_SAMPLES = "tta_samples"
"""Prefix of the samples-to-accuracy metrics: sample passes to reach a target (target_key)."""


def target_key(prefix: str, target: float) -> str:
    """Metric name for an accuracy target, e.g. ``tta_seconds_0.90``: the one tta key format."""
    return f"{prefix}_{target:.2f}"


def _is_summary_metric(key: str) -> bool:
    if key in SUMMARY_METRICS or key in (DIAGNOSTICS_SECONDS_TOTAL, METRIC_RATIO_SHORTFALL):
        return True
    if key.startswith(METRIC_PRUNER_PREFIX):
        return True
    prefix, _, target = key.rpartition("_")
    return prefix in (TTA_SECONDS, TTA_SAMPLES) and key == target_key(prefix, _number(target))


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def check_summary_metrics(summary: dict[str, float]) -> dict[str, float]:
    """``summary`` unchanged if every key is a summary metric (SUMMARY_METRICS, a ``tta_*``
    target key, ``pruner.*``, the diagnostics seconds or the ratio shortfall); ValueError names
    the stray key."""
    unknown = sorted(key for key in summary if not _is_summary_metric(key))
    if unknown:
        raise ValueError(f"summary metric {unknown[0]!r} is not in record.SUMMARY_METRICS")
    return summary


def check_epoch_metrics(entry: dict[str, float]) -> dict[str, float]:
    """``entry`` unchanged if every key is in EPOCH_METRICS; ValueError names the stray key."""
    unknown = sorted(set(entry) - set(EPOCH_METRICS))
    if unknown:
        raise ValueError(f"per-epoch metric {unknown[0]!r} is not in record.EPOCH_METRICS")
    return entry


# ---------------------------------------------------------------------------- params
PARAM_PRUNER_PREFIX = "pruner."
"""A pruner's own parameters are logged as ``pruner.<name>``."""
PARAM_CONFIG_HASH = "config_hash"
PARAM_VERSION = "prunebench_version"
PARAM_DEVICE_COUNT = "device_count"
"""Devices the run trained on (its processes, one device each); device-hours count them all."""
PARAM_BATCH_PER_DEVICE = "batch_size_per_device"
"""The per-process batch: the global ``batch_size`` divided among ``nproc`` processes."""
PARAM_TARGET_PRUNE_RATIO = "target_prune_ratio"
PARAM_MATCHED_PRUNE_RATIO = "matched_prune_ratio"
PARAM_BUDGET_MULTIPLE = "budget_multiple"
"""Of a same-compute full run: the target realized prune ratio whose sample passes it matches."""
PARAM_TIME_BUDGET_FRACTION = "time_budget_fraction"
"""Of an equal-time run: its training seconds as a fraction of the full-data run's."""
PARAM_TIME_BUDGET_SECONDS = "time_budget_seconds"
PARAM_NVML_INDEX = "nvml_index"
"""Of a GPU run: its GPU's index as NVML numbers it, hence MLflow's ``system/gpu_<i>_*`` metrics.
It differs from torch's ``cuda:<i>`` when CUDA_VISIBLE_DEVICES reorders or hides GPUs."""

# ---------------------------------------------------------------------------- artifacts
ARTIFACT_TRACEBACK = "traceback.txt"
"""A failed run's traceback (the terminal gets one line per failed cell, the run keeps this)."""
ARTIFACT_USAGE = "usage.npz"
"""A training run's per-sample usage counts (``counts``: times each sample was trained)."""
ARTIFACT_USAGE_HISTOGRAM = "usage_histogram.png"
ARTIFACT_SCORES = "scores.pt"
"""The pruner's final state (its scores) of a training run."""
ARTIFACT_CONFIG = "config.json"
"""A training run's resolved config."""
ARTIFACT_FRONTIER = "frontier.json"
"""A search's trials (parameters, ratio, accuracy, lossless) as its Pareto frontier."""
ARTIFACT_CONFIRMATION = "confirmation.json"
"""A search's confirmation of its answer on fresh seeds: the seeds and each attempt."""


# ---------------------------------------------------------------------------- tags per event
def new_run_tags(kind: str, **extra: str) -> dict[str, str]:
    """Tags of a run being created: its kind and RUNNING status, plus ``extra``."""
    return {TAG_KIND: kind, TAG_STATUS: "RUNNING", **extra}


def end_tags(status: str, failure_reason: str | None = None) -> dict[str, str]:
    """Tags recording how a run ended (an interrupted run stays RUNNING, hence resumable)."""
    tags = {TAG_STATUS: status if status != "KILLED" else "RUNNING"}
    if failure_reason:
        tags[TAG_FAILURE_REASON] = failure_reason
    return tags


def train_filter(
    config_hash: str | None = None, finished: bool = False, status: str | None = None
) -> str:
    """An MLflow filter string for training runs (of one config; FINISHED only; of a status)."""
    parts = [f"tags.`{TAG_KIND}` = '{KIND_TRAIN}'"]
    if config_hash is not None:
        parts.append(f"tags.`{TAG_CONFIG_HASH}` = '{config_hash}'")
    status = "FINISHED" if finished else status
    if status is not None:
        parts.append(f"attributes.status = '{status}'")
    return " and ".join(parts)
