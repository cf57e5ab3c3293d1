"""The trainer runs the methods with extra passes and charges them (synthetic data, seconds).

Forward-only passes (a pruner's scoring request, per-step candidates) are counted in
``scoring_forward_passes``, apart from the forward+backward passes a samples budget counts.
"""

from __future__ import annotations

import pytest
import torch

from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig
from prunebench.bench.distributed import Dist
from prunebench.bench.trainer import Trainer
from prunebench.errors import ConfigError

SUBSET = 600

pytestmark = pytest.mark.usefixtures("one_thread")


def make_trainer(pruner: str, params: dict, budget: str) -> Trainer:
    cfg = RunConfig(
        dataset="synthetic",
        model="small_cnn",
        pruner=pruner,
        pruner_params=params,
        budget=parse_budget(budget),
        subset=SUBSET,
        batch_size=64,
        lr=0.05,
        device="cpu",
        accuracy_targets=(0.15,),
    )
    return Trainer(cfg, Dist(torch.device("cpu")))


def train(trainer: Trainer) -> list[dict[str, float]]:
    counters = trainer.counters
    while not trainer.budget.exhausted(
        counters.epoch, counters.samples_trained, counters.train_seconds
    ):
        trainer.train_epoch(show_progress=False)
    return counters.history


def test_selective_backprop_charges_a_forward_pass_per_candidate():
    trainer = make_trainer("selective_backprop", {}, "epochs:3")
    history = train(trainer)
    counters = trainer.counters
    # Epoch 0 is primed (every sample trained, nothing scored); epochs 1 and 2 score all.
    assert [entry["scoring_forward_passes"] for entry in history] == [0, SUBSET, 2 * SUBSET]
    kept = counters.samples_trained - SUBSET
    assert 0 < kept < 2 * SUBSET  # only the selected samples are backpropagated
    assert int(trainer.usage.sum()) == counters.samples_trained
    assert history[1]["kept_fraction"] + history[2]["kept_fraction"] == pytest.approx(kept / SUBSET)
    assert counters.epochs_run == 3  # every candidate consumed: three whole epochs
    summary = trainer.summary()
    assert summary["realized_prune_ratio"] == pytest.approx(
        1 - counters.samples_trained / (3 * SUBSET)
    )


def test_a_samples_budget_stops_on_backpropagated_samples_only():
    trainer = make_trainer("selective_backprop", {"beta": 1.0}, "samples:1000")
    history = train(trainer)
    counters = trainer.counters
    assert counters.samples_trained == 1000  # exactly: the last batch is cut to the budget
    # The scoring passes are counted apart: more candidates were scored than trained after
    # the primed epoch, and they did not count toward the budget.
    assert counters.scoring_forward_passes > 1000 - SUBSET
    assert history[-1]["scoring_forward_passes"] == counters.scoring_forward_passes
    assert int(trainer.usage.sum()) == 1000


def test_kakurenbo_charges_a_forward_pass_per_hidden_sample_and_scales_the_lr():
    trainer = make_trainer("kakurenbo", {"prune_ratio": 0.5, "threshold": 0.1}, "epochs:4")
    history = train(trainer)
    passes = [entry["scoring_forward_passes"] for entry in history]
    per_epoch = [b - a for a, b in zip([0.0, *passes], passes, strict=False)]
    hidden = [SUBSET - round(entry["kept_fraction"] * SUBSET) for entry in history]
    assert per_epoch[0] == 0 and hidden[0] == 0  # every sample trains in the first epoch
    assert per_epoch[1:] == hidden[:-1]  # each epoch scores the samples hidden in the last
    assert sum(hidden) > 0  # the run hid something, so the counts were exercised
    # The last epoch starts at progress 3/4, past 0.6: F = 0.8 * 0.5, the LR times 1 / (1 - F).
    assert trainer.pruner.lr_scale() == pytest.approx(1 / (1 - 0.4))


def test_ies_charges_an_eval_pass_per_excluded_sample():
    # A loose threshold with a cap of half the data: from the 7th epoch on (6 losses judged)
    # exactly half the samples are excluded, and each epoch re-scores the last one's excluded.
    trainer = make_trainer("ies", {"threshold": 100.0, "prune_ratio": 0.5}, "epochs:8")
    history = train(trainer)
    passes = [entry["scoring_forward_passes"] for entry in history]
    per_epoch = [b - a for a, b in zip([0.0, *passes], passes, strict=False)]
    excluded = [SUBSET - round(entry["kept_fraction"] * SUBSET) for entry in history]
    assert excluded == [0] * 6 + [SUBSET // 2] * 2
    assert per_epoch == [0] * 7 + [SUBSET // 2]


def test_orderdp_iteration_scores_every_candidate_and_trains_q_per_step():
    trainer = make_trainer("orderdp_iteration", {"prune_ratio": 0.36}, "epochs:2")
    history = train(trainer)
    steps = -(-int(0.8 * SUBSET) // 64)  # pool 480 -> 8 candidate batches of 64
    q = int(0.8 * 64)
    assert [entry["train_steps"] for entry in history] == [steps, steps]
    assert [entry["samples_trained"] for entry in history] == [steps * q, 2 * steps * q]
    assert [entry["scoring_forward_passes"] for entry in history] == [
        steps * 64,
        2 * steps * 64,
    ]


def test_el2n_charges_its_scoring_phase_and_one_pass_over_the_data():
    trainer = make_trainer("el2n", {"prune_ratio": 0.5, "score_epochs": 1}, "epochs:3")
    history = train(trainer)
    assert [entry["scoring_forward_passes"] for entry in history] == [0, SUBSET, SUBSET]
    # The scoring phase trains all the data (charged as training), then the kept half.
    assert [entry["samples_trained"] for entry in history] == [SUBSET, 1.5 * SUBSET, 2 * SUBSET]


def test_grand_charges_its_final_scoring_pass_like_el2n():
    trainer = make_trainer("grand", {"prune_ratio": 0.5, "score_epochs": 1}, "epochs:3")
    history = train(trainer)
    assert [entry["scoring_forward_passes"] for entry in history] == [0, SUBSET, SUBSET]
    assert [entry["samples_trained"] for entry in history] == [SUBSET, 1.5 * SUBSET, 2 * SUBSET]
    # Every sample was seen twice before pruning: its training pass and the scoring pass.
    assert int(trainer.pruner.passes.min()) == int(trainer.pruner.passes.max()) == 2


@pytest.mark.parametrize("name", ["ucb", "epsilon_greedy"])
def test_rescoring_bandits_charge_a_forward_pass_per_sample_at_each_selection(name):
    params = {"prune_ratio": 0.5, "period": 2, "rescore": True}
    trainer = make_trainer(name, params, "epochs:4")
    history = train(trainer)
    # Selections at epochs 0 and 2, each after re-scoring all 600 samples; training is apart.
    assert [entry["scoring_forward_passes"] for entry in history] == [
        SUBSET,
        SUBSET,
        2 * SUBSET,
        2 * SUBSET,
    ]
    assert [entry["samples_trained"] for entry in history] == [300, 600, 900, 1200]
    assert bool(trainer.pruner.seen.all())  # every sample scored, trained or not


def test_stale_selective_backprop_scores_only_in_fresh_epochs():
    trainer = make_trainer("selective_backprop", {"staleness": 2}, "epochs:4")
    history = train(trainer)
    # Epoch 0 primed, 1 fresh (every candidate scored), 2 stale (stored losses), 3 fresh.
    assert [entry["scoring_forward_passes"] for entry in history] == [0, SUBSET, SUBSET, 2 * SUBSET]
    assert 0 < history[2]["kept_fraction"] < 1
    assert int(trainer.usage.sum()) == trainer.counters.samples_trained


@pytest.mark.parametrize("pruner", ["selective_backprop", "orderdp_iteration"])
def test_per_step_pruners_refuse_several_processes_before_any_work(pruner):
    cfg = RunConfig(
        dataset="synthetic",
        model="small_cnn",
        pruner=pruner,
        pruner_params={"prune_ratio": 0.5},
        budget=parse_budget("epochs:1"),
        subset=SUBSET,
        batch_size=64,
        device="cpu",
        nproc=2,
    )
    with pytest.raises(ConfigError, match="selects per step and runs on one process; drop --nproc"):
        cfg.validate()


@pytest.mark.parametrize(
    ("pruner", "params"),
    [
        ("seta", {"prune_ratio": 0.3}),
        ("static_random", {"prune_ratio": 0.5}),
        ("forgetting", {"prune_ratio": 0.5, "score_epochs": 1}),
    ],
)
def test_methods_without_extra_passes_are_charged_none(pruner, params):
    trainer = make_trainer(pruner, params, "epochs:2")
    history = train(trainer)
    assert [entry["scoring_forward_passes"] for entry in history] == [0, 0]
    assert int(trainer.usage.sum()) == trainer.counters.samples_trained
