"""AND-gate neurons in a real language model: do MLP neurons at the last subject token fire for "First Last" only?

Example::

    from models import zoo
    from models.data.known_facts import FACTS
    from analyses.facts_lm.known import known_facts
    from analyses.facts_lm.neurons import family_facts, and_gate_scores, and_neuron_table

    model = zoo.load("smollm2")
    facts = family_facts(known_facts(model, FACTS))          # known facts about people sharing a name
    scores, acts = and_gate_scores(model, facts, layers=[2, 3, 4, 5, 6])
    table = and_neuron_table(model, facts, scores, acts, top_k=5)

The seed (part 7) pictures "Michael Jordan plays basketball" as a neuron that fires only when
both "Michael" and "Jordan" are present and writes "basketball". For each known fact about a
person of ``FAMILIES``, the MLP activations at the last subject token of its main-template prompt
are compared with those for the first name beside other last names ("Michael Phelps", and made-up
swaps such as "Michael Williams") and for the last name beside other first names, in the same
template; ``interp.neurons.and_gate_score`` ranks the neurons. The top neurons are then read
through the unembedding (direct logit attribution) and ablated at the last subject token.
"""

import random
from collections import Counter
from typing import Any, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from torch import Tensor

from analyses.facts_lm.known import object_token
from interp.neurons import ablation_hooks, and_gate_score, mlp_activations
from models.data.known_facts import FACTS, FAMILIES

GROUPS = ("this fact", "shares a name", "other facts")
HEADLINES = {  # summary key -> what the report's headline says
    "and_score": "a fact's top AND neuron's score, in the neuron's standard deviations",
    "and_minus_decoy": "its lead over the top score for a made-up name of the same first name",
    "promotes": "share of facts whose top AND neuron's DLA ranks the object first in its relation",
    "margin_drop_this": "drop in a fact's logit margin when its top AND neurons are mean-ablated",
    "margin_drop_random": "the same for as many random neurons in the same layers",
    "still_right": "share of facts still answered after ablating their top AND neurons",
}


def family_facts(known_table: pd.DataFrame, max_facts: Optional[int] = None) -> pd.DataFrame:
    """The known facts whose subject is a ``FAMILIES`` member, with ``first`` and ``last`` columns.

    Ordered by how many other *known* members share a name with the person (most first), then by first
    name, so a quick run with ``max_facts`` keeps the best-paired people and namesakes side by side."""
    members = {f"{first} {last}": (first, last) for first, last in FAMILIES}
    rows = known_table[known_table.known & known_table.subject.isin(members)].copy()
    rows["first"] = [members[s][0] for s in rows.subject]
    rows["last"] = [members[s][1] for s in rows.subject]
    firsts, lasts = Counter(rows["first"]), Counter(rows["last"])
    rows["known_namesakes"] = [firsts[f] + lasts[l] - 2 for f, l in zip(rows["first"], rows["last"])]
    rows = rows.sort_values(["known_namesakes", "first", "subject"], ascending=[False, True, True])
    rows = rows.reset_index(drop=True)
    return rows if max_facts is None else rows.head(max_facts).reset_index(drop=True)


def partners(first: str, last: str, n_partners: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Names sharing only the first name, and only the last: real ``FAMILIES`` members first, then swaps.

    The swaps pair the name with other members' last (first) names, drawn by a generator seeded by
    ``seed`` and the person, so the same person gets the same partners in every run."""
    rng = random.Random(f"{seed}:{first} {last}")

    def side(shared_first: bool) -> list[str]:
        own = [(f, l) for f, l in FAMILIES if (f == first and l != last if shared_first else l == last and f != first)]
        others = sorted({l if shared_first else f for f, l in FAMILIES} - {last if shared_first else first}
                        - {l if shared_first else f for f, l in own})
        swaps = [(first, o) if shared_first else (o, last) for o in rng.sample(others, len(others))]
        return [f"{f} {l}" for f, l in (own + swaps)[:n_partners]]

    return side(True), side(False)


@torch.no_grad()
def subject_activations(model: Any, prompts: Sequence[str], subjects: Sequence[str], layers: Sequence[int],
                        batch_size: int = 64) -> Tensor:
    """MLP activations ``[prompt layer d_mlp]`` at the last token of each prompt's subject (left-padded batches,
    the forward stopped after the last layer asked for)."""
    out = []
    for start in range(0, len(prompts), batch_size):
        chunk, names = list(prompts[start:start + batch_size]), subjects[start:start + batch_size]
        tokens, mask = model.tokenizer.batch(chunk, padding_side="left")
        positions = _last_subject_positions(model, chunk, names, mask)
        out.append(mlp_activations(model, tokens, positions, layers, attention_mask=mask,
                                   stop_at_layer=max(layers) + 1))
    return torch.cat(out)


def _last_subject_positions(model: Any, prompts: Sequence[str], subjects: Sequence[str], mask: Tensor) -> Tensor:
    pad = mask.shape[1] - mask.sum(1)
    stops = torch.tensor([model.tokenizer.span_tokens(p, s)[1] for p, s in zip(prompts, subjects)])
    return pad + stops - 1


def and_gate_scores(model: Any, facts: pd.DataFrame, layers: Sequence[int], n_partners: int = 6, seed: int = 0,
                    std: Optional[Tensor] = None, batch_size: int = 64) -> tuple[Tensor, dict[str, Tensor]]:
    """AND-gate score ``[fact layer d_mlp]`` of every neuron in ``layers``, in units of the neuron's spread.

    ``interp.neurons.and_gate_score`` (full name minus the larger of the two partner means) divided by
    the neuron's standard deviation over every prompt of the run: raw activations grow with depth (a
    late-layer neuron's raw score dwarfs an early one's whatever it computes), so the raw score would
    rank layers, not gates. ``acts``: ``both`` (the person's own name), ``first_only`` / ``last_only``
    (mean over the partners sharing only that name), ``partner_mean`` (mean over all partners: the
    value ablation sets), ``raw_score``, ``std`` ``[layer d_mlp]`` (given, e.g. a real run's for its decoys,
    or measured here) and ``layers``."""
    prompts, subjects, owner = [], [], []
    for i, row in facts.iterrows():
        shared_first, shared_last = partners(row["first"], row["last"], n_partners, seed)
        for kind, names in (("both", [row.subject]), ("first_only", shared_first), ("last_only", shared_last)):
            prompts += [row.prompt.replace(row.subject, name) for name in names]
            subjects += names
            owner += [(i, kind)] * len(names)
    acts_all = subject_activations(model, prompts, subjects, layers, batch_size)  # [prompt layer d_mlp]
    owner_fact = torch.tensor([o[0] for o in owner])
    kinds = np.array([o[1] for o in owner])
    acts: dict[str, Tensor] = {}
    for kind in ("both", "first_only", "last_only"):
        acts[kind] = torch.stack([acts_all[(owner_fact == i) & torch.from_numpy(kinds == kind)].mean(0)
                                  for i in range(len(facts))])
    acts["partner_mean"] = torch.stack([acts_all[(owner_fact == i) & torch.from_numpy(kinds != "both")].mean(0)
                                        for i in range(len(facts))])
    acts["raw_score"] = and_gate_score(acts["both"], acts["first_only"], acts["last_only"])
    acts["std"] = acts_all.std(0).clamp(min=1e-6) if std is None else std
    acts["layers"] = torch.tensor(list(layers))
    return acts["raw_score"] / acts["std"], acts


def and_neuron_table(model: Any, facts: pd.DataFrame, scores: Tensor, acts: dict[str, Tensor], top_k: int = 5
                     ) -> pd.DataFrame:
    """Each fact's top-``top_k`` AND neurons: score, activations and direct logit attribution (DLA) to its object.

    DLA is the neuron's output row ``W_out[layer, n]`` read by the object's unembedding direction after the
    final RMSNorm's gain (``tokens_to_residual_directions``: TransformerLens's folded ``W_U``), per unit of
    activation; RMSNorm's ``1 / rms`` is left out (one positive number per position: it scales every token's
    attribution alike). ``dla_rank_in_relation``: the object's rank among its relation's objects (1: the
    neuron promotes the right one most); ``dla_rank_in_vocab`` the same over every token."""
    layers = acts["layers"].tolist()
    d_mlp = scores.shape[-1]
    objects = {r: sorted({object_token(model.tokenizer, f.object) for f in FACTS if f.relation == r})
               for r in set(facts.relation)}
    with torch.no_grad():
        W_U = model.tokens_to_residual_directions(torch.arange(model.cfg.d_vocab)).T  # [d_model d_vocab]
        W_out = model.W_out  # [layer d_mlp d_model], stacked once
    rows = []
    for i, fact in facts.iterrows():
        answer = int(fact.answer)
        top = scores[i].flatten().topk(top_k).indices.tolist()
        typical = float(scores[i].flatten().median())
        for rank, flat in enumerate(top):
            li, n = divmod(flat, d_mlp)
            dla_vocab = W_out[layers[li], n] @ W_U  # [d_vocab]
            rivals = objects[fact.relation]
            rows.append({
                "subject": fact.subject, "relation": fact.relation, "object": fact.object, "rank": rank + 1,
                "layer": layers[li], "neuron": n, "and_score": float(scores[i, li, n]), "median_score": typical,
                "raw_and_score": float(acts["raw_score"][i, li, n]),
                "act_both": float(acts["both"][i, li, n]), "act_first_only": float(acts["first_only"][i, li, n]),
                "act_last_only": float(acts["last_only"][i, li, n]),
                "dla": float(dla_vocab[answer]),
                "dla_rank_in_relation": int((dla_vocab[rivals] > dla_vocab[answer]).sum()) + 1,
                "n_relation_objects": len(rivals),
                "dla_rank_in_vocab": int((dla_vocab > dla_vocab[answer]).sum()) + 1,
            })
    table = pd.DataFrame(rows)
    table["dla_times_act"] = table.dla * table.act_both
    return table


def decoy_facts(facts: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Each fact's prompt about a made-up person: its first name with another member's last name that no member
    with that first name has ("Tom Williams"), scored like a person to give AND scores a null."""
    pairs, rng = set(FAMILIES), random.Random(seed)
    lasts = sorted({l for _, l in FAMILIES})
    rows = []
    for _, row in facts.iterrows():
        last = rng.choice([l for l in lasts if (row["first"], l) not in pairs])
        name = f"{row['first']} {last}"
        rows.append({**row.to_dict(), "subject": name, "last": last, "prompt": row.prompt.replace(row.subject, name),
                     "person": row.subject})
    return pd.DataFrame(rows)


def random_neurons(table: pd.DataFrame, d_mlp: int, n_draws: int = 3, seed: int = 0) -> dict[str, list[dict]]:
    """For each subject, ``n_draws`` random neuron sets with as many neurons per layer as its AND set (never one of
    them): ``{subject: [{layer: [neuron, ...]}, ...]}``."""
    rng = np.random.default_rng(seed)
    out = {}
    for subject, rows in table.groupby("subject", sort=False):
        draws = []
        for _ in range(n_draws):
            chosen: dict[int, list[int]] = {}
            for layer, group in rows.groupby("layer"):
                pool = np.setdiff1d(np.arange(d_mlp), group.neuron.to_numpy())
                chosen[int(layer)] = rng.choice(pool, size=len(group), replace=False).tolist()
            draws.append(chosen)
        out[subject] = draws
    return out


@torch.no_grad()
def answer_margins(model: Any, facts: pd.DataFrame, hooks: Sequence = (), batch_size: int = 64
                   ) -> tuple[Tensor, Tensor]:
    """Object probability and logit margin (object logit minus the best other token's) after each fact's prompt."""
    tokens, mask = model.tokenizer.batch(list(facts.prompt), padding_side="left")
    logits = model.run_with_hooks(tokens, fwd_hooks=list(hooks), attention_mask=mask)[:, -1].float()
    answers = torch.tensor(facts.answer.astype(int).tolist())
    rows = torch.arange(len(facts))
    right = logits[rows, answers]
    best_other = logits.scatter(1, answers[:, None], float("-inf")).max(-1).values
    return torch.softmax(logits, -1)[rows, answers], right - best_other


def ablate(model: Any, facts: pd.DataFrame, table: pd.DataFrame, acts: dict[str, Tensor],
           controls: Optional[dict[str, list[dict]]] = None, n_others: int = 10, seed: int = 0) -> pd.DataFrame:
    """Set each fact's top AND neurons to their mean over its partner prompts, at the last subject token.

    Each ablation is evaluated on the fact itself, on every known family fact whose person shares a first or
    last name with the ablated one ("shares a name"), and on ``n_others`` other known family facts drawn at
    random ("other facts"); with ``controls`` (``random_neurons``), each random draw is evaluated on the ablated
    fact ("random neurons, this fact"). One row per (ablated fact, evaluated fact[, draw]): probability and logit
    margin before and after."""
    layers = acts["layers"].tolist()
    p_before, m_before = answer_margins(model, facts)
    rng = np.random.default_rng(seed)
    rows = []
    for i, fact in facts.iterrows():
        replacement = {layer: acts["partner_mean"][i, li] for li, layer in enumerate(layers)}
        mine = table[table.subject == fact.subject]
        neurons: dict[int, list[int]] = {}
        for layer, neuron in zip(mine.layer, mine.neuron):
            neurons.setdefault(int(layer), []).append(int(neuron))
        namesakes = [j for j in range(len(facts)) if j != i and (facts["first"][j] == fact["first"]
                                                                 or facts["last"][j] == fact["last"])]
        others = [j for j in range(len(facts)) if j != i and j not in namesakes]
        others = sorted(rng.choice(others, size=min(n_others, len(others)), replace=False).tolist())
        evaluated = [i, *namesakes, *others]
        p_after, m_after = answer_margins(model, facts.iloc[evaluated],
                                          ablation_hooks(neurons, replacement, _positions_of(model, facts, evaluated)))
        for k, j in enumerate(evaluated):
            group = "this fact" if j == i else "shares a name" if j in namesakes else "other facts"
            rows.append(_row(fact, facts.iloc[j], group, p_before[j], p_after[k], m_before[j], m_after[k]))
        for draw, chosen in enumerate((controls or {}).get(fact.subject, [])):
            hooks = ablation_hooks(chosen, replacement, _positions_of(model, facts, [i]))
            p, m = answer_margins(model, facts.iloc[[i]], hooks)
            rows.append(_row(fact, fact, "random neurons, this fact", p_before[i], p[0], m_before[i], m[0], draw))
    df = pd.DataFrame(rows)
    df["p_drop"] = df.p_before - df.p_after
    df["margin_drop"] = df.margin_before - df.margin_after
    return df


def _positions_of(model: Any, facts: pd.DataFrame, index: Sequence[int]) -> Tensor:
    """Last subject token of each chosen fact's prompt within the left-padded batch of those prompts."""
    chosen = facts.iloc[list(index)]
    mask = model.tokenizer.batch(list(chosen.prompt), padding_side="left")[1]
    return _last_subject_positions(model, list(chosen.prompt), list(chosen.subject), mask)


def _row(fact, other, group, p_before, p_after, m_before, m_after, draw=None) -> dict:
    return {"ablated": fact.subject, "evaluated": other.subject, "relation": other.relation, "group": group,
            "draw": draw, "p_before": float(p_before), "p_after": float(p_after),
            "margin_before": float(m_before), "margin_after": float(m_after), "still_right": bool(m_after > 0)}


# ----- summary, figure, report section ----------------------------------------------------


def _ci(values) -> tuple[float, float, float]:
    """Mean and its normal 95% interval (mean +- 1.96 standard errors) over facts."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    half = 1.96 * float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")
    return mean, mean - half, mean + half


def _wilson(values) -> tuple[float, float, float]:
    """Share of true values and its Wilson 95% interval (Wilson 1927; stays inside [0, 1], unlike +- 1.96 sem)."""
    values = np.asarray(values, dtype=float)
    n, share, z = len(values), float(values.mean()), 1.96
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return share, float(centre - half), float(centre + half)


def per_fact(ablation: pd.DataFrame) -> pd.DataFrame:
    """One row per (ablated fact, group): each measure averaged over the group's evaluated facts (and draws)."""
    df = ablation.assign(abs_margin_change=ablation.margin_drop.abs(), still_right=ablation.still_right.astype(float))
    return df.groupby(["ablated", "group"], sort=False)[
        ["p_before", "p_after", "p_drop", "margin_before", "margin_after", "margin_drop", "abs_margin_change",
         "still_right"]].mean().reset_index()


def neuron_summary(table: pd.DataFrame, decoys: pd.DataFrame, ablation: pd.DataFrame) -> dict:
    """Headline numbers, each a mean over facts with its 95% interval as ``key_ci`` (see ``neuron_section``)."""
    top, decoy_top = table[table["rank"] == 1], decoys[decoys["rank"] == 1]
    out: dict[str, Any] = {"n_facts": len(top)}

    def put(key, values, interval=_ci):
        mean, low, high = interval(values)
        out[key], out[f"{key}_ci"] = mean, (low, high)

    put("and_score", top.and_score)
    put("typical", top.median_score)
    put("and_score_decoy", decoy_top.and_score)
    put("and_minus_decoy", top.and_score.to_numpy() - decoy_top.and_score.to_numpy())
    put("act_both", top.act_both)
    put("act_partner", np.maximum(top.act_first_only, top.act_last_only))
    put("promotes", top.dla_rank_in_relation == 1, _wilson)
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
    put("still_right", this.still_right, _wilson)
    return out


def plot_neurons(table: pd.DataFrame, decoys: pd.DataFrame, ablation: pd.DataFrame) -> plt.Figure:
    """Left: each fact's top AND score beside its decoy's and the median neuron's. Right: margin change per group."""
    top, decoy_top = table[table["rank"] == 1], decoys[decoys["rank"] == 1]
    scores = pd.concat([
        pd.DataFrame({"kind": "top neuron, real person", "score": top.and_score.to_numpy()}),
        pd.DataFrame({"kind": "top neuron, made-up name", "score": decoy_top.and_score.to_numpy()}),
        pd.DataFrame({"kind": "median neuron, real person", "score": top.median_score.to_numpy()})])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    palette = sns.color_palette("colorblind")
    sns.boxplot(scores, x="kind", y="score", ax=axes[0], color="white", fliersize=0)
    sns.stripplot(scores, x="kind", y="score", ax=axes[0], hue="kind", palette=palette[:3], size=4, legend=False)
    axes[0].set_xlabel("")
    axes[0].set_ylabel("AND score (neuron's standard deviations)")
    axes[0].tick_params(axis="x", labelsize=8)
    facts = per_fact(ablation)
    order = [g for g in (*GROUPS, "random neurons, this fact") if g in set(facts.group)]
    sns.barplot(facts, x="group", y="margin_drop", order=order, ax=axes[1], errorbar=("ci", 95), color=palette[3])
    sns.stripplot(facts, x="group", y="margin_drop", order=order, ax=axes[1], color="black", alpha=0.5, size=3)
    axes[1].axhline(0, color="grey", lw=0.8)
    axes[1].set_xlabel("")
    axes[1].set_ylabel("drop in the object's logit margin")
    axes[1].tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    return fig


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
