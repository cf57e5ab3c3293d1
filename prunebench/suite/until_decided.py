"""Seeds until decided: rounds of seeds for the cells whose verdict is still undecided.

After the preset's own seeds, every main pruned cell is tested against full data on the full
budget and, where the preset asks for it, against same-compute full data at its ratio. A cell
with an undecided verdict (and fewer than ``max_seeds`` seeds) gets ``round_seeds`` more seeds,
and so do the references it is undecided against; decided cells get none. The suite runs the
round (every worker, resumable: a rerun recomputes the same rounds from MLflow), then looks
again, until nothing is undecided or every undecided cell has ``max_seeds`` seeds.

Looking after every round is another chance of a false "lossless", so every look, and the
report's verdicts on the experiment, test at ``level / L`` for a design of at most L looks
(stats.sequential: a Bonferroni split whose false-lossless rate over all looks is at most
``level``). The design is recorded on the MLflow experiment (tag ``prunebench.looks``), where the
report reads it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

from prunebench import mlflow_store, record
from prunebench.pruners import reference_pruner
from prunebench.stats import DEFAULT_LEVEL, DEFAULT_MARGIN, look_level, lossless_test, planned_looks
from prunebench.suite.preset_cells import Preset

log = logging.getLogger(__name__)

SAME_COMPUTE = record.COMPARISON_SAME_COMPUTE
"""The reference key of same-compute full data (its cells are per ratio): the comparison's name,
as Preset.extra_seeds reads it."""


@dataclass(frozen=True)
class Look:
    """One look: how many comparisons were undecided, and the seeds each such cell gets."""

    round: int
    undecided: int
    decided: int
    added: dict[tuple[str, float], list[int]]


def _accuracies(tracking_uri: str, preset: Preset) -> dict[tuple[str, float], dict[int, float]]:
    """(pruner label or SAME_COMPUTE, target ratio) -> seed -> final accuracy, finished runs of
    the preset's first dataset, model and budget (main and same-compute comparisons)."""
    client = mlflow_store.client(tracking_uri)
    experiment = client.get_experiment_by_name(preset.name)
    if experiment is None:
        return {}
    out: dict[tuple[str, float], dict[int, float]] = defaultdict(dict)
    for run in client.search_runs(
        [experiment.experiment_id], record.train_filter(finished=True), max_results=50_000
    ):
        params, tags = run.data.params, run.data.tags
        accuracy = run.data.metrics.get(record.METRIC_FINAL_ACCURACY)
        if accuracy is None or params.get("dataset") != preset.datasets[0]:
            continue
        if params.get("model") != preset.models[0]:
            continue
        comparison = tags.get(record.TAG_COMPARISON, record.COMPARISON_MAIN)
        if comparison == record.COMPARISON_MAIN and params.get("budget") == preset.budget:
            label = params.get("pruner_label")
            label = params["pruner"] if label in (None, "", "None") else label
            key = (label, round(float(params.get("target_prune_ratio", 0.0)), 9))
        elif comparison == record.COMPARISON_SAME_COMPUTE:
            key = (SAME_COMPUTE, round(float(params[record.PARAM_MATCHED_PRUNE_RATIO]), 9))
        else:
            continue
        out[key][int(params["seed"])] = float(accuracy)
    return out


def undecided_cells(
    preset: Preset,
    accuracies: dict[tuple[str, float], dict[int, float]],
    margin: float,
    level: float,
) -> tuple[set[tuple[str, float]], int]:
    """The cells (pruned and reference) an undecided comparison involves, and the number of
    decided comparisons."""
    reference = reference_pruner()
    full = list(accuracies.get((reference, 0.0), {}).values())
    undecided, decided = set(), 0
    for (label, ratio), seeds in accuracies.items():
        if label in (reference, SAME_COMPUTE):
            continue
        pruned = list(seeds.values())
        references = [((reference, 0.0), full)]
        if preset.same_compute:
            same = (SAME_COMPUTE, ratio)
            references.append((same, list(accuracies.get(same, {}).values())))
        for key, values in references:
            verdict = lossless_test(pruned, values, margin=margin, level=level).verdict
            if verdict == "undecided":
                undecided |= {(label, ratio), key}
            else:
                decided += 1
    return undecided, decided


def with_seeds(preset: Preset, extra: dict[tuple[str, float], list[int]]) -> Preset:
    """The preset with ``extra`` seeds for some cells (PrunerEntry labels or SAME_COMPUTE)."""
    cells = tuple(
        (label, ratio, seed) for (label, ratio), seeds in sorted(extra.items()) for seed in seeds
    )
    return replace(preset, extra_seeds=preset.extra_seeds + cells)


def run_until_decided(
    preset: Preset,
    run_round: Callable[[Preset], None],
    tracking_uri: str,
    *,
    max_seeds: int,
    round_seeds: int,
    margin: float = DEFAULT_MARGIN,
    level: float = DEFAULT_LEVEL,
    results: Callable[[Preset], dict[tuple[str, float], dict[int, float]]] | None = None,
) -> list[Look]:
    """Run the preset, then rounds of seeds for undecided cells (see the module docstring).

    ``results`` reads (cell -> seed -> accuracy) after a round; default: the finished runs in
    MLflow at ``tracking_uri``."""
    results = results or (lambda current: _accuracies(tracking_uri, current))
    looks = planned_looks(len(preset.seeds), max_seeds, round_seeds)
    each = look_level(looks, level)
    client = mlflow_store.client(tracking_uri)
    experiment_id = mlflow_store.get_or_create_experiment(client, preset.name)
    client.set_experiment_tag(experiment_id, record.TAG_LOOKS, str(looks))
    client.set_experiment_tag(experiment_id, record.TAG_MARGIN, f"{margin:g}")
    client.set_experiment_tag(
        experiment_id, record.TAG_ROUNDS, f"{len(preset.seeds)}+{round_seeds}"
    )
    history = []
    for number in range(1, looks + 1):
        run_round(preset)
        accuracies = results(preset)
        undecided, decided = undecided_cells(preset, accuracies, margin, each)
        extra = {}
        for cell in sorted(undecided):
            have = accuracies.get(cell, {})
            if len(have) >= max_seeds:
                continue
            start = max(have, default=max(preset.seeds)) + 1
            extra[cell] = list(range(start, start + min(round_seeds, max_seeds - len(have))))
        history.append(Look(number, len(undecided), decided, extra))
        log.info(
            "look %d of %d (level %.4g each): %d comparisons decided, %d cells undecided; %d get "
            "more seeds",
            number, looks, each, decided, len(undecided), len(extra),
        )  # fmt: skip
        if not extra:
            break
        preset = with_seeds(preset, extra)
    return history
