"""Seeds added until decided, with the false-lossless rate controlled over every look.

A cell run with ``--until-decided`` is tested after each round of seeds; testing every look at
``level`` would inflate the chance of a false "lossless" (each look is another chance). The
rule here is a Bonferroni split: with at most L looks, every look (and so the final verdict)
tests at ``level / L``; by the union bound the false-lossless rate over all looks is at most
``level`` (tests/test_stats_decide.py simulates it). Conservative, simple, and exactly stated.
"""

from __future__ import annotations

import math

from prunebench.stats.inference import DEFAULT_LEVEL

SEQUENTIAL_RULE = "Bonferroni split of level {level:g} over {looks} looks: each at {each:.4g}"
"""The rule in words, for reports and run params."""


def planned_looks(initial_seeds: int, max_seeds: int, round_seeds: int) -> int:
    """Looks of a design starting at ``initial_seeds`` a side, adding ``round_seeds`` per round
    up to ``max_seeds``: the first look plus one per round."""
    if max_seeds <= initial_seeds:
        return 1
    return 1 + math.ceil((max_seeds - initial_seeds) / round_seeds)


def look_level(looks: int, level: float = DEFAULT_LEVEL) -> float:
    """The level every look of an L-look design tests at (Bonferroni split)."""
    if looks < 1:
        raise ValueError(f"a design has at least one look, got {looks}")
    return level / looks


def rule_text(looks: int, level: float = DEFAULT_LEVEL) -> str:
    """The sequential rule of an L-look design, in words."""
    return SEQUENTIAL_RULE.format(level=level, looks=looks, each=look_level(looks, level))
