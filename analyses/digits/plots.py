"""Figures for :mod:`analyses.digits`: each takes a tidy DataFrame and returns a Figure.

    from analyses.digits_plots import plot_confusion
    fig = plot_confusion(confusion_df)     # never shown; the report renders and closes it
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


def plot_training_curves(history: pd.DataFrame) -> plt.Figure:
    """Cost per variant (own scale) and train/test accuracy per epoch; bands span the seeds."""
    variants = list(dict.fromkeys(history["variant"]))
    fig, axes = plt.subplots(1, len(variants) + 1, figsize=(4.2 * (len(variants) + 1), 3.6))
    for ax, variant in zip(axes, variants):
        cost = history[(history["variant"] == variant) & (history["metric"] == "cost")]
        sns.lineplot(cost, x="epoch", y="value", errorbar=("pi", 100), ax=ax, color="C3")
        ax.set(yscale="log", title=f"training cost, {variant}", ylabel="mean cost per example (log scale)")
    accuracy = history[history["metric"] != "cost"].assign(split=lambda d: d["metric"].str.replace("_accuracy", ""))
    sns.lineplot(accuracy[accuracy["epoch"] > 0], x="epoch", y="value", hue="variant", style="split",
                 errorbar=("pi", 100), ax=axes[-1])
    axes[-1].set(title="accuracy (epoch 1 on)", ylabel="accuracy")
    axes[-1].yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    fig.tight_layout()
    return fig


def most_frequent_mistakes(confusion: pd.DataFrame) -> pd.DataFrame:
    """Per variant, every (true, predicted) mistake with the largest count: all of them where counts tie."""
    errors = confusion[(confusion["true"] != confusion["predicted"]) & (confusion["count"] > 0)]
    top = errors.groupby("variant", sort=False)["count"].transform("max")
    return errors[errors["count"] == top]


def plot_confusion(confusion: pd.DataFrame) -> plt.Figure:
    """Heatmaps of test-set counts, true digit down, predicted across, one per variant; each variant's
    most frequent mistakes boxed (every one of them where counts tie)."""
    variants = list(dict.fromkeys(confusion["variant"]))
    fig, axes = plt.subplots(1, len(variants), figsize=(5.2 * len(variants), 4.4))
    boxed = most_frequent_mistakes(confusion)
    for ax, variant in zip(np.atleast_1d(axes), variants):
        matrix = confusion[confusion["variant"] == variant].pivot(index="true", columns="predicted", values="count")
        sns.heatmap(matrix, annot=True, fmt="d", cmap="Blues", cbar=False, ax=ax, annot_kws={"size": 8})
        for r in boxed[boxed["variant"] == variant].itertuples():
            row, col = list(matrix.index).index(r.true), list(matrix.columns).index(r.predicted)
            ax.add_patch(plt.Rectangle((col, row), 1, 1, fill=False, edgecolor="tab:red", lw=2))
        ax.set(title=variant, xlabel="predicted digit", ylabel="true digit")
    fig.tight_layout()
    return fig


def plot_first_layer_weights(weights: pd.DataFrame, likeness: pd.DataFrame) -> plt.Figure:
    """Each first-layer neuron's incoming weights as an image (red +, blue -), titled with its
    best |cosine| to a clean edge/bar template."""
    neurons = sorted(weights["neuron"].unique())
    n_cols = 8 if len(neurons) > 8 else len(neurons)
    n_rows = int(np.ceil(len(neurons) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.6 * n_cols, 1.85 * n_rows), squeeze=False)
    limit = float(weights["weight"].abs().max())
    best = likeness[likeness["source"] == "trained"].set_index("neuron")["best_cosine"]
    for ax in axes.ravel():
        ax.axis("off")
    for ax, neuron in zip(axes.ravel(), neurons):
        image = weights[weights["neuron"] == neuron].pivot(index="row", columns="col", values="weight")
        shown = ax.imshow(image.to_numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"#{neuron}  cos {best[neuron]:.2f}", fontsize=9)
    fig.suptitle("first-layer weights as images (shared colour scale)", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    bar = fig.colorbar(shown, cax=fig.add_axes((0.93, 0.12, 0.012, 0.72)))
    bar.set_label("weight from the pixel\n(red +, blue -)", fontsize=9)
    return fig


def plot_edge_likeness(likeness: pd.DataFrame) -> plt.Figure:
    """Distribution of best |cosine| to a clean edge/bar template, for trained neurons and baselines."""
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    order = ["random", "trained", "noisy template"]
    sns.stripplot(likeness, x="best_cosine", y="source", order=order, alpha=0.5, size=4, ax=ax, jitter=0.25)
    sns.boxplot(likeness, x="best_cosine", y="source", order=order, fliersize=0, fill=False, color="k", ax=ax)
    ax.axvline(1.0, color="grey", linestyle=":")
    ax.set(xlim=(0, 1.05), xlabel="best |cosine| with any clean edge/bar template (1 = clean detector)", ylabel="")
    fig.tight_layout()
    return fig


def plot_noise_confidence(confidence: pd.DataFrame) -> plt.Figure:
    """Histogram of the top output's confidence, uniform noise against real test digits, per variant."""
    grid = sns.displot(confidence, x="confidence", hue="input", col="variant", stat="probability",
                       common_norm=False, bins=np.linspace(0, 1, 26), element="step", height=3.4, aspect=1.3)
    grid.set_axis_labels("confidence of the top output", "fraction of images")
    return grid.figure


def plot_noise_examples(images: np.ndarray, predictions: pd.DataFrame, height: int, width: int) -> plt.Figure:
    """Noise images with each variant's answer and confidence."""
    n = len(images)
    n_cols = min(n, 4)  # at most four a row, so the answers stay legible at page width
    n_rows = int(np.ceil(n / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.0 * n_cols, 2.5 * n_rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, ax in enumerate(axes.ravel()[:n]):
        ax.imshow(images[i].reshape(height, width), cmap="gray_r", vmin=0, vmax=1)
        lines = [f"{r.variant.split('/')[0]}: {r.predicted} ({r.confidence:.0%})"
                 for r in predictions[predictions["image"] == i].itertuples()]
        ax.set_title("\n".join(lines), fontsize=9)
    fig.tight_layout()
    return fig


def plot_bang_for_the_buck(curves: pd.DataFrame, top_fraction: float) -> plt.Figure:
    """Cumulative share of the first-order cost decrease against the fraction of parameters moved."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    sns.lineplot(curves, x="fraction_of_parameters", y="share_of_decrease", hue="variant", style="stage", ax=ax)
    uniform = np.geomspace(curves["fraction_of_parameters"].min(), 1, 50)
    ax.plot(uniform, uniform, color="grey", linestyle=":", label="all parameters equal")
    ax.axvline(top_fraction, color="k", linewidth=0.8, label=f"top {100 * top_fraction:g}% (the table's)")
    ax.set(xscale="log", xlabel="fraction of parameters, largest |gradient| first (log scale)",
           ylabel="share of first-order cost decrease")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{100 * v:g}%"))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_fire_together(points: pd.DataFrame, stats: pd.DataFrame) -> plt.Figure:
    """Each example's requested weight update against the activation product at the weight's ends."""
    panels = list(stats[["layer", "receiving_end"]].itertuples(index=False, name=None))
    n_cols = min(len(panels), 2)  # two a row, so the axis labels stay legible at page width
    n_rows = int(np.ceil(len(panels) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.6 * n_cols, 3.4 * n_rows), sharey=False, squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    for ax, (layer, end) in zip(axes.ravel(), panels):
        sub = points[(points["layer"] == layer) & (points["receiving_end"] == end)]
        row = stats[(stats["layer"] == layer) & (stats["receiving_end"] == end)].iloc[0]
        ax.scatter(sub["product"], sub["update"], s=4, alpha=0.3)
        ax.axhline(0, color="grey", linewidth=0.6)
        label = "a_j a_k (actual activations)" if end == "actual" else "y_j a_k (wanted output)"
        name = f"layer {layer}" + (" (output)" if layer == stats["layer"].max() else "")
        ax.set(xlabel=label, ylabel="update -eta dC_x/dw_jk" if ax in axes[:, 0] else "",
               title=f"{name}: Pearson r = {row['pearson_update']:.2f}")
    fig.tight_layout()
    return fig
