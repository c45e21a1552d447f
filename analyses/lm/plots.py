"""Figures of the lm analysis: each takes a tidy DataFrame and returns a matplotlib Figure."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def plot_logit_lens(lens: pd.DataFrame) -> plt.Figure:
    """Probability of the expected answer at the last position after each layer, one line per prompt."""
    fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
    # one line per prompt (two prompts may share an answer: hue by answer would average them)
    lens = lens.assign(line=lens["answer"] + " (" + lens["prompt"].str.slice(0, 28) + "...)")
    sns.lineplot(lens, x="layer", y="p_answer", hue="line", style="line", markers=True, dashes=False, ax=ax)
    ax.set(xlabel="layer (-1 = embedding; the residual stream after that block, through the final RMSNorm)",
           ylabel="p(expected answer)", ylim=(-0.02, 1.02), title="Logit lens on factual prompts")
    ax.legend(title="answer (prompt)", bbox_to_anchor=(1.01, 1), loc="upper left", frameon=False, fontsize=8)
    return fig


def plot_head_scores(scores: pd.DataFrame) -> plt.Figure:
    """Heatmaps (layer x head) of previous-token and induction scores."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 7), layout="constrained")
    for ax, column in zip(axes, ("prev_token", "induction")):
        grid = scores.pivot(index="layer", columns="head", values=column)
        sns.heatmap(grid, ax=ax, vmin=0, vmax=1, cmap="viridis", cbar_kws={"label": "mean attention"}, yticklabels=2)
        ax.tick_params(axis="y", labelsize=8, rotation=0)
        ax.set_title({"prev_token": "previous-token score", "induction": "induction score"}[column])
    return fig


def plot_patterns(patterns: pd.DataFrame, titles: dict[tuple[int, int], str]) -> plt.Figure:
    """One attention-pattern heatmap per (layer, head), query tokens down, key tokens across."""
    heads = list(dict.fromkeys(zip(patterns["layer"], patterns["head"])))
    fig, axes = plt.subplots(1, len(heads), figsize=(4.6 * len(heads), 4.4), layout="constrained")
    for ax, (layer, head) in zip(np.atleast_1d(axes), heads):
        df = patterns[(patterns["layer"] == layer) & (patterns["head"] == head)]
        n = int(df["query"].max()) + 1
        grid = np.full((n, n), np.nan)
        grid[df["query"], df["key"]] = df["weight"]
        labels = df.drop_duplicates("query").sort_values("query")["query_token"].map(repr).str.slice(1, -1)
        sns.heatmap(grid, ax=ax, vmin=0, vmax=1, cmap="Blues", square=True, cbar=False,
                    xticklabels=list(labels), yticklabels=list(labels))
        ax.tick_params(labelsize=8)
        ax.set_title(f"head {layer}.{head}: {titles.get((layer, head), '')}", fontsize=10)
        ax.set(xlabel="key", ylabel="query")
    # one colour bar for all heads (they share the 0-1 scale)
    shared = plt.cm.ScalarMappable(plt.Normalize(0, 1), "Blues")
    fig.colorbar(shared, ax=np.atleast_1d(axes).tolist(), shrink=0.8, pad=0.02,
                 label="attention weight from the query to the key")
    return fig
