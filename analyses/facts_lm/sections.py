"""The facts_lm report's first sections: which facts the model knows, ROME's causal tracing, the logit lens."""

import numpy as np
import pandas as pd

from analyses.facts.plots import KIND_NAMES
from analyses.facts import subject_group_peak
from analyses.facts_lm import plots
from analyses.facts_lm.trace import SUBJECT_GROUPS, choose, lens, lens_layers, noise_std, peaks, rome_groups, trace_facts
from interp import show
from interp.patching import average_indirect_effect
from interp.report import Report
from models.data.known_facts import RELATIONS


def known_section(report: Report, table: pd.DataFrame) -> None:
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


def tracing_section(report: Report, model, known: pd.DataFrame, config) -> dict:
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
                   interactive=example_trace_views(first, labels, span))
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


def example_trace_views(trace: pd.DataFrame, labels: list[str], span: tuple[int, int]) -> list:
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


def lens_section(report: Report, model, known: pd.DataFrame, trace: dict) -> dict:
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
