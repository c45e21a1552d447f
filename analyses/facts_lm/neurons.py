"""The AND-gate section of the facts_lm report: do MLP neurons at the last subject token fire for "First Last" only?

Example::

    from analyses.facts_lm.neurons import neuron_section

    summary = neuron_section(report, model, known_table, layers=[2, 3, 4, 5, 6], quick=True)
    summary["and_minus_decoy"], summary["and_minus_decoy_ci"]   # the top neuron's lead over a made-up name

The parts, each importable from here as well: :mod:`analyses.facts_lm.and_gates` finds each
fact's AND-gate neurons (scores in the neuron's standard deviations, made-up-name decoys,
direct logit attribution); :mod:`analyses.facts_lm.and_ablation` ablates them against random
neurons; here, :func:`neuron_summary` turns both into the headline numbers with 95% intervals,
and :func:`neuron_section` writes the text and tables; the figure is
:func:`analyses.facts_lm.plots.plot_neurons`.
"""

from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from analyses.facts_lm.and_ablation import GROUPS, ablate, answer_margins, per_fact, random_neurons
from analyses.facts_lm.and_gates import (and_gate_scores, and_neuron_table, decoy_facts, family_facts, partners,
                                         subject_activations)
from analyses.facts_lm.plots import plot_neurons
from interp.intervals import normal_interval, share_interval

__all__ = [  # the section, and every public name of the parts that was importable from here before the split
    "GROUPS", "HEADLINES", "ablate", "and_gate_scores", "and_neuron_table", "answer_margins", "decoy_facts",
    "family_facts", "neuron_section", "neuron_summary", "partners", "per_fact", "plot_neurons", "random_neurons",
    "subject_activations",
]

HEADLINES = {  # summary key -> what the report's headline says
    "and_score": "a fact's top AND neuron's score, in the neuron's standard deviations",
    "and_minus_decoy": "its lead over the top score for a made-up name of the same first name",
    "promotes": "share of facts whose top AND neuron's DLA ranks the object first in its relation",
    "margin_drop_this": "drop in a fact's logit margin when its top AND neurons are mean-ablated",
    "margin_drop_random": "the same for as many random neurons in the same layers",
    "still_right": "share of facts still answered after ablating their top AND neurons",
}


def neuron_summary(table: pd.DataFrame, decoys: pd.DataFrame, ablation: pd.DataFrame) -> dict:
    """Headline numbers, each a mean over facts with its 95% interval as ``key_ci`` (see ``neuron_section``)."""
    top, decoy_top = table[table["rank"] == 1], decoys[decoys["rank"] == 1]
    out: dict[str, Any] = {"n_facts": len(top)}

    def put(key, values, interval=normal_interval):
        mean, low, high = interval(values)
        out[key], out[f"{key}_ci"] = mean, (low, high)

    put("and_score", top.and_score)
    put("typical", top.median_score)
    put("and_score_decoy", decoy_top.and_score)
    put("and_minus_decoy", top.and_score.to_numpy() - decoy_top.and_score.to_numpy())
    put("act_both", top.act_both)
    put("act_partner", np.maximum(top.act_first_only, top.act_last_only))
    put("promotes", top.dla_rank_in_relation == 1, share_interval)
    out["promotes_chance"] = float((1 / top.n_relation_objects).mean())
    put("dla_rank_in_relation", top.dla_rank_in_relation)
    facts = per_fact(ablation)
    for group, tag in (("this fact", "this"), ("shares a name", "namesake"), ("other facts", "other"),
                       ("random neurons, this fact", "random")):
        rows = facts[facts.group == group]
        if len(rows):
            put(f"margin_drop_{tag}", rows.margin_drop)
            put(f"abs_margin_change_{tag}", rows.abs_margin_change)
            put(f"p_drop_{tag}", rows.p_drop)
    this = facts[facts.group == "this fact"]
    put("margin_before", this.margin_before)
    out["share_of_margin"] = float(this.margin_drop.mean() / this.margin_before.mean())
    put("still_right", this.still_right, share_interval)
    return out

def neuron_section(report: Any, model: Any, known_table: pd.DataFrame, layers: Optional[Sequence[int]] = None, *,
                   top_k: int = 5, seed: int = 0, quick: bool = False, max_facts: Optional[int] = None,
                   n_partners: Optional[int] = None, n_others: Optional[int] = None, n_draws: Optional[int] = None
                   ) -> dict:
    """Add the AND-gate section to ``report``; return the headline numbers (``neuron_summary``).

    ``layers`` (default: all but the last, whose output at the subject never reaches the last token) are
    searched; ``quick`` runs the 11 best-paired facts with 4 partners a side, 4 other facts per ablation and
    2 random draws (the full run: every known family fact, 6 partners, 10 others, 3 draws).

    Keys (each mean over facts, with ``<key>_ci`` its 95% interval as (low, high), unless said):
    ``n_facts``; ``layers``, ``top_k`` (the settings); ``and_score`` the top neuron's AND score in units of the
    neuron's standard deviation; ``typical`` the median neuron's; ``and_score_decoy`` the top neuron's for a
    made-up name of the same first name ("Tom Williams", the null); ``and_minus_decoy`` their paired difference;
    ``act_both`` / ``act_partner`` the top neuron's raw activation for the full name / the larger partner mean;
    ``promotes`` the share (Wilson interval) of facts whose top neuron's DLA ranks the object first among its
    relation's objects, ``promotes_chance`` (no interval) what chance gives; ``dla_rank_in_relation``; for
    ablating a fact's ``top_k`` AND neurons, ``margin_drop_<g>``, ``abs_margin_change_<g>``, ``p_drop_<g>`` for
    g = ``this`` (the fact), ``namesake`` (facts of people sharing a name), ``other`` (other facts), ``random``
    (as many random neurons per layer, on the fact); ``margin_before``; ``share_of_margin`` (mean drop / mean
    margin, no interval); ``still_right`` (share of facts still answered after ablation, Wilson interval).
    """
    layers = list(range(model.cfg.n_layers - 1)) if layers is None else sorted(int(l) for l in layers)
    max_facts = max_facts if max_facts is not None else (11 if quick else None)
    n_partners = n_partners or (4 if quick else 6)
    n_others = n_others if n_others is not None else (4 if quick else 10)
    n_draws = n_draws or (2 if quick else 3)
    facts = family_facts(known_table, max_facts)
    if len(facts) < 2:
        report.section("AND-gate neurons", f"Only {len(facts)} known facts about people sharing a name; nothing to "
                       "measure.")
        return {"n_facts": len(facts), "layers": layers, "top_k": top_k}
    scores, acts = and_gate_scores(model, facts, layers, n_partners, seed)
    decoys = decoy_facts(facts, seed)
    decoy_scores, decoy_acts = and_gate_scores(model, decoys, layers, n_partners, seed, std=acts["std"])
    table = and_neuron_table(model, facts, scores, acts, top_k)
    decoy_table = and_neuron_table(model, decoys, decoy_scores, decoy_acts, top_k)
    controls = random_neurons(table, model.cfg.d_mlp, n_draws, seed)
    ablation = ablate(model, facts, table, acts, controls, n_others, seed)
    s = neuron_summary(table, decoy_table, ablation)
    s.update(layers=layers, top_k=top_k)
    _write_section(report, s, facts, table, ablation, decoy_table, n_partners)
    for key, meaning in HEADLINES.items():
        low, high = s[f"{key}_ci"]
        report.headline(f"neurons_{key}", s[key], f"{meaning} (95% CI {low:.3g} to {high:.3g})")
    return s


def _fmt(s: dict, key: str, spec: str = ".2f") -> str:
    low, high = s[f"{key}_ci"]
    return f"{s[key]:{spec}} (95% CI {low:{spec}} to {high:{spec}})"


def _write_section(report: Any, s: dict, facts: pd.DataFrame, table: pd.DataFrame, ablation: pd.DataFrame,
                   decoy_table: pd.DataFrame, n_partners: int) -> None:
    layers = s["layers"]
    span = f"{layers[0]}-{layers[-1]}" if layers == list(range(layers[0], layers[-1] + 1)) else str(layers)
    exist = s["and_minus_decoy_ci"][0] > 0
    carries = s["margin_drop_this_ci"][0] > 0 and s["margin_drop_this_ci"][0] > s["margin_drop_random_ci"][1]
    touches = s["abs_margin_change_this_ci"][0] > s["abs_margin_change_random_ci"][1]
    text = (
        f"**Question.** Does SmolLM2 hold, for a person it knows, an MLP neuron that fires for the full name but not "
        f"for either name beside another, and does that neuron carry the fact? **How.** {s['n_facts']} known facts "
        f"about people who share a first or last name with another person in the data (Tom Hanks, Tom Cruise; Boris "
        f"Johnson, Magic Johnson). For each, the main-template prompt is run with the person's name and, in the same "
        f"template, with up to {n_partners} names sharing only the first name and {n_partners} sharing only the last "
        f"(real people first, then swaps such as \"Tom Williams\"); every neuron of layers {span} is read at the last "
        f"subject token. A neuron's AND score is `and_gate_score` (full name minus the larger partner mean) divided "
        f"by its standard deviation over all these prompts, so that layers compare. The null is the same search for "
        f"a made-up name of the same first name (\"decoy\"): the best of thousands of neurons always scores high, so "
        f"only a margin over the decoy counts. Direct logit attribution reads each neuron's `W_out` row through the "
        f"final RMSNorm's gain and `W_U` (its 1/rms left out: it scales every token alike). Ablation sets a fact's "
        f"top {s['top_k']} AND neurons to their mean over the partner prompts, at the last subject token only, and "
        f"measures the object's logit margin (its logit minus the best other token's) on the fact, on facts of "
        f"people sharing a name, on other facts, and against as many random neurons in the same layers.\n\n"
        f"**What the numbers say.** A fact's top AND neuron scores {_fmt(s, 'and_score')} standard deviations (the "
        f"median neuron {s['typical']:.2f}); its raw activation is {s['act_both']:.2f} for the full name against "
        f"{s['act_partner']:.2f} for the better partner group. But a made-up name's top neuron scores "
        f"{_fmt(s, 'and_score_decoy')}; the real person's lead is {_fmt(s, 'and_minus_decoy')}. "
        + ("AND-like neurons stand out for people the model knows, beyond what any name pair draws. " if exist else
           ("That interval reaches zero" if s["and_minus_decoy_ci"][1] >= 0 else "That interval lies below zero")
           + ": AND-like neurons turn up for made-up names too, so these are not shown to be "
           "specific to people the model knows. ")
        + ("Their output rows write the object more often than chance" if s["promotes_ci"][0] > s["promotes_chance"]
           else "Their output rows do not write the object more often than chance")
        + f": the top neuron ranks the object first among its relation's objects for {_fmt(s, 'promotes', '.0%')} of "
        f"facts (chance {s['promotes_chance']:.0%}). Ablating a fact's "
        f"top {s['top_k']} lowers its margin by {_fmt(s, 'margin_drop_this', '.3f')} of {s['margin_before']:.2f} "
        f"({s['share_of_margin']:.0%}), against {_fmt(s, 'margin_drop_random', '.3f')} for random neurons, "
        f"{_fmt(s, 'margin_drop_namesake', '.3f')} for namesakes' facts and {_fmt(s, 'margin_drop_other', '.3f')} "
        f"for other facts; the margin moves by {_fmt(s, 'abs_margin_change_this', '.3f')} in either direction "
        f"(random neurons: {_fmt(s, 'abs_margin_change_random', '.4f')}), and {_fmt(s, 'still_right', '.0%')} of "
        f"facts stay right. "
        + ("These neurons carry a measurable part of their fact, more than random ones." if carries else
           ("These neurons move their fact more than random neurons do (the intervals of the absolute change do not "
            "overlap) but do not carry it: " if touches else "These neurons neither move nor carry their fact more "
            "than random neurons: ")
           + "the interval of the signed drop is not above zero and the random control's.")
    )
    section = report.section("AND-gate neurons", text)
    top = table[table["rank"] == 1].merge(
        per_fact(ablation).query("group == 'this fact'")[["ablated", "margin_before", "margin_drop"]],
        left_on="subject", right_on="ablated").drop(columns="ablated")
    columns = ["subject", "relation", "object", "layer", "neuron", "and_score", "act_both", "act_first_only",
               "act_last_only", "dla", "dla_rank_in_relation", "margin_before", "margin_drop"]
    section.table(top.sort_values("and_score", ascending=False)[columns], "and_neurons",
                  f"Each fact's top AND neuron: AND score (standard deviations), raw activation for the full name and "
                  f"the mean for partners sharing only the first / only the last name, DLA to the object (per unit "
                  f"activation) and the object's rank by it among the relation's objects, and the fact's logit margin "
                  f"and its drop when its top {s['top_k']} AND neurons are ablated.", max_rows=20)
    groups = per_fact(ablation).groupby("group", sort=False).mean(numeric_only=True).reset_index()
    section.table(groups, "and_ablation", "Ablation, per group: each measure averaged within an ablated fact, then "
                  "over facts.")
    section.figure(plot_neurons(table, decoy_table, ablation), "and_neurons",
                   "Left: each fact's top AND score, the top score for a made-up name of the same first name, and the "
                   "median neuron's. Right: drop in the object's logit margin when a fact's top AND neurons are "
                   "mean-ablated, per evaluated group, and for random neurons (bars: mean with 95% interval over "
                   "facts; dots: facts).")
