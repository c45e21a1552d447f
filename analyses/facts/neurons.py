"""AND-gate neurons of the facts subject at two sites, their logit attribution and ablation, and the report section.

Example::

    from models import zoo
    from analyses.facts.neurons import and_gate_scores, and_gate_table

    model = zoo.load("facts", quick=True)
    scores, grid = and_gate_scores(model)                      # at the last name of "first last"
    table = and_gate_table(model, scores, grid, "sport", top_k=3)

The seed (part 8) pictures a neuron that fires only for "first name Michael AND last name
Jordan" and writes "basketball". Such a neuron can sit wherever both names are in view:
at the last subject token (where ROME finds GPT's lookup) or at the last token of a
prompt, after attention has gathered both names there (where the facts subject looks
its facts up). Both are measured the same way.
"""

import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from analyses.facts.measures import SITES
from analyses.facts.plots import plot_ablation, plot_and_gates
from interp.neurons import (ablation_hooks, and_gate_score, mlp_activations, neuron_logit_attribution,
                            top_activating)
from models.data.facts import Template
from models.facts_subject import answer_ids, corpus_of, last_positions, prompt_tokens


def name_grid_activations(model, template: Template | None = None) -> tuple[Tensor, list[str], list[str]]:
    """MLP activations for every (first, last) pair of names: ``[first last layer d_mlp]``.

    Without ``template``: the names alone ("<bos> first last"), at the last name. With one:
    the template's prompt about "first last", at its last token.
    """
    corpus = corpus_of(model)
    firsts, lasts = corpus.first_names(), corpus.last_names()
    names = [f"{f} {l}" for f in firsts for l in lasts]
    texts = names if template is None else [template.text.split("{answer}")[0].replace("{subject}", n).strip()
                                            for n in names]
    tokens = model.tokenizer.to_tokens(texts)
    acts = mlp_activations(model, tokens, torch.full((len(tokens),), tokens.shape[1] - 1))
    return acts.reshape(len(firsts), len(lasts), *acts.shape[1:]), firsts, lasts


def and_gate_scores(model, template: Template | None = None) -> tuple[Tensor, Tensor]:
    """AND-gate score of every neuron for every person: ``[person layer d_mlp]``, plus the name grid."""
    corpus = corpus_of(model)
    grid, firsts, lasts = name_grid_activations(model, template)
    scores = []
    for person in corpus.people:
        f, l = firsts.index(person.first), lasts.index(person.last)
        other_lasts = [j for j in range(len(lasts)) if j != l]
        other_firsts = [i for i in range(len(firsts)) if i != f]
        scores.append(and_gate_score(grid[f, l], grid[f, other_lasts].mean(0), grid[other_firsts, l].mean(0)))
    return torch.stack(scores), grid


def and_gate_table(model, scores: Tensor, grid: Tensor, relation: str, top_k: int) -> pd.DataFrame:
    """Each person's top-``top_k`` AND neurons: score, activations, and logit attribution to the relation's values."""
    corpus = corpus_of(model)
    firsts, lasts = corpus.first_names(), corpus.last_names()
    values = list(corpus.values(relation))
    value_ids = answer_ids(model, values).tolist()
    n_layers, d_mlp = scores.shape[1:]
    rows = []
    for p, person in enumerate(corpus.people):
        f, l = firsts.index(person.first), lasts.index(person.last)
        top = scores[p].flatten().topk(top_k).indices
        for rank, flat in enumerate(top.tolist()):
            layer, neuron = divmod(flat, d_mlp)
            dla = neuron_logit_attribution(model, layer, [neuron], value_ids)[0]
            truth = values.index(person.attribute(relation))
            rows.append({
                "person": person.name, "rank": rank + 1, "layer": layer, "neuron": neuron,
                "and_score": float(scores[p, layer, neuron]),
                "act_both": float(grid[f, l, layer, neuron]),
                "act_first_only": float(grid[f, [j for j in range(len(lasts)) if j != l], layer, neuron].mean()),
                "act_last_only": float(grid[[i for i in range(len(firsts)) if i != f], l, layer, neuron].mean()),
                "answer": values[truth],
                "dla_answer": float(dla[truth]),
                "dla_other_mean": float(torch.cat([dla[:truth], dla[truth + 1:]]).mean()),
                "dla_rank_of_answer": int((dla > dla[truth]).sum()) + 1,
            })
    return pd.DataFrame(rows)


def ablate_and_neurons(model, table: pd.DataFrame, grid: Tensor, relation: str, top_k: int) -> pd.DataFrame:
    """Mean-ablate each person's top AND neurons; the right answer before and after.

    One row per (ablated person, evaluated prompt group): the person's own ``relation``
    fact, the same person's other relations, and everyone else's ``relation`` facts. Two
    measures: the probability of the right answer, and its logit margin (its logit minus
    the best other value of the relation), which still moves when the probability is
    saturated near 1.
    """
    corpus = corpus_of(model)
    prompts = corpus.prompts("train")
    tokens, last = prompt_tokens(model, prompts), last_positions(prompts)
    answers = answer_ids(model, [p.answer for p in prompts])
    rows_ = torch.arange(len(prompts))
    rivals = torch.zeros(len(prompts), model.cfg.d_vocab, dtype=torch.bool)  # the other values of each prompt's relation
    for i, p in enumerate(prompts):
        rivals[i, answer_ids(model, [v for v in corpus.values(p.relation) if v != p.answer])] = True
    replacement = {layer: grid[:, :, layer].mean((0, 1)) for layer in range(grid.shape[2])}  # mean over name pairs

    def right_answer(hooks) -> tuple[Tensor, Tensor]:
        with torch.no_grad():
            logits = model.run_with_hooks(tokens, fwd_hooks=hooks)[rows_, last]
        margin = logits[rows_, answers] - logits.masked_fill(~rivals, float("-inf")).max(-1).values
        return torch.softmax(logits, -1)[rows_, answers], margin

    base, base_margin = right_answer([])
    out = []
    for person in tqdm(corpus.people, desc="ablating AND neurons", leave=False):
        chosen = table[(table.person == person.name) & (table["rank"] <= top_k)]
        neurons: dict[int, list[int]] = {}
        for layer, neuron in zip(chosen.layer, chosen.neuron):
            neurons.setdefault(int(layer), []).append(int(neuron))
        after, after_margin = right_answer(ablation_hooks(neurons, replacement))
        groups = {
            "this fact": [i for i, p in enumerate(prompts) if p.person == person and p.relation == relation],
            "same person, other relations": [i for i, p in enumerate(prompts) if p.person == person and p.relation != relation],
            "other people, same relation": [i for i, p in enumerate(prompts) if p.person != person and p.relation == relation],
        }
        for group, index in groups.items():
            if index:
                out.append({"person": person.name, "group": group, "p_before": float(base[index].mean()),
                            "p_after": float(after[index].mean()),
                            "margin_before": float(base_margin[index].mean()),
                            "margin_after": float(after_margin[index].mean()),
                            "still_right": float((after_margin[index] > 0).float().mean()), "n_prompts": len(index)})
    df = pd.DataFrame(out)
    df["drop"] = df["p_before"] - df["p_after"]
    df["margin_drop"] = df["margin_before"] - df["margin_after"]
    return df




def neurons_at(model, template: Template | None, relation: str, top_k: int) -> dict:
    """Scores, top-neuron table, ablation and a summary for one site (``template=None``: the last subject token)."""
    site = SITES[0] if template is None else SITES[1]
    scores, grid = and_gate_scores(model, template)
    table = and_gate_table(model, scores, grid, relation, top_k)
    ablation = ablate_and_neurons(model, table, grid, relation, top_k)
    top1 = table[table["rank"] == 1]
    by_group = ablation.groupby("group")[["drop", "margin_before", "margin_drop", "still_right"]].mean()
    mine, others = by_group.loc["this fact"], by_group.loc["other people, same relation"]
    summary = {
        "site": site, "and_score": float(top1.and_score.mean()),
        "typical": float(scores.flatten(1).median(1).values.mean()),
        "promotes": float((top1.dla_rank_of_answer == 1).mean()),
        "top_layer": int(top1.layer.mode().iloc[0]),
        "drop_this": float(mine["drop"]), "drop_other": float(others["drop"]),
        "prob_drop_ratio": float(mine["drop"] / max(others["drop"], 1e-9)),
        "margin_before": float(mine.margin_before),
        "margin_this": float(mine.margin_drop), "margin_other": float(others.margin_drop),
        "margin_drop_ratio": float(mine.margin_drop / max(others.margin_drop, 1e-9)),
        "still_right": float(mine.still_right),
    }
    return {"site": site, "grid": grid, "table": table.assign(site=site), "ablation": ablation.assign(site=site),
            "summary": summary}


def neuron_section(report, model, config, template: Template) -> dict:
    """The report section: AND gates at the last subject token and at the last token of ``template``."""
    results = [neurons_at(model, None, config.relation, config.top_k),
               neurons_at(model, template, config.relation, config.top_k)]
    subject, last = (r["summary"] for r in results)
    prompt = template.text.split("{answer}")[0].strip()

    def says(s: dict) -> str:
        return (f"At the **{s['site']}** the top AND neuron of a person scores {s['and_score']:.2f} on average (the "
                f"median neuron {s['typical']:.2f}; most top neurons sit in layer {s['top_layer']}), and for "
                f"{s['promotes']:.0%} of people its output direction ranks their {config.relation} first. Ablating a "
                f"person's top {config.top_k} lowers that fact's logit margin by {s['margin_this']:.3f} against "
                f"{s['margin_other']:.3f} for other people's {config.relation} facts (margin-drop ratio "
                f"**{s['margin_drop_ratio']:.1f}**; the fact's margin before ablation is {s['margin_before']:.2f}; "
                f"probability drops {s['drop_this']:.4f} against {s['drop_other']:.4f}, probability-drop ratio "
                f"{s['prob_drop_ratio']:.1f}), and the fact stays right in {s['still_right']:.0%} of its prompts.")

    section = report.section("AND-gate neurons", (
        f"**Question.** Is there, for each person, an MLP neuron that fires for the pair (first, last) but not "
        f"for either name alone, and does it write that person's {config.relation}? **How.** Every (first, last) "
        f"combination of the corpus's names is run, at two sites: the names alone as a two-word prompt, read at the "
        f"last name (the **last subject token**, ROME's site), and the prompt \"{prompt}\" about them, read at its "
        f"last word (the **last token**, where causal tracing puts this model's lookup). A neuron's AND score is its "
        f"activation for the person minus the larger of its mean activation over pairs sharing only the first or "
        f"only the last name. Direct logit attribution (DLA) is the neuron's `W_out` row, centred as the final "
        f"LayerNorm does, read by the unembedding of each {config.relation}. Ablation replaces a person's top "
        f"{config.top_k} AND neurons by their mean activation over all name pairs, at every position; the logit "
        f"margin is the right answer's logit minus the best other {config.relation}'s, which still moves when the "
        f"probability is saturated near 1. **What the numbers say.** {says(subject)} {says(last)}"))
    tables = pd.concat([r["table"] for r in results], ignore_index=True)
    top1 = tables[tables["rank"] == 1]
    ablation = pd.concat([r["ablation"] for r in results], ignore_index=True)
    section.figure(plot_and_gates(top1), "and_gates",
                   "Activation of each person's top AND neuron for the true pair and for pairs sharing one name, "
                   "per site.")
    section.figure(plot_ablation(ablation), "ablation",
                   f"Drop in the right answer's logit margin when a person's top {config.top_k} AND neurons are "
                   f"mean-ablated, per site (95% confidence intervals over people).")
    by_site = pd.DataFrame([r["summary"] for r in results]).set_index("site")
    section.table(by_site.T.rename_axis(columns=None).reset_index(names="measure"), "and_gates_by_site",
                  "One column per site: mean top-neuron AND score, median neuron, share whose top neuron promotes the answer, "
                  "ablation drops of this fact and of other people's (probability: drop_this, drop_other; logit "
                  "margin: margin_this, margin_other), prob_drop_ratio = drop_this / drop_other, margin_drop_ratio = "
                  "margin_this / margin_other, the fact's margin before ablation and the share of its prompts "
                  "still right after it.")
    shown = top1.sort_values(["site", "and_score"], ascending=[True, False])
    columns = ["person", "layer", "neuron", "and_score", "act_both", "act_first_only", "act_last_only", "answer",
               "dla_answer", "dla_other_mean", "dla_rank_of_answer"]
    for r in results:
        tag = r["site"].replace(" ", "_")
        section.table(shown[shown.site == r["site"]][columns], f"and_neurons_{tag}",
                      f"Each person's top AND neuron at the {r['site']}, strongest first: scores, activations and "
                      f"logit attribution.", max_rows=10)
    section.table(pd.concat([_top_inputs(model, r["grid"], shown[shown.site == r["site"]].head(3)).assign(site=r["site"])
                             for r in results], ignore_index=True), "top_inputs",
                  "The five name pairs that excite the three strongest AND neurons of each site most.")
    section.table(ablation.groupby(["site", "group"], sort=False)[
        ["p_before", "p_after", "drop", "margin_before", "margin_after", "margin_drop", "still_right"]].mean().reset_index(),
        "ablation", "Mean of each measure before and after ablation, per site and prompt group.")
    for s, tag in ((subject, ""), (last, "_last_token")):
        report.headline(f"and_top_neuron_score{tag}", s["and_score"], f"mean AND score of each person's top neuron at the {s['site']}")
        report.headline(f"and_top_neuron_promotes_answer{tag}", s["promotes"],
                        f"share of people whose top AND neuron at the {s['site']} ranks their attribute first by DLA")
        report.headline(f"ablation_margin_selectivity{tag}", s["margin_drop_ratio"],
                        f"logit-margin drop of the ablated fact over other people's, at the {s['site']}")
    report.headline("ablation_drop_this_fact", subject["drop_this"], "probability drop of the ablated person's fact (last subject token)")
    report.headline("ablation_drop_other_people", subject["drop_other"], "probability drop of other people's facts (last subject token)")
    report.headline("ablation_still_right_last_token", last["still_right"],
                    "share of the ablated fact's prompts still answered right (top AND neurons at the last token)")
    return {"subject": subject, "last": last}


def _top_inputs(model, grid, neurons: pd.DataFrame) -> pd.DataFrame:
    corpus = corpus_of(model)
    labels = [f"{f} {l}" for f in corpus.first_names() for l in corpus.last_names()]
    frames = []
    for _, row in neurons.iterrows():
        acts = grid[:, :, int(row.layer)].reshape(len(labels), -1)
        frames.append(top_activating(acts, labels, [int(row.neuron)], k=5).assign(layer=int(row.layer), person=row.person))
    return pd.concat(frames, ignore_index=True)[["person", "layer", "neuron", "rank", "input", "activation"]]
