"""Figures of the params analysis: each takes a tidy DataFrame and returns a Figure."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter, NullLocator, PercentFormatter

from analyses.params.measures import COMPONENT_NAMES, in_words, preset_families
from models.transformer import PRESETS, count_parameters


# one colour per component in both figures, so a reader can carry the key from one to the other
COMPONENT_COLOURS = dict(zip(COMPONENT_NAMES.values(), sns.color_palette("tab10")))
def _percent(share: float, _position=None) -> str:
    """A log axis tick as a percentage with just enough decimals: 100%, 1%, 0.01%."""
    return f"{100 * share:.{max(0, -int(np.floor(np.log10(100 * share) + 1e-9)))}f}%"

def _short_count(n: int) -> str:
    return f"{n / 1e9:.3g}B" if n >= 1e9 else f"{n / 1e6:.3g}M"


def plot_preset_shares(shares: pd.DataFrame) -> plt.Figure:
    """Stacked bars, one per preset, smallest model at the top; shares over 6% written in the bar."""
    presets = shares[shares.family == "preset"]
    totals = {name: count_parameters(cfg)["total"] for name, cfg in PRESETS.items()}
    order = sorted(presets.model.unique(), key=totals.get)
    wide = presets.pivot(index="model", columns="component", values="share").loc[order[::-1]]
    wide = wide[list(COMPONENT_NAMES.values())]
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    wide.plot.barh(stacked=True, ax=ax, color=[COMPONENT_COLOURS[c] for c in wide.columns], width=0.7)
    for row, (_, values) in enumerate(wide.iterrows()):
        left = 0.0
        for value in values:
            if value > 0.06:
                ax.text(left + value / 2, row, f"{value:.0%}", ha="center", va="center", fontsize=8.5, color="white")
            left += value
    ax.set_yticks(range(len(wide)), [f"{name} ({_short_count(totals[name])})" for name in wide.index])
    ax.set_xlabel("share of all parameters")
    ax.set_ylabel("")
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", frameon=False)
    ax.set_title("Where the parameters live: " + in_words(preset_families(shares)))
    return fig


def plot_share_vs_width(shares: pd.DataFrame) -> plt.Figure:
    sweep = shares[(shares.family == "sweep") & (shares.share > 0)]
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for component, rows in sweep.groupby("component", sort=False):
        # untied, the unembedding has the embedding's count (+ its 50,257 biases): the lines coincide, so
        # the unembedding is drawn wide and pale underneath and the embedding thin and dashed on top
        style = ({"lw": 7, "alpha": 0.35, "zorder": 1, "marker": "s", "ms": 9} if component == "unembedding" else
                 {"lw": 1.8, "ls": "--", "zorder": 3, "marker": "o", "ms": 4} if component == "embedding" else
                 {"lw": 1.8, "zorder": 2, "marker": "o", "ms": 4})
        ax.plot(rows.d_model, rows.share, label=component, color=COMPONENT_COLOURS[component], **style)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    widths = sorted(sweep.d_model.unique())
    ax.set_xticks(widths, [f"{w:,}" for w in widths], rotation=45 if len(widths) > 6 else 0)
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(_percent))
    ax.set_xlabel("d_model (log scale)\nn_layers = max(2, d_model / 128), d_mlp = 4 d_model, 50,257-token vocabulary",
                  fontsize=9.5)
    ax.set_ylabel("share of all parameters (log scale)")
    ax.set_title("Share of each component as width grows")
    ax.legend(bbox_to_anchor=(1.01, 1), loc="upper left", frameon=False)
    return fig


