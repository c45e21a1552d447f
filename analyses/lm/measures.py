"""Measurements of the lm analysis: pure functions of a model (and prompts) returning tidy DataFrames."""

import copy
from typing import Any, Sequence

import pandas as pd
import torch

from interp.hook_names import act_name
from interp.lens import logit_lens as interp_logit_lens
from interp.timing import interleaved_times, paired_speedup
from models.transformer import count_parameters

COMPONENTS = {"embed": "token embedding (tied with the unembedding)", "attn": "attention", "mlp": "MLP (gated)",
              "ln": "RMSNorm gains", "pos_embed": "position embedding (none: rotary)", "unembed": "unembedding (tied)"}


def model_card(model: Any) -> pd.DataFrame:
    """Parameters per component, counted from the config and checked against the built model."""
    counts = count_parameters(model.cfg)
    built = sum(p.numel() for p in model.parameters())
    if counts["total"] != built:
        raise RuntimeError(f"analytic count {counts['total']:,} differs from the model's {built:,} parameters")
    return pd.DataFrame([{"component": COMPONENTS[k], "parameters": counts[k], "share": counts[k] / counts["total"]}
                         for k in COMPONENTS] + [{"component": "total", "parameters": counts["total"], "share": 1.0}])


def answer_token(model: Any, answer: str) -> int:
    """The single token id of ``answer``; an answer of several tokens is an error (say which)."""
    ids = model.tokenizer.encode(answer)
    if len(ids) != 1:
        pieces = model.to_str_tokens(torch.tensor(ids))
        raise ValueError(f"answer {answer!r} is {len(ids)} tokens {pieces}; give its first token only")
    return ids[0]


@torch.no_grad()
def next_tokens(model: Any, panel: Sequence[tuple[str, str]], k: int = 5) -> pd.DataFrame:
    """For each prompt: the top ``k`` next tokens with probabilities, and the expected answer's rank."""
    rows = []
    for prompt, answer in panel:
        probs = model(model.to_tokens(prompt))[0, -1].softmax(-1)
        expected = answer_token(model, answer)
        rank = int((probs > probs[expected]).sum()) + 1
        top = probs.topk(k)
        rows.append({
            "prompt": prompt, "expected": answer.strip(), "p_expected": float(probs[expected]), "rank_expected": rank,
            "correct": rank == 1,
            "top": ", ".join(f"{model.to_str_tokens([i])[0]!r} {p:.2f}"
                             for p, i in zip(top.values.tolist(), top.indices.tolist())),
        })
    return pd.DataFrame(rows)


@torch.no_grad()
def logit_lens(model: Any, prompt: str, answer: str) -> pd.DataFrame:
    """The logit lens (nostalgebraist 2020) at the last position: the residual stream after each block
    (layer -1: the embedding), through the final RMSNorm and the unembedding. One row per layer."""
    tokens = model.to_tokens(prompt)
    expected = answer_token(model, answer)
    n = model.cfg.n_layers
    probs = interp_logit_lens(model, tokens, atol=1e-5)[:, -1]  # [layer d_vocab], checked against the output
    rows = []
    for i, layer in enumerate(range(-1, n)):
        top = int(probs[i].argmax())
        rows.append({"prompt": prompt, "answer": answer.strip(), "layer": layer, "p_answer": float(probs[i, expected]),
                     "rank_answer": int((probs[i] > probs[i, expected]).sum()) + 1,
                     "top_token": model.to_str_tokens([top])[0], "p_top": float(probs[i, top])})
    return pd.DataFrame(rows)


def lens_summary(lens: pd.DataFrame) -> pd.DataFrame:
    """Per prompt: the first layer where the answer is the top token, and the layer from which it stays top."""
    rows = []
    for prompt, df in lens.groupby("prompt", sort=False):
        top = df["rank_answer"].eq(1).to_numpy()
        layers = df["layer"].to_numpy()
        stays = next((int(layers[i]) for i in range(len(top)) if top[i:].all()), None)
        rows.append({"prompt": prompt, "answer": df["answer"].iloc[0],
                     "first_top_layer": int(layers[top.argmax()]) if top.any() else None,
                     "stays_top_from": stays, "p_final": float(df["p_answer"].iloc[-1])})
    return pd.DataFrame(rows)


@torch.no_grad()
def head_scores(model: Any, length: int = 40, batch: int = 4, seed: int = 0) -> pd.DataFrame:
    """Previous-token and induction scores of every head (Olsson et al. 2022) on random tokens repeated twice.

    ``prev_token``: mean attention from each position to the one before it. ``induction``:
    in the second copy, mean attention from a token to the token *after* its earlier
    occurrence (what an induction head attends to).
    """
    generator = torch.Generator().manual_seed(seed)
    half = torch.randint(1000, model.cfg.d_vocab - 1000, (batch, length), generator=generator)
    tokens = torch.cat([half, half], dim=1)
    names = [act_name("pattern", L) for L in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens, names_filter=names)
    rows = []
    query = torch.arange(length + 1, 2 * length)  # second copy, from its second token
    for L, name in enumerate(names):
        pattern = cache[name]  # [batch head_index query_pos key_pos]
        prev = pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=(0, -1))
        induction = pattern[:, :, query, query - length + 1].mean(dim=(0, -1))
        rows += [{"layer": L, "head": h, "prev_token": float(prev[h]), "induction": float(induction[h])}
                 for h in range(pattern.shape[1])]
    return pd.DataFrame(rows)


@torch.no_grad()
def attention_patterns(model: Any, prompt: str, heads: Sequence[tuple[int, int]]) -> pd.DataFrame:
    """The attention pattern of each (layer, head) on ``prompt``, long format (query, key, weight)."""
    tokens = model.to_tokens(prompt)
    labels = model.to_str_tokens(tokens)
    _, cache = model.run_with_cache(tokens, names_filter=[act_name("pattern", L) for L, _ in heads])
    rows = []
    for L, h in heads:
        pattern = cache[act_name("pattern", L)][0, h]
        rows += [{"layer": L, "head": h, "query": q, "key": k, "query_token": labels[q], "key_token": labels[k],
                  "weight": float(pattern[q, k])} for q in range(len(labels)) for k in range(q + 1)]
    return pd.DataFrame(rows)


@torch.no_grad()
def equivalence(model: Any, hf_model: Any, prompts: Sequence[str]) -> pd.DataFrame:
    """Per prompt: the largest logit difference from the Hugging Face model holding the same weights, and
    each one's distance from exact arithmetic (our model in float64, equal to Hugging Face's float64
    computation to 1e-9 in the tests): float32 rounding, measured for both."""
    exact = copy.deepcopy(model).double()
    rows = []
    for prompt in prompts:
        tokens = model.to_tokens(prompt)
        ours, theirs, truth = model(tokens), hf_model(tokens).logits, exact(tokens)
        rows.append({"prompt": prompt, "tokens": tokens.shape[1], "max_abs_logit_diff": float((ours - theirs).abs().max()),
                     "ours_vs_float64": float((ours - truth).abs().max()),
                     "hf_vs_float64": float((theirs - truth).abs().max()),
                     "same_top_token": bool(torch.equal(ours.argmax(-1), theirs.argmax(-1)))})
    return pd.DataFrame(rows)


SPEED_ROUNDS = 7  # the fewest rounds with a 95% interval for the median is 6


@torch.no_grad()
def forward_speed(model: Any, hf_model: Any, batch: int = 8, n_pos: int = 64, repeats: int = SPEED_ROUNDS,
                  seed: int = 0) -> tuple[pd.DataFrame, tuple[float, float, float]]:
    """Forward tokens per second of ours and Hugging Face eager (the best of ``repeats`` rounds, each
    once a round in a shuffled order, after a warm-up), and the speed-up ours / theirs as ``(median,
    low, high)`` over rounds with its 95% distribution-free interval (``interp.timing``)."""
    tokens = torch.randint(0, model.cfg.d_vocab, (batch, n_pos), generator=torch.Generator().manual_seed(seed))
    times = interleaved_times({"ours": lambda: model(tokens), "Hugging Face eager": lambda: hf_model(tokens).logits},
                              repeats, seed=seed)
    rows = [{"implementation": name, "seconds": min(seconds), "tokens_per_second": batch * n_pos / min(seconds)}
            for name, seconds in times.items()]
    return pd.DataFrame(rows), paired_speedup(times["ours"], times["Hugging Face eager"])
