"""The ROME-edits section of the facts_lm report: edits of facts SmolLM2 knows, scored as CounterFact scores them.

Example::

    from models import zoo
    from models.data.known_facts import FACTS
    from analyses.facts_lm.known import known_facts
    from analyses.facts_lm.edits import EditSettings, counterfact_scores, edit_facts, summarise_scores

    model = zoo.load("smollm2")
    run = edit_facts(model, known_facts(model, FACTS), layer=4, n_edits=10, seed=0,
                     settings=EditSettings.quick())
    summarise_scores(counterfact_scores(run.prompts))   # ES PS NS EM PM NM, edited and unedited

The parts, each importable from here as well:

- :mod:`analyses.facts_lm.counterfact`: the protocol (Meng et al. 2022, sec. 3): :class:`EditSettings`
  beside ROME's GPT-2 XL setting, and which fact is rewritten to which object (:func:`plan_edits`);
- :mod:`analyses.facts_lm.edit_inputs`: the key covariance over news text shipped with gensim and the
  context prefixes sampled from the model;
- :mod:`analyses.facts_lm.edit_runs`: ``k*``, ``v*`` and the rank-one update of each edit, applied alone,
  measured on the unedited and edited model, and undone (:func:`edit_facts`, :func:`rome_edit`);
- :mod:`analyses.facts_lm.edit_scores`: CounterFact's ES PS NS EM PM NM (their Table 4), summaries with
  95% intervals, and ROME's published GPT-2 XL numbers;
- here: the section's text and tables; its figure is :func:`analyses.facts_lm.plots.plot_scores`.
"""

import time
from typing import Any, Mapping

import numpy as np
import pandas as pd

from analyses.facts_lm.counterfact import Edit, EditSettings, counterfactual_object, plan_edits
from analyses.facts_lm.edit_inputs import (COVARIANCE_TEXT, context_prefixes, covariance_text, covariance_tokens,
                                           edit_covariance)
from analyses.facts_lm.edit_runs import EditRun, edit_facts, rome_edit
from analyses.facts_lm.edit_scores import (ROME_GPT2_XL, ROME_GPT2_XL_UNEDITED, ROME_SOURCE, SCORES, counterfact_scores,
                                           mean_interval, neighbours_kept, summarise_scores)
from analyses.facts_lm.plots import plot_scores
from models.data.known_facts import RELATIONS, Relation

__all__ = [  # the section, and every public name of the parts that was importable from here before the split
    "COVARIANCE_TEXT", "Edit", "EditRun", "EditSettings", "ROME_GPT2_XL", "ROME_GPT2_XL_UNEDITED", "ROME_SOURCE",
    "SCORES", "context_prefixes", "counterfact_scores", "counterfactual_object", "covariance_text", "covariance_tokens",
    "edit_covariance", "edit_facts", "edit_section", "mean_interval", "neighbours_kept", "plan_edits", "plot_scores",
    "reference_table", "rome_edit", "scores_by_relation", "summarise_scores",
]


def scores_by_relation(run: "EditRun") -> pd.DataFrame:
    """Per relation: edits, mean ES / PS / NS and neighbours kept (fractions), and the update's mean share
    at the subject of the edit prompts, the paraphrases and the neighbours."""
    scores = counterfact_scores(run.prompts)
    scores = scores[scores.condition == "edited"].merge(run.edits[["relation", "neighbours_kept"]],
                                                       left_on="edit", right_index=True)
    table = scores.groupby("relation")[["ES", "PS", "NS", "neighbours_kept"]].mean()
    table.insert(0, "edits", scores.groupby("relation").size())
    edited_prompts = run.prompts[run.prompts.condition == "edited"]
    shares = edited_prompts.pivot_table(index="relation", columns="kind", values="update_share", aggfunc="mean")
    table = table.join(shares.rename(columns=lambda kind: f"update_share_{kind}"))
    return table.reset_index()


def reference_table(summary: pd.DataFrame, model_name: str = "SmolLM2-135M") -> pd.DataFrame:
    """The scores beside ROME's published GPT-2 XL ones (blank where the source gave none)."""
    wide = []
    for score in SCORES:
        row = {"score": score}
        for condition in ("unedited", "edited"):
            r = summary[(summary.score == score) & (summary.condition == condition)].iloc[0]
            label = f"{model_name} {'+ ROME' if condition == 'edited' else 'unedited'}"
            row[label] = f"{r['mean']:.1f} [{r['low']:.1f}, {r['high']:.1f}]"
        row["GPT-2 XL + ROME (Meng et al. 2022)"] = ROME_GPT2_XL.get(score, "")
        wide.append(row)
    return pd.DataFrame(wide)


def edit_section(report: Any, model: Any, known_table: pd.DataFrame, layer: int, *, n_edits: int = 50, seed: int = 0,
                 settings: EditSettings = EditSettings(), relations: Mapping[str, Relation] = RELATIONS) -> dict:
    """ROME edits at ``layer`` of the known facts in ``known_table`` (as :func:`known_facts` returns it),
    as a report section.

    Returns the headline numbers, fractions (not %): ``efficacy`` (ES: share of edits whose new
    object beats the old on the edit prompt), ``paraphrase`` (PS), ``specificity`` (NS: share of
    neighbourhood prompts keeping their own object above the new one, mean over edits) and
    ``efficacy_magnitude`` / ``paraphrase_magnitude`` / ``specificity_magnitude`` (EM, PM, NM),
    each with ``_low`` / ``_high`` (95% interval over edits) and ``baseline_`` (the unedited
    model's value); ``paraphrase_subject_first`` / ``_inside`` (PS over the paraphrases whose
    subject is / is not the prompt's first token); ``p_new_at_value`` (mean P(new) that ``v*``
    itself reached, before the rank-one update carries it); ``layer``, ``n_edits``,
    ``relations`` (how many were edited), ``seconds``; ``update_share_edit`` / ``_neighbour`` /
    ``_paraphrase_first`` / ``_paraphrase_inside``: the mean share of the update each kind of prompt
    receives at its subject (``k^T C^-1 k* / k*^T C^-1 k*``); ``neighbours_kept`` (with ``_low`` /
    ``_high``): the share of neighbourhood prompts whose most likely next token the edit left
    unchanged, mean over edits (the toy ``facts`` analysis's specificity; not one of ROME's).
    """
    tic = time.perf_counter()
    run = edit_facts(model, known_table, layer, n_edits=n_edits, seed=seed, settings=settings, relations=relations)
    seconds = time.perf_counter() - tic
    scores = counterfact_scores(run.prompts)
    summary = summarise_scores(scores)
    names = {"ES": "efficacy", "PS": "paraphrase", "NS": "specificity", "EM": "efficacy_magnitude",
             "PM": "paraphrase_magnitude", "NM": "specificity_magnitude"}
    out: dict = {"layer": layer, "n_edits": len(run.edits), "relations": int(run.edits.relation.nunique()),
                 "seconds": seconds, "p_new_at_value": float(run.edits.p_new_at_value.mean())}
    for score, name in names.items():
        mine = summary[(summary.score == score) & (summary.condition == "edited")].iloc[0]
        base = summary[(summary.score == score) & (summary.condition == "unedited")].iloc[0]
        out.update({name: float(mine["mean"]) / 100, f"{name}_low": float(mine["low"]) / 100,
                    f"{name}_high": float(mine["high"]) / 100, f"baseline_{name}": float(base["mean"]) / 100})
    kept = mean_interval(run.edits.neighbours_kept.tolist(), lower=0.0, upper=1.0)
    out.update(neighbours_kept=kept[0], neighbours_kept_low=kept[1], neighbours_kept_high=kept[2])
    paraphrases = run.prompts[(run.prompts.condition == "edited") & (run.prompts.kind == "paraphrase")]
    for where, first in (("first", True), ("inside", False)):
        sub = paraphrases[paraphrases.subject_first == first]
        out[f"paraphrase_subject_{where}"] = float((sub.p_new > sub.p_true).mean()) if len(sub) else np.nan
        out[f"update_share_paraphrase_{where}"] = float(sub.update_share.mean()) if len(sub) else np.nan
    for kind in ("edit", "neighbour"):
        sub = run.prompts[(run.prompts.condition == "edited") & (run.prompts.kind == kind)]
        out[f"update_share_{kind}"] = float(sub.update_share.mean())
    section = report.section(f"Editing facts with ROME (layer {layer})", _section_text(out, run, settings))
    section.table(reference_table(summary), "edit_scores",
                  f"CounterFact's scores in % (mean over {out['n_edits']} edits [95% interval]: Wilson's for ES, "
                  f"Student's t for the others), unedited and edited, beside {ROME_SOURCE}; blank where that "
                  "source gives no number.")
    section.figure(plot_scores(summary), "edit_scores",
                   "Scores unedited (grey) and after each edit (blue), 95% intervals over edits; diamonds: ROME on "
                   "GPT-2 XL (Meng et al. 2022, Table 4).")
    section.table(scores_by_relation(run), "edit_scores_by_relation",
                  "Per relation, mean over its edits (fractions): the scores, the share of neighbourhood prompts "
                  "keeping their most likely token, and how much of the update reaches each kind of prompt at its "
                  "subject's last token (`k C^-1 k* / k* C^-1 k*`).")
    section.table(run.edits, "edits", "One row per edit (each applied alone and undone): probabilities of the new "
                  "and old objects' first tokens on the edit prompt before and after, the edit's paraphrase and "
                  "neighbourhood scores, the v* optimisation (steps, P(new) it reached) and the update's norm.",
                  max_rows=15)
    section.table(run.generations, "edit_generations", "Greedy continuations before and after an edit, the "
                  "held-out paraphrase and an open prompt; whether the new / old object appears in the edited text.")
    for score in ("ES", "PS", "NS"):
        name = names[score]
        report.headline(f"edit_{name}_score", out[name], f"ROME's {score} at layer {layer}, mean over "
                        f"{out['n_edits']} edits (unedited: {out[f'baseline_{name}']:.3f})")
    report.headline("edit_layer", layer, "MLP layer the ROME edits rewrite")
    return out


def _by_position(out: dict) -> str:
    """PS and the update's reach for paraphrases with the subject first (SmolLM2 has no BOS) and inside."""
    parts = [f"subject {where} (update share {out[f'update_share_paraphrase_{where}']:.2f}): PS "
             f"{100 * out[f'paraphrase_subject_{where}']:.1f}%"
             for where in ("first", "inside") if not np.isnan(out[f"paraphrase_subject_{where}"])]
    return ("Paraphrases with the " + "; with the ".join(parts) + " (SmolLM2 adds no BOS token, so a prompt "
            "that opens with the subject has it at position 0).") if parts else ""


def _section_text(out: dict, run: EditRun, settings: EditSettings) -> str:
    t = run.seconds

    def pct(name: str) -> str:
        return f"{100 * out[name]:.1f}% [{100 * out[name + '_low']:.1f}, {100 * out[name + '_high']:.1f}]"

    return (
        f"**Question.** Does ROME's rank-one edit of one MLP rewrite a fact SmolLM2 knows, generalise to paraphrases "
        f"and leave other subjects alone, as it did for GPT-2 XL? **How.** {out['n_edits']} CounterFact-style edits "
        f"over {out['relations']} relations, each a known fact rewritten to another object of its relation (a single "
        f"token, first token unlike the old one's), applied alone at layer {out['layer']} and undone. The key "
        f"covariance comes from {settings.covariance_tokens:,} tokens of news text shipped with gensim "
        f"(`{COVARIANCE_TEXT}`, chunks of {settings.chunk}, each chunk's first {settings.skip} position(s) left out); "
        f"`k*` averages the subject's last-token key over the bare prompt and {settings.n_contexts} prefixes sampled "
        f"from the model; `v*` is optimised ({settings.steps} Adam steps at most, lr {settings.lr}, stopping at "
        f"P(new) > {settings.target_probability}) on the bare prompt and {settings.n_value_contexts - 1} prefixed "
        f"ones, with the essence KL term (weight {settings.kl_weight}) on a prefixed `{{subject}} is a`. Scores as "
        f"ROME's Table 4 (probabilities of first tokens): ES, P(new) > P(old) on the edit prompt; PS, the same on "
        f"the relation's other templates (the held-out one included); NS, P(own object) > P(new) on "
        f"{settings.n_neighbours} other known subjects of the relation; EM, PM, NM the mean differences. "
        f"**What the numbers say.** Edited: ES {pct('efficacy')}, PS {pct('paraphrase')}, NS {pct('specificity')} "
        f"(unedited: ES {100 * out['baseline_efficacy']:.1f}%, PS {100 * out['baseline_paraphrase']:.1f}%, NS "
        f"{100 * out['baseline_specificity']:.1f}%; the neighbours are facts the model knows, so NS starts near "
        f"100%; CounterFact's neighbours were not chosen that way). Stricter than NS: the neighbourhood "
        f"prompts whose most likely next token the edit left unchanged, {pct('neighbours_kept')}. The update "
        f"reaches a prompt in proportion to its subject key's `k C^-1 k* / k* C^-1 k*` (1 for `k*` itself): on "
        f"average {out['update_share_edit']:.2f} on the edit prompts, {out['update_share_neighbour']:.2f} on the "
        f"neighbours. {_by_position(out)} "
        f"**What differs from ROME.** A 4-bit quantised 135M model (30 layers) instead of GPT-2 XL (48); "
        f"{settings.covariance_tokens:,} tokens of news text for the covariance instead of 100,000 Wikipedia "
        f"articles; {settings.n_contexts} context prefixes instead of 20, {settings.n_value_contexts} rewriting "
        f"prompts in `v*` instead of 21; hand-written facts and templates instead of CounterFact; no fluency (GE) or "
        f"consistency (RS) score, only the generations below. Time: covariance {t['covariance']:.0f} s, keys and "
        f"values {t['keys_and_values']:.0f} s, scoring {t['scoring']:.0f} s, generation {t['generation']:.0f} s.")
