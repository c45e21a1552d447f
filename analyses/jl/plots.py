"""Figures of the jl analysis: each takes a tidy DataFrame and returns a Figure."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from interp.jl import angle_deg, coherence_lower_bound


def plot_angles(hist: pd.DataFrame, n: int, d: int) -> plt.Figure:
    """All pairwise angles, log counts, with the bounds' forbidden zone marked.

    One panel per start (random vectors, the chirp frame), each beside what the optimiser made
    of it: the two optimised histograms nearly coincide, so drawn on one axes one hid the other.
    """
    colors = {"random": "tab:grey", "optimised from random": "tab:blue", "chirp frame": "tab:green",
              "optimised from chirp": "tab:purple"}
    present = list(hist["vectors"].unique())
    panels = [[name for name in pair if name in present]
              for pair in (("random", "optimised from random"), ("chirp frame", "optimised from chirp"))]
    panels = [names for names in panels if names]
    panels += [[name] for name in present if not any(name in names for names in panels)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), sharey=True, squeeze=False)
    lev = angle_deg(coherence_lower_bound(n, d))
    seen = hist.loc[hist["pairs"] > 0, "angle_deg"]
    half = max(90 - seen.min(), seen.max() - 90, 90 - lev) + 5  # every pair shown, centred on 90°
    for ax, names in zip(axes[0], panels):
        ax.axvspan(lev, 180 - lev, color="tab:red", alpha=0.08,
                   label=f"some pair must lie outside ({lev:.2f}°, {180 - lev:.2f}°)")
        for x in (lev, 180 - lev):
            ax.axvline(x, color="tab:red", lw=1, ls="--")
        ax.axvspan(89, 91, color="gold", alpha=0.5, label="89-91° (impossible for all pairs)")
        for name in names:
            shown = hist[(hist["vectors"] == name) & (hist["pairs"] > 0)]
            ax.step(shown["angle_deg"], shown["pairs"], where="mid", color=colors.get(name), label=name, lw=1.2)
        ax.set(yscale="log", xlim=(max(0, 90 - half), min(180, 90 + half)),
               xlabel="angle between vectors (degrees)")
        ax.set_title(" and ".join(names), fontsize=10.5)
        handles, labels = ax.get_legend_handles_labels()
        order = [labels.index(name) for name in names] + [0, 1]  # the series first, then the bands
        ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=8.5, loc="upper center",
                  bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    axes[0][0].set_ylabel("pairs per 0.25° bin (log scale)")
    fig.suptitle(f"{n:,} vectors in {d} dimensions: every pairwise angle")
    fig.tight_layout()
    return fig


def plot_history(history: pd.DataFrame, lower: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    for start, run in history.groupby("start", sort=False):
        ax.plot(run["step"], run["max_abs_cos"], label=f"optimiser from {start}")
    ax.axhline(lower, color="tab:red", ls="--", label="lower bound")
    ax.axhline(1.5 * lower, color="tab:grey", ls=":", label="1.5 x lower bound")
    # the whole of every curve: a random start begins far above twice the bound
    top = max(float(history["max_abs_cos"].max()), 1.5 * lower) * 1.05
    ax.set(xlabel="step", ylabel="max |cos| (best so far)", ylim=(0.9 * lower, top))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return fig


def plot_capacity(curves: pd.DataFrame) -> plt.Figure:
    long = curves.melt(id_vars=["d", "eps"], value_vars=["optimised", "random", "bound"], var_name="vectors",
                       value_name="n")
    long = long[np.isfinite(long["n"].astype(float))]
    grid = sns.relplot(long, x="d", y="n", hue="vectors", col="eps", kind="line", marker="o", height=3.2,
                       facet_kws={"sharex": False, "sharey": False})
    grid.set(yscale="log")
    for eps, ax in zip(grid.col_names, grid.axes.flat):
        ax.set_xticks(sorted(long.loc[long["eps"] == eps, "d"].unique()))
        # plain numbers on the log axis: a range such as 20-40 would otherwise show no label at all
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    grid.set_axis_labels("dimensions d", "vectors with every |cos| <= eps\n(log scale)")
    return grid.figure


def plot_small(small: pd.DataFrame) -> plt.Figure:
    """Bars from 0°, so equal angles look equal; each bar's angle written on it."""
    long = small.melt(id_vars=["n", "d"], value_vars=["optimised_deg", "best_known_deg", "bound_deg"],
                      var_name="source", value_name="degrees")
    long["source"] = long["source"].map({"optimised_deg": "optimised", "best_known_deg": "best known",
                                         "bound_deg": "upper bound (no packing exceeds it)"})
    long["case"] = long["n"].astype(str) + " lines\nin R^" + long["d"].astype(str)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    sns.barplot(long, x="case", y="degrees", hue="source", ax=ax)
    for bars in ax.containers:
        ax.bar_label(bars, fmt="%.2f°", label_type="center", rotation=90, fontsize=8.5, color="white")
    ax.set(ylim=(0, 90), yticks=range(0, 91, 15), ylabel="smallest angle (degrees)", xlabel="")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, fontsize=9)
    fig.tight_layout()
    return fig


# -- report ------------------------------------------------------------------------------
