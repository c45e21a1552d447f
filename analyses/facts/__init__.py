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

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from analyses.facts import measures as fm
from analyses.facts.edits import edit_sites, editing_section
from analyses.facts.neurons import neuron_section
from analyses.facts.plots import plot_group_effects, plot_patching, plot_trace_heatmaps
from analyses.seed_spread import spread_section
from interp.claims import Check, Claim, any_group
from interp.report import Report
from interp.patching import average_indirect_effect


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
    from models.facts_subject import corpus_of

    # the report's clock starts before the zoo may train the subject, so its time includes that training
    report = Report("facts", "Facts in MLP neurons: tracing, AND gates and editing", config=asdict(config),
                    summary=__doc__.strip().splitlines()[0])
    trained_before = len(zoo.TRAINED)
    model = zoo.load("facts", quick=config.quick_subject, seed=config.seed)
    report.subject_training = zoo.TRAINED[trained_before:]
    corpus = corpus_of(model)
    if config.edit_layer >= model.cfg.n_layers:
        raise ValueError(f"edit_layer={config.edit_layer} but the model has {model.cfg.n_layers} layers")
    base = _base_template(corpus, config.relation)
    recall = _recall_section(report, model, corpus)
    trace_summary = _tracing_section(report, model, corpus, config, base)
    _patching_section(report, model, corpus, config)
    neuron_summary = neuron_section(report, model, config, base)
    edit_summary = editing_section(report, model, config, edit_sites(config, trace_summary))
    _verdict_section(report, recall, trace_summary, neuron_summary, edit_summary)
    spread_section(report, config)  # the same figures over training seeds, where `interp spread` measured them
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

    subject_groups = [g for g in SUBJECT_GROUPS if g in set(groups.group)]
    at_subject = {g: subject_group_peak(groups, g) for g in subject_groups}
    peak = at_subject["last subject token"]
    attn_last_token = mean_ie("attn", "last token")
    attn_peak = attn_last_token.loc[attn_last_token["mean"].idxmax()]
    attn_subject = at_subject["last subject token"]["attn_ie"]
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
        f"**{peak['layer']}** (mean indirect effect {peak['mlp_ie']:.3f}, 95% CI {peak['ci'][0]:.3f} to "
        f"{peak['ci'][1]:.3f}); the best attention restoration there gives {attn_subject:.3f}. "
        + "".join(f"At the **{g}** the MLP output helps most at layer {v['layer']} ({v['mlp_ie']:.3f}, 95% CI "
                  f"{v['ci'][0]:.3f} to {v['ci'][1]:.3f}; attention there up to {v['attn_ie']:.3f}). "
                  for g, v in at_subject.items() if g != "last subject token") +
        f"At the **last token**, "
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
    report.headline("trace_mlp_last_subject_peak_layer", peak["layer"], "layer whose MLP output at the last subject token has the largest indirect effect")
    report.headline("trace_mlp_last_subject_peak_ie", peak["mlp_ie"], "its mean indirect effect")
    if "first subject token" in at_subject:
        report.headline("trace_mlp_first_subject_peak_ie", at_subject["first subject token"]["mlp_ie"],
                        "largest MLP indirect effect at the first subject token")
    report.headline("trace_attn_last_subject_max_ie", float(attn_subject), "largest attention indirect effect at the last subject token")
    report.headline("trace_attn_last_token_max_ie", float(attn_peak["mean"]), "largest attention indirect effect at the last token")
    return {"subject_groups": at_subject, "mlp_peak_layer": peak["layer"], "mlp_peak_ie": peak["mlp_ie"],
            "attn_subject_ie": float(attn_subject), "attn_last_ie": float(attn_peak["mean"]),
            "attn_last_layer": int(attn_peak.layer), "gap": clean - corrupted,
            "mlp_last_token_ie": float(mean_ie("mlp", "last token")["mean"].max()),
            "mlp_last_token_layer": int(mean_ie("mlp", "last token").set_index("layer")["mean"].idxmax())}


SUBJECT_GROUPS = ("first subject token", "middle subject tokens", "last subject token")


def subject_group_peak(groups: pd.DataFrame, group: str) -> dict:
    """The layer whose MLP restoration at ``group`` helps most, its effect and CI, and attention's best there."""
    mlp = groups[(groups.kind == "mlp") & (groups.group == group)]
    attn = groups[(groups.kind == "attn") & (groups.group == group)]
    best = mlp.loc[mlp["mean"].idxmax()]
    return {"layer": int(best.layer), "mlp_ie": float(best["mean"]), "ci": (float(best.ci_low), float(best.ci_high)),
            "attn_ie": float(attn["mean"].max()) if len(attn) else 0.0}


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


# The rules behind the verdict, stated once; the report prints them beside each verdict.
LOCALISED_CI_LOW = 0.0  # the MLP effect's 95% CI lies above this
LOCALISED_SHARE_OF_GAP = 0.25  # ... and it restores at least this share of what the noise destroys
LOCALISED_OVER_ATTENTION = 2.0  # ... and it is this many times attention's best at the same tokens
AND_OVER_TYPICAL = 2.0  # top neuron's AND score over max(|median neuron|, AND_FLOOR)
AND_FLOOR = 0.05
AND_PROMOTES = 0.5  # share of people whose top neuron's DLA ranks their attribute first
BROKEN_STILL_RIGHT = 0.5  # ablation breaks a fact: at most this share of its prompts still right
SELECTIVE_MARGIN_RATIO = 5.0  # ... and its margin drops this many times as much as other people's
EDIT_EFFICACY, EDIT_SPECIFICITY = 0.9, 0.95


def ratio(a: float, b: float) -> float:
    """``a / b``, infinite where only ``b`` is not positive and ``a`` is, NaN where neither is."""
    return a / b if b > 0 else math.inf if a > 0 else math.nan


def mlp_localisation_claim(subject_groups: dict, gap: float) -> Claim:
    """"Facts live in MLPs at the subject", holding at any subject token group whose MLP peak (``mlp_ie``,
    its ``ci``, and attention's ``attn_ie`` there) clears the three localisation rules; ``gap``: what the
    noise costs. The toy's and SmolLM2's verdicts share it."""
    return any_group("Facts live in MLPs at the subject", "MLP localisation at a subject token group", {
        group: (Check("MLP indirect effect 95% CI low", v["ci"][0], ">", LOCALISED_CI_LOW),
                Check("MLP effect / noise cost", ratio(v["mlp_ie"], gap), ">=", LOCALISED_SHARE_OF_GAP),
                Check("MLP effect / attention's there", ratio(v["mlp_ie"], max(v["attn_ie"], 0.0)), ">",
                      LOCALISED_OVER_ATTENTION))
        for group, v in subject_groups.items()})


def fact_claims(trace: dict, neurons: dict, edit: dict) -> list[Claim]:
    """The four checks of the seed's picture, each decided by its stated rule from the measured numbers."""
    localised = mlp_localisation_claim(trace["subject_groups"], trace["gap"])
    sites = (neurons["subject"], neurons["last"])
    gates = any_group("Neurons act as AND gates on the two names", "AND gate", {
        s["site"]: (Check("top neuron's AND score / max(|median neuron|, 0.05)",
                          s["and_score"] / max(abs(s["typical"]), AND_FLOOR), ">", AND_OVER_TYPICAL),
                    Check("share whose top neuron ranks their attribute first", s["promotes"], ">=", AND_PROMOTES,
                          fmt=".0%"))
        for s in sites})
    carries = any_group("Ablating those neurons breaks that fact, and mostly that fact", "ablation breaks the fact", {
        s["site"]: (Check("share of the fact's prompts still right after ablation", s["still_right"], "<=",
                          BROKEN_STILL_RIGHT, fmt=".0%"),
                    Check("margin-drop ratio (this fact / other people's)", s["margin_drop_ratio"], ">=",
                          SELECTIVE_MARGIN_RATIO, fmt=".3g"))
        for s in sites})
    editable = Claim("A rank-one MLP edit rewrites the fact", "ROME edit works", (
        Check(f"efficacy at the {edit['site']}", edit["efficacy"], ">=", EDIT_EFFICACY, fmt=".1%"),
        Check(f"specificity at the {edit['site']}", edit["specificity"], ">=", EDIT_SPECIFICITY, fmt=".1%")))
    return [localised, gates, carries, editable]


def _verdict_section(report, recall, trace, neurons, edit) -> None:
    claims = fact_claims(trace, neurons, edit)
    holds = sum(c.holds for c in claims)
    verdict = {4: "holds", 3: "mostly holds", 2: "partly holds"}.get(holds, "does not hold")
    sites = (neurons["subject"], neurons["last"])
    groups = trace["subject_groups"]
    trace_text = ("; ".join(f"at the {g} the best MLP restoration (layer {v['layer']}) gives {v['mlp_ie']:.3f} "
                            f"(95% CI {v['ci'][0]:.3f} to {v['ci'][1]:.3f}) against {v['attn_ie']:.3f} for attention"
                            for g, v in groups.items())
                  + f". The noise costs {trace['gap']:.3f}; at the last token attention restores "
                    f"{trace['attn_last_ie']:.3f} (layer {trace['attn_last_layer']}) and the MLP output "
                    f"{trace['mlp_last_token_ie']:.3f} (layer {trace['mlp_last_token_layer']}).")
    gate_text = "; ".join(f"at the {s['site']} each person's top neuron scores {s['and_score']:.2f} (median neuron "
                          f"{s['typical']:.2f}) and for {s['promotes']:.0%} of people its output direction ranks "
                          f"their attribute first" for s in sites) + "."
    ablation_text = "; ".join(f"at the {s['site']} the fact's logit margin ({s['margin_before']:.2f} before) drops "
                              f"{s['margin_this']:.3f} against {s['margin_other']:.3f} for other people's facts, its "
                              f"probability by {s['drop_this']:.4f}, and the fact stays right in "
                              f"{s['still_right']:.0%} of its prompts" for s in sites) + "."
    edit_text = (f"At the {edit['site']} (layer {edit['layer']}): paraphrases {edit['paraphrase']:.1%} over "
                 f"{edit['n']} edits; at the {edit['other']['site']} (layer {edit['other']['layer']}) efficacy "
                 f"{edit['other']['efficacy']:.1%}, specificity {edit['other']['specificity']:.1%}.")
    lines = [claim.markdown(text) for claim, text in zip(claims, (trace_text, gate_text, ablation_text, edit_text))]
    section = report.section("Verdict", (
        f"On this model (recall {recall['train']:.0%} on training templates, {recall['held_out']:.0%} held out), "
        f"the seed's picture **{verdict}** ({holds} of 4 checks). Each verdict is decided by the rule printed beside "
        f"it, from the numbers it names:\n\n" + "\n".join(lines)))
    section.table(pd.DataFrame([c.row() for c in claims]), "verdict_rules",
                  "Each claim, its verdict, the rule and the numbers it used.")
    report.headline("verdict_checks_passed", holds, "of 4: MLP localisation at a subject token, AND gates and "
                    "ablation that breaks the fact (at either site), editing")
