"""Where does a small transformer store "first name AND last name -> attribute" facts, and do MLP neurons act as AND gates?

The 3Blue1Brown series (parts 5, 7, 8) says facts such as "Michael Jordan plays
basketball" live mostly in MLP blocks: a neuron fires only when both "first name Michael"
and "last name Jordan" are present (an AND gate), and its down-projection adds the
"basketball" direction. This analysis trains (or loads) the ``facts`` zoo subject on a
procedural corpus where neither name alone determines an attribute, then tests the
picture with the toolkit's instruments: ROME causal tracing, activation patching,
per-neuron AND-gate scores with direct logit attribution and ablation, and ROME rank-one
edits. AND gates and edits are measured at two token sites: the last subject token, where
ROME found GPT's lookup, and the prompt's last token, where causal tracing finds this
subject's (attention gathers both names there and the MLPs combine them).

Example::

    from analyses.facts import Config, run
    report = run(Config.quick())
    report.save("reports")
"""

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analyses.facts import measures as fm
from analyses.facts.edits import edit_sites, editing_section
from analyses.facts.neurons import neuron_section
from analyses.facts.plots import plot_group_effects, plot_patching, plot_trace_heatmaps
from interp.report import Report
from interp.tracing import average_indirect_effect


@dataclass(frozen=True)
class Config:
    """``Config()`` is the full preset, ``Config.quick()`` the CI one."""

    seed: int = 0
    quick_subject: bool = False  # the zoo's small subject (2 layers) instead of the full one
    relation: str = "sport"
    n_trace_facts: int = 48  # facts traced (each in two templates)
    samples: int = 10  # noise draws per trace (ROME: 10)
    noise_scale: float = 3.0  # noise std in units of the subject embeddings' std (ROME: 3)
    window: int = 3  # MLP / attention restoration window, in layers (ROME: 10 of 48)
    top_k: int = 5  # AND neurons ablated per fact
    n_edits: int = 24
    edit_site: str = "traced"  # where ROME reads the key: "traced" picks the token group whose MLP matters most
    edit_layer: int = -1  # -1: the layer whose MLP has the largest effect at each edit site
    n_patch_pairs: int = 24

    def __post_init__(self) -> None:
        for name in ("n_trace_facts", "samples", "window", "top_k", "n_edits", "n_patch_pairs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.relation not in ("sport", "city", "instrument"):
            raise ValueError(f"relation must be 'sport', 'city' or 'instrument', got {self.relation!r}")
        if self.noise_scale <= 0:
            raise ValueError(f"noise_scale must be positive, got {self.noise_scale}")
        if self.edit_site not in ("traced", *fm.SITES):
            raise ValueError(f"edit_site must be 'traced' or one of {fm.SITES}, got {self.edit_site!r}")
        if self.edit_layer < -1:
            raise ValueError(f"edit_layer must be -1 (automatic) or a layer index, got {self.edit_layer}")

    @classmethod
    def quick(cls) -> "Config":
        return cls(quick_subject=True, n_trace_facts=6, samples=4, window=1, top_k=3, n_edits=6, n_patch_pairs=6)


def run(config: Config) -> Report:
    from models import zoo

    model = zoo.load("facts", quick=config.quick_subject, seed=config.seed)
    corpus = model.corpus
    report = Report("facts", "Facts in MLP neurons: tracing, AND gates and editing", config=asdict(config),
                    summary=__doc__.strip().splitlines()[0])
    if config.edit_layer >= model.cfg.n_layers:
        raise ValueError(f"edit_layer={config.edit_layer} but the model has {model.cfg.n_layers} layers")
    base = _base_template(corpus, config.relation)
    recall = _recall_section(report, model, corpus)
    trace_summary = _tracing_section(report, model, corpus, config, base)
    _patching_section(report, model, corpus, config)
    neuron_summary = neuron_section(report, model, config, base)
    edit_summary = editing_section(report, model, config, edit_sites(config, trace_summary))
    _verdict_section(report, recall, trace_summary, neuron_summary, edit_summary)
    return report


# ----- sections --------------------------------------------------------------------------


def _recall_section(report, model, corpus) -> dict:
    from models.facts_subject import recall

    rows = [{"split": split, "relation": r, "recall": recall(model, corpus.prompts(split, r))}
            for split in ("train", "held_out") for r in corpus.config.relations]
    df = pd.DataFrame(rows)
    train, held = recall(model, corpus.prompts("train")), recall(model, corpus.prompts("held_out"))
    section = report.section("The subject and what it knows", (
        f"The `facts` subject is a {model.cfg.n_layers}-layer transformer (d_model {model.cfg.d_model}, "
        f"{model.cfg.n_heads} heads, d_mlp {model.cfg.d_mlp}, ReLU) trained on {len(corpus.people)} people. "
        f"Each first and each last name is shared by {corpus.config.people_per_name} people and no single name "
        f"determines any attribute, so recalling a fact needs both names. Recall is the share of prompts whose "
        f"greedy next word is the right attribute: **{train:.1%}** on training templates and **{held:.1%}** on "
        f"held-out templates (prefix/pattern combinations never seen in training)."))
    section.table(df, "recall", "Greedy recall per split and relation.")
    report.headline("recall_train", train, "share of training-template prompts answered right")
    report.headline("recall_held_out", held, "share of held-out-template prompts answered right")
    return {"train": train, "held_out": held}


def _base_template(corpus, relation: str):
    """The plain training template that starts with the subject ("{subject} plays the sport of {answer}")."""
    return next(t for t in corpus.templates_for(relation, "train") if t.prefix == "" and t.pattern.startswith("{subject}"))


def _tracing_section(report, model, corpus, config, base) -> dict:
    question = next(t for t in corpus.templates_for(config.relation, "train") if "question" in t.pattern)
    people = corpus.people[: config.n_trace_facts]
    prompts = fm.known(model, [corpus.prompt(p, t) for t in (base, question) for p in people])
    traces = fm.trace_facts(model, prompts, samples=config.samples, window=config.window, seed=config.seed,
                            noise_scale=config.noise_scale)
    groups = average_indirect_effect(traces, by=("kind", "layer", "group"))
    by_group = average_indirect_effect(traces, by=("kind", "group"))
    aligned = traces[traces.template == base.id]
    heat = aligned.groupby(["kind", "layer", "pos", "token"], sort=False)["indirect_effect"].mean().reset_index()
    word_labels = _template_labels(base)
    heat["token"] = [word_labels[p] for p in heat["pos"]]

    def mean_ie(kind, group, layer=None):
        sel = groups[(groups.kind == kind) & (groups.group == group)]
        if layer is not None:
            sel = sel[sel.layer == layer]
        return sel

    mlp_last = mean_ie("mlp", "last subject token")
    peak = mlp_last.loc[mlp_last["mean"].idxmax()]
    attn_last_token = mean_ie("attn", "last token")
    attn_peak = attn_last_token.loc[attn_last_token["mean"].idxmax()]
    attn_subject = mean_ie("attn", "last subject token")["mean"].max()
    resid_last = mean_ie("resid", "last subject token")
    clean, corrupted = traces.groupby("fact")["clean"].first().mean(), traces.groupby("fact")["corrupted"].first().mean()
    section = report.section("Causal tracing: which states carry the fact", (
        f"**Question.** Which hidden states, MLP outputs and attention outputs carry the fact from the subject's "
        f"names to the answer? **How.** ROME's causal tracing (Meng et al. 2022): Gaussian noise of "
        f"{config.noise_scale:g} x the subject-embedding standard deviation is added to the two name tokens "
        f"({config.samples} draws per fact); then one state is restored from the clean run. The indirect effect is "
        f"the restored probability of the right answer minus the corrupted one. MLP and attention outputs are "
        f"restored over a window of {config.window} neighbouring layer(s) (ROME uses 10 of GPT-2 XL's 48). "
        f"{prompts and len(prompts)} known facts were traced ({len({p.person for p in prompts})} people, in the "
        f"templates \"{base.text}\" and \"{question.text}\"). "
        f"**What the numbers say.** The clean run gives the right answer probability {clean:.3f} on average and the "
        f"corrupted run {corrupted:.3f}. Restoring the MLP output at the **last subject token** helps most at layer "
        f"**{int(peak.layer)}** (mean indirect effect {peak['mean']:.3f}, 95% CI {peak.ci_low:.3f} to "
        f"{peak.ci_high:.3f}); the best attention restoration there gives {attn_subject:.3f}. At the **last token**, "
        f"restoring the attention output at layer {int(attn_peak.layer)} gives {attn_peak['mean']:.3f} and the "
        f"MLP output up to {mean_ie('mlp', 'last token')['mean'].max():.3f}. The hidden state at the last subject token "
        f"carries up to {resid_last['mean'].max():.3f} (layer {int(resid_last.loc[resid_last['mean'].idxmax()].layer)})."))
    section.figure(plot_trace_heatmaps(heat, word_labels), "trace_heatmaps",
                   f"Mean indirect effect of restoring each state (layer x token) over {aligned.fact.nunique()} facts "
                   f"in the template \"{base.text}\"; names shown as <first> <last>.")
    section.figure(plot_group_effects(groups), "trace_groups",
                   "Mean indirect effect per component, layer and token group over all traced facts, with 95% "
                   "confidence intervals (mean +- 1.96 standard errors).")
    section.table(by_group.sort_values(["kind", "mean"], ascending=[True, False]), "trace_by_group",
                  "Indirect effect averaged over layers, per component and token group.")
    section.table(groups, "trace_by_layer_group", "Indirect effect per component, layer and token group.", max_rows=20)
    report.headline("trace_mlp_last_subject_peak_layer", int(peak.layer), "layer whose MLP output at the last subject token has the largest indirect effect")
    report.headline("trace_mlp_last_subject_peak_ie", float(peak["mean"]), "its mean indirect effect")
    report.headline("trace_attn_last_subject_max_ie", float(attn_subject), "largest attention indirect effect at the last subject token")
    report.headline("trace_attn_last_token_max_ie", float(attn_peak["mean"]), "largest attention indirect effect at the last token")
    return {"mlp_peak_layer": int(peak.layer), "mlp_peak_ie": float(peak["mean"]), "mlp_peak_ci": (float(peak.ci_low), float(peak.ci_high)),
            "attn_subject_ie": float(attn_subject), "attn_last_ie": float(attn_peak["mean"]),
            "attn_last_layer": int(attn_peak.layer), "gap": clean - corrupted,
            "mlp_last_token_ie": float(mean_ie("mlp", "last token")["mean"].max()),
            "mlp_last_token_layer": int(mean_ie("mlp", "last token").set_index("layer")["mean"].idxmax())}


def _template_labels(template) -> list[str]:
    words = []
    for w in template.text.split("{answer}")[0].split():
        words += ["<first>", "<last>"] if w == "{subject}" else [w]
    return ["<bos>"] + words


def _patching_section(report, model, corpus, config) -> None:
    template = next(t for t in corpus.templates_for(config.relation, "train") if t.prefix == "")
    people = list(corpus.people)
    rng = np.random.default_rng(config.seed)
    pairs = []
    for i in rng.permutation(len(people)):
        a = people[i]
        others = [b for b in people if b.first != a.first and b.last != a.last
                  and b.attribute(config.relation) != a.attribute(config.relation)]
        pairs.append((a, others[int(rng.integers(len(others)))]))
        if len(pairs) == config.n_patch_pairs:
            break
    prompts_a = [corpus.prompt(a, template) for a, _ in pairs]
    prompts_b = [corpus.prompt(b, template) for _, b in pairs]
    df = fm.patch_people(model, prompts_a, prompts_b)
    labels = _template_labels(template)
    df["token"] = [labels[p] for p in df["pos"]]
    layers = df[df.activation == "mlp_out"]
    best_mlp = layers.loc[layers.recovered.idxmax()]
    heads = df[df.activation == "z"].sort_values("recovered", ascending=False).head(5)
    section = report.section("Activation patching: person A into person B", (
        f"**Question.** Which activations carry *who* the prompt is about? **How.** For {len(pairs)} pairs of "
        f"people who share neither name nor {config.relation}, the prompt \"{template.text}\" about B is run with "
        f"one activation (one layer, one position; per head for attention `z`) copied from the run about A. The "
        f"metric is the logit of A's answer minus B's, rescaled so 0 is B's run and 1 is A's "
        f"(batched sweep of `interp.patching`, equal to `transformer_lens.patching`). **What the numbers say.** "
        f"The single MLP output that recovers most is layer {int(best_mlp.layer)} at \"{best_mlp.token}\" "
        f"({best_mlp.recovered:.2f}); the strongest head is L{int(heads.iloc[0].layer)}H{int(heads.iloc[0]['head'])} "
        f"at \"{heads.iloc[0].token}\" ({heads.iloc[0].recovered:.2f})."))
    section.figure(plot_patching(df[df.activation != "z"]), "patching",
                   "Share of the A-vs-B logit difference recovered by patching one activation from A's run into B's.")
    section.table(heads[["layer", "head", "pos", "token", "recovered"]], "patching_top_heads",
                  "Attention heads (z, per position) whose patch recovers most.")
    report.headline("patching_best_mlp_recovered", float(best_mlp.recovered), "largest share recovered by one MLP output")


def _verdict_section(report, recall, trace, neurons, edit) -> None:
    # localised at the subject: the MLP effect there is significant (95% CI above 0), at least a
    # quarter of what the noise destroys (clean - corrupted), and twice attention's there
    mlp_dominates = (trace["mlp_peak_ci"][0] > 0 and trace["mlp_peak_ie"] >= 0.25 * trace["gap"]
                     and trace["mlp_peak_ie"] > 2 * max(trace["attn_subject_ie"], 0.0))
    sites = (neurons["subject"], neurons["last"])
    gates = [s for s in sites if s["and_score"] > 2 * max(abs(s["typical"]), 0.05) and s["promotes"] >= 0.5]
    selective_at = [s for s in sites if s["margin_ratio"] >= 5]
    and_gates, selective = bool(gates), bool(selective_at)
    editable = edit["efficacy"] >= 0.9 and edit["specificity"] >= 0.95
    holds = sum([mlp_dominates, and_gates, selective, editable])
    verdict = {4: "holds", 3: "mostly holds", 2: "partly holds"}.get(holds, "does not hold")

    def where(passing: list[dict]) -> str:
        return f"yes, at the {' and the '.join(s['site'] for s in passing)}" if passing else "no"

    gate_text = "; ".join(f"at the {s['site']} each person's top neuron scores {s['and_score']:.2f} (median neuron "
                          f"{s['typical']:.2f}) and for {s['promotes']:.0%} of people its output direction ranks "
                          f"their attribute first" for s in sites)
    ablation_text = "; ".join(f"at the {s['site']} ablating them lowers the fact's logit margin "
                              f"{s['margin_ratio']:.1f} times as much as other people's ({s['margin_this']:.3f} "
                              f"against {s['margin_other']:.3f}) and the fact stays right in {s['still_right']:.0%} "
                              f"of its prompts" for s in sites)
    lines = [
        f"- **Facts live in MLPs at the subject** — {'yes' if mlp_dominates else 'no'}: restoring the layer-"
        f"{trace['mlp_peak_layer']} MLP output at the last subject token gives an indirect effect of "
        f"{trace['mlp_peak_ie']:.3f} (95% CI {trace['mlp_peak_ci'][0]:.3f} to {trace['mlp_peak_ci'][1]:.3f}; the "
        f"noise costs {trace['gap']:.3f}) against {trace['attn_subject_ie']:.3f} for attention there, while restoring attention at the last token "
        f"gives {trace['attn_last_ie']:.3f} (layer {trace['attn_last_layer']}) and restoring the MLP output at "
        f"the last token {trace['mlp_last_token_ie']:.3f} (layer {trace['mlp_last_token_layer']}).",
        f"- **Neurons act as AND gates on the two names** — {where(gates)}: {gate_text}.",
        f"- **Those neurons carry that fact, selectively** — {where(selective_at)}: {ablation_text}.",
        f"- **A rank-one MLP edit rewrites the fact** — {'yes' if editable else 'no'}: at the {edit['site']} "
        f"(layer {edit['layer']}) efficacy {edit['efficacy']:.0%}, paraphrases {edit['paraphrase']:.0%}, specificity "
        f"{edit['specificity']:.0%} over {edit['n']} edits; at the {edit['other']['site']} (layer "
        f"{edit['other']['layer']}) efficacy {edit['other']['efficacy']:.0%}, specificity "
        f"{edit['other']['specificity']:.0%}.",
    ]
    report.section("Verdict", (
        f"On this model (recall {recall['train']:.0%} on training templates, {recall['held_out']:.0%} held out), "
        f"the seed's picture **{verdict}** ({holds} of 4 checks):\n\n" + "\n".join(lines)))
    report.headline("verdict_checks_passed", holds, "of 4: MLP localisation at the subject, AND gates and "
                    "selective ablation (at either site), editing")
