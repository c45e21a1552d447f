"""Figures of the directions analysis: each takes a tidy DataFrame and returns a matplotlib Figure."""

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def plot_section_accuracy(accuracy: pd.DataFrame) -> plt.Figure:
    """Horizontal bars: analogy accuracy per section and method (sections with no question left out)."""
    df = accuracy.dropna(subset=["accuracy"]).copy()
    df["label"] = df["section"] + " (n=" + df["n_counted"].astype(str) + ")"
    fig, ax = plt.subplots(figsize=(7, 0.32 * df["section"].nunique() * df["method"].nunique() + 1.5))
    sns.barplot(df, y="label", x="accuracy", hue="method", ax=ax, orient="h")
    ax.set(xlim=(0, 1), xlabel="accuracy (questions whose four words are single tokens)", ylabel="")
    ax.legend(title="method", loc="lower right")
    return fig


def plot_direction_tests(samples: pd.DataFrame) -> plt.Figure:
    """Histogram of random-pair consistencies per family, the observed family consistency as a red line."""
    families = list(dict.fromkeys(samples["direction"]))
    fig, axes = plt.subplots(1, len(families), figsize=(3.2 * len(families), 2.8), sharey=True)
    for ax, family in zip(axes, families):
        df = samples[samples["direction"] == family]
        sns.histplot(df[df["kind"] == "random"], x="consistency", ax=ax, bins=30, color="grey", element="step")
        observed = df.loc[df["kind"] == "observed", "consistency"].iloc[0]
        ax.axvline(observed, color="red", lw=2, label=f"{family} pairs: {observed:.2f}")
        ax.set(title=family, xlabel="mean pairwise cosine of offsets")
        ax.legend(fontsize=8, loc="upper center")
    axes[0].set_ylabel("random pair sets")
    return fig


def plot_family_points(points: pd.DataFrame) -> plt.Figure:
    """One panel per family: words in 2-D, an arrow from the first to the second word of each pair."""
    families = list(dict.fromkeys(points["family"]))
    fig, axes = plt.subplots(1, len(families), figsize=(4.2 * len(families), 4.2), layout="constrained")
    palette = dict(zip(("first", "second"), sns.color_palette("deep", 2)))
    for ax, family in zip(axes, families):
        df = points[points["family"] == family]
        sns.scatterplot(df, x="x", y="y", hue="role", palette=palette, ax=ax, legend=False, s=25)
        for _, pair in df.groupby("pair"):
            first, second = pair.iloc[0], pair.iloc[1]
            ax.annotate("", xy=(second.x, second.y), xytext=(first.x, first.y),
                        arrowprops=dict(arrowstyle="->", color="grey", lw=0.8))
        for row in df.itertuples():
            ax.annotate(row.word, (row.x, row.y), fontsize=7, xytext=(3, 2), textcoords="offset points",
                        color=palette[row.role])
        ax.set(title=family, xlabel=f"along the mean {family} offset", ylabel="")
    axes[0].set_ylabel("top principal axis of the rest")
    return fig


def plot_projection(projection: pd.DataFrame) -> plt.Figure:
    """Bars: cosine of each word with the gender direction."""
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(projection) + 1))
    colors = ["tab:red" if v > 0 else "tab:blue" for v in projection["projection"]]
    ax.barh(projection["word"], projection["projection"], color=colors)
    ax.axvline(0, color="black", lw=0.8)
    ax.set(xlabel="cosine with the woman - man direction", ylabel="")
    return fig
