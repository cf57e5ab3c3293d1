"""OrderDP's inclusion-probability figures (the paper's Figures 5-8) from pruners.theory."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns

from prunebench.pruners.orderdp import OrderDP, default_decomposition
from prunebench.pruners.theory import asymptotic_inclusion, orderdp_inclusion, surrogate_weights
from prunebench.reports.figures import ReportFigure, new_figure, render

CONVERGENCE_SQ = (100, 30)
CONVERGENCE_NS = (200, 500, 2_000, 10_000, 50_000)
SURROGATE_NS = ((200, 100), (400, 100))
SURROGATE_QS = (10, 30, 50, 70, 90, 100)


def convergence_figure() -> ReportFigure:
    """Figure 5: n * gamma_j against j / n approaches gamma(z) = s P(Beta(q, s-q) > z)."""
    s, q = CONVERGENCE_SQ
    figure, axes = new_figure(6.5, 3.8)
    ax = axes[0][0]
    colors = sns.color_palette("crest", len(CONVERGENCE_NS))
    gaps = {}
    for color, n in zip(colors, CONVERGENCE_NS, strict=True):
        z = np.arange(1, n + 1) / n
        scaled = n * orderdp_inclusion(n, s, q)
        gaps[n] = float(np.abs(scaled - asymptotic_inclusion(z, s, q)).max())
        ax.plot(z, scaled, color=color, lw=1.2, label=f"n = {n:,}")
    z = np.linspace(0, 1, 1001)
    ax.plot(z, asymptotic_inclusion(z, s, q), color="black", ls="--", lw=1, label="γ(z)")
    ax.set_xlabel("j / n (rank 1 = highest score)")
    ax.set_ylabel("n · γ_j")
    ax.set_title(f"n·γ_j → γ(z), (s, q) = ({s}, {q})")
    ax.legend(fontsize=8)
    gap_text = ", ".join(f"n={n:,}: {gap:.3g}" for n, gap in gaps.items())
    return ReportFigure(
        name="theory-convergence",
        title="OrderDP inclusion probabilities converge to γ(z) (paper Fig. 5)",
        caption=f"max_j |n·γ_j − γ(j/n)| by n: {gap_text}.",
        png=render(figure),
    )


def surrogate_figure() -> ReportFigure:
    """Figures 6-7: the surrogate weights gamma_j / q against uniform 1 / n as q grows."""
    figure, axes = new_figure(11, 3.8, 1, len(SURROGATE_NS), sharey=False)
    colors = sns.color_palette("flare", len(SURROGATE_QS))
    for ax, (n, s) in zip(axes[0], SURROGATE_NS, strict=True):
        j = np.arange(1, n + 1)
        for color, q in zip(colors, SURROGATE_QS, strict=True):
            ax.plot(j, surrogate_weights(n, s, q), color=color, lw=1.2, label=f"q = {q}")
        ax.axhline(1.0 / n, color="black", ls="--", lw=1, label="uniform 1/n")
        ax.set_xlabel("rank j")
        ax.set_ylabel("γ_j / q")
        ax.set_title(f"(n, s) = ({n}, {s})")
        ax.legend(fontsize=7)
    return ReportFigure(
        name="theory-surrogate-weights",
        title="Surrogate weights γ_j / q approach uniform as q grows (paper Figs. 6-7)",
        caption="At q = s every rank weighs 1/n (plain SGD); smaller q favours high-loss ranks.",
        png=render(figure),
    )


def sum_figure() -> ReportFigure:
    """Figure 8: the cumulative sum of gamma_j / q reaches exactly 1 for every (n, s, q)."""
    figure, axes = new_figure(6.5, 3.8)
    ax = axes[0][0]
    settings = [(n, s, q) for n, s in SURROGATE_NS for q in SURROGATE_QS] + [
        (60_000, 30_000, 9_000)
    ]
    errors = []
    colors = sns.color_palette("husl", len(settings))
    for color, (n, s, q) in zip(colors, settings, strict=True):
        cumulative = np.cumsum(surrogate_weights(n, s, q))
        errors.append(abs(cumulative[-1] - 1.0))
        ax.plot(np.arange(1, n + 1) / n, cumulative, color=color, lw=1, label=f"({n}, {s}, {q})")
    ax.axhline(1.0, color="black", ls="--", lw=1)
    ax.set_xlabel("j / n")
    ax.set_ylabel("Σ_{i ≤ j} γ_i / q")
    ax.set_title("cumulative surrogate weight")
    ax.legend(fontsize=6, ncol=2, title="(n, s, q)", title_fontsize=7)
    return ReportFigure(
        name="theory-sum",
        title="The surrogate weights sum to 1 (paper Fig. 8)",
        caption=f"max |Σ_j γ_j/q − 1| over the {len(settings)} settings shown: {max(errors):.2e}.",
        png=render(figure),
    )


def _decomposition(run: pd.Series) -> tuple[float, float]:
    """(a, b) of an OrderDP run: logged params, else the pruner's default for its ratio."""
    a, b = run.get("params.pruner.exploration"), run.get("params.pruner.exploitation")
    if pd.notna(a) and pd.notna(b):
        return float(a), float(b)
    ratio = run.get("params.pruner.prune_ratio")
    return default_decomposition(float(ratio if pd.notna(ratio) else run["target_prune_ratio"]))


def decompositions(usable: pd.DataFrame) -> pd.DataFrame:
    """Distinct (n, s, q) of this experiment's OrderDP runs, from (a, b) and ``train_size``."""
    rows = []
    orderdp = usable[(usable["pruner"] == OrderDP.name) & usable["train_size"].notna()]
    for _, run in orderdp.iterrows():
        try:
            a, b = _decomposition(run)
        except (TypeError, ValueError):
            continue
        n = int(run["train_size"])
        # The pruner's own rounding: floor, robust to the binary representation of a * n.
        s = math.floor(a * n + 1e-9)
        q = math.floor(b * s + 1e-9)
        if 1 <= q <= s <= n:
            rows.append({"pruner_label": run["pruner_label"], "n": n, "s": s, "q": q})
    return pd.DataFrame(rows, columns=["pruner_label", "n", "s", "q"]).drop_duplicates()


def experiment_figure(usable: pd.DataFrame) -> ReportFigure | None:
    """gamma_j relative to uniform (q / n) for the decompositions this experiment's runs used."""
    settings = decompositions(usable)
    if settings.empty:
        return None
    figure, axes = new_figure(6.5, 3.8)
    ax = axes[0][0]
    colors = sns.color_palette("colorblind", len(settings))
    for color, (_, row) in zip(colors, settings.iterrows(), strict=True):
        n, s, q = int(row["n"]), int(row["s"]), int(row["q"])
        relative = orderdp_inclusion(n, s, q) * n / q
        label = (
            f"{row['pruner_label']} pruning {100 * (1 - q / n):.1f}%: n={n:,}, s={s:,}, q={q:,}"
            f" (a={s / n:.2f}, b={q / s:.2f})"
        )
        ax.plot(np.arange(1, n + 1) / n, relative, color=color, lw=1.2, label=label)
    ax.axhline(1.0, color="black", ls="--", lw=1, label="uniform (dynamic random)")
    ax.set_xlabel("j / n (rank 1 = highest score)")
    ax.set_ylabel("γ_j / (q / n)")
    ax.set_title("keep probability relative to uniform, this experiment")
    ax.legend(fontsize=7)
    return ReportFigure(
        name="theory-experiment",
        title="OrderDP keep probability by loss rank for this experiment's (n, s, q)",
        caption="1 = the chance a uniform pruner with the same kept fraction gives every sample.",
        png=render(figure),
    )


def theory_figures(usable: pd.DataFrame) -> list[ReportFigure]:
    """The paper's gamma_j figures, plus this experiment's decompositions if it ran OrderDP."""
    figures = [convergence_figure(), surrogate_figure(), sum_figure()]
    extra = experiment_figure(usable)
    return figures + ([extra] if extra is not None else [])
