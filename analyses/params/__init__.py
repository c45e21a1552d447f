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

from dataclasses import asdict, dataclass

import pandas as pd

from analyses.params.measures import (  # noqa: F401 (preset_table is re-exported: `interp params` and users read it here)
    GPT2_PUBLISHED, check_against_instances, component_shares, gpt3_components, gpt3_table, preset_families,
    in_words, preset_label, preset_table)
from analyses.params.plots import plot_preset_shares, plot_share_vs_width
from interp.report import Report
from models.transformer import PRESETS, count_parameters


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
    tied = in_words(list(dict.fromkeys(preset_label(name) for name, cfg in PRESETS.items() if cfg.tied_embeddings)))
    layer_norms = presets.loc[presets.component == "layer norms", "share"].max()
    section.figure(plot_preset_shares(shares), "preset_shares", f"Share of each component in every preset "
                   f"({in_words(preset_families(shares))}), smallest model at the top, total parameters in brackets. "
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
