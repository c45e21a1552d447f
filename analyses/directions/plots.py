"""Figures of the directions analysis: each takes a tidy DataFrame and returns a matplotlib Figure."""

import math

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
    ax.legend(title="method", loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)  # not over the bars
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
    """One panel per family (two per row): words in 2-D, an arrow from the first to the second word of each pair."""
    families = list(dict.fromkeys(points["family"]))
    n_rows = math.ceil(len(families) / 2)
    # two panels a row, 8.5 in wide: drawn at about the page's width, so 8-point labels stay 8 points
    fig, axes = plt.subplots(n_rows, 2, figsize=(8.5, 4.0 * n_rows), layout="constrained", squeeze=False)
    palette = dict(zip(("first", "second"), sns.color_palette("deep", 2)))
    for ax, family in zip(axes.flat, families):
        df = points[points["family"] == family]
        sns.scatterplot(df, x="x", y="y", hue="role", palette=palette, ax=ax, legend=False, s=25)
        for _, pair in df.groupby("pair"):
            first, second = pair.iloc[0], pair.iloc[1]
            ax.annotate("", xy=(second.x, second.y), xytext=(first.x, first.y),
                        arrowprops=dict(arrowstyle="->", color="grey", lw=0.8))
        ax.margins(x=0.18, y=0.08)  # room for labels beside the outermost words
        ax.set(title=family, xlabel=f"along the mean {family} offset", ylabel="top principal axis of the rest")
        _place_labels(fig, ax, df.x.to_numpy(), df.y.to_numpy(), list(df.word), [palette[r] for r in df.role])
    for ax in axes.flat[len(families):]:
        ax.set_visible(False)
    return fig


# offsets (points) tried in turn for a word's label: right, left, above, below, then diagonals
_LABEL_OFFSETS = ((4, -3), (-4, -3), (0, 5), (0, -11), (4, 5), (-4, 5), (4, -11), (-4, -11), (10, 9), (-10, -15))


def _place_labels(fig, ax, xs, ys, words, colors, fontsize: float = 8) -> None:
    """Label each point at the first offset whose text box overlaps no label placed so far (else the least bad)."""
    renderer = fig.canvas.get_renderer()
    placed = []
    for x, y, word, color in zip(xs, ys, words, colors):
        best = None
        for dx, dy in _LABEL_OFFSETS:
            text = ax.annotate(word, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                               color=color, ha="left" if dx > 0 else "right" if dx < 0 else "center")
            box = text.get_window_extent(renderer).expanded(1.05, 1.1)
            overlap = sum(_overlap(box, other) for other in placed)
            if best is None or overlap < best[0]:
                if best is not None:
                    best[1].remove()
                best = (overlap, text, box)
            else:
                text.remove()
            if overlap == 0:
                break
        placed.append(best[2])


def _overlap(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0) * max(height, 0)


def plot_projection(projection: pd.DataFrame) -> plt.Figure:
    """Bars: cosine of each word with the gender direction."""
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(projection) + 1))
    colors = ["tab:red" if v > 0 else "tab:blue" for v in projection["projection"]]
    ax.barh(projection["word"], projection["projection"], color=colors)
    ax.axvline(0, color="black", lw=0.8)
    ax.set(xlabel="cosine with the woman - man direction", ylabel="")
    return fig
