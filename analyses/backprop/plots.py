"""Figures of the backprop analysis: each takes a tidy DataFrame and returns a Figure."""

import numpy as np
import pandas as pd


def plot_agreement(points: pd.DataFrame) -> "plt.Figure":
    """Backprop gradient components against autograd's and finite differences' (symlog axes)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    long = points.melt(id_vars=["backprop", "shape", "activation", "cost"], value_vars=["autograd", "finite_difference"],
                       var_name="reference", value_name="reference_value")
    long["variant"] = long["activation"] + "/" + long["cost"]
    long["reference"] = long["reference"].map({"autograd": "torch.autograd", "finite_difference": "finite differences"})
    # one panel per variant: the variants' points coincide on the diagonal, so in one panel only the
    # last one drawn would show
    grid = sns.relplot(long, x="reference_value", y="backprop", hue="variant", col="variant", row="reference", s=8,
                       alpha=0.6, height=2.3, aspect=1.0, linewidth=0, legend=False,
                       facet_kws={"margin_titles": True})
    for ax in grid.axes.flat:
        # symlog: linear within 1e-4 of zero, logarithmic beyond, so small and large components both show
        ax.set_xscale("symlog", linthresh=1e-4)
        ax.set_yscale("symlog", linthresh=1e-4)
        # the diagonal beneath the points (zorder 0), which sit on it: drawn over them, it hid them
        diagonal = np.concatenate([-np.geomspace(1, 1e-4, 20), [0.0], np.geomspace(1e-4, 1, 20)])
        ax.plot(diagonal, diagonal, color="grey", linestyle=":", linewidth=0.8, zorder=0)
        ax.set_xticks([-1, -1e-2, 0, 1e-2, 1])  # fewer ticks: symlog's default labels collide at this size
        ax.set_yticks([-1, -1e-2, -1e-4, 0, 1e-4, 1e-2, 1])
        ax.xaxis.set_tick_params(labelsize=7)
        ax.yaxis.set_tick_params(labelsize=7)
    grid.set_titles(col_template="{col_name}", row_template="{row_name}")
    grid.set_axis_labels("reference component", "backprop component")
    diagonal_key = plt.Line2D([], [], color="grey", linestyle=":", linewidth=1.2,
                              label="exact agreement (backprop = reference); axes linear within ±1e-4, log beyond")
    grid.figure.legend(handles=[diagonal_key], loc="lower center", bbox_to_anchor=(0.5, 0.0), frameon=False, fontsize=9)
    grid.figure.subplots_adjust(bottom=0.16)
    return grid.figure


def plot_relative_errors(checks: pd.DataFrame) -> "plt.Figure":
    """Worst relative error of backprop per network, against each reference, on a log scale."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    long = checks.melt(id_vars=["shape", "activation", "cost"],
                       value_vars=["autograd_max_rel_err_elementwise", "fd_max_rel_err_elementwise"],
                       var_name="reference", value_name="max_relative_error")
    long["reference"] = long["reference"].map({"autograd_max_rel_err_elementwise": "torch.autograd",
                                               "fd_max_rel_err_elementwise": "finite differences"})
    long["variant"] = long["activation"] + "/" + long["cost"]
    long["max_relative_error"] = long["max_relative_error"].clip(lower=1e-17)  # exact agreement drawn at 1e-17
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    sns.stripplot(long, x="max_relative_error", y="shape", hue="reference", dodge=True, size=6, ax=ax, log_scale=True)
    # the acceptance line beneath the points (zorder 0), so a point on it stays visible
    ax.axvline(1e-8, color="k", linestyle="--", linewidth=0.8, zorder=0, label="1e-8 acceptance")
    ax.set(xlabel="max elementwise relative error over all parameters (log scale)", ylabel="network shape")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), title="reference", frameon=False)
    fig.tight_layout()
    return fig


