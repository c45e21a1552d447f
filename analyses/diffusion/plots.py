"""Figures for the diffusion analysis; each returns a matplotlib Figure and never shows it.

Example::

    import torch
    from analyses.diffusion.plots import plot_montages

    grid = torch.rand(3, 5, 8, 8)                            # [rows cols height width]
    fig = plot_montages([("random", grid)], row_labels=["a", "b", "c"])
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from jaxtyping import Float  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402
from torch import Tensor  # noqa: E402


def montage(grid: Float[Tensor, "rows cols height width"], pad: int = 1) -> np.ndarray:
    """One image of ``rows x cols`` tiles separated by ``pad`` grey pixels (values in [0, 1])."""
    rows, cols, height, width = grid.shape
    canvas = np.full((rows * (height + pad) - pad, cols * (width + pad) - pad), 0.35)
    for r in range(rows):
        for c in range(cols):
            canvas[r * (height + pad): r * (height + pad) + height, c * (width + pad): c * (width + pad) + width] = grid[r, c].clamp(0, 1).numpy()
    return canvas


def plot_montages(
    panels: list[tuple[str, Tensor]],
    row_labels: list[str] | None = None,
    col_labels: list[list[str]] | None = None,
    title: str = "",
    tile_inches: float = 0.42,
) -> plt.Figure:
    """Side-by-side panels, each a [rows cols height width] grid of images in [0, 1]."""
    widths = [grid.shape[1] for _, grid in panels]
    rows = max(grid.shape[0] for _, grid in panels)
    label_room = 1.6 if row_labels else 0.2
    fig, axes = plt.subplots(1, len(panels), figsize=(tile_inches * sum(widths) + 0.3 * len(panels) + label_room, tile_inches * rows + 1.0),
                             gridspec_kw={"width_ratios": widths}, squeeze=False)
    for i, (ax, (name, grid)) in enumerate(zip(axes[0], panels)):
        ax.imshow(montage(grid), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(name, fontsize=9)
        height, width = grid.shape[2], grid.shape[3]
        ax.set_xticks([c * (width + 1) + width / 2 - 0.5 for c in range(grid.shape[1])])
        ax.set_xticklabels(col_labels[i] if col_labels else [], fontsize=7, rotation=90 if col_labels and max(map(len, col_labels[i])) > 4 else 0)
        ax.set_yticks([r * (height + 1) + height / 2 - 0.5 for r in range(grid.shape[0])])
        ax.set_yticklabels(row_labels if (row_labels and i == 0) else [], fontsize=7)
        ax.tick_params(length=0)
        ax.grid(False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _band(ax: plt.Axes, df: pd.DataFrame, x: str, y: str, low: str, high: str, hue: str) -> None:
    palette = sns.color_palette(n_colors=df[hue].nunique())
    for colour, (name, part) in zip(palette, df.groupby(hue, sort=False)):
        part = part.sort_values(x)
        ax.plot(part[x], part[y], marker="o", color=colour, label=name)
        ax.fill_between(part[x], part[low], part[high], color=colour, alpha=0.2, linewidth=0)


def plot_guidance(df: pd.DataFrame) -> plt.Figure:
    """Adherence (95% Wilson band) and diversity (95% band over captions) against the guidance scale.

    Expects columns ``model alpha adherence ci_low ci_high diversity diversity_low diversity_high``.
    """
    with sns.axes_style("whitegrid"):
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    _band(left, df, "alpha", "adherence", "ci_low", "ci_high", "model")
    left.set(xlabel="guidance scale alpha", ylabel="prompt adherence (classifier agrees)", title="Adherence", ylim=(None, 1.01))
    left.legend(fontsize=8)
    _band(right, df, "alpha", "diversity", "diversity_low", "diversity_high", "model")
    right.set(xlabel="guidance scale alpha", ylabel="mean pairwise distance within a prompt", title="Diversity")
    right.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_zero_shot(df: pd.DataFrame) -> plt.Figure:
    """Zero-shot accuracy per attribute (bars) with chance level (black ticks)."""
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(7.5, 3.5))
    sns.barplot(df, x="attribute", y="accuracy", ax=ax, color=sns.color_palette()[0])
    ax.scatter(range(len(df)), df["chance"], marker="_", s=900, color="black", label="chance", zorder=3)
    ax.set(ylim=(0, 1.05), ylabel="zero-shot accuracy", xlabel="")
    ax.tick_params(axis="x", labelsize=9)
    # beside the axes, its wide tick marker shrunk so it stays inside the legend
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, markerscale=0.3, frameon=False)
    fig.tight_layout()
    return fig


def plot_direction_cosines(df: pd.DataFrame) -> plt.Figure:
    """Heatmaps of cosine(image direction, caption direction), one per caption kind."""
    kinds = list(pd.unique(df["caption_kind"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(6.2 * len(kinds), 4.4), squeeze=False)
    rows = None
    for ax, kind in zip(axes[0], kinds):
        part = df[df["caption_kind"] == kind]
        table = part.pivot(index="image_direction", columns="caption_direction", values="cosine")
        table = table.loc[list(pd.unique(part["image_direction"])), list(pd.unique(part["caption_direction"]))]
        same_rows = rows is not None and list(table.index) == rows
        sns.heatmap(table, annot=True, fmt=".2f", cmap="vlag", vmin=-1, vmax=1, ax=ax, cbar=ax is axes[0][-1],
                    annot_kws={"fontsize": 8}, yticklabels=not same_rows,
                    cbar_kws={"label": "cosine"})
        # a later panel with the same rows repeats neither the row names nor the axis title between the panels
        ax.set(title=f"caption direction: {kind}", xlabel="caption direction",
               ylabel="" if same_rows else "image direction (mean embedding difference)")
        rows = list(table.index)
    fig.tight_layout()
    return fig


def plot_losses(df: pd.DataFrame) -> plt.Figure:
    """Training loss per step (rolling mean over 25 steps) for every subject."""
    smooth = df.assign(loss=df.groupby("subject")["loss"].transform(lambda s: s.rolling(25, min_periods=1).mean()))
    with sns.axes_style("whitegrid"):
        grid = sns.relplot(smooth, x="step", y="loss", col="subject", kind="line", height=3, aspect=1.2,
                           facet_kws={"sharey": False, "sharex": False})
    for ax, subject in zip(grid.axes.flat, grid.col_names):
        ax.set_yscale("log")
        # a few plain labels (1, 2, 3, 5 per decade, so a panel spanning under one decade still gets
        # several); matplotlib's minor log labels ran into the next panel
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="y", labelsize=8)
        # each panel says which loss it shows: the subjects train on different objectives
        ax.set_ylabel(_loss_name(subject) + " (log scale)", fontsize=9)
        ax.set_xlabel("training step")
    grid.set_titles("{col_name}")
    grid.figure.subplots_adjust(wspace=0.45)
    return grid.figure


def _loss_name(subject: str) -> str:
    """What a subject's training loss is, from its name: DDPMs predict noise, CLIP contrasts pairs."""
    if "DDPM" in subject:
        return "noise-prediction MSE"
    if "CLIP" in subject:
        return "contrastive cross-entropy"
    return "loss"


def to_unit(images: Tensor) -> Tensor:
    """Model-range images [-1, 1] to display range [0, 1]."""
    return ((images + 1) / 2).clamp(0, 1)

