"""Figures of the facts analysis: trace heatmaps, effect groups, patching, AND gates, ablation, edits."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

GROUP_ORDER = ["before subject", "first subject token", "last subject token", "first subsequent token",
               "further tokens", "last token"]
KIND_NAMES = {"resid": "hidden state", "mlp": "MLP output", "attn": "attention output"}
# the patched activations as the figure names them, the hook name in brackets
PATCHED_NAMES = {"resid_pre": "the block's input (resid_pre)", "attn_out": "attention output (attn_out)",
                 "mlp_out": "MLP output (mlp_out)"}
# the edit measures as the figure names them (the section's prose defines each)
EDIT_MEASURES = {"efficacy": "efficacy\n(training templates)", "paraphrase": "paraphrase\n(held-out templates)",
                 "specificity": "specificity\n(other people)",
                 "neighbour_specificity": "specificity\n(people sharing a name)"}


# ----- figures ---------------------------------------------------------------------------


def plot_trace_heatmaps(heat: pd.DataFrame, labels: list[str]) -> plt.Figure:
    kinds = [k for k in ("resid", "mlp", "attn") if k in set(heat.kind)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.6), squeeze=False)
    cmaps = {"resid": "Purples", "mlp": "Greens", "attn": "Reds"}
    for ax, kind in zip(axes[0], kinds):
        table = heat[heat.kind == kind].pivot_table("indirect_effect", "pos", "layer")
        sns.heatmap(table, ax=ax, cmap=cmaps[kind], vmin=0, cbar_kws={"label": "indirect effect"})
        ax.set_yticks(np.arange(len(table)) + 0.5, [labels[p] for p in table.index], rotation=0)
        ax.set_title(f"restoring {KIND_NAMES[kind]}")
        ax.set_xlabel("layer")
        ax.set_ylabel("token")
    fig.tight_layout()
    return fig


def plot_group_effects(groups: pd.DataFrame) -> plt.Figure:
    present = [g for g in GROUP_ORDER if g in set(groups.group)]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.9), sharey=True, layout="constrained")
    for ax, kind in zip(axes, ("resid", "mlp", "attn")):
        sub = groups[groups.kind == kind]
        for i, group in enumerate(present):
            g = sub[sub.group == group].sort_values("layer")
            ax.errorbar(g.layer + (i - len(present) / 2) * 0.06, g["mean"], yerr=[g["mean"] - g.ci_low, g.ci_high - g["mean"]],
                        marker="o", capsize=2, label=group, color=sns.color_palette("colorblind")[i])
        ax.set_title(f"restoring {KIND_NAMES[kind]}")
        ax.set_xlabel("layer")
        ax.set_xticks(sorted(sub.layer.unique()))
        ax.axhline(0, color="grey", lw=0.5)
    axes[0].set_ylabel("mean indirect effect")
    # one legend under the panels: a 7-point one inside the last panel was unreadable and covered its lines
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=len(present), fontsize=9,
               frameon=False, title="token group", title_fontsize=9)
    return fig


def plot_patching(df: pd.DataFrame) -> plt.Figure:
    acts = ["resid_pre", "attn_out", "mlp_out"]
    fig, axes = plt.subplots(1, 3, figsize=(12.5, 3.6))
    labels = df.drop_duplicates("pos").sort_values("pos")["token"].tolist()
    for ax, act in zip(axes, acts):
        table = df[df.activation == act].pivot_table("recovered", "pos", "layer")
        sns.heatmap(table, ax=ax, cmap="RdBu_r", center=0, vmin=-1, vmax=1, cbar_kws={"label": "share recovered"})
        ax.set_yticks(np.arange(len(table)) + 0.5, labels, rotation=0)
        ax.set_title(f"patching {PATCHED_NAMES.get(act, act)}", fontsize=10)
        ax.set_xlabel("layer")
        ax.set_ylabel("token")
    fig.tight_layout()
    return fig


def plot_and_gates(top1: pd.DataFrame) -> plt.Figure:
    """Top AND neuron's activation for the pair and for one name alone, one panel per ``site``."""
    long = top1.melt(id_vars=["person", "site"], value_vars=["act_both", "act_first_only", "act_last_only"],
                     var_name="input", value_name="activation")
    long["input"] = long["input"].map({"act_both": "first AND last", "act_first_only": "first name only",
                                       "act_last_only": "last name only"})
    sites = list(dict.fromkeys(long.site))
    fig, axes = plt.subplots(1, len(sites), figsize=(4.6 * len(sites), 3.8), squeeze=False, sharey=True)
    for ax, site in zip(axes[0], sites):
        part = long[long.site == site]
        sns.boxplot(part, x="input", y="activation", ax=ax, color="white")
        sns.stripplot(part, x="input", y="activation", ax=ax, alpha=0.6)
        ax.set_title(f"at the {site}")
        ax.set_xlabel("")
        ax.tick_params(axis="x", labelsize=8)
    axes[0, 0].set_ylabel("activation of the person's top AND neuron")
    fig.tight_layout()
    return fig


def plot_ablation(ablation: pd.DataFrame) -> plt.Figure:
    """Logit-margin drop per prompt group after ablating a person's top AND neurons, one colour per ``site``."""
    fig, ax = plt.subplots(figsize=(8.5, 3.8))
    order = ["this fact", "same person, other relations", "other people, same relation"]
    sns.barplot(ablation, x="group", y="margin_drop", hue="site", order=[o for o in order if o in set(ablation.group)],
                ax=ax, errorbar=("ci", 95), palette=sns.color_palette("colorblind")[:2])
    ax.set_xlabel("")
    ax.set_ylabel("drop in the right answer's logit margin")
    ax.tick_params(axis="x", labelsize=9)
    ax.legend(title="AND neurons at the", fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig


def plot_edits(edits: pd.DataFrame) -> plt.Figure:
    """Bars per measure, one colour per edit site (``site`` and ``layer`` columns), single edits as dots."""
    edits = edits.assign(where=[f"{s} (layer {l})" for s, l in zip(edits.site, edits.layer)])
    long = edits.melt(id_vars=["person", "where"], value_vars=list(EDIT_MEASURES), var_name="measure",
                      value_name="share")
    long["measure"] = long["measure"].map(EDIT_MEASURES)  # reader-facing names, not column names
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    palette = sns.color_palette("colorblind")[2:4]
    sns.barplot(long, x="measure", y="share", hue="where", ax=ax, errorbar=("ci", 95), palette=palette)
    sns.stripplot(long, x="measure", y="share", hue="where", ax=ax, dodge=True, palette=["black"] * 2, alpha=0.4,
                  size=3, legend=False)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("")
    ax.set_ylabel("share of prompts")
    ax.tick_params(axis="x", labelsize=9)
    ax.legend(title="edit site", loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, fontsize=9)
    fig.tight_layout()
    return fig
