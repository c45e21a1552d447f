"""The counterfactual protocol of the ROME edits: how they are made (the settings) and which fact becomes what.

Example::

    from analyses.facts_lm.counterfact import EditSettings, plan_edits

    plan = plan_edits(model.tokenizer, known_table, n_edits=10, seed=0)   # [Edit(fact, new, neighbours)]
    EditSettings.quick()                                                  # about a tenth of the work

Protocol (Meng et al. 2022, "Locating and Editing Factual Associations in GPT", sec. 3 and
their code; :class:`EditSettings` gives ROME's GPT-2 XL setting, from their
``hparams/ROME/gpt2-xl.json``, beside each of ours). For a known fact (subject, relation,
old object) the new object is another object of the same relation whose first token
differs from the old one's (CounterFact's counterfactuals), chosen by a seed; its
neighbourhood is other known subjects of the relation (those whose object starts with the
new object's token left out). How each edit is then computed is in
:mod:`analyses.facts_lm.edit_runs`.
"""

import zlib
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from analyses.facts_lm.known import object_token, object_tokens
from models.data.known_facts import RELATIONS, Fact, Relation


@dataclass(frozen=True)
class EditSettings:
    """How the edits are made and measured; ``EditSettings.quick()`` for tests (about a tenth of the work)."""

    covariance_tokens: int = 32_768  # of the text's 75,680 (ROME: 100,000 Wikipedia articles)
    chunk: int = 128  # tokens per covariance row
    skip: int = 1  # positions left out at each chunk's start
    n_contexts: int = 10  # sampled prefixes averaged into k* besides the bare prompt (ROME: 20)
    n_value_contexts: int = 3  # rewriting prompts of v*: the bare prompt and the first prefixed ones (ROME: 21)
    steps: int = 10  # v* gradient steps at most (ROME: 20)
    lr: float = 0.5  # Adam learning rate (ROME: 0.5)
    kl_weight: float = 1.0  # essence KL term (ROME: 0.0625)
    weight_decay: float = 1e-3  # times |delta|^2 (ROME: 0.5 |delta| / |v|^2)
    target_probability: float = 0.9  # v* stops once the new object is this likely
    clamp_norm_factor: float = 4.0  # |delta| <= 4 |v| (ROME: 4)
    n_neighbours: int = 10  # neighbourhood prompts per edit (CounterFact: 10)
    edits_per_batch: int = 10  # v* of this many edits optimised in one batch
    n_generation: int = 4  # edits whose continuations are shown
    generation_tokens: int = 24

    def __post_init__(self):
        if self.chunk <= self.skip or self.covariance_tokens < self.chunk:
            raise ValueError(f"covariance_tokens={self.covariance_tokens} must hold one chunk of {self.chunk} "
                             f"tokens, and chunk must exceed skip={self.skip}")
        if not 1 <= self.n_value_contexts <= self.n_contexts + 1:
            raise ValueError(f"n_value_contexts={self.n_value_contexts} must lie in [1, n_contexts + 1 = "
                             f"{self.n_contexts + 1}] (the bare prompt and the prefixed ones)")
        for name in ("n_contexts", "steps", "n_neighbours", "edits_per_batch", "generation_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @classmethod
    def quick(cls) -> "EditSettings":
        return cls(covariance_tokens=4096, n_contexts=4, n_value_contexts=2, steps=8, n_neighbours=4,
                   n_generation=2, generation_tokens=12)



def counterfactual_object(tokenizer: Any, fact: Fact, objects: Sequence[str], seed: int) -> str:
    """CounterFact's new object for ``fact``: another of ``objects`` (its relation's), a single token that
    differs from the old object's first token; the same for a given fact and seed whatever else is edited."""
    old = object_token(tokenizer, fact.object)
    candidates = [o for o in sorted(set(objects)) if o != fact.object
                  and len(ids := object_tokens(tokenizer, o)) == 1 and ids[0] != old]
    if not candidates:
        raise ValueError(f"no single-token object of relation {fact.relation!r} other than {fact.object!r} to "
                         "rewrite it to; add objects to the relation or leave it out of the edits")
    rng = np.random.default_rng([seed, zlib.crc32(f"{fact.relation}\t{fact.subject}".encode())])
    return candidates[int(rng.integers(len(candidates)))]


class Edit(NamedTuple):
    fact: Fact
    new: str
    neighbours: tuple[Fact, ...]


def plan_edits(tokenizer: Any, known_table: pd.DataFrame, n_edits: int, seed: int, n_neighbours: int = 10,
               relations: Mapping[str, Relation] = RELATIONS) -> list[Edit]:
    """Up to ``n_edits`` known facts, taken in turn from each relation (shuffled by ``seed``), each with its
    counterfactual object and up to ``n_neighbours`` other known facts of the relation as neighbours."""
    missing = sorted(set(known_table.relation) - set(relations))
    if missing:
        raise ValueError(f"relations {missing} of the known table have no templates; pass relations=")
    rng = np.random.default_rng(seed)
    known = known_table[known_table.known]
    queues, objects = {}, {}
    for name in sorted(set(known.relation)):
        facts = [Fact(r.subject, r.relation, r.object) for r in known[known.relation == name].itertuples()]
        objects[name] = known_table[known_table.relation == name].object.tolist()
        if len(facts) >= 2:  # a neighbour needs another known subject
            queues[name] = [facts[i] for i in rng.permutation(len(facts))]
    plan, turn = [], 0
    while len(plan) < n_edits and any(queues.values()):
        name = sorted(queues)[turn % len(queues)]
        turn += 1
        if not queues[name]:
            continue
        fact = queues[name].pop(0)
        try:
            new = counterfactual_object(tokenizer, fact, objects[name], seed)
        except ValueError:
            queues[name] = []  # no single-token object to rewrite this relation to
            continue
        new_id = object_token(tokenizer, new, single=True)
        others = [Fact(r.subject, r.relation, r.object) for r in known[known.relation == name].itertuples()
                  if r.subject != fact.subject and object_token(tokenizer, r.object) != new_id]
        pick = np.random.default_rng([seed, zlib.crc32(fact.subject.encode())]).permutation(len(others))
        plan.append(Edit(fact, new, tuple(others[i] for i in pick[:n_neighbours])))
    return plan
