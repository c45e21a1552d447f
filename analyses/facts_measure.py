"""Measurements behind the ``facts`` analysis: each a small function returning a tidy DataFrame.

Example::

    from models import zoo
    from analyses.facts_measure import trace_facts, and_gate_table

    model = zoo.load("facts", quick=True)
    traces = trace_facts(model, model.corpus.prompts("train", "sport")[:4], samples=4, window=3, seed=0)

Token positions: the subject model reads ``<bos>`` then one token per word, so word ``i``
of a prompt is token ``i + 1``.
"""

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from interp.editing import edited, key_covariance, rome_update, subject_key, target_value
from interp.neurons import ablation_hooks, and_gate_score, mlp_activations, neuron_logit_attribution
from interp.patching import activation_patching
from interp.tracing import causal_trace, embedding_std
from models.data.facts import Prompt
from models.facts_subject import answer_ids, corpus_of, last_positions, predictions, prompt_tokens


def subject_span(prompt: Prompt) -> tuple[int, int]:
    """Token span of the subject (``<bos>`` shifts words by one)."""
    return prompt.subject_words[0] + 1, prompt.subject_words[1] + 1


def known(model, prompts: list[Prompt]) -> list[Prompt]:
    """The prompts the model answers right (ROME traces only facts the model knows)."""
    return [p for p, guess in zip(prompts, predictions(model, prompts)) if guess == p.answer]


def subject_noise_std(model) -> float:
    """Std of the subject tokens' embeddings over every person (ROME: over many subjects)."""
    corpus = corpus_of(model)
    tokens = model.tokenizer.to_tokens([p.name for p in corpus.people])
    return embedding_std(model, tokens, mask=tokens != model.tokenizer.bos_token_id)


def trace_facts(model, prompts: list[Prompt], *, samples: int, window: int, seed: int,
                noise_scale: float = 3.0) -> pd.DataFrame:
    """Causal traces of every prompt, stacked, with ``fact``, ``template`` and token labels."""
    noise_std = noise_scale * subject_noise_std(model)
    frames = []
    for i, prompt in enumerate(tqdm(prompts, desc="causal tracing", leave=False)):
        tokens = prompt_tokens(model, [prompt])
        answer = model.tokenizer.index[prompt.answer]
        df = causal_trace(model, tokens, subject_span(prompt), answer=answer, noise_std=noise_std,
                          samples=samples, window=window, seed=seed * 100_003 + i)
        labels = ["<bos>"] + prompt.words
        df["token"] = [labels[p] for p in df["pos"]]
        frames.append(df.assign(fact=i, template=prompt.template.id, person=prompt.person.name))
    return pd.concat(frames, ignore_index=True)


def patch_people(model, prompts_a: list[Prompt], prompts_b: list[Prompt]) -> pd.DataFrame:
    """Denoising patching from person A's prompt into person B's (same template), all activations.

    Metric: logit of A's answer minus logit of B's answer at the last token, normalised
    so 0 is the corrupted (B) run and 1 the clean (A) run, averaged over pairs.
    """
    clean, corrupted = prompt_tokens(model, prompts_a), prompt_tokens(model, prompts_b)
    a_ids, b_ids = answer_ids(model, [p.answer for p in prompts_a]), answer_ids(model, [p.answer for p in prompts_b])
    rows = torch.arange(len(prompts_a))

    def logit_diff(logits: Tensor) -> Tensor:
        last = logits[:, -1]
        return (last[rows, a_ids] - last[rows, b_ids]).mean()

    with torch.no_grad():
        clean_value, corrupted_value = logit_diff(model(clean)).item(), logit_diff(model(corrupted)).item()
    frames = []
    for activation in ("resid_pre", "attn_out", "mlp_out", "z"):
        effect = activation_patching(model, clean, corrupted, logit_diff, activation)
        recovered = (effect - corrupted_value) / (clean_value - corrupted_value)
        if activation != "z":
            recovered = recovered[..., None]  # one "head" column (-1) for whole-layer activations
        layer, pos, head = np.meshgrid(*[range(n) for n in recovered.shape], indexing="ij")
        frames.append(pd.DataFrame({"activation": activation, "layer": layer.ravel(), "pos": pos.ravel(),
                                    "head": head.ravel() if activation == "z" else -1,
                                    "recovered": recovered.flatten().numpy()}))
    out = pd.concat(frames, ignore_index=True)
    return out.assign(clean_logit_diff=clean_value, corrupted_logit_diff=corrupted_value)


def name_grid_activations(model) -> tuple[Tensor, list[str], list[str]]:
    """MLP activations at the last name for every (first, last) pair of names: [first last layer d_mlp]."""
    corpus = corpus_of(model)
    firsts, lasts = corpus.first_names(), corpus.last_names()
    tokens = model.tokenizer.to_tokens([f"{f} {l}" for f in firsts for l in lasts])
    acts = mlp_activations(model, tokens, torch.full((len(tokens),), 2))
    return acts.reshape(len(firsts), len(lasts), *acts.shape[1:]), firsts, lasts


def and_gate_scores(model) -> tuple[Tensor, Tensor]:
    """AND-gate score of every neuron for every person: [person layer d_mlp], plus the name grid."""
    corpus = corpus_of(model)
    grid, firsts, lasts = name_grid_activations(model)
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
    """Mean-ablate each person's top AND neurons; probability of the right answer before and after.

    One row per (ablated person, evaluated prompt group): the person's own ``relation``
    fact, the same person's other relations, and everyone else's ``relation`` facts.
    """
    corpus = corpus_of(model)
    prompts = corpus.prompts("train")
    tokens, last = prompt_tokens(model, prompts), last_positions(prompts)
    answers = answer_ids(model, [p.answer for p in prompts])
    rows_ = torch.arange(len(prompts))
    replacement = {layer: grid[:, :, layer].mean((0, 1)) for layer in range(grid.shape[2])}  # mean over name pairs

    def correct_probability(hooks) -> Tensor:
        with torch.no_grad():
            logits = model.run_with_hooks(tokens, fwd_hooks=hooks)[rows_, last]
        return torch.softmax(logits, -1)[rows_, answers]

    base = correct_probability([])
    out = []
    for person in tqdm(corpus.people, desc="ablating AND neurons", leave=False):
        chosen = table[(table.person == person.name) & (table["rank"] <= top_k)]
        neurons: dict[int, list[int]] = {}
        for layer, neuron in zip(chosen.layer, chosen.neuron):
            neurons.setdefault(int(layer), []).append(int(neuron))
        after = correct_probability(ablation_hooks(neurons, replacement))
        groups = {
            "this fact": [i for i, p in enumerate(prompts) if p.person == person and p.relation == relation],
            "same person, other relations": [i for i, p in enumerate(prompts) if p.person == person and p.relation != relation],
            "other people, same relation": [i for i, p in enumerate(prompts) if p.person != person and p.relation == relation],
        }
        for group, index in groups.items():
            if index:
                out.append({"person": person.name, "group": group, "p_before": float(base[index].mean()),
                            "p_after": float(after[index].mean()), "n_prompts": len(index)})
    df = pd.DataFrame(out)
    df["drop"] = df["p_before"] - df["p_after"]
    return df


EDIT_SITES = ("last subject token", "last token")


def edit_facts(model, layer: int, relation: str, n_edits: int, seed: int, v_steps: int = 80,
               site: str = "last subject token") -> pd.DataFrame:
    """ROME edits of ``relation`` for ``n_edits`` people, each applied alone and undone; one row per edit.

    ``site`` is where the key is read: ``"last subject token"`` (ROME's site) or ``"last
    token"`` (where the prompt's next word is predicted). At the subject the person's
    other facts share the edited key, so ``v*`` keeps their distribution (ROME's KL term);
    at the last token they do not (their last-token keys are other keys), so no KL term.
    """
    if site not in EDIT_SITES:
        raise ValueError(f"site must be one of {EDIT_SITES}, got {site!r}")
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
        tokens = prompt_tokens(model, train_prompts)
        k = subject_key(model, tokens, key_positions(train_prompts), layer)
        v = target_value(model, tokens, key_positions(train_prompts), last_positions(train_prompts),
                         model.tokenizer.index[new], layer,
                         keep_tokens=prompt_tokens(model, keep) if keep else None,
                         keep_key_pos=key_positions(keep) if keep else None,
                         keep_answer_pos=last_positions(keep) if keep else None, steps=v_steps, seed=seed)
        p_value = _probability_with_value(model, tokens, key_positions(train_prompts), last_positions(train_prompts),
                                          model.tokenizer.index[new], layer, v)
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
    name = f"blocks.{layer}.hook_mlp_out"
    rows = torch.arange(len(tokens))
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n == name)
        shift = value - cache[name][rows, key_pos].mean(0)

        def move(act: Tensor, hook) -> Tensor:
            act[rows, key_pos] += shift
            return act

        logits = model.run_with_hooks(tokens, fwd_hooks=[(name, move)])
    return float(torch.softmax(logits[rows, answer_pos], -1)[:, answer].mean())
