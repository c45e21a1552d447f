"""Making the ROME edits: ``k*``, ``v*`` and the rank-one update of each, applied alone, measured and undone.

Example::

    from analyses.facts_lm.counterfact import EditSettings
    from analyses.facts_lm.edit_runs import edit_facts, rome_edit

    run = edit_facts(model, known_table, layer=4, n_edits=10, seed=0, settings=EditSettings.quick())
    run.prompts    # one row per (edit, prompt, condition): p_true, p_new, top, update_share
    delta = rome_edit(model, fact, "Rome", layer=4)   # apply with interp.editing.edited(model, 4, delta)

The rank-one update of ``blocks.{layer}.mlp.W_out`` (:mod:`interp.editing`) uses ``C``
(:func:`analyses.facts_lm.edit_inputs.edit_covariance`) and

- ``k*``: the key at the subject's last token of the main-template prompt, averaged over
  the bare prompt and ``n_contexts`` prefixed copies (:func:`analyses.facts_lm.edit_inputs.context_prefixes`);
- ``v*`` from :func:`interp.editing.target_values` on the bare prompt and the first
  prefixed ones, with ROME's "essence" KL term on ``"{prefix}. {subject} is a"`` (ROME:
  ``"{subject} is a"``; SmolLM2 has no BOS token, so there the subject would be the first
  token, whose key is unlike the subject's key anywhere else and which the edit would not move).

Each edit is scored on its own prompt, its paraphrases (the relation's other templates) and
its neighbourhood, on the unedited and the edited model (the scores themselves:
:mod:`analyses.facts_lm.edit_scores`); probabilities are of objects' first tokens.
"""

import time
from typing import Any, Mapping, NamedTuple

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor
from tqdm.auto import tqdm

from analyses.facts_lm.counterfact import Edit, EditSettings, plan_edits
from analyses.facts_lm.edit_inputs import context_prefixes, edit_covariance, in_context, subject_batch
from analyses.facts_lm.edit_scores import counterfact_scores, neighbours_kept
from analyses.facts_lm.known import next_token_logits, object_token, subject_span
from interp.editing import edited, mlp_keys, rome_update, target_values
from models.data.known_facts import RELATIONS, Fact, Relation
from models.transformer.sampling import generate


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
    texts = [in_context(prefix, relations[e.fact.relation].main.format(e.fact.subject))
             for e in plan for prefix in prefixes]
    subjects = [e.fact.subject for e in plan for _ in prefixes]
    keys = []
    for start in range(0, len(texts), batch_size):
        tokens, mask, key_pos, _ = subject_batch(model.tokenizer, texts[start : start + batch_size],
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
            rewrite = [in_context(prefix, prompt) for prefix in prefixes[: settings.n_value_contexts]]
            texts += rewrite + [in_context(prefixes[1], f"{edit.fact.subject} is a")]  # the essence prompt
            subjects += [edit.fact.subject] * (len(rewrite) + 1)
            new += [object_token(model.tokenizer, edit.new, single=True)] * len(rewrite) + [-1]
            group += [g] * (len(rewrite) + 1)
        tokens, mask, key_pos, answer_pos = subject_batch(model.tokenizer, texts, subjects)
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
        tokens, mask, key_pos, _ = subject_batch(model.tokenizer, [r["prompt"] for r in chunk],
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
        probs = torch.softmax(next_token_logits(model, tokens, mask), -1)
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
