"""Finding AND-gate neurons: MLP neurons at the last subject token that fire for "First Last" only, and what they write.

Example::

    from models import zoo
    from models.data.known_facts import FACTS
    from analyses.facts_lm.known import known_facts
    from analyses.facts_lm.and_gates import family_facts, and_gate_scores, and_neuron_table

    model = zoo.load("smollm2")
    facts = family_facts(known_facts(model, FACTS))          # known facts about people sharing a name
    scores, acts = and_gate_scores(model, facts, layers=[2, 3, 4, 5, 6])
    table = and_neuron_table(model, facts, scores, acts, top_k=5)

The seed (part 7) pictures "Michael Jordan plays basketball" as a neuron that fires only when
both "Michael" and "Jordan" are present and writes "basketball". For each known fact about a
person of ``FAMILIES``, the MLP activations at the last subject token of its main-template prompt
are compared with those for the first name beside other last names ("Michael Phelps", and made-up
swaps such as "Michael Williams") and for the last name beside other first names, in the same
template; ``interp.neurons.and_gate_score`` ranks the neurons, whose output rows are then read
through the unembedding (direct logit attribution). :func:`decoy_facts` gives the scores a null:
the same search for made-up names. Ablating the top neurons: :mod:`analyses.facts_lm.and_ablation`.
"""

import random
from collections import Counter
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from analyses.facts_lm.known import object_token
from interp.neurons import and_gate_score, mlp_activations
from models.data.known_facts import FACTS, FAMILIES


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
        positions = last_subject_positions(model, chunk, names, mask)
        out.append(mlp_activations(model, tokens, positions, layers, attention_mask=mask,
                                   stop_at_layer=max(layers) + 1))
    return torch.cat(out)


def last_subject_positions(model: Any, prompts: Sequence[str], subjects: Sequence[str], mask: Tensor) -> Tensor:
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
