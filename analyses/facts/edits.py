"""ROME edits of the facts subject at two key sites, and their report section.

Example::

    from models import zoo
    from analyses.facts.edits import edit_facts

    model = zoo.load("facts", quick=True)
    edits = edit_facts(model, layer=1, relation="sport", n_edits=4, seed=0, site="last token")
    edits[["person", "old", "new", "efficacy", "specificity"]]
"""

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from analyses.facts.measures import SITES, subject_span
from analyses.facts.plots import plot_edits
from interp.hook_names import act_name
from interp.editing import edited, key_covariance, rome_update, subject_key, target_value
from models.data.facts import Prompt
from models.facts_subject import corpus_of, last_positions, predictions, prompt_tokens


def edit_facts(model, layer: int, relation: str, n_edits: int, seed: int, v_steps: int = 80,
               site: str = "last subject token") -> pd.DataFrame:
    """ROME edits of ``relation`` for ``n_edits`` people, each applied alone and undone; one row per edit.

    ``site`` is where the key is read: ``"last subject token"`` (ROME's site) or ``"last
    token"`` (where the prompt's next word is predicted). At the subject the person's
    other facts share the edited key, so ``v*`` keeps their distribution (ROME's KL term);
    at the last token they do not (their last-token keys are other keys), so no KL term.
    """
    if site not in SITES:
        raise ValueError(f"site must be one of {SITES}, got {site!r}")
    corpus = corpus_of(model)
    rng = np.random.default_rng(seed)
    people = [corpus.people[i] for i in rng.permutation(len(corpus.people))[:n_edits]]
    sentences = model.tokenizer.to_tokens(corpus.sentences("train"))
    C = key_covariance(model, sentences, layer, mask=sentences != model.tokenizer.pad_token_id)
    W_out = model.W_out[layer].detach()
    b_out = model.blocks[layer].mlp.b_out
    b_out = None if b_out is None else b_out.detach()
    everyone = corpus.prompts("train")
    before_all = predictions(model, everyone)

    def key_positions(prompts: list[Prompt]) -> Tensor:
        if site == "last token":
            return last_positions(prompts)
        return torch.tensor([subject_span(p)[1] - 1 for p in prompts])

    rows = []
    for person in tqdm(people, desc=f"ROME edits at the {site}", leave=False):
        values = [v for v in corpus.values(relation) if v != person.attribute(relation)]
        new = values[int(rng.integers(len(values)))]
        train_prompts = [corpus.prompt(person, t) for t in corpus.templates_for(relation, "train")]
        held_prompts = [corpus.prompt(person, t) for t in corpus.templates_for(relation, "held_out")]
        keep = [] if site == "last token" else [
            corpus.prompt(person, t) for r in corpus.config.relations if r != relation
            for t in corpus.templates_for(r, "train")]
        tokens, key_pos, answer_pos = prompt_tokens(model, train_prompts), key_positions(train_prompts), \
            last_positions(train_prompts)
        k = subject_key(model, tokens, key_pos, layer)
        v = target_value(model, tokens, key_pos, answer_pos, model.tokenizer.index[new], layer,
                         keep_tokens=prompt_tokens(model, keep) if keep else None,
                         keep_key_pos=key_positions(keep) if keep else None,
                         keep_answer_pos=last_positions(keep) if keep else None, steps=v_steps, seed=seed)
        p_value = _probability_with_value(model, tokens, key_pos, answer_pos, model.tokenizer.index[new], layer, v)
        delta = rome_update(W_out, b_out, C, k, v)
        with edited(model, layer, delta):
            efficacy = np.mean([g == new for g in predictions(model, train_prompts)])
            paraphrase = np.mean([g == new for g in predictions(model, held_prompts)])
            after_all = predictions(model, everyone)
        same = [b == a for p, b, a in zip(everyone, before_all, after_all) if p.person != person]
        neighbour = [b == a for p, b, a in zip(everyone, before_all, after_all)
                     if p.person != person and (p.person.first == person.first or p.person.last == person.last)]
        own_other = [b == a for p, b, a in zip(everyone, before_all, after_all)
                     if p.person == person and p.relation != relation]
        rows.append({"site": site, "layer": layer, "person": person.name, "relation": relation,
                     "old": person.attribute(relation), "new": new,
                     "p_new_at_value": p_value, "efficacy": efficacy, "paraphrase": paraphrase,
                     "specificity": float(np.mean(same)),
                     "neighbour_specificity": float(np.mean(neighbour)) if neighbour else float("nan"),
                     "own_other_relations_kept": float(np.mean(own_other)) if own_other else float("nan"),
                     "delta_norm": float(delta.norm())})
    return pd.DataFrame(rows)


def _probability_with_value(model, tokens: Tensor, key_pos: Tensor, answer_pos: Tensor, answer: int, layer: int,
                            value: Tensor) -> float:
    """Mean probability of ``answer`` when the MLP output at ``key_pos`` moves by ``v* - its mean``, as
    ``target_value`` optimised it: what ``v*`` reaches before the rank-one update has to carry it."""
    name = act_name("mlp_out", layer)
    rows = torch.arange(len(tokens))
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
        shift = value - cache[name][rows, key_pos].mean(0)

        def move(act: Tensor, hook) -> Tensor:
            act[rows, key_pos] += shift
            return act

        logits = model.run_with_hooks(tokens, fwd_hooks=[(name, move)])
    return float(torch.softmax(logits[rows, answer_pos], -1)[:, answer].mean())


def edit_sites(config, trace: dict) -> list[dict]:
    """Both ROME sites, each at its traced MLP peak layer (or ``edit_layer``); the main one first.

    The main site is ``edit_site``, or for ``"traced"`` the token group whose MLP output
    has the larger indirect effect: ROME's own rule (edit where the trace puts the lookup).
    """
    sites = {
        "last subject token": {"site": "last subject token", "layer": trace["mlp_peak_layer"], "ie": trace["mlp_peak_ie"]},
        "last token": {"site": "last token", "layer": trace["mlp_last_token_layer"], "ie": trace["mlp_last_token_ie"]},
    }
    if config.edit_layer != -1:
        for site in sites.values():
            site["layer"] = config.edit_layer
    main = config.edit_site
    if main == "traced":
        main = max(sites, key=lambda name: sites[name]["ie"])
    return [sites[main], *(site for name, site in sites.items() if name != main)]


def editing_section(report, model, config, sites: list[dict]) -> dict:
    edits = pd.concat([edit_facts(model, site["layer"], config.relation, config.n_edits, config.seed,
                                     site=site["site"]) for site in sites], ignore_index=True)
    measures = ["p_new_at_value", "efficacy", "paraphrase", "specificity", "neighbour_specificity",
                "own_other_relations_kept"]
    by_site = edits.groupby(["site", "layer"], sort=False)[measures].mean().reset_index()
    main, other = by_site.iloc[0], by_site.iloc[1]
    how_chosen = ("the token group whose MLP output the trace finds more important" if config.edit_site == "traced"
                  else "set in the config")
    ie = {site["site"]: site["ie"] for site in sites}
    section = report.section("Editing one fact with ROME", (
        f"**Question.** Can a rank-one change of one MLP's down-projection rewrite a fact without touching other "
        f"facts, and does it matter where the key is read? **How.** ROME (Meng et al. 2022, eq. 2): the key "
        f"covariance is estimated over every token of the training sentences, the key `k*` is the MLP activation "
        f"at the edit site averaged over the training templates, and the new value is optimised so the new "
        f"{config.relation} wins on them. Two sites, each at the layer where the trace finds its MLP output most "
        f"important{'' if config.edit_layer == -1 else ' (layer set in the config)'}: the **{main.site}** "
        f"(layer {int(main.layer)}, MLP indirect effect {ie[main.site]:.3f}; the main result, {how_chosen}) and "
        f"the **{other.site}** (layer {int(other.layer)}, {ie[other.site]:.3f}). ROME reads the key at the last "
        f"subject token because tracing put GPT's lookup there; at that site the person's other facts share the "
        f"key, so the new value also keeps their distribution (ROME's KL term), while at the last token they have "
        f"keys of their own and no KL term is used. {config.n_edits} edits per site, each applied alone and "
        f"undone. **What the numbers say.** At the {main.site}: efficacy (new value is the top prediction on the "
        f"training templates) **{main.efficacy:.1%}**, paraphrase generalisation (held-out templates) "
        f"**{main.paraphrase:.1%}**, specificity (other people's facts unchanged) **{main.specificity:.1%}** (people "
        f"sharing a first or last name {main.neighbour_specificity:.1%}), the person's other relations kept "
        f"{main.own_other_relations_kept:.1%}. At the {other.site}: efficacy {other.efficacy:.1%}, paraphrase "
        f"{other.paraphrase:.1%}, specificity {other.specificity:.1%}. {_value_reach(edits)}"))
    section.figure(plot_edits(edits), "edits", "Efficacy, paraphrase generalisation and specificity of each ROME "
                   "edit, per edit site (bars: mean with 95% confidence interval; dots: single edits).")
    section.table(by_site, "edits_by_site", "Mean of each measure per edit site.")
    section.table(edits.sort_values(["efficacy", "paraphrase"], kind="stable"), "edits",
                  "One row per edit (each applied alone), the least effective first.", max_rows=12)
    for key in ("efficacy", "paraphrase", "specificity", "neighbour_specificity"):
        report.headline(f"edit_{key}", float(main[key]), f"mean {key.replace('_', ' ')} over {config.n_edits} edits "
                        f"at the {main.site}")
    report.headline("edit_layer", int(main.layer), f"MLP layer edited at the {main.site}")
    report.headline("edit_at_last_token", int(main.site == "last token"), "1 if the main edit site is the last token, 0 if the last subject token")
    tag = other.site.replace(" ", "_")
    report.headline(f"edit_efficacy_{tag}", float(other.efficacy), f"mean efficacy at the {other.site} (layer {int(other.layer)})")
    report.headline(f"edit_specificity_{tag}", float(other.specificity), f"mean specificity at the {other.site}")
    return {**{k: float(main[k]) for k in measures}, "site": main.site, "layer": int(main.layer), "n": config.n_edits,
            "other": {"site": other.site, "layer": int(other.layer), "efficacy": float(other.efficacy),
                      "specificity": float(other.specificity)}}


def _value_reach(edits: pd.DataFrame) -> str:
    """Whether failed edits failed at finding ``v*`` or at carrying it into the weights."""
    failed = edits[edits.efficacy < 0.5]
    if failed.empty:
        return "No edit failed (efficacy below 50%) at either site."
    worked = edits[edits.efficacy >= 0.5]
    counts = ", ".join(f"{n} at the {site}" for site, n in failed.groupby("site", sort=False).size().items())
    where = ("in finding a value at that site, not in the rank-one update that stores it"
             if failed.p_new_at_value.mean() < 0.5 else "in the rank-one update: the value itself works")
    return (f"{len(failed)} {'edit' if len(failed) == 1 else 'edits'} failed (efficacy below 50%: {counts}). "
            f"Their optimised value `v*` itself, added to the MLP output before any weight changes, gives the new "
            f"value a mean probability of {failed.p_new_at_value.mean():.2f} (against "
            f"{worked.p_new_at_value.mean():.2f} for the other edits): the failure is {where}.")
