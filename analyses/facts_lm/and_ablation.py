"""Ablating AND-gate neurons: each fact's top neurons set to their partner mean, against random neurons, per group.

Example::

    from analyses.facts_lm.and_ablation import ablate, per_fact, random_neurons

    controls = random_neurons(table, model.cfg.d_mlp, n_draws=3)      # table: and_gates.and_neuron_table
    ablation = ablate(model, facts, table, acts, controls)             # one row per (ablated, evaluated[, draw])
    per_fact(ablation)                                                 # one row per (ablated fact, group)

A fact's top AND neurons (:mod:`analyses.facts_lm.and_gates`) are set to their mean over the
fact's partner prompts at the last subject token only, and the object's logit margin (its
logit minus the best other token's) is measured on the fact, on facts of people sharing a name,
on other facts, and against as many random neurons in the same layers.
"""

from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from analyses.facts_lm.and_gates import last_subject_positions
from interp.neurons import ablation_hooks

GROUPS = ("this fact", "shares a name", "other facts")


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
    return last_subject_positions(model, list(chosen.prompt), list(chosen.subject), mask)


def _row(fact, other, group, p_before, p_after, m_before, m_after, draw=None) -> dict:
    return {"ablated": fact.subject, "evaluated": other.subject, "relation": other.relation, "group": group,
            "draw": draw, "p_before": float(p_before), "p_after": float(p_after),
            "margin_before": float(m_before), "margin_after": float(m_after), "still_right": bool(m_after > 0)}


def per_fact(ablation: pd.DataFrame) -> pd.DataFrame:
    """One row per (ablated fact, group): each measure averaged over the group's evaluated facts (and draws)."""
    df = ablation.assign(abs_margin_change=ablation.margin_drop.abs(), still_right=ablation.still_right.astype(float))
    return df.groupby(["ablated", "group"], sort=False)[
        ["p_before", "p_after", "p_drop", "margin_before", "margin_after", "margin_drop", "abs_margin_change",
         "still_right"]].mean().reset_index()
