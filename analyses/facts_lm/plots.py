"""Figures of the facts_lm analysis: ROME-style trace heatmaps, effect curves with intervals, the logit lens."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from analyses.facts.plots import KIND_NAMES

GROUP_ORDER = ["before subject", "first subject token", "middle subject tokens", "last subject token",
               "first subsequent token", "further tokens", "last token"]
CMAPS = {"resid": "Purples", "mlp": "Greens", "attn": "Reds"}
KINDS = ("resid", "mlp", "attn")


def plot_example_trace(trace: pd.DataFrame, labels: list[str], subject: tuple[int, int], title: str) -> plt.Figure:
    """One fact's indirect effects (token x layer) for the three kinds, subject tokens starred, as ROME draws them."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.45 * len(labels) + 1.8))
    names = [f"{label}*" if subject[0] <= p < subject[1] else label for p, label in enumerate(labels)]
    for ax, kind in zip(axes, KINDS):
        table = trace[trace.kind == kind].pivot_table("indirect_effect", "pos", "layer")
        sns.heatmap(table, ax=ax, cmap=CMAPS[kind], vmin=0, cbar_kws={"label": "indirect effect"})
        _layer_ticks(ax, table.columns)
        ax.set_yticks(np.arange(len(table)) + 0.5, [repr(names[p])[1:-1] for p in table.index], rotation=0)
        ax.set_title(f"restoring {KIND_NAMES[kind]}" + ("" if kind == "resid" else " (window)"))
        ax.set_xlabel("layer")
        ax.set_ylabel("")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_group_heatmaps(groups: pd.DataFrame) -> plt.Figure:
    """Average indirect effect over facts per (token group, layer), one panel per kind (ROME fig. 2's averages)."""
    present = [g for g in GROUP_ORDER if g in set(groups.group)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
    for ax, kind in zip(axes, KINDS):
        table = groups[groups.kind == kind].pivot_table("mean", "group", "layer").reindex(present)
        sns.heatmap(table, ax=ax, cmap=CMAPS[kind], vmin=0, cbar_kws={"label": "average indirect effect"})
        _layer_ticks(ax, table.columns)
        ax.set_title(f"restoring {KIND_NAMES[kind]}")
        ax.set_xlabel("layer")
        ax.set_ylabel("")
    fig.tight_layout()
    return fig


def plot_effect_curves(groups: pd.DataFrame) -> plt.Figure:
    """Average indirect effect per layer at the last subject token and the last token, with 95% intervals."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), sharey=True)
    colours = {"last subject token": "tab:green", "first subsequent token": "tab:orange", "last token": "tab:red"}
    for ax, kind in zip(axes, KINDS):
        for group, colour in colours.items():
            g = groups[(groups.kind == kind) & (groups.group == group)].sort_values("layer")
            if len(g):
                ax.plot(g.layer, g["mean"], color=colour, label=group)
                ax.fill_between(g.layer, g.ci_low, g.ci_high, color=colour, alpha=0.2)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(f"restoring {KIND_NAMES[kind]}")
        ax.set_xlabel("layer")
    axes[0].set_ylabel("average indirect effect (95% CI)")
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_lens(summary: pd.DataFrame, n_layers: int, marks: dict[str, int]) -> plt.Figure:
    """Distribution over facts of the first layer where the object is the lens's top token; trace peaks marked."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    first = summary.first_top_layer.dropna().astype(int)
    bins = np.arange(-1.5, n_layers + 0.5)
    ax.hist(first, bins=bins, color="tab:blue", alpha=0.8, label=f"first top layer ({len(first)} facts)")
    stays = summary.stays_top_from.dropna().astype(int)
    ax.hist(stays, bins=bins, histtype="step", color="black", label="stays top from")
    for (label, layer), colour in zip(marks.items(), ("tab:green", "tab:red", "tab:purple")):
        ax.axvline(layer, color=colour, ls="--", label=label)
    ax.set_xlabel("layer (-1: the embedding)")
    ax.set_ylabel("facts")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _layer_ticks(ax: plt.Axes, layers, every: int = 4) -> None:
    """Every ``every``-th layer labelled on a heatmap's x axis (30 two-digit labels overlap)."""
    layers = list(layers)
    ax.set_xticks([i + 0.5 for i in range(0, len(layers), every)], [str(layers[i]) for i in range(0, len(layers), every)],
                  rotation=0)
