"""Computations of the context analysis: pure functions returning tidy DataFrames."""

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from interp.activations import collect_activations
from interp.hook_names import act_name
from interp.lens import lens_names
from interp.probing import probe_hooks


@dataclass(frozen=True)
class Sentences:
    """Tokenised sentences of one ambiguous word, padded to one length."""

    word: str
    text: list[str]
    sense: np.ndarray           # (batch,) sense names
    input_ids: torch.Tensor     # (batch, pos)
    attention_mask: torch.Tensor
    position: torch.Tensor      # (batch,) position of the ambiguous token
    previous: np.ndarray        # (batch,) the token right before it (the control task's type)


def tokenise(tokenizer, word: str, senses: dict[str, list[str]], per_sense: int | None) -> Sentences:
    """Tokenise every sentence (first ``per_sense`` of each sense) and locate the ambiguous word's token."""
    text, sense = [], []
    for name, sentences in senses.items():
        chosen = sentences if per_sense is None else sentences[:per_sense]
        text += chosen
        sense += [name] * len(chosen)
    batch = tokenizer(text, return_tensors="pt", padding=True)
    word_id = tokenizer.convert_tokens_to_ids(word)
    hits = batch["input_ids"] == word_id
    if not (hits.sum(dim=1) == 1).all():
        bad = [t for t, n in zip(text, hits.sum(dim=1).tolist()) if n != 1]
        raise ValueError(f"each sentence must contain the token {word!r} exactly once; fix: {bad}")
    position = hits.int().argmax(dim=1)
    previous = batch["input_ids"][torch.arange(len(text)), position - 1].numpy()
    return Sentences(word, text, np.array(sense), batch["input_ids"], batch["attention_mask"], position, previous)


def layer_hooks(n_layers: int) -> dict[str, str]:
    """Layer label -> hook: the embedding output (after LayerNorm), then each block's residual output."""
    return dict(zip(["embed"] + [str(layer + 1) for layer in range(n_layers)], lens_names(n_layers)))


def token_vectors(model, sentences: Sentences, hooks: dict[str, str], batch_size: int) -> dict[str, np.ndarray]:
    """The ambiguous token's residual vector at every layer: ``{layer label: (batch, d_model)}``."""
    acts = collect_activations(model, sentences.input_ids, list(hooks.values()), batch_size=batch_size,
                               positions=sentences.position, batched_kwargs={"attention_mask": sentences.attention_mask})
    return {label: acts[hook] for label, hook in hooks.items()}


def sense_probes(vectors: dict[str, np.ndarray], sentences: Sentences, cv: int, seed: int) -> pd.DataFrame:
    """Probe accuracy of the sense per layer, with the previous-token control task."""
    df = probe_hooks(vectors, sentences.sense, types=sentences.previous, cv=cv, seed=seed)
    df = df.rename(columns={"hook": "layer"})
    df.insert(0, "word", sentences.word)
    df.insert(2, "depth", range(len(df)))
    return df


def sense_cosines(vectors: dict[str, np.ndarray], sentences: Sentences) -> pd.DataFrame:
    """Mean cosine between the token's vectors in sentences of the same sense and of different senses, per layer."""
    rows = []
    same = sentences.sense[:, None] == sentences.sense[None, :]
    off_diagonal = ~np.eye(len(same), dtype=bool)
    for depth, (label, X) in enumerate(vectors.items()):
        unit = X / np.linalg.norm(X, axis=1, keepdims=True)
        cos = unit @ unit.T
        rows.append({"word": sentences.word, "layer": label, "depth": depth, "pairs": "within sense",
                     "cosine": float(cos[same & off_diagonal].mean())})
        rows.append({"word": sentences.word, "layer": label, "depth": depth, "pairs": "across senses",
                     "cosine": float(cos[~same].mean())})
    return pd.DataFrame(rows)


def attention_from_word(model, sentences: Sentences, tokenizer) -> pd.DataFrame:
    """Where the ambiguous token attends, per layer, head and sentence, by key category and token.

    Long format: ``word, sense, sentence, layer, head, key_pos, key_token, category, attention``;
    categories: ``special`` ([CLS]/[SEP]), ``self``, ``context``.
    """
    names = [act_name("pattern", layer) for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(sentences.input_ids, attention_mask=sentences.attention_mask,
                                        names_filter=lambda name: name in names)
    special = set(tokenizer.all_special_ids)
    rows = []
    for layer, name in enumerate(names):
        pattern = cache[name]  # (batch, head_index, query_pos, key_pos)
        from_word = pattern[torch.arange(len(pattern)), :, sentences.position]  # (batch, head_index, key_pos)
        for b in range(len(pattern)):
            n_tokens = int(sentences.attention_mask[b].sum())
            ids = sentences.input_ids[b, :n_tokens].tolist()
            tokens = tokenizer.convert_ids_to_tokens(ids)
            category = ["self" if k == int(sentences.position[b]) else "special" if ids[k] in special else "context"
                        for k in range(n_tokens)]
            weights = from_word[b, :, :n_tokens].numpy()
            for head in range(weights.shape[0]):
                for k in range(n_tokens):
                    rows.append((sentences.word, sentences.sense[b], b, layer + 1, head, k, tokens[k], category[k],
                                 float(weights[head, k])))
    return pd.DataFrame(rows, columns=["word", "sense", "sentence", "layer", "head", "key_pos", "key_token",
                                       "category", "attention"])


def context_share(attention: pd.DataFrame) -> pd.DataFrame:
    """Mean share of the word's attention on context tokens (not itself, not [CLS]/[SEP]) per layer and head."""
    per_sentence = (attention.assign(on_context=attention["attention"].where(attention["category"] == "context", 0.0))
                    .groupby(["word", "layer", "head", "sentence"], as_index=False, sort=False)["on_context"].sum())
    return per_sentence.groupby(["word", "layer", "head"], as_index=False, sort=False)["on_context"].mean().rename(
        columns={"on_context": "context_share"})


def top_context_tokens(attention: pd.DataFrame, n_heads: int = 3, n_tokens: int = 5) -> pd.DataFrame:
    """For the heads that attend most to context, the context tokens they weight most (summed over sentences)."""
    share = context_share(attention)
    rows = []
    for word, shares in share.groupby("word", sort=False):
        best = shares.nlargest(n_heads, "context_share")
        for head in best.itertuples():
            sel = attention[(attention["word"] == word) & (attention["layer"] == head.layer) &
                            (attention["head"] == head.head) & (attention["category"] == "context")]
            totals = sel.groupby(["sense", "key_token"], as_index=False)["attention"].sum()
            for sense, part in totals.groupby("sense", sort=False):
                top = part.nlargest(n_tokens, "attention")
                rows.append({"word": word, "layer": head.layer, "head": head.head,
                             "context_share": head.context_share, "sense": sense,
                             "top_context_tokens": ", ".join(top["key_token"])})
    return pd.DataFrame(rows)


def digit_probes(seed: int, cv: int, epochs: int | None) -> tuple[pd.DataFrame, float]:
    """Probe a trained digit network's pixels and hidden layers for the digit; returns the table and test accuracy."""
    from models import zoo
    from models.data.digits import load_digits_split

    data = load_digits_split()
    net = zoo.load("digit_network", seed=seed, epochs=epochs)  # the digits analysis's ReLU network when epochs agree
    history = zoo.history("digit_network", seed=seed, epochs=epochs)["epochs"]
    hooks = [f"layers.{i}.hook_post" for i in range(len(net.sizes) - 2)]  # the hidden layers
    acts = collect_activations(net, data.x_test, hooks, batch_size=256)
    vectors = {"pixels": data.x_test.numpy(), **{f"hidden {i + 1}": acts[h] for i, h in enumerate(hooks)}}
    df = probe_hooks(vectors, data.y_test.numpy(), cv=cv, seed=seed).rename(columns={"hook": "representation"})
    df.insert(1, "hook", ["(input)", *hooks])
    return df, float(history[-1]["test_accuracy"])


def cosine_gap(cosines: pd.DataFrame) -> pd.DataFrame:
    """Within-sense minus across-sense cosine per word and layer."""
    wide = cosines.pivot_table(index=["word", "depth", "layer"], columns="pairs", values="cosine").reset_index()
    wide["gap"] = wide["within sense"] - wide["across senses"]
    order = {word: i for i, word in enumerate(dict.fromkeys(cosines["word"]))}  # keep the configured word order
    return wide.sort_values(["word", "depth"], key=lambda c: c.map(order) if c.name == "word" else c,
                            kind="stable", ignore_index=True)
