"""How many seeds a verdict needs, and what margin a number of seeds supports (power 0.8).

The lossless test is a one-sided two-sample t-test at ``level``. statsmodels' TTestIndPower
solves its power equation (noncentral t, equal seeds a side, the pooled spread
sqrt((s_a^2 + s_b^2) / 2)):

- :func:`seeds_for_margin`: the seeds a side at which a true effect (the distance of the
  difference from -margin) is decided with the given power: what a verdict's
  ``seeds_needed`` reports, and what a margin needs;
- :func:`supported_margin`: the smallest margin at which a pruner truly as good as full data is
  declared lossless with the given power, at ``seeds`` a side (REFERENCE.md section 7: at a
  spread of 0.15 points 5 seeds support about 0.3 points);
"""

from __future__ import annotations

import math
import warnings

from statsmodels.stats.power import TTestIndPower

DEFAULT_POWER = 0.8
"""The power every seed count and margin here is computed at."""
MAX_SEEDS = 100_000
"""Above this, "seeds needed" is reported as infinite (the effect is practically zero)."""


def _solve(**kwargs) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels warns when its root finder clips
        return float(TTestIndPower().solve_power(alternative="larger", ratio=1.0, **kwargs))


def pooled_spread(spread_a: float, spread_b: float) -> float:
    """The pooled standard deviation of two sides with equal seed counts."""
    return math.sqrt((spread_a**2 + spread_b**2) / 2)


def seeds_for_margin(
    spread: float, effect: float, level: float, power: float = DEFAULT_POWER
) -> float:
    """Seeds a side for a one-sided test at ``level`` to detect ``effect`` (accuracy units) with
    ``power`` at a pooled ``spread``: an integer, or inf when the effect is zero."""
    if not effect > 0:
        return math.inf
    if spread <= 0:
        return 2.0
    effect_size = effect / spread
    at_two = TTestIndPower().power(effect_size, nobs1=2, alpha=level, alternative="larger")
    if at_two >= power:  # the fewest seeds a test rests on already decide it
        return 2.0
    try:
        seeds = _solve(effect_size=effect_size, alpha=level, power=power)
    except (ValueError, RuntimeError):  # the root finder found none: a vanishing effect
        return math.inf
    if not math.isfinite(seeds) or seeds > MAX_SEEDS:
        return math.inf
    return float(max(2, math.ceil(seeds)))


def supported_margin(
    spread: float, seeds: int, level: float, power: float = DEFAULT_POWER
) -> float:
    """The smallest margin at which a truly equal pruner is declared lossless with ``power``,
    ``seeds`` a side, seed spread ``spread`` (accuracy units)."""
    if seeds < 2:
        return math.inf
    return spread * _solve(effect_size=None, nobs1=seeds, alpha=level, power=power)
