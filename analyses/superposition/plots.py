"""Figures of the superposition analysis: each takes a tidy DataFrame and returns a Figure."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from analyses.superposition.measures import REPRESENTED, STICKY


def plot_intro(features: pd.DataFrame, W: dict[str, torch.Tensor], shown: tuple[float, ...],
               sparsities: tuple[float, ...]) -> plt.Figure:
    """The paper's picture: per column, the 2-D feature vectors (top) and W^T W (bottom)."""
    columns = [("linear", max(shown))] + [("ReLU", s) for s in shown]
    fig, axes = plt.subplots(2, len(columns), figsize=(2.6 * len(columns), 5.4))
    colors = plt.get_cmap("viridis")(np.linspace(0, 0.9, 5))
    for col, (name, sparsity) in enumerate(columns):
        w = W[name][sparsities.index(sparsity)].double()  # [hidden features]
        top, bottom = axes[0, col], axes[1, col]
        for i in range(w.shape[1]):
            top.plot([0, w[0, i]], [0, w[1, i]], color=colors[i], lw=2)
            top.scatter([w[0, i]], [w[1, i]], color=colors[i], s=18, zorder=3)
        top.set(xlim=(-1.5, 1.5), ylim=(-1.5, 1.5), aspect="equal", xticks=[], yticks=[])
        top.set_title(f"{name}\nS = {sparsity:g}", fontsize=10)
        sns.heatmap((w.T @ w).numpy(), ax=bottom, cmap="RdBu_r", vmin=-1.2, vmax=1.2, square=True, cbar=False,
                    xticklabels=False, yticklabels=False)
        bottom.set_title("$W^TW$", fontsize=9)
    fig.suptitle("5 features (importance 0.9^i, dark = most important) in 2 hidden dimensions")
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    bar = fig.add_axes((0.94, 0.06, 0.012, 0.36))
    fig.colorbar(plt.matplotlib.cm.ScalarMappable(plt.matplotlib.colors.Normalize(-1.2, 1.2), "RdBu_r"), cax=bar,
                 label="$W_i \\cdot W_j$")
    return fig


def plot_intro_summary(summary: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 3.4))
    data = summary.assign(inverse_density=1 / (1 - summary["sparsity"]))
    sns.lineplot(data, x="inverse_density", y="represented", hue="model", marker="o", ax=ax)
    # wide and pale beneath the lines: the linear model's line lies on it
    ax.axhline(2, color="grey", lw=6, alpha=0.3, zorder=0, label="hidden dimensions (2)")
    ax.set(xscale="log", xlabel="1 / (1 - S), inverse feature density (log scale)",
           ylabel=f"features with ||W_i|| > {REPRESENTED:g}", ylim=(0, 5.5))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)  # not over the lines
    fig.tight_layout()
    return fig


def _spread(values: list[float], gap: float) -> list[float]:
    """Label positions near ``values`` (sorted ascending) at least ``gap`` apart, so labels do not overlap."""
    placed: list[float] = []
    for value in values:
        placed.append(max(value, placed[-1] + gap) if placed else value)
    return placed


def plot_dimensionality(dims: pd.DataFrame) -> plt.Figure:
    """D_i of every represented feature (dots) and D* (line) against 1/(1-S), sticky fractions marked."""
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    shown = dims[dims["norm"] > REPRESENTED]
    ax.scatter(shown["inverse_density"], shown["dimensionality"], s=6, alpha=0.35, color="tab:blue",
               label="feature dimensionality $D_i$ (represented features)")
    per = dims.groupby("inverse_density")["dimensions_per_feature"].first()
    ax.plot(per.index, per.values, color="black", lw=2, marker="o", ms=3, label="dimensions per feature $D^*$")
    top = max(1.1, 1.05 * float(max(per.max(), shown["dimensionality"].max() if len(shown) else 0)))
    fractions = sorted(STICKY.items(), key=lambda item: item[1])
    # labels outside the right edge, nudged apart where two fractions are close (2/5 and 3/8)
    positions = _spread([value for _, value in fractions], gap=0.045 * top)
    for (label, value), y in zip(fractions, positions):
        ax.axhline(value, color="tab:red", lw=0.7, ls="--", alpha=0.7, zorder=0)
        ax.text(1.01, y, label, transform=ax.get_yaxis_transform(), va="center", fontsize=8.5, color="tab:red",
                clip_on=False)
    ax.set(xscale="log", xlabel="1 / (1 - S), inverse feature density (log scale)", ylabel="dimensions", ylim=(0, top))
    ax.plot([], [], color="tab:red", lw=0.7, ls="--", label="sticky fractions (the paper's)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_phase(phase: pd.DataFrame) -> plt.Figure:
    order = ["not represented", "dedicated dimension", "superposition"]
    codes = phase.assign(code=phase["phase"].map({p: k for k, p in enumerate(order)}))
    grid = codes.pivot(index="density", columns="relative_importance", values="code").sort_index(ascending=False)
    fig, ax = plt.subplots(figsize=(6.5, 4.8))
    cmap = plt.matplotlib.colors.ListedColormap(["#c6dbef", "#fdae6b", "#d62728"])
    sns.heatmap(grid, ax=ax, cmap=cmap, vmin=-0.5, vmax=2.5, cbar=False, linewidths=0.3,
                xticklabels=[f"{v:.2g}" for v in grid.columns], yticklabels=[f"{v:.2g}" for v in grid.index])
    handles = [plt.matplotlib.patches.Patch(color=cmap(k), label=p) for k, p in enumerate(order)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    ax.set(xlabel="relative importance of the extra feature", ylabel="feature density 1 - S")
    ax.set_title("2 features in 1 dimension: what happens to feature 2")
    fig.tight_layout()
    return fig


def plot_sae(sae: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 3.4))
    sns.barplot(sae, x="feature", y="max_cos", hue="penalty", ax=ax)
    ax.axhline(0.9, color="0.2", ls=":", lw=1.2, label="cos = 0.9 (reference)")
    ax.set(ylim=(0, 1.05), ylabel="max cos with a dictionary row", xlabel="true feature (represented ones)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), title="penalty", frameon=False)  # not over the bars
    fig.tight_layout()
    return fig


# -- report ------------------------------------------------------------------------------
