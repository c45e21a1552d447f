"""Figures of the directions analysis: each takes a tidy DataFrame and returns a matplotlib Figure."""

import math

import matplotlib.pyplot as plt
import numpy as np
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
    # about 2.5 in a panel: four drawn at the page's width keep their text near its set size
    fig, axes = plt.subplots(1, len(families), figsize=(2.5 * len(families), 2.9), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, family in zip(axes, families):
        df = samples[samples["direction"] == family]
        sns.histplot(df[df["kind"] == "random"], x="consistency", ax=ax, bins=30, color="grey", element="step")
        observed = df.loc[df["kind"] == "observed", "consistency"].iloc[0]
        ax.axvline(observed, color="red", lw=2)
        # the value written beside its line, inside the axes (a legend there was too small to read)
        ax.annotate(f"{family}\npairs: {observed:.2f}", (observed, 1), xycoords=ax.get_xaxis_transform(),
                    xytext=(-4, -4), textcoords="offset points", ha="right", va="top", fontsize=9, color="red")
        ax.set(title=family, xlabel="mean pairwise cosine\nof offsets")
    axes[0].set_ylabel("random pair sets")
    fig.tight_layout()
    return fig


def plot_family_points(points: pd.DataFrame) -> plt.Figure:
    """One panel per family (two per row): words in 2-D, an arrow from the first to the second word of each pair.

    Labels are placed once the layout is final, each where it covers no other label, point or arrow
    (first words preferring the left, second words the right: the outer side, away from the arrows).
    """
    families = list(dict.fromkeys(points["family"]))
    n_rows = math.ceil(len(families) / 2)
    # two panels a row, 9 in wide: drawn at about the page's width, so 9-point labels stay about 9 points
    fig, axes = plt.subplots(n_rows, 2, figsize=(9, 4.3 * n_rows), layout="constrained", squeeze=False)
    palette = dict(zip(("first", "second"), sns.color_palette("deep", 2)))
    for ax, family in zip(axes.flat, families):
        df = points[points["family"] == family]
        sns.scatterplot(df, x="x", y="y", hue="role", palette=palette, ax=ax, legend=False, s=25, zorder=3)
        for _, pair in df.groupby("pair"):
            first, second = pair.iloc[0], pair.iloc[1]
            ax.annotate("", xy=(second.x, second.y), xytext=(first.x, first.y),
                        arrowprops=dict(arrowstyle="->", color="grey", lw=0.8, shrinkA=3, shrinkB=3))
        ax.margins(x=0.28, y=0.08)  # room for labels beside the outermost words
        ax.set(title=family, xlabel=f"along the mean {family} offset", ylabel="top principal axis of the rest")
    for ax in axes.flat[len(families):]:
        ax.set_visible(False)
    fig.draw_without_rendering()  # the layout first: labels are placed in the final display coordinates
    fig.set_layout_engine("none")
    for ax, family in zip(axes.flat, families):
        df = points[points["family"] == family]
        segments = [(pair.iloc[0][["x", "y"]].to_numpy(float), pair.iloc[1][["x", "y"]].to_numpy(float))
                    for _, pair in df.groupby("pair")]
        _place_labels(fig, ax, df.x.to_numpy(), df.y.to_numpy(), list(df.word), [palette[r] for r in df.role],
                      sides=[-1 if r == "first" else 1 for r in df.role], segments=segments)
    return fig


# offsets (points) tried for a word's label, nearest first; each is mirrored for the preferred side
_LABEL_OFFSETS = ((4, -3), (0, 5), (0, -12), (4, 5), (4, -11), (-4, -3), (-4, 5), (-4, -11), (10, 10),
                  (10, -16), (-10, 10), (-10, -16), (0, 14), (0, -21), (18, -3), (18, 12), (18, -18), (0, 24),
                  (0, -31), (28, 4), (28, -12), (-18, 12), (-18, -18))


def _place_labels(fig, ax, xs, ys, words, colors, sides=None, segments=(), fontsize: float = 9) -> None:
    """Label each point where its text box covers the least of the labels placed so far, the points and the
    arrows (``segments``, pairs of data points), trying the nearest offsets first on the point's side
    (``sides``: -1 left, +1 right)."""
    renderer = fig.canvas.get_renderer()
    to_display = ax.transData.transform
    dots = [to_display((x, y)) for x, y in zip(xs, ys)]
    lines = [(to_display(a), to_display(b)) for a, b in segments]
    placed = []
    sides = sides if sides is not None else [1] * len(words)
    # the most crowded points first, while the near offsets are still free
    crowding = [sum(np.hypot(*(d - e)) < 40 for e in dots) for d in dots]
    order = sorted(range(len(words)), key=lambda i: -crowding[i])
    for x, y, word, color, side, dot in (list(zip(xs, ys, words, colors, sides, dots))[i] for i in order):
        best = None
        for rank, (dx, dy) in enumerate(_LABEL_OFFSETS):
            dx *= side
            text = ax.annotate(word, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                               color=color, ha="left" if dx > 0 else "right" if dx < 0 else "center", zorder=4)
            box = text.get_window_extent(renderer).expanded(1.04, 1.08)
            own = _distance(box, dot)
            cost = (3 * sum(_overlap(box, other) for other in placed)
                    + sum(_covers(box, d, 4.0) for d in dots if d is not dot)
                    + sum(_crossing(box, a, b) for a, b in lines)
                    # a label nearer another word's point than its own would be read as that word's
                    + sum(300.0 for d in dots if d is not dot and _distance(box, d) < own)
                    + rank)  # a small preference for the nearer offsets
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == rank:  # nothing covered: the nearest such offset wins
                break
        _, text, box = best
        if max(abs(v) for v in text.xyann) >= 10:  # a far label: a thin leader line to its point
            text.remove()
            text = ax.annotate(text.get_text(), (x, y), xytext=text.xyann, textcoords="offset points",
                               fontsize=fontsize, color=color, ha=text.get_ha(), zorder=4,
                               arrowprops={"arrowstyle": "-", "color": color, "lw": 0.6, "alpha": 0.7,
                                           "shrinkA": 1, "shrinkB": 3})
        placed.append(box)


def _overlap(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0) * max(height, 0)


def _distance(box, point) -> float:
    """Pixels from ``point`` to the nearest edge of ``box`` (0 inside)."""
    x, y = point
    return float(np.hypot(max(box.x0 - x, 0, x - box.x1), max(box.y0 - y, 0, y - box.y1)))


def _covers(box, point, radius: float) -> float:
    """Area of a point's marker (a square of half-width ``radius`` pixels) under ``box``, weighted like text."""
    x, y = point
    width = min(box.x1, x + radius) - max(box.x0, x - radius)
    height = min(box.y1, y + radius) - max(box.y0, y - radius)
    return 4 * max(width, 0) * max(height, 0)


def _crossing(box, a, b, samples: int = 60) -> float:
    """How much of the segment a-b runs through ``box``: its length inside (pixels) times the box's height."""
    t = np.linspace(0, 1, samples)[:, None]
    along = a + t * (b - a)
    inside = (along[:, 0] > box.x0) & (along[:, 0] < box.x1) & (along[:, 1] > box.y0) & (along[:, 1] < box.y1)
    return float(inside.mean() * np.hypot(*(b - a)) * box.height)


def plot_projection(projection: pd.DataFrame) -> plt.Figure:
    """Bars: cosine of each word with the gender direction."""
    fig, ax = plt.subplots(figsize=(6, 0.28 * len(projection) + 1))
    colors = ["tab:red" if v > 0 else "tab:blue" for v in projection["projection"]]
    ax.barh(projection["word"], projection["projection"], color=colors)
    ax.axvline(0, color="black", lw=0.8)
    ax.set(xlabel="cosine with the woman - man direction", ylabel="")
    return fig
