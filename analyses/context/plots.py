"""Figures of the context analysis: each takes a tidy DataFrame and returns a matplotlib Figure."""

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def plot_sense_probes(probes: pd.DataFrame) -> plt.Figure:
    """Probe accuracy (and control-task accuracy, and chance) per layer, one panel per word."""
    words = list(dict.fromkeys(probes["word"]))
    fig, axes = plt.subplots(1, len(words), figsize=(3.4 * len(words), 3.6), sharey=True, layout="constrained",
                             squeeze=False)
    axes = axes[0]
    # room above 1 for the error bars (mean ± one standard deviation over folds can pass 1); ticks stop at 1
    top = max(1.05, float((probes["accuracy"] + probes["accuracy_std"]).max()) + 0.03,
              float((probes["control_accuracy"] + probes["control_std"]).max()) + 0.03)
    for ax, word in zip(axes, words):
        df = probes[probes["word"] == word]
        ax.errorbar(df["depth"], df["accuracy"], yerr=df["accuracy_std"], marker="o", label="sense (real task)")
        ax.errorbar(df["depth"], df["control_accuracy"], yerr=df["control_std"], marker="s", ls="--",
                    label="control task (random sense per previous token)")
        ax.axhline(df["chance"].iloc[0], color="grey", ls=":", label="chance (majority sense)")
        ax.set_xticks(df["depth"], df["layer"])
        ax.set(title=f"'{word}' ({df['n_classes'].iloc[0]} senses)", xlabel="layer (embed = embedding output)",
               ylim=(0, top), yticks=[0, 0.2, 0.4, 0.6, 0.8, 1.0])
    axes[0].set_ylabel("cross-validated probe accuracy")
    # one legend under the panels, where it covers no error bar
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=9, frameon=False)
    return fig


def plot_sense_cosines(cosines: pd.DataFrame) -> plt.Figure:
    """Mean cosine of the word's vectors within a sense and across senses, per layer, one panel per word."""
    grid = sns.relplot(cosines, x="depth", y="cosine", hue="pairs", col="word", kind="line", marker="o",
                       height=3.2, aspect=1.1)
    labels = cosines.drop_duplicates("depth").sort_values("depth")
    grid.set_titles("'{col_name}'")
    for ax in grid.axes.flat:
        ax.set_xticks(labels["depth"], labels["layer"])
        ax.set_xlabel("layer (embed = embedding output)")
    grid.set_ylabels("mean cosine between sentences")
    return grid.figure


def plot_context_share(share: pd.DataFrame) -> plt.Figure:
    """Heatmaps (layer x head) of the share of the word's attention that goes to context tokens."""
    words = list(dict.fromkeys(share["word"]))
    fig, axes = plt.subplots(1, len(words), figsize=(3.7 * len(words), 3.2), layout="constrained", squeeze=False)
    axes = axes[0]
    for ax, word in zip(axes, words):
        table = share[share["word"] == word].pivot(index="layer", columns="head", values="context_share")
        sns.heatmap(table, ax=ax, vmin=0, vmax=1, cmap="viridis", cbar=ax is axes[-1],
                    cbar_kws={"label": "share on context tokens"})
        ax.set(title=f"attention from '{word}'", xlabel="head", ylabel="layer")
    return fig


def plot_digit_probes(probes: pd.DataFrame) -> plt.Figure:
    """Bars: digit-probe accuracy and control accuracy per representation of the digit network."""
    long = probes.melt(id_vars="representation", value_vars=["accuracy", "control_accuracy"],
                       var_name="task", value_name="probe accuracy")
    long["task"] = long["task"].map({"accuracy": "digit (real task)", "control_accuracy": "control (random labels)"})
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    sns.barplot(long, x="representation", y="probe accuracy", hue="task", ax=ax)
    ax.axhline(probes["chance"].iloc[0], color="grey", ls=":", label="chance")
    ax.set(ylim=(0, 1.05), xlabel="")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)  # beside the bars, not on them
    fig.tight_layout()
    return fig
