"""The pruner contract, checked for every registered pruner."""

from __future__ import annotations

import pytest
import torch

from prunebench.errors import ConfigError
from prunebench.pruners import (
    EpochPlan,
    available_pruners,
    create_pruner,
    pruner_class,
    pruner_parameters,
    reference_pruner,
    searchable_pruners,
)

N, EPOCHS = 500, 12
# Small periods and early annealing so resume crosses every state transition.
PARAMS = {
    "full": {},
    "random": {"prune_ratio": 0.4},
    "rs2": {"prune_ratio": 0.7},
    "orderdp": {"prune_ratio": 0.5},
    "infobatch": {"prune_ratio": 0.5, "anneal": True, "delta": 0.75},
    "ucb": {"prune_ratio": 0.5, "period": 2},
    "epsilon_greedy": {"prune_ratio": 0.5, "period": 2, "epsilon": 0.2},
    "seta": {"prune_ratio": 0.3},
    "static_random": {"prune_ratio": 0.6},
    "selective_backprop": {"prune_ratio": 0.75, "staleness": 2},
    "kakurenbo": {"prune_ratio": 0.4},
    "ies": {"threshold": 0.5, "window": 1},
    "orderdp_iteration": {"prune_ratio": 0.5},
    "el2n": {"prune_ratio": 0.5, "score_epochs": 3},
    "forgetting": {"prune_ratio": 0.5, "score_epochs": 3},
    "grand": {"prune_ratio": 0.5, "score_epochs": 3},
}
# An out-of-range value for each pruner's parameters, and the parameter the error must name.
BAD = {
    "random": ("prune_ratio", 1.0),
    "rs2": ("prune_ratio", -0.1),
    "orderdp": ("prune_ratio", 1.0),
    "infobatch": ("delta", 2.0),
    "ucb": ("momentum", 1.0),
    "epsilon_greedy": ("epsilon", 1.1),
    "seta": ("window_scale", 0.0),
    "static_random": ("prune_ratio", 1.0),
    "selective_backprop": ("history", 0),
    "kakurenbo": ("threshold", 1.5),
    "ies": ("window", 0),
    "orderdp_iteration": ("prune_ratio", 1.0),
    "el2n": ("score_epochs", 0),
    "forgetting": ("prune_ratio", -0.5),
    "grand": ("score_epochs", 0),
}


# What each pruner states about itself: the target ratio of its PARAMS, whether it is searchable.
TARGET = {name: params.get("prune_ratio", 0.0) for name, params in PARAMS.items()}
SEARCHABLE = {
    "random",
    "rs2",
    "orderdp",
    "infobatch",
    "ucb",
    "epsilon_greedy",
    "seta",
    "static_random",
    "selective_backprop",
    "kakurenbo",
    "orderdp_iteration",
    "el2n",
    "forgetting",
    "grand",
}


def test_every_pruner_is_covered_here():
    assert set(available_pruners()) == set(PARAMS)


def test_pruners_describe_themselves():
    assert reference_pruner() == "full"
    assert set(searchable_pruners()) == SEARCHABLE
    for name, params in PARAMS.items():
        assert pruner_class(name).target_prune_ratio(params) == pytest.approx(TARGET[name])
    orderdp = pruner_class("orderdp")
    assert orderdp.target_prune_ratio({"exploration": 0.5, "exploitation": 0.6}) == 0.7


@pytest.mark.parametrize("name", sorted(SEARCHABLE))
def test_a_search_point_targets_its_prune_ratio(name):
    cls = pruner_class(name)
    point = {key: low + 0.3 * (high - low) for key, (low, high) in cls.search_space.items()}
    params = cls.params_from_search(point)
    assert cls.target_prune_ratio(params) == pytest.approx(point["prune_ratio"], abs=1e-6)
    create_pruner(name, n=N, epochs=EPOCHS, seed=0, **params)  # a valid parameter set


def losses_for(indices: torch.Tensor, epoch: int) -> torch.Tensor:
    """Deterministic, sample-dependent losses so score-based pruners have something to rank."""
    return ((indices * 7919 + epoch * 104729) % 1000).float() / 250.0


def confidences_for(indices: torch.Tensor, epoch: int) -> torch.Tensor:
    """Deterministic prediction statistics in [0, 1), 0 (a wrong prediction) for a fifth."""
    values = ((indices * 104729 + epoch * 7919) % 1000).float() / 1000.0
    return torch.where(indices % 5 == 0, torch.zeros_like(values), values)


def run(pruner, epochs: range, *, with_progress: bool = False) -> list[EpochPlan]:
    """Plan and observe ``epochs`` as the trainer does (``with_progress``: pass e / epochs)."""
    plans = []
    for epoch in epochs:
        request = pruner.scoring_request(epoch)  # a forward-only pass, as the trainer runs it
        if request is not None:
            pruner.observe_scoring(request, losses_for(request, epoch))
            if pruner.observes_predictions:
                pruner.observe_predictions(request, confidences_for(request, epoch))
        progress = epoch / EPOCHS if with_progress else None
        plan = pruner.plan_epoch(epoch, progress=progress)
        plans.append(plan)
        for batch in plan.indices.split(64):
            if plan.per_step:  # candidates: a forward-only pass scores them, the kept train
                batch = batch[pruner.select_step(batch, losses_for(batch, epoch))]
            pruner.observe(batch, losses_for(batch, epoch))
            if pruner.observes_predictions:
                pruner.observe_predictions(batch, confidences_for(batch, epoch))
    return plans


def make(name: str, seed: int = 0, **override):
    return create_pruner(name, n=N, epochs=EPOCHS, seed=seed, **{**PARAMS[name], **override})


def same(a: list[EpochPlan], b: list[EpochPlan]) -> bool:
    return all(
        torch.equal(x.indices, y.indices)
        and (x.weights is None) == (y.weights is None)
        and (x.weights is None or torch.equal(x.weights, y.weights))
        for x, y in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_same_seed_same_plans(name):
    assert same(run(make(name, 3), range(EPOCHS)), run(make(name, 3), range(EPOCHS)))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_different_seed_different_plans(name):
    assert not same(run(make(name, 1), range(EPOCHS)), run(make(name, 2), range(EPOCHS)))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_resume_mid_run_is_exact(name):
    uninterrupted = run(make(name), range(EPOCHS))
    first = make(name)
    head = run(first, range(5))
    state = first.state_dict()
    resumed = make(name, seed=99)  # the seed must come back from the state, not the constructor
    resumed.load_state_dict(state)
    tail = run(resumed, range(5, EPOCHS))
    assert same(uninterrupted, head + tail)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_plans_are_valid_cpu_int64_in_range(name):
    for plan in run(make(name), range(EPOCHS)):
        idx = plan.indices
        assert idx.dtype == torch.int64 and idx.dim() == 1 and idx.device.type == "cpu"
        assert 0 < idx.numel() <= N and int(idx.min()) >= 0 and int(idx.max()) < N
        # Per-step candidates (orderdp_iteration's independent S^t) may repeat across steps.
        distinct = idx.unique().numel() == idx.numel()
        assert distinct or plan.per_step, "no sample twice in one epoch"
        assert plan.scoring_forward_passes == 0
        if plan.weights is not None:
            assert plan.weights.shape == idx.shape and plan.weights.dtype == torch.float32
            assert plan.weights.device.type == "cpu"
        assert plan.realized_prune_ratio == pytest.approx(1 - idx.numel() / N)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_state_dict_tensors_are_on_cpu(name):
    pruner = make(name)
    run(pruner, range(3))
    state = pruner.state_dict()
    assert all(t.device.type == "cpu" for t in state["tensors"].values())


@pytest.mark.parametrize("name", sorted(BAD))
def test_out_of_range_parameter_is_named(name):
    param, value = BAD[name]
    with pytest.raises(ValueError, match=param) as info:
        make(name, **{param: value})
    assert isinstance(info.value, ConfigError)
    assert "must be" in str(info.value)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_unknown_parameter_lists_the_valid_ones(name):
    with pytest.raises(ConfigError, match="no parameter 'bogus'"):
        make(name, bogus=1)


def test_unknown_pruner_lists_the_names():
    with pytest.raises(
        ConfigError, match="choose one of: el2n, epsilon_greedy, forgetting, full, grand, ies"
    ):
        create_pruner("nope", n=10, epochs=1, seed=0)


@pytest.mark.parametrize("field,value", [("n", 0), ("epochs", 0), ("seed", -1), ("n", 2.5)])
def test_common_arguments_are_validated(field, value):
    kwargs = {"n": 10, "epochs": 1, "seed": 0, field: value}
    with pytest.raises(ConfigError, match=field):
        create_pruner("random", **kwargs)


def test_every_pruner_but_full_accepts_prune_ratio():
    for name in available_pruners():
        assert ("prune_ratio" in pruner_parameters(name)) == (name != "full")


def test_global_rng_is_untouched():
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    for name in PARAMS:
        run(make(name), range(3))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("name", sorted(PARAMS))
def test_observe_never_synchronizes_the_host_on_cuda(name):
    device = torch.device("cuda")
    pruner = create_pruner(name, n=N, epochs=EPOCHS, seed=0, device=device, **PARAMS[name])
    indices = torch.arange(64, device=device)
    losses = torch.rand(64, device=device)
    pruner.observe(indices, losses)  # the first call may move state to the device
    torch.cuda.synchronize(device)
    torch.cuda.set_sync_debug_mode("error")
    try:
        pruner.observe(indices, losses)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert pruner.plan_epoch(1).indices.device.type == "cuda"


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_progress_e_over_epochs_is_the_default(name):
    # Every pruner takes the budget progress at plan time; e / epochs is what None stands for.
    plans = run(make(name, 4), range(EPOCHS), with_progress=True)
    assert same(plans, run(make(name, 4), range(EPOCHS)))
