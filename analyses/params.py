"""Where do a transformer's parameters live, and does GPT-3 really have 175 billion?

The seed's table ("The Parameter Count (GPT-3)") counts the weight matrices of GPT-3:
embedding and unembedding 617 million each, attention about 58 billion, MLPs about
116 billion, 175 billion in all, two thirds of them in the MLPs. This analysis recomputes
that table from the architecture alone (``models.transformer.count_parameters``, which
allocates nothing), follows the share of each component as models grow through the GPT-2
family to GPT-3, and checks the analytic count against instantiated models.

Example::

    from analyses import params
    report = params.run(params.Config.quick())
    report.save("reports")
"""

import itertools
from dataclasses import asdict, dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter, NullLocator, PercentFormatter

from interp.report import Report
from models.transformer import PRESETS, Transformer, TransformerConfig, count_parameters

# Published figures the report is checked against (3Blue1Brown, "The Parameter Count").
SEED_TABLE = {"embed": 617_558_016, "attn": 58e9, "mlp": 116e9, "unembed": 617_558_016, "total": 175e9}
# Published sizes of the GPT-2 family (Hugging Face model cards, tied embeddings).
GPT2_PUBLISHED = {
    "gpt2-small": 124_439_808, "gpt2-medium": 354_823_168,
    "gpt2-large": 774_030_080, "gpt2-xl": 1_557_611_200,
}
COMPONENT_NAMES = {
    "embed": "embedding", "pos_embed": "position embedding", "attn": "attention",
    "mlp": "MLP", "ln": "layer norms", "unembed": "unembedding",
}


@dataclass(frozen=True)
class Config:
    seed: int = 0
    check_d_model: int = 32     # size of the instantiated models checked against the formula
    check_layers: int = 2
    sweep_widths: tuple[int, ...] = (64, 128, 256, 512, 768, 1024, 1600, 2048, 4096, 8192, 12288)

    def __post_init__(self) -> None:
        if self.check_d_model < 4 or self.check_d_model % 4:
            raise ValueError(f"check_d_model must be a multiple of 4 and at least 4, got {self.check_d_model}")
        if self.check_layers < 1:
            raise ValueError(f"check_layers must be at least 1, got {self.check_layers}")
        if not self.sweep_widths or min(self.sweep_widths) < 8:
            raise ValueError("sweep_widths needs widths of at least 8")

    @classmethod
    def quick(cls) -> "Config":
        return cls(check_d_model=16, check_layers=1, sweep_widths=(64, 256, 1024, 4096, 12288))


def gpt3_table() -> pd.DataFrame:
    """The seed's GPT-3 table, weight matrices only, one row per matrix family."""
    cfg = PRESETS["gpt3"]
    per_matrix = cfg.n_layers * cfg.n_heads * cfg.d_model * cfg.d_head
    rows = [
        ("embedding", "W_E", f"{cfg.d_vocab:,} x {cfg.d_model:,}", cfg.d_vocab * cfg.d_model),
        *[
            (f"attention {name}", f"W_{name[0].upper()}", f"{cfg.n_layers} x {cfg.n_heads} x {cfg.d_model:,} x {cfg.d_head}", per_matrix)
            for name in ("query", "key", "value", "output")
        ],
        ("MLP up-projection", "W_in", f"{cfg.n_layers} x {cfg.d_model:,} x {cfg.d_mlp:,}", cfg.n_layers * cfg.d_model * cfg.d_mlp),
        ("MLP down-projection", "W_out", f"{cfg.n_layers} x {cfg.d_mlp:,} x {cfg.d_model:,}", cfg.n_layers * cfg.d_model * cfg.d_mlp),
        ("unembedding", "W_U", f"{cfg.d_model:,} x {cfg.d_vocab:,}", cfg.d_model * cfg.d_vocab),
    ]
    return pd.DataFrame(rows, columns=["matrix", "name", "shape", "parameters"])


def gpt3_components() -> pd.DataFrame:
    """Per-component totals of the GPT-3 preset beside the seed's figures."""
    counts = count_parameters(PRESETS["gpt3"], biases=False, layer_norms=False, pos_embed=False)
    rows = []
    for key in ("embed", "attn", "mlp", "unembed", "total"):
        seed = SEED_TABLE[key]
        rows.append({
            "component": COMPONENT_NAMES.get(key, key), "parameters": counts[key],
            "share": counts[key] / counts["total"], "seed_table": seed,
            "relative_difference": counts[key] / seed - 1,
        })
    return pd.DataFrame(rows)


def preset_table(preset: str, *, weights_only: bool = False) -> pd.DataFrame:
    """Parameters per component of a named preset (``interp params``)."""
    if preset not in PRESETS:
        raise KeyError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    options = dict(biases=False, layer_norms=False, pos_embed=False) if weights_only else {}
    counts = count_parameters(PRESETS[preset], **options)
    return pd.DataFrame({
        "component": list(counts),
        "parameters": list(counts.values()),
        "share": [v / counts["total"] for v in counts.values()],
    })


def component_shares(widths: tuple[int, ...]) -> pd.DataFrame:
    """Long table: share of each component for the presets and a width sweep.

    The sweep keeps GPT-3's shape ratios (d_mlp = 4 d_model, d_head 64 or 128,
    n_layers growing as in the GPT-3 paper's family: about d_model / 128) and its
    50,257-token vocabulary, so it shows how the embedding's share shrinks with width.
    """
    rows = []
    for name, cfg in PRESETS.items():
        counts = count_parameters(cfg)
        rows += [{"model": name, "family": "preset", "d_model": cfg.d_model, "component": COMPONENT_NAMES[k],
                  "parameters": counts[k], "share": counts[k] / counts["total"]} for k in COMPONENT_NAMES]
    for width in widths:
        cfg = TransformerConfig(
            d_model=width, n_layers=max(2, width // 128), n_heads=max(1, width // 64), d_mlp=4 * width,
            d_vocab=50257, n_ctx=2048, tied_embeddings=False,
        )
        counts = count_parameters(cfg)
        rows += [{"model": f"width {width}", "family": "sweep", "d_model": width, "component": COMPONENT_NAMES[k],
                  "parameters": counts[k], "share": counts[k] / counts["total"]} for k in COMPONENT_NAMES]
    return pd.DataFrame(rows)


def check_against_instances(d_model: int, n_layers: int) -> pd.DataFrame:
    """Analytic count against ``sum(p.numel())`` for every combination of options."""
    rows = []
    options = itertools.product(("relu", "gelu_new"), ("LN", None), (False, True), (False, True), (None, 4 * d_model))
    for act_fn, norm, tied, bias, d_mlp in options:
        cfg = TransformerConfig(
            d_model=d_model, n_layers=n_layers, n_heads=4, d_mlp=d_mlp, d_vocab=50, n_ctx=16,
            act_fn=act_fn, normalization=norm, tied_embeddings=tied, use_bias=bias,
        )
        instantiated = sum(p.numel() for p in Transformer(cfg).parameters())
        analytic = count_parameters(cfg)["total"]
        rows.append({"act_fn": act_fn, "normalization": str(norm), "tied_embeddings": tied, "use_bias": bias,
                     "d_mlp": str(d_mlp), "analytic": analytic, "instantiated": instantiated,
                     "match": analytic == instantiated})
    return pd.DataFrame(rows)


# one colour per component in both figures, so a reader can carry the key from one to the other
COMPONENT_COLOURS = dict(zip(COMPONENT_NAMES.values(), sns.color_palette("tab10")))
PRESET_LABELS = {"gpt3": "GPT-3", "smollm2-135m": "SmolLM2-135M", "llama-2-7b": "Llama 2 7B"}


def _preset_label(name: str) -> str:
    return "GPT-2 family" if name.startswith("gpt2-") else PRESET_LABELS.get(name, name)


def _percent(share: float, _position=None) -> str:
    """A log axis tick as a percentage with just enough decimals: 100%, 1%, 0.01%."""
    return f"{100 * share:.{max(0, -int(np.floor(np.log10(100 * share) + 1e-9)))}f}%"


def preset_families(shares: pd.DataFrame) -> list[str]:
    """The families of the presets in ``shares``, smallest model first (the preset figure's title)."""
    presets = shares[shares.family == "preset"]
    order = sorted(presets.model.unique(), key=lambda name: count_parameters(PRESETS[name])["total"])
    return list(dict.fromkeys(_preset_label(name) for name in order))


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


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
    ax.set_title("Where the parameters live: " + _and(preset_families(shares)))
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


def run(config: Config) -> Report:
    report = Report("params", "Where a transformer's parameters live", config=asdict(config), summary=__doc__.split("\n\n")[1])

    table = gpt3_table()
    components = gpt3_components()
    total = int(components.loc[components.component == "total", "parameters"].iloc[0])
    mlp_share = float(components.loc[components.component == "MLP", "share"].iloc[0])
    attn = int(components.loc[components.component == "attention", "parameters"].iloc[0])
    section = report.section(
        "The GPT-3 table",
        "GPT-3 175B (Brown et al. 2020, Table 2.1): 96 layers, 96 heads of size 128, d_model 12,288, "
        "d_mlp 49,152, a 50,257-token vocabulary. Counting weight matrices only, as the seed's table "
        f"does (`interp params gpt3 --weights-only`), gives **{total:,}** parameters: attention {attn / 1e9:.2f} billion, MLPs "
        f"{components.parameters.iloc[2] / 1e9:.2f} billion ({mlp_share:.1%} of the total, the seed's "
        "'about 2/3'), embedding and unembedding 617,558,016 each. The last column compares each "
        "figure with the seed's rounded value.",
    )
    section.table(table, "gpt3_matrices", "every weight matrix family of GPT-3 (biases, layer norms and position embeddings left out)")
    section.table(components, "gpt3_components", "per component, against the seed's table")

    full = count_parameters(PRESETS["gpt3"])
    report.section(
        "What the seed's table leaves out",
        f"Adding biases, layer norms and the 2,048 x 12,288 position embedding brings GPT-3 to "
        f"**{full['total']:,}** parameters (every parameter; what `interp params gpt3` prints by default), "
        f"{full['total'] - total:,} more than the weight matrices' {total:,} ({(full['total'] - total) / total:.3%}): "
        "the table's rounding hides them entirely.",
    )

    gpt2 = pd.DataFrame([
        {"preset": name, "counted": count_parameters(PRESETS[name])["total"], "published": published,
         "match": count_parameters(PRESETS[name])["total"] == published}
        for name, published in GPT2_PUBLISHED.items()
    ])
    shares = component_shares(config.sweep_widths)
    section = report.section(
        "Where parameters live as the model grows",
        "With biases, layer norms, position embeddings and tied embeddings, the analytic counts of the "
        f"GPT-2 presets {'all equal' if gpt2.match.all() else 'do NOT all equal'} the published sizes. "
        "The embedding dominates small models and fades as width grows, because it scales with "
        "d_model while the blocks scale with d_model squared times depth.",
    )
    section.table(gpt2, "gpt2_published", "GPT-2 family: counted against published sizes")
    presets = shares[shares.family == "preset"]
    tied = _and(list(dict.fromkeys(_preset_label(name) for name, cfg in PRESETS.items() if cfg.tied_embeddings)))
    layer_norms = presets.loc[presets.component == "layer norms", "share"].max()
    section.figure(plot_preset_shares(shares), "preset_shares", f"Share of each component in every preset "
                   f"({_and(preset_families(shares))}), smallest model at the top, total parameters in brackets. "
                   f"With tied embeddings ({tied}) the one shared matrix counts as embedding; layer norms are at most "
                   f"{layer_norms:.2%} of any preset, too thin to see.")
    section.figure(plot_share_vs_width(shares), "share_vs_width", "Share of each component along a width sweep with "
                   "GPT-3's proportions (at least 2 layers). Untied, the unembedding has the embedding's count plus "
                   "its biases, so the two lines coincide: unembedding wide and pale, embedding dashed on top.")
    section.table(shares, "component_shares", "long table behind both figures")

    check = check_against_instances(config.check_d_model, config.check_layers)
    report.section(
        "Check against instantiated models",
        f"For {len(check)} small configurations (every combination of activation, normalization, tied "
        f"embeddings, biases and attention-only), the analytic count equals the number of parameters "
        f"of the built model in {int(check.match.sum())} of {len(check)} cases.",
    ).table(check, "instance_check", "analytic count against sum(p.numel()) of Transformer(cfg)")

    report.headline("gpt3_weights", total, "GPT-3, weight matrices only, as the seed's table counts "
                    "(interp params gpt3 --weights-only; seed: ~175 billion)")
    report.headline("gpt3_all_parameters", full["total"], "GPT-3, every parameter: weights, biases, LayerNorms, "
                    "position embedding (interp params gpt3)")
    report.headline("gpt3_mlp_share", round(mlp_share, 4), "share of GPT-3's weights in MLPs (seed: about 2/3)")
    report.headline("gpt2_presets_match", bool(gpt2.match.all()), "GPT-2 counts equal published sizes")
    report.headline("instances_match", f"{int(check.match.sum())}/{len(check)}", "analytic = instantiated")
    return report
