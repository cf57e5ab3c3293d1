"""Optuna search for a pruner's largest lossless prune ratio.

The objective is the realized prune ratio, maximized subject to the lossless rule of
``prunebench.stats`` (the report's too): a one-sided Welch non-inferiority test of the trial's K
seed accuracies against full data's at a margin (``tolerance``, default 0.1 points) and level
0.05; Optuna's constraint is p - level (feasible iff the verdict is "lossless"). Each labelled
variant of the pruner in the preset (e.g. InfoBatch with and without annealing) is its own study,
its fixed parameters applied to every trial and its label recorded on the study and its runs.
The TPE sampler explores the pruner class's own ``search_space`` (e.g. for OrderDP the prune
ratio p and how 1 - p splits into exploration and exploitation; for single-knob pruners only p);
the grid sampler tries the preset's own prune ratios (each pruner at its default parameters), so
its trials on the suite's seeds ARE the suite's cells (a finished run of a config hash is
reused, never retrained). The answer is then confirmed on fresh seeds (``suite.confirm``). Every
trial is an MLflow run nested under the study's run, and each seed it trains is a run nested
under the trial. The study lives in an Optuna RDB storage, so workers on many machines can share
it; ``trials`` counts trials over all workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import statistics
from pathlib import Path
from typing import Any

import optuna

from prunebench import interrupts, mlflow_store, record
from prunebench.errors import ConfigError
from prunebench.pruners import pruner_class, reference_pruner, searchable_pruners
from prunebench.stats import DEFAULT_LEVEL, DEFAULT_MARGIN, lossless_test
from prunebench.stores import exclusive_lock, first_use_lock
from prunebench.suite.confirm import confirm
from prunebench.suite.preset_cells import Preset
from prunebench.suite.search_record import (
    SearchResult,
    confirm_tags,
    log_result,
    search_run,
    summarize,
)
from prunebench.suite.search_training import Evaluate, full_reference, training_evaluator
from prunebench.suite.workqueue import open_storage

log = logging.getLogger(__name__)


def suggest(trial: optuna.Trial, pruner: str) -> dict[str, Any]:
    """The pruner parameters a trial tries, from the pruner class's own search space."""
    cls = pruner_class(pruner)
    values = {
        key: trial.suggest_float(key, low, high) for key, (low, high) in cls.search_space.items()
    }
    return cls.params_from_search(values)


def search_variants(preset: Preset, pruner: str) -> dict[str, dict[str, Any]]:
    """Label -> fixed parameters of each variant of ``pruner`` in the preset (ratios left out).

    A pruner the preset does not list has one variant, its own name with no fixed parameters.
    """
    variants = {
        entry.label: {
            k: v for k, v in entry.params.items() if k not in pruner_class(pruner).ratio_params
        }
        for entry in preset.pruners
        if entry.name == pruner
    }
    return variants or {pruner: {}}


def run_search(
    preset: Preset,
    pruner: str,
    trials: int,
    seeds: int,
    tracking_uri: str,
    storage_url: str,
    dataset: str | None = None,
    model: str | None = None,
    tolerance: float | None = None,
    checkpoint_dir: str | Path = record.DEFAULT_CHECKPOINT_DIR,
    evaluate: Evaluate | None = None,
    sampler_seed: int = 0,
    variant: str | None = None,
    sampler: str = "tpe",
    confirm_seeds: int | None = None,
    confirm_max_seeds: int | None = None,
) -> SearchResult:
    """Search ``pruner``'s largest lossless prune ratio on the preset's first dataset and model,
    then confirm it on ``confirm_seeds`` fresh seeds (default: ``seeds``; 0: no confirmation),
    in rounds up to ``confirm_max_seeds`` while undecided (``suite.confirm``).

    ``variant`` is the preset label of the variant to search (see :func:`search_variants`); it
    may be left out when the pruner has one. ``tolerance`` is the non-inferiority margin.
    ``sampler`` "grid" tries the preset's prune ratios of the variant (``trials`` is then their
    number), "tpe" samples the pruner's search space.
    """
    if pruner not in searchable_pruners():
        raise ConfigError(
            f"cannot search pruner {pruner!r}; choose one of: {', '.join(searchable_pruners())}"
        )
    if trials < 1 or seeds < 1:
        raise ConfigError(f"--trials and --seeds must be at least 1, got {trials} and {seeds}")
    if tolerance is not None and tolerance < 0:
        raise ConfigError(f"--tolerance must be >= 0, got {tolerance}")
    variants = search_variants(preset, pruner)
    if variant is None and len(variants) == 1:
        variant = next(iter(variants))
    if variant not in variants:
        raise ConfigError(
            f"pruner {pruner!r} has variants {', '.join(variants)} in preset {preset.name!r}; "
            "name one of them"
        )
    fixed = variants[variant]
    dataset = dataset or preset.datasets[0]
    model = model or preset.models[0]
    tracking_uri = mlflow_store.resolve_tracking_uri(tracking_uri)  # one string, as in run_suite
    mlflow_store.check_tracking_uri(tracking_uri)
    storage = open_storage(storage_url)
    mlflow_store.prepare_experiment(tracking_uri, preset.name)
    evaluate = evaluate or training_evaluator(
        preset, dataset, model, tracking_uri, checkpoint_dir, variant
    )
    seed_list = search_seeds(preset, seeds)
    grid = variant_ratios(preset, variant) if sampler == "grid" else []
    if sampler == "grid":
        trials = len(grid)

    # This machine's workers train each full-data reference once: the others wait, then find
    # it finished (a lock on the search's checkpoint folder, which leaves no file behind).
    references = Path(checkpoint_dir) / "search"
    references.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(references):
        full = full_reference(preset, dataset, model, seed_list, tracking_uri, evaluate)
    full_mean = statistics.fmean(full)
    full_std = statistics.stdev(full) if len(full) > 1 else 0.0
    margin = DEFAULT_MARGIN if tolerance is None else tolerance
    level = DEFAULT_LEVEL

    # Trials are comparable only under the same cells, variant, seed count and lossless rule.
    study_name = (
        f"prunebench-search/{preset.name}/{dataset}/{model}/{pruner}/{variant}/{preset.digest()}"
        f"/seeds{seeds}/margin-{margin:g}-level-{level:g}" + ("/grid" if grid else "")
    )
    study = optuna.create_study(
        storage=storage, study_name=study_name, direction="maximize", load_if_exists=True
    )
    # Workers sharing the study draw different trials: each its own seed (study, worker). A
    # grid's workers share Optuna's grid bookkeeping, each starting at its own seeded point.
    worker = _join_study(study, storage, storage_url)
    worker_seed = search_worker_seed(study_name, sampler_seed, worker)
    study.sampler = (
        optuna.samplers.GridSampler({"prune_ratio": grid}, seed=worker_seed)
        if grid
        else optuna.samplers.TPESampler(
            seed=worker_seed, n_startup_trials=min(8, max(2, trials // 3))
        )
    )
    client = mlflow_store.client(tracking_uri)
    study.set_user_attr("variant", variant)
    search_run_id = search_run(
        client, storage_url, storage, preset, study, pruner, variant, dataset, model, seeds, margin
    )
    mlflow_store.log_values(
        client,
        search_run_id,
        metrics={"full_accuracy_mean": full_mean, "full_accuracy_std": full_std},
    )

    def objective(trial: optuna.Trial) -> float:
        if grid:  # the preset's own cell parameters, so the suite's runs answer the trial
            params = {**fixed, "prune_ratio": trial.suggest_float("prune_ratio", 0.0, 1.0)}
        else:
            params = {**fixed, **suggest(trial, pruner)}
        trial_run = client.create_run(
            mlflow_store.get_or_create_experiment(client, preset.name),
            run_name=f"{pruner}-trial{trial.number}",
            tags={
                record.TAG_KIND: record.KIND_TRIAL,
                record.TAG_PARENT_RUN: search_run_id,
                record.TAG_SEARCH: study_name,
                record.TAG_TRIAL_NUMBER: str(trial.number),
                record.TAG_VARIANT: variant,
            },
        )
        trial_run_id = trial_run.info.run_id
        mlflow_store.log_values(
            client,
            trial_run_id,
            params={
                **{f"{record.PARAM_PRUNER_PREFIX}{k}": v for k, v in params.items()},
                "pruner": pruner,
                "pruner_label": variant,
                "search_worker": worker,
                "sampler_seed": worker_seed,
            },
        )
        tags = {
            record.TAG_KIND: record.KIND_SEARCH_TRAIN,
            record.TAG_PARENT_RUN: trial_run_id,
            record.TAG_SEARCH: study_name,
            record.TAG_PRESET: preset.name,
            record.TAG_VARIANT: variant,
        }
        try:
            interrupts.point("search-trial")
            outcomes = [evaluate(pruner, params, seed, tags) for seed in seed_list]
        except KeyboardInterrupt:  # SIGINT or SIGTERM: the trial's run ends KILLED, not RUNNING
            with interrupts.shielded():
                client.set_terminated(trial_run_id, "KILLED")
            raise
        accuracies = [acc for acc, _ in outcomes]
        ratios = [ratio for _, ratio in outcomes]
        if any(acc != acc for acc in accuracies):  # NaN: a seed's run failed (e.g. diverged)
            client.set_terminated(trial_run_id, "FAILED")
            trial.set_constraint("lossless", float("inf"))
            raise optuna.TrialPruned("a seed's training run failed")
        accuracy_mean = statistics.fmean(accuracies)
        accuracy_std = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
        ratio = statistics.fmean(ratios)
        verdict = lossless_test(accuracies, full, margin=margin, level=level)
        lossless = verdict.lossless
        # Feasible (<= 0) iff lossless; an untestable trial (NaN p) is infeasible.
        p_value = verdict.p_value if verdict.p_value == verdict.p_value else 1.0
        trial.set_constraint(
            "lossless", p_value - level if lossless else max(p_value - level, 1e-9)
        )
        trial.set_user_attr("lossless", lossless)
        trial.set_user_attr("verdict", verdict.verdict)
        trial.set_user_attr("verdict_sentence", verdict.sentence)
        trial.set_user_attr("accuracy_mean", accuracy_mean)
        trial.set_user_attr("accuracy_std", accuracy_std)
        trial.set_user_attr("params", params)
        mlflow_store.log_values(
            client,
            trial_run_id,
            metrics={
                "prune_ratio": ratio,
                "accuracy_mean": accuracy_mean,
                "accuracy_std": accuracy_std,
                "lossless": float(lossless),
                "lossless_p_value": p_value,
            },
        )
        client.set_terminated(trial_run_id, "FINISHED")
        return ratio

    # `trials` counts every worker's trials, earlier runs' included: a finished study runs none,
    # and the callback stops each worker once the study holds enough (optimize runs at least one).
    remaining = trials - len(study.get_trials(deepcopy=False))
    if remaining > 0:
        study.optimize(
            objective,
            n_trials=remaining,
            callbacks=[optuna.study.MaxTrialsCallback(trials, states=None)],
            catch=(),
        )
    result = summarize(study, study_name, search_run_id, full_mean, full_std, margin, variant)
    runs = len(seed_list) * len(result.frontier)
    if confirm_seeds != 0:
        lossless = [row for row in result.frontier if row["lossless"]]
        fresh_tags = {**confirm_tags(search_run_id, study_name, preset, variant)}

        def train(params: dict[str, Any], seed: int) -> tuple[float, float]:
            return evaluate(pruner, params, seed, fresh_tags)

        def train_full(seeds: list[int]) -> list[float]:
            # Shared by every variant's search: each seed trained once on this machine, under a
            # lock of its own. A seed another worker is training is passed over, then waited
            # for and reused, so two workers needing the same seeds train them side by side.
            done: dict[int, float] = {}
            for wait in (False, True):
                for seed in [s for s in seeds if s not in done]:
                    lock = references / "full" / str(seed)
                    lock.mkdir(parents=True, exist_ok=True)
                    with exclusive_lock(lock, wait=wait) as held:
                        if held:
                            done[seed] = evaluate(reference_pruner(), {}, seed, fresh_tags)[0]
            return [done[seed] for seed in seeds]

        # Once per study: its workers that finish together take turns (a folder lock of the
        # study's own on this machine: other variants' confirmations run beside it), and a
        # worker that finds the confirmation done leaves it to the record.
        turn = references / "confirm" / hashlib.sha256(study_name.encode()).hexdigest()[:16]
        turn.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(turn):
            done = optuna.load_study(study_name=study_name, storage=storage).user_attrs
            if not done.get("confirmed"):
                confirmation = confirm(
                    lossless,
                    train,
                    confirm_seeds or seeds,
                    margin,
                    level,
                    confirm_max_seeds,
                    train_full,
                )
                result = dataclasses.replace(result, confirmation=confirmation)
                runs += confirmation.training_runs
                study.set_user_attr("confirmed", True)
    result = dataclasses.replace(result, training_runs=runs)
    log_result(client, search_run_id, result)
    return result


def search_seeds(preset: Preset, count: int) -> list[int]:
    """The seeds a search trial trains: the preset's first ``count`` seeds (so grid trials are
    the suite's cells), then the integers after its largest."""
    seeds = list(preset.seeds[:count])
    while len(seeds) < count:
        seeds.append(max(seeds, default=-1) + 1)
    return seeds


def variant_ratios(preset: Preset, variant: str) -> list[float]:
    """The target prune ratios the preset runs variant ``variant`` at, ascending."""
    ratios = {r for entry in preset.pruners if entry.label == variant for r in entry.prune_ratios}
    if not ratios:
        raise ConfigError(f"the grid search needs prune ratios of {variant!r} in the preset")
    return sorted(ratios)


def search_worker_seed(study_name: str, sampler_seed: int, worker: int) -> int:
    """The sampler seed of a study's ``worker``-th worker: one per (study, --sampler-seed,
    worker), so one worker on a new study draws the same trials every time."""
    digest = hashlib.sha256(f"{study_name}\0{sampler_seed}\0{worker}".encode()).hexdigest()
    return int(digest[:8], 16)


def _join_study(study: optuna.Study, storage: optuna.storages.BaseStorage, url: str) -> int:
    """This worker's number in the study (0 for the first), counted in a study attr under the
    storage's lock (this machine's workers never share a number)."""
    with first_use_lock(url):
        attrs = optuna.load_study(study_name=study.study_name, storage=storage).user_attrs
        worker = int(attrs.get("workers", 0))
        study.set_user_attr("workers", worker + 1)
    return worker
