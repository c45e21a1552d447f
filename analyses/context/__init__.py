"""Does attention move an ambiguous word's vector ("mole") towards its sense in context?

The seed (part 7) says that after embedding every "mole" has the same vector, and that
attention lets the context ("American shrew", "carbon dioxide", "biopsy") refine it. This
analysis tests that on all-MiniLM-L6-v2 (a 6-layer BERT encoder) with hand-written
sentences for three ambiguous words (mole: animal / chemistry unit / skin; bank: river /
finance; bat: animal / sports): per layer, a linear probe for the sense from the
ambiguous token's vector (with Hewitt and Liang's control task), the cosine between the
token's vectors within and across senses, and where the token attends in each head.
The same probing instrument is then pointed at the digit network's hidden layers.

Example::

    from analyses import context
    report = context.run(context.Config.quick())
    report.save("reports")
"""

from dataclasses import asdict, dataclass

import pandas as pd
import torch

from analyses.context import measures, plots
from analyses.context.sentences import SENSES
from interp.report import Report


@dataclass(frozen=True)
class Config:
    seed: int = 0
    words: tuple[str, ...] = ("mole", "bank", "bat")
    per_sense: int | None = None  # sentences per sense (None: all, at least 20)
    cv: int = 5                   # cross-validation folds of every probe
    batch_size: int = 32
    digit_epochs: int | None = None  # None: the digit network's default training
    top_heads: int = 3

    def __post_init__(self) -> None:
        unknown = set(self.words) - set(SENSES)
        if not self.words or unknown:
            raise ValueError(f"words must be a non-empty subset of {tuple(SENSES)}, got {self.words}")
        if self.cv < 2:
            raise ValueError(f"cv must be at least 2, got {self.cv}")
        if self.per_sense is not None and self.per_sense < self.cv:
            raise ValueError(f"per_sense ({self.per_sense}) must be at least cv ({self.cv}) so every fold sees every sense")
        if self.batch_size < 1 or self.top_heads < 1:
            raise ValueError("batch_size and top_heads must be at least 1")
        if self.digit_epochs is not None and self.digit_epochs < 1:
            raise ValueError("digit_epochs must be at least 1, or None for the default")

    @classmethod
    def quick(cls) -> "Config":
        return cls(per_sense=10, digit_epochs=5, top_heads=2)


def run(config: Config) -> Report:
    from models.pretrained import load_minilm

    torch.manual_seed(config.seed)
    model = load_minilm()
    tokenizer = model.tokenizer
    hooks = measures.layer_hooks(model.cfg.n_layers)
    data = {w: measures.tokenise(tokenizer, w, SENSES[w], config.per_sense) for w in config.words}
    counts = "; ".join(f"{w}: " + ", ".join(f"{s} {int((d.sense == s).sum())}" for s in SENSES[w]) for w, d in data.items())
    report = Report("context", "Context disambiguates words: 'mole' inside MiniLM", config=asdict(config),
                    summary=f"Subject: all-MiniLM-L6-v2 ({model.cfg.n_layers} layers x {model.cfg.n_heads} heads, "
                            f"d_model {model.cfg.d_model}), loaded offline through TransformerLens. Hand-written "
                            f"sentences per sense: {counts}.")
    vectors = {w: measures.token_vectors(model, d, hooks, config.batch_size) for w, d in data.items()}
    _probe_section(report, config, data, vectors)
    _cosine_section(report, data, vectors)
    _attention_section(report, config, model, data, tokenizer)
    _digit_section(report, config)
    return report


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _probe_section(report: Report, config: Config, data, vectors) -> None:
    probes = pd.concat([measures.sense_probes(vectors[w], data[w], config.cv, config.seed) for w in data],
                       ignore_index=True)
    lines = []
    for word, df in probes.groupby("word", sort=False):
        first, last = df.iloc[0], df.iloc[-1]
        best = df.loc[df["accuracy"].idxmax()]
        trend = ("rises" if last.accuracy > first.accuracy + 0.05 else
                 "falls" if last.accuracy < first.accuracy - 0.05 else "stays level")
        lines.append(f"- **{word}** ({first.n_classes} senses, chance {_pct(first.chance)}): {_pct(first.accuracy)} at "
                     f"the embedding output, {_pct(last.accuracy)} after layer {last.layer}; it {trend} with depth and "
                     f"peaks at {_pct(best.accuracy)} (layer {best.layer}). Selectivity goes from "
                     f"{first.selectivity:+.2f} to {last.selectivity:+.2f}.")
        report.headline(f"{word}_probe_embed", round(float(first.accuracy), 4), f"sense-probe accuracy for '{word}' at the embedding output")
        report.headline(f"{word}_probe_last", round(float(last.accuracy), 4), f"sense-probe accuracy for '{word}' after the last layer")
        report.headline(f"{word}_selectivity_last", round(float(last.selectivity), 4), f"selectivity for '{word}' after the last layer")
    section = report.section(
        "Can a linear probe read the sense from the word's vector, layer by layer?",
        f"At each layer the ambiguous token's residual vector is fed to a logistic-regression probe "
        f"({config.cv}-fold stratified cross-validation, standardised inputs) that predicts the sense. The *embed* "
        "layer is the embedding output (token + position + segment embeddings after LayerNorm): the token part is "
        "identical in every sentence, so anything a probe finds there comes from the word's position. The control "
        "task (Hewitt and Liang 2019) gives every *previous token* a random sense drawn from the real sense "
        "frequencies; a probe can only learn it by memorising which word came just before. Selectivity = real "
        "accuracy minus control accuracy.\n\n" + "\n".join(lines))
    section.figure(plots.plot_sense_probes(probes), "sense_probes",
                   "Cross-validated sense-probe accuracy per layer (error bars: sd over folds), the control task, and "
                   "chance (the majority sense's share).")
    section.table(probes, "sense_probes", "Probe and control accuracy per word and layer.")


def _cosine_section(report: Report, data, vectors) -> None:
    cosines = pd.concat([measures.sense_cosines(vectors[w], data[w]) for w in data], ignore_index=True)
    gap = measures.cosine_gap(cosines)
    lines = []
    for word, df in gap.groupby("word", sort=False):
        first, last = df.iloc[0], df.iloc[-1]
        best = df.loc[df["gap"].idxmax()]
        lines.append(f"- **{word}**: within {first['within sense']:.3f} vs across {first['across senses']:.3f} at the "
                     f"embedding output (gap {first.gap:+.3f}); after layer {last.layer} {last['within sense']:.3f} vs "
                     f"{last['across senses']:.3f} (gap {last.gap:+.3f}); the largest gap, {best.gap:+.3f}, is at layer "
                     f"{best.layer}.")
        report.headline(f"{word}_cosine_gap_last", round(float(last.gap), 4),
                        f"within- minus across-sense cosine of '{word}' after the last layer")
    section = report.section(
        "Do vectors of the same sense move together?",
        "Mean cosine similarity between the ambiguous token's vectors in two different sentences, over pairs of the "
        "same sense and pairs of different senses. A gap that grows with depth means context pulls each sense "
        "into its own region.\n\n" + "\n".join(lines))
    section.figure(plots.plot_sense_cosines(cosines), "sense_cosines",
                   "Mean cosine between the word's vectors within a sense and across senses, per layer.")
    section.table(gap, "sense_cosines", "Within- and across-sense mean cosine and their gap per word and layer.")


def _attention_section(report: Report, config: Config, model, data, tokenizer) -> None:
    attention = pd.concat([measures.attention_from_word(model, d, tokenizer) for d in data.values()], ignore_index=True)
    share = measures.context_share(attention)
    top = measures.top_context_tokens(attention, n_heads=config.top_heads)
    lines = []
    for word, df in share.groupby("word", sort=False):
        best = df.loc[df["context_share"].idxmax()]
        per_layer = df.groupby("layer")["context_share"].mean()
        layer, head = int(best["layer"]), int(best["head"])  # not best.head: that is Series.head
        examples = top[(top["word"] == word) & (top["layer"] == layer) & (top["head"] == head)]
        tokens = "; ".join(f"{r.sense}: {r.top_context_tokens}" for r in examples.itertuples())
        lines.append(f"- **{word}**: on average {_pct(per_layer.min())}-{_pct(per_layer.max())} of its attention per "
                     f"layer goes to context tokens (the rest to itself and [CLS]/[SEP]); head {layer}.{head} "
                     f"puts the most there ({_pct(best['context_share'])}), mostly on {tokens}.")
    section = report.section(
        "Which context tokens does the ambiguous word attend to?",
        "The attention pattern row of the ambiguous token in every head (layers numbered from 1), over all "
        "sentences. *Context share* is the attention on other words, not on itself or the special [CLS]/[SEP] "
        "tokens; for the heads with the largest share, the table lists the context tokens that receive the most "
        "attention summed over the sentences of each sense.\n\n" + "\n".join(lines))
    section.figure(plots.plot_context_share(share), "context_share",
                   "Share of the ambiguous token's attention on context tokens, per layer and head (mean over sentences).")
    section.table(top, "top_context_tokens", "Context tokens most attended by the most context-reading heads, per sense.")
    section.table(share, "context_share", "Context share per word, layer and head.", max_rows=12)


def _digit_section(report: Report, config: Config) -> None:
    probes, test_accuracy = measures.digit_probes(config.seed, config.cv, config.digit_epochs)
    lines = [f"- **{r.representation}** (`{r.hook}`): accuracy {_pct(r.accuracy)} (control {_pct(r.control_accuracy)}, "
             f"selectivity {r.selectivity:+.2f})." for r in probes.itertuples()]
    for r in probes.itertuples():
        key = r.representation.replace(" ", "_")
        report.headline(f"digit_probe_{key}", round(float(r.accuracy), 4), f"digit-probe accuracy on {r.representation}")
    section = report.section(
        "The same instrument on the digit network",
        f"The digit network (`models.mlp`, trained with its default recipe from seed {config.seed}; test accuracy "
        f"{_pct(test_accuracy)}) is run on the 8x8 test images; `interp.activations` collects each hidden layer and "
        "`interp.probing` probes it for the digit, with a control task of random labels per image (every image its "
        "own type, so the control must sit at chance). Raw pixels are the baseline.\n\n" + "\n".join(lines))
    section.figure(plots.plot_digit_probes(probes), "digit_probes",
                   "Digit-probe accuracy per representation, the random-label control, and chance.")
    section.table(probes, "digit_probes", "Probe and control accuracy per representation of the digit network.")
