"""Dynamic data pruners behind one interface: ``create_pruner(name, n=, epochs=, seed=, ...)``."""

from prunebench.pruners import (  # noqa: F401  (each module registers its pruner)
    dynamic_random,
    el2n,
    epsilon_greedy,
    forgetting,
    full,
    grand,
    ies,
    infobatch,
    kakurenbo,
    orderdp,
    orderdp_iteration,
    rs2,
    selective_backprop,
    seta,
    static_random,
    ucb,
)
from prunebench.pruners.base import EpochPlan, Pruner
from prunebench.pruners.registry import (
    available_pruners,
    create_pruner,
    pruner_class,
    pruner_parameters,
    reference_pruner,
    register_pruner,
    searchable_pruners,
)

__all__ = [
    "EpochPlan",
    "Pruner",
    "available_pruners",
    "create_pruner",
    "pruner_class",
    "pruner_parameters",
    "reference_pruner",
    "register_pruner",
    "searchable_pruners",
]
