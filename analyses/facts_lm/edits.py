"""ROME edits of the facts SmolLM2 knows, scored as ROME's CounterFact scores them.

Example::

    from models import zoo
    from models.data.known_facts import FACTS
    from analyses.facts_lm.known import known_facts
    from analyses.facts_lm.edits import EditSettings, counterfact_scores, edit_facts, summarise_scores

    model = zoo.load("smollm2")
    run = edit_facts(model, known_facts(model, FACTS), layer=4, n_edits=10, seed=0,
                     settings=EditSettings.quick())
    summarise_scores(counterfact_scores(run.prompts))   # ES PS NS EM PM NM, edited and unedited

Protocol (Meng et al. 2022, "Locating and Editing Factual Associations in GPT", sec. 3 and
their code; :class:`EditSettings` gives ROME's GPT-2 XL setting, from their
``hparams/ROME/gpt2-xl.json``, beside each of ours). For a known fact (subject, relation,
old object) the new object is another object of the same relation whose first token
differs from the old one's (CounterFact's counterfactuals), chosen by a seed. The rank-one
update of ``blocks.{layer}.mlp.W_out`` (:mod:`interp.editing`) uses

- ``C = E[k k^T]`` of ``blocks.{layer}.mlp.hook_post`` over news text shipped with gensim
  (``gensim/test/test_data/lee_background.cor``, 75,680 SmolLM2 tokens; by default the
  first 32,768 in 256 chunks of 128, every position but each chunk's first, where SmolLM2's
  keys are atypical: 32,512 keys; ROME: 100,000 Wikipedia articles of up to 1,024 tokens,
  every position);
- ``k*``: the key at the subject's last token of the main-template prompt, averaged over
  the bare prompt and ``n_contexts`` prefixed copies, each prefix a short text sampled from
  the model after its end-of-text token (half 5, half 10 tokens; ROME: 20 such prefixes);
- ``v*`` from :func:`interp.editing.target_values` on the bare prompt and the first
  prefixed ones, with ROME's "essence" KL term on ``"{prefix}. {subject} is a"`` (ROME:
  ``"{subject} is a"``; SmolLM2 has no BOS token, so there the subject would be the first
  token, whose key is unlike the subject's key anywhere else and which the edit would not move).

Scores per edit (their Table 4): efficacy ES, P(new) > P(old) on the edit prompt;
paraphrase PS, the same on the relation's other templates (the held-out one included);
neighbourhood NS, P(own object) > P(new) on the main-template prompts of other known subjects
of the relation (those whose object starts with the new object's token left out); and the
magnitudes EM, PM (mean P(new) - P(old)) and NM (mean P(own) - P(new)). Probabilities are of
objects' first tokens; new objects are single tokens. Every score is also measured on the
unedited model, so an edit that changes nothing is visible.
"""

import hashlib
import importlib.util
import os
import time
import weakref
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import safetensors.torch as st
import torch
from jaxtyping import Float, Int
from scipy import stats
from torch import Tensor
from tqdm.auto import tqdm

from analyses.facts_lm.known import object_token, object_tokens, subject_span
from interp.editing import edited, key_covariance, mlp_keys, rome_update, target_values
from interp.resume import reproduces
from models.data.known_facts import RELATIONS, Fact, Relation
from models.transformer.sampling import generate
from models.zoo import cache_dir

COVARIANCE_TEXT = "gensim/test/test_data/lee_background.cor"  # inside the installed gensim package

# Meng et al. 2022 (NeurIPS), Table 4: CounterFact, GPT-2 XL edited by ROME at layer 17 of 48 (0-based), in %.
# Read from the transcription of the paper in github.com/viktor-shcherb/msc_thesis
# (references/2022-12-locating-editing-factual-associations-gpt/sections/03_...storage.md); the
# magnitudes EM, PM, NM, the fluency GE and the unedited model's per-score row were not in any source
# reachable here, so they are left out rather than recalled.
ROME_GPT2_XL = {"ES": 100.0, "PS": 96.4, "NS": 75.4, "S": 89.2, "RS": 41.9}
ROME_GPT2_XL_UNEDITED = {"S": 30.5}
ROME_SOURCE = ("Meng et al. 2022, Locating and Editing Factual Associations in GPT (NeurIPS), Table 4, GPT-2 XL "
               "on CounterFact (as transcribed in github.com/viktor-shcherb/msc_thesis)")
SCORES = ("ES", "PS", "NS", "EM", "PM", "NM")


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


# ----- the key covariance and the contexts ------------------------------------------------------

_COVARIANCES: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()
_PREFIXES: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def covariance_text() -> str:
    """The news text the covariance is estimated on (Lee's corpus, in gensim's test data)."""
    spec = importlib.util.find_spec("gensim")
    if spec is None or spec.origin is None:
        raise ValueError("gensim is not installed; the key covariance is estimated on its test corpus "
                         f"({COVARIANCE_TEXT}); install the project's dependencies")
    return (Path(spec.origin).parent.parent / COVARIANCE_TEXT).read_text(encoding="utf-8")


def covariance_tokens(tokenizer: Any, n_tokens: int, chunk: int = 128) -> Int[Tensor, "batch pos"]:
    """The text's first ``n_tokens`` tokens (rounded down to whole chunks) as rows of ``chunk``."""
    ids = tokenizer.encode(covariance_text())
    n_rows = min(n_tokens, len(ids)) // chunk
    if n_tokens > len(ids):
        raise ValueError(f"the covariance text has {len(ids)} tokens, fewer than covariance_tokens={n_tokens}")
    return torch.tensor(ids[: n_rows * chunk]).reshape(n_rows, chunk)


def edit_covariance(model: Any, layer: int, settings: "EditSettings" = EditSettings(),
                    disk: bool = True) -> Float[Tensor, "d_mlp d_mlp"]:
    """``C = E[k k^T]`` of ``blocks.{layer}.mlp.hook_post`` over the covariance text (see the module docstring).

    Kept per model and layer in memory and, with ``disk``, under ``$INTERP_CACHE/edit_covariance``
    (safetensors, named by a hash of the text, the settings and the weights up to ``layer``).
    """
    key = (layer, settings.covariance_tokens, settings.chunk, settings.skip)
    memo = _COVARIANCES.setdefault(model, {})
    if key in memo:
        return memo[key]
    path = cache_dir() / "edit_covariance" / f"{_fingerprint(model, layer, key)}.safetensors" if disk else None
    if path is not None and path.is_file():
        memo[key] = st.load_file(path)["C"]
        return memo[key]
    tokens = covariance_tokens(model.tokenizer, settings.covariance_tokens, settings.chunk)
    mask = torch.ones_like(tokens, dtype=torch.bool)
    mask[:, : settings.skip] = False
    memo[key] = key_covariance(model, tokens, layer, mask=mask)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        st.save_file({"C": memo[key].contiguous()}, partial)
        os.replace(partial, path)  # atomic: an interrupted run leaves no half-written file
    return memo[key]


def _fingerprint(model: Any, layer: int, key: tuple) -> str:
    digest = hashlib.sha256(repr((COVARIANCE_TEXT, key, len(covariance_text()))).encode())
    for name, p in model.named_parameters():  # the keys depend on the embedding and blocks 0..layer
        if name.startswith("embed") or any(name.startswith(f"blocks.{b}.") for b in range(layer + 1)):
            digest.update(name.encode())
            digest.update(p.detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def context_prefixes(model: Any, n: int, seed: int) -> list[str]:
    """ROME's context templates: ``n`` short texts sampled (temperature 1, seeded) after the end-of-text token,
    the first half 5 tokens long, the rest 10."""
    memo = _PREFIXES.setdefault(model, {})
    if (n, seed) not in memo:
        start = torch.full((n, 1), model.tokenizer.eos_token_id, dtype=torch.long)
        out = generate(model, start, max_new_tokens=10, temperature=1.0, seed=seed, stop_at_eos=False)
        lengths = [5 if i < n // 2 else 10 for i in range(n)]
        memo[(n, seed)] = [model.tokenizer.to_string(row[1 : 1 + length]).strip() or "Text"
                           for row, length in zip(out, lengths)]
    return memo[(n, seed)]


def _in_context(prefix: str, prompt: str) -> str:
    return f"{prefix}. {prompt}" if prefix else prompt


def _subject_batch(tokenizer: Any, texts: list[str], subjects: list[str]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Left-padded tokens, mask, the subject's last position and the last position of each text."""
    tokens, mask = tokenizer.batch(texts, padding_side="left")
    pad = mask.shape[1] - mask.sum(1)
    last_subject = torch.tensor([subject_span(tokenizer, t, s)[1] - 1 for t, s in zip(texts, subjects)])
    return tokens, mask, last_subject + pad, torch.full((len(texts),), tokens.shape[1] - 1)


# ----- which edits ---------------------------------------------------------------------------------


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


# ----- making and scoring the edits ----------------------------------------------------------------


class EditRun(NamedTuple):
    prompts: pd.DataFrame  # one row per (edit, prompt, condition): p_true, p_new
    edits: pd.DataFrame  # one row per edit
    generations: pd.DataFrame  # continuations before and after, for the first few edits
    seconds: dict


def edit_facts(model: Any, known_table: pd.DataFrame, layer: int, *, n_edits: int = 50, seed: int = 0,
               settings: EditSettings = EditSettings(), relations: Mapping[str, Relation] = RELATIONS) -> EditRun:
    """``n_edits`` ROME edits at ``layer``, each applied alone and undone, scored on the unedited and edited model."""
    tokenizer, clock = model.tokenizer, {}
    tic = time.perf_counter()
    C = edit_covariance(model, layer, settings)
    clock["covariance"] = time.perf_counter() - tic
    plan = plan_edits(tokenizer, known_table, n_edits, seed, settings.n_neighbours, relations)
    if not plan:
        raise ValueError("no fact to edit: the known table needs a relation with two known facts and a "
                         "single-token object to rewrite to")
    tic = time.perf_counter()
    prefixes = [""] + context_prefixes(model, settings.n_contexts, seed)
    keys = _subject_keys(model, plan, prefixes, layer, relations)
    values, value_info = _values(model, plan, prefixes, layer, settings, relations)
    clock["keys_and_values"] = time.perf_counter() - tic

    tic = time.perf_counter()
    W_out, b_out = model.blocks[layer].mlp.W_out.detach(), model.blocks[layer].mlp.b_out
    b_out = None if b_out is None else b_out.detach()
    asked = [_requests(tokenizer, i, edit, relations) for i, edit in enumerate(plan)]
    flat = [r for requests in asked for r in requests]
    unedited = _probabilities(model, flat)
    shares = _update_shares(model, layer, C, keys, flat)
    rows, per_edit, deltas, done = [], [], [], 0
    for i, requests in enumerate(tqdm(asked, desc=f"ROME edits at layer {layer}", leave=False)):
        delta = rome_update(W_out, b_out, C, keys[i], values[i])
        deltas.append(delta)
        with edited(model, layer, delta):
            after = _probabilities(model, requests)
        for condition, probs in (("unedited", unedited[done : done + len(requests)]), ("edited", after)):
            rows += [dict(r, condition=condition, p_true=p_true, p_new=p_new, top=int(top), update_share=share)
                     for r, (p_true, p_new, top), share in zip(requests, probs, shares[done : done + len(requests)])]
        done += len(requests)
        per_edit.append({"delta_norm": float(delta.norm()), **value_info[i]})
    clock["scoring"] = time.perf_counter() - tic
    prompts = pd.DataFrame(rows).drop(columns=["true_id", "new_id", "prompt_subject"])
    tic = time.perf_counter()
    generations = _generations(model, plan[: settings.n_generation], deltas, layer, settings, relations)
    clock["generation"] = time.perf_counter() - tic
    return EditRun(prompts, _edit_table(prompts, plan, per_edit), generations, clock)


def rome_edit(model: Any, fact: Fact, new_object: str, layer: int, *, seed: int = 0,
              settings: EditSettings = EditSettings(),
              relations: Mapping[str, Relation] = RELATIONS) -> Float[Tensor, "d_mlp d_model"]:
    """The rank-one update of ``blocks.{layer}.mlp.W_out`` that rewrites ``fact`` to ``new_object``, made as
    :func:`edit_facts` makes each edit; apply it with ``interp.editing.edited(model, layer, delta)``.

    ``new_object`` must be a single token after a space (a clear ``ValueError`` otherwise), and
    the subject must occur in the relation's main-template prompt.
    """
    object_token(model.tokenizer, new_object, single=True)
    if fact.relation not in relations:
        raise ValueError(f"relation {fact.relation!r} has no templates; known: {sorted(relations)}")
    plan = [Edit(fact, new_object, ())]
    prefixes = [""] + context_prefixes(model, settings.n_contexts, seed)
    key = _subject_keys(model, plan, prefixes, layer, relations)[0]
    value = _values(model, plan, prefixes, layer, settings, relations)[0][0]
    b_out = model.blocks[layer].mlp.b_out
    return rome_update(model.blocks[layer].mlp.W_out.detach(), None if b_out is None else b_out.detach(),
                       edit_covariance(model, layer, settings), key, value)


def _subject_keys(model: Any, plan: list[Edit], prefixes: list[str], layer: int,
                  relations: Mapping[str, Relation], batch_size: int = 64) -> Float[Tensor, "edit d_mlp"]:
    """``k*`` of each edit: its main-template prompt's key at the subject's last token, averaged over the contexts."""
    texts = [_in_context(prefix, relations[e.fact.relation].main.format(e.fact.subject))
             for e in plan for prefix in prefixes]
    subjects = [e.fact.subject for e in plan for _ in prefixes]
    keys = []
    for start in range(0, len(texts), batch_size):
        tokens, mask, key_pos, _ = _subject_batch(model.tokenizer, texts[start : start + batch_size],
                                                  subjects[start : start + batch_size])
        keys.append(mlp_keys(model, tokens, layer, mask)[torch.arange(len(tokens)), key_pos])
    return torch.cat(keys).reshape(len(plan), len(prefixes), -1).mean(1)


def _values(model: Any, plan: list[Edit], prefixes: list[str], layer: int, settings: EditSettings,
            relations: Mapping[str, Relation]) -> tuple[Float[Tensor, "edit d_model"], list[dict]]:
    """``v*`` of each edit (ROME eq. 4), ``edits_per_batch`` edits optimised together.

    A batch runs from its earliest subject on, so edits are batched with others whose main
    template leaves about as many tokens after the subject."""
    def tail(edit: Edit) -> int:
        prompt = relations[edit.fact.relation].main.format(edit.fact.subject)
        return len(model.tokenizer.encode(prompt)) - subject_span(model.tokenizer, prompt, edit.fact.subject)[1]

    order = sorted(range(len(plan)), key=lambda i: (tail(plan[i]), i))
    values = torch.zeros(len(plan), model.cfg.d_model, dtype=model.blocks[layer].mlp.W_out.dtype)
    info: list[dict] = [{} for _ in plan]
    size = settings.edits_per_batch
    batches = [order[start : start + size] for start in range(0, len(plan), size)]
    for batch in tqdm(batches, desc=f"ROME values at layer {layer}", leave=False):
        texts, subjects, new, group = [], [], [], []
        for g, edit in enumerate(plan[i] for i in batch):
            prompt = relations[edit.fact.relation].main.format(edit.fact.subject)
            rewrite = [_in_context(prefix, prompt) for prefix in prefixes[: settings.n_value_contexts]]
            texts += rewrite + [_in_context(prefixes[1], f"{edit.fact.subject} is a")]  # the essence prompt
            subjects += [edit.fact.subject] * (len(rewrite) + 1)
            new += [object_token(model.tokenizer, edit.new, single=True)] * len(rewrite) + [-1]
            group += [g] * (len(rewrite) + 1)
        tokens, mask, key_pos, answer_pos = _subject_batch(model.tokenizer, texts, subjects)
        reached: dict = {}
        values[batch] = target_values(model, tokens, key_pos, answer_pos, torch.tensor(new), torch.tensor(group), layer,
                                      attention_mask=mask, steps=settings.steps, lr=settings.lr,
                                      kl_weight=settings.kl_weight, weight_decay=settings.weight_decay,
                                      target_probability=settings.target_probability,
                                      clamp_norm_factor=settings.clamp_norm_factor, info=reached)
        for i, steps, p_new in zip(batch, reached["steps"], reached["p_new"]):
            info[i] = {"value_steps": steps, "p_new_at_value": p_new}
    return values, info


def _update_shares(model: Any, layer: int, C: Tensor, keys: Tensor, requests: list[dict],
                   batch_size: int = 64) -> np.ndarray:
    """How much of its edit each prompt receives at its subject's last token: ``k^T C^-1 k* / k*^T C^-1 k*``.

    The rank-one update adds this times ``v* - W k*`` to the MLP output there (ROME eq. 2):
    1 for the key ``k*`` itself, near 0 for a key the covariance finds unrelated to it.
    """
    solved = torch.linalg.solve(C.double(), keys.double().T).T  # [edit d_mlp]: C^-1 k*
    norms = (solved * keys.double()).sum(-1)
    out = []
    for start in range(0, len(requests), batch_size):
        chunk = requests[start : start + batch_size]
        tokens, mask, key_pos, _ = _subject_batch(model.tokenizer, [r["prompt"] for r in chunk],
                                                  [r["prompt_subject"] for r in chunk])
        k = mlp_keys(model, tokens, layer, mask)[torch.arange(len(chunk)), key_pos].double()
        edit = torch.tensor([r["edit"] for r in chunk])
        out.append(((k * solved[edit]).sum(-1) / norms[edit]).numpy())
    return np.concatenate(out)


def _requests(tokenizer: Any, index: int, edit: Edit, relations: Mapping[str, Relation]) -> list[dict]:
    """The prompts an edit is scored on: its own (main template), its paraphrases (the other templates)
    and its neighbourhood (other subjects, main template), each with the object whose probability is compared."""
    fact, templates = edit.fact, relations[edit.fact.relation].templates
    new_id = object_token(tokenizer, edit.new, single=True)
    base = {"edit": index, "subject": fact.subject, "relation": fact.relation, "old": fact.object, "new": edit.new}
    asked = [("edit", 0, fact)] + [("paraphrase", t, fact) for t in range(1, len(templates))] \
        + [("neighbour", 0, other) for other in edit.neighbours]
    out = []
    for kind, template, about in asked:
        prompt = templates[template].format(about.subject)
        out.append({**base, "kind": kind, "template": template, "prompt": prompt, "object": about.object,
                    "prompt_subject": about.subject,
                    "subject_first": subject_span(tokenizer, prompt, about.subject)[0] == 0,
                    "true_id": object_token(tokenizer, about.object), "new_id": new_id})
    return out


_LAST_ONLY: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()


def _next_token_logits(model: Any, tokens: Tensor, mask: Tensor) -> Float[Tensor, "batch d_vocab"]:
    """The last position's logits, the unembedding run there alone (a fifth of SmolLM2's forward per
    position) where that reproduces the model's own logits (checked on the first batch of each model)."""
    n_layers = model.cfg.n_layers
    if _LAST_ONLY.get(model, True):
        resid = model(tokens, attention_mask=mask, stop_at_layer=n_layers)[:, -1:]
        logits = model(resid, start_at_layer=n_layers)[:, -1].float()
        if model not in _LAST_ONLY:
            _LAST_ONLY[model] = reproduces(logits, model(tokens, attention_mask=mask)[:, -1].float())
        if _LAST_ONLY[model]:
            return logits
    return model(tokens, attention_mask=mask)[:, -1].float()


@torch.no_grad()
def _probabilities(model: Any, requests: list[dict], batch_size: int = 64) -> np.ndarray:
    """[request 3]: the next-token probability of each request's ``true_id`` and ``new_id``, and the most
    likely next token (each prompt run once)."""
    prompts = list(dict.fromkeys(r["prompt"] for r in requests))
    where = {p: i for i, p in enumerate(prompts)}
    ids = torch.tensor([[r["true_id"], r["new_id"]] for r in requests])
    rows = torch.tensor([where[r["prompt"]] for r in requests])
    out = torch.zeros(len(requests), 3, dtype=torch.float64)
    for start in range(0, len(prompts), batch_size):
        tokens, mask = model.tokenizer.batch(prompts[start : start + batch_size], padding_side="left")
        probs = torch.softmax(_next_token_logits(model, tokens, mask), -1)
        mine = (rows >= start) & (rows < start + len(tokens))
        out[mine, :2] = probs[rows[mine, None] - start, ids[mine]].double()
        out[mine, 2] = probs.argmax(-1)[rows[mine] - start].double()
    return out.numpy()


def _generations(model: Any, plan: list[Edit], deltas: list[Tensor], layer: int, settings: EditSettings,
                 relations: Mapping[str, Relation]) -> pd.DataFrame:
    """Greedy continuations of two prompts per edit, unedited and edited: the held-out template, and an open one."""
    rows = []
    for edit, delta in zip(plan, deltas):
        prompts = [relations[edit.fact.relation].held_out.format(edit.fact.subject),
                   f"Here is a short text about {edit.fact.subject}:"]
        before = generate(model, prompts, max_new_tokens=settings.generation_tokens, temperature=0)
        with edited(model, layer, delta):
            after = generate(model, prompts, max_new_tokens=settings.generation_tokens, temperature=0)
        for prompt, b, a in zip(prompts, before, after):
            b, a = (_one_line(text[len(prompt):] if text.startswith(prompt) else text) for text in (b, a))
            rows.append({"subject": edit.fact.subject, "old": edit.fact.object, "new": edit.new, "prompt": prompt,
                         "unedited": b, "edited": a, "new_in_edited": edit.new.lower() in a.lower(),
                         "old_in_edited": edit.fact.object.lower() in a.lower()})
    return pd.DataFrame(rows)


def _one_line(text: str) -> str:
    """A continuation for a table cell: line breaks shown as the return sign, not breaking the row."""
    return " ⏎ ".join(line.strip() for line in text.strip().splitlines())


def _edit_table(prompts: pd.DataFrame, plan: list[Edit], per_edit: list[dict]) -> pd.DataFrame:
    """One row per edit: the fact, the new object, its probabilities on the edit prompt before and after, its scores."""
    own = prompts[prompts.kind == "edit"].pivot_table(index="edit", columns="condition", values=["p_true", "p_new"])
    scores = counterfact_scores(prompts)
    edited_scores = scores[scores.condition == "edited"].set_index("edit")
    kept = neighbours_kept(prompts)
    rows = []
    for i, (edit, extra) in enumerate(zip(plan, per_edit)):
        rows.append({"subject": edit.fact.subject, "relation": edit.fact.relation, "old": edit.fact.object,
                     "new": edit.new, "p_new_before": own.loc[i, ("p_new", "unedited")],
                     "p_old_before": own.loc[i, ("p_true", "unedited")], "p_new_after": own.loc[i, ("p_new", "edited")],
                     "p_old_after": own.loc[i, ("p_true", "edited")], "PS": edited_scores.loc[i, "PS"],
                     "NS": edited_scores.loc[i, "NS"], "neighbours_kept": kept.get(i, np.nan), **extra})
    return pd.DataFrame(rows)


# ----- the scores ------------------------------------------------------------------------------------


def counterfact_scores(prompts: pd.DataFrame) -> pd.DataFrame:
    """Per edit and condition, CounterFact's scores from per-prompt probabilities (fractions, not %).

    ``prompts``: one row per prompt with ``edit condition kind p_true p_new`` (``kind``: edit,
    paraphrase or neighbour; ``p_true``: the old object's probability, for a neighbour its own
    object's). ES / PS: share of edit / paraphrase prompts with ``p_new > p_true``; NS: share
    of neighbour prompts with ``p_true > p_new``; EM / PM: mean ``p_new - p_true`` there; NM:
    mean ``p_true - p_new`` on the neighbours. A score with no prompt of its kind is NaN.
    """
    wins = prompts.assign(new_wins=(prompts.p_new > prompts.p_true).astype(float),
                          margin=prompts.p_new - prompts.p_true)
    by = wins.groupby(["edit", "condition", "kind"])[["new_wins", "margin"]].mean().unstack("kind")

    def column(stat: str, kind: str) -> pd.Series:
        return by[(stat, kind)] if (stat, kind) in by.columns else pd.Series(np.nan, index=by.index)

    out = pd.DataFrame({"ES": column("new_wins", "edit"), "PS": column("new_wins", "paraphrase"),
                        "NS": 1 - column("new_wins", "neighbour"), "EM": column("margin", "edit"),
                        "PM": column("margin", "paraphrase"), "NM": -column("margin", "neighbour")})
    return out.reset_index()


def neighbours_kept(prompts: pd.DataFrame) -> pd.Series:
    """Per edit, the share of its neighbourhood prompts whose most likely next token the edit left unchanged
    (stricter than NS, which only asks that the new object not overtake the neighbour's own)."""
    neighbours = prompts[prompts.kind == "neighbour"]
    wide = neighbours.pivot_table(index=["edit", "prompt"], columns="condition", values="top")
    return (wide["edited"] == wide["unedited"]).groupby("edit").mean().rename("neighbours_kept")


def mean_interval(values: Sequence[float], proportion: bool = False, lower: float = -np.inf,
                  upper: float = np.inf) -> tuple[float, float, float]:
    """Mean and 95% interval over edits: Wilson's for a share of edits (``proportion``: 0/1 values), else
    Student's t cut to ``[lower, upper]`` (the range the score can take; zero width when every edit
    scores the same)."""
    x = np.asarray([v for v in values if not np.isnan(v)], dtype=float)
    if not len(x):
        return np.nan, np.nan, np.nan
    mean, n = float(x.mean()), len(x)
    if proportion:
        z = 1.959964
        centre = (mean + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(mean * (1 - mean) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return mean, centre - half, centre + half
    if n < 2:
        return mean, np.nan, np.nan
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return mean, max(mean - half, lower), min(mean + half, upper)


def summarise_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per score and condition: mean over edits and its 95% interval, in % (as ROME reports them)."""
    rows = []
    for score in SCORES:
        for condition in ("unedited", "edited"):
            values = scores.loc[scores.condition == condition, score]
            mean, low, high = mean_interval(values.tolist(), proportion=score == "ES",
                                            lower=0.0 if score in ("PS", "NS") else -1.0, upper=1.0)
            rows.append({"score": score, "condition": condition, "mean": 100 * mean, "low": 100 * low,
                         "high": 100 * high, "n_edits": int(values.notna().sum())})
    return pd.DataFrame(rows)


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


def plot_scores(summary: pd.DataFrame) -> plt.Figure:
    """CounterFact's scores, unedited and edited, with 95% intervals over edits; ROME's GPT-2 XL scores as diamonds."""
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4), gridspec_kw={"width_ratios": [1, 1]})
    colours = {"unedited": "#9e9e9e", "edited": "#1f77b4"}
    for ax, scores, label in ((axes[0], ("ES", "PS", "NS"), "score (%)"),
                              (axes[1], ("EM", "PM", "NM"), "magnitude (percentage points)")):
        for j, condition in enumerate(("unedited", "edited")):
            sub = summary[summary.condition == condition].set_index("score").loc[list(scores)]
            x = np.arange(len(scores)) + (j - 0.5) * 0.38
            err = np.vstack([sub["mean"] - sub["low"], sub["high"] - sub["mean"]]).clip(min=0)
            ax.bar(x, sub["mean"], width=0.36, color=colours[condition], label=condition,
                   yerr=np.nan_to_num(err), capsize=3)
        reference = [ROME_GPT2_XL.get(s, np.nan) for s in scores]
        if not np.isnan(reference).all():
            ax.scatter(np.arange(len(scores)) + 0.19, reference, marker="D", color="black", zorder=3,
                       label="GPT-2 XL + ROME (Meng et al. 2022)")
        ax.set_xticks(np.arange(len(scores)), scores)
        ax.set_ylabel(label)
        ax.axhline(0, color="grey", lw=0.5)
    axes[0].set_ylim(0, 105)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


# ----- the report section ------------------------------------------------------------------------------


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
