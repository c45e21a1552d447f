"""Figures of the facts_lm analysis: ROME-style trace heatmaps, effect curves with intervals, the logit lens,
AND-gate neurons and ROME edits' scores."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from analyses.facts.plots import KIND_NAMES
from analyses.facts_lm.and_ablation import GROUPS, per_fact
from analyses.facts_lm.edit_scores import ROME_GPT2_XL

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
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
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
    # 12 in, not 15: drawn at the page's ~9.6 in, its text stays near its set size
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.9), sharey=True, layout="constrained")
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
    # one legend under the panels, at a size the page can show (inside the last panel it was ~6 px)
    handles = {label: h for ax in axes for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=len(handles), fontsize=9,
               frameon=False)
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


def plot_neurons(table: pd.DataFrame, decoys: pd.DataFrame, ablation: pd.DataFrame) -> plt.Figure:
    """Left: each fact's top AND score beside its decoy's and the median neuron's. Right: margin change per group."""
    top, decoy_top = table[table["rank"] == 1], decoys[decoys["rank"] == 1]
    scores = pd.concat([
        pd.DataFrame({"kind": "top neuron, real person", "score": top.and_score.to_numpy()}),
        pd.DataFrame({"kind": "top neuron, made-up name", "score": decoy_top.and_score.to_numpy()}),
        pd.DataFrame({"kind": "median neuron, real person", "score": top.median_score.to_numpy()})])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    palette = sns.color_palette("colorblind")
    sns.boxplot(scores, x="kind", y="score", ax=axes[0], color="white", fliersize=0)
    sns.stripplot(scores, x="kind", y="score", ax=axes[0], hue="kind", palette=palette[:3], size=4, legend=False)
    axes[0].set_xlabel("")
    axes[0].set_ylabel("AND score (neuron's standard deviations)")
    axes[0].tick_params(axis="x", labelsize=8)
    facts = per_fact(ablation)
    order = [g for g in (*GROUPS, "random neurons, this fact") if g in set(facts.group)]
    sns.barplot(facts, x="group", y="margin_drop", order=order, ax=axes[1], errorbar=("ci", 95), color=palette[3])
    sns.stripplot(facts, x="group", y="margin_drop", order=order, ax=axes[1], color="black", alpha=0.5, size=3)
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].set_xlabel("")
    axes[1].set_ylabel("drop in the object's logit margin")
    axes[1].tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig

def plot_scores(summary: pd.DataFrame) -> plt.Figure:
    """CounterFact's scores, unedited and edited, with 95% intervals over edits; ROME's GPT-2 XL scores as diamonds."""
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4), gridspec_kw={"width_ratios": [1, 1]})
    colours = {"unedited": "#9e9e9e", "edited": "#1f77b4"}
    for ax, scores, label in ((axes[0], ("ES", "PS", "NS"), "score (%)"),
                              (axes[1], ("EM", "PM", "NM"), "magnitude (percentage points)")):
        for j, condition in enumerate(("unedited", "edited")):
            sub = summary[summary.condition == condition].set_index("score").loc[list(scores)]
            x = np.arange(len(scores)) + (j - 0.5) * 0.38
            err = np.vstack([sub["mean"] - sub["low"], sub["high"] - sub["mean"]]).clip(min=0)
            ax.bar(x, sub["mean"], width=0.36, color=colours[condition], label=condition,
                   yerr=np.nan_to_num(err), capsize=3)
        reference = [ROME_GPT2_XL.get(s, np.nan) for s in scores]
        if not np.isnan(reference).all():
            ax.scatter(np.arange(len(scores)) + 0.19, reference, marker="D", color="black", zorder=3,
                       label="GPT-2 XL + ROME (Meng et al. 2022)")
        ax.set_xticks(np.arange(len(scores)), scores)
        ax.set_ylabel(label)
        ax.axhline(0, color="grey", lw=0.5)
    axes[0].set_ylim(0, 105)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig
