"""Causal tracing (Meng et al. 2022, "Locating and Editing Factual Associations in GPT", sec. 2.1).

Example::

    from interp.patching import causal_trace, embedding_std, average_indirect_effect

    std = embedding_std(model, subject_tokens)             # over many subjects' embeddings
    df = causal_trace(model, tokens, subject=(0, 2), answer=answer_id, noise_std=3 * std,
                      samples=10, window=3, seed=0)
    df.pivot_table("indirect_effect", "layer", "pos")      # one heatmap per kind

Three runs, as in ROME: the *clean* run; the *corrupted* run, where Gaussian noise (ROME
uses 3 times the standard deviation of subject embeddings) is added to the token
embeddings of the subject, so the model loses track of who the prompt is about; and the
*restored* runs, corrupted except that one state is copied back from the clean run. The
score is the probability of the clean answer (or any ``metric``); a state's *indirect
effect* is ``score(restored) - score(corrupted)``. States are a block's output
(``resid_post``, "hidden state") at one (layer, pos), or the MLP / attention output at
one position over a *window* of neighbouring layers ``[layer - window // 2, layer -
window // 2 + window)`` clipped to the model (ROME's ``trace_important_window``; window 10
for GPT-2 XL's 48 layers).

Each noise draw is shared by every restoration of a fact (as ROME's fixed-seed noise
does), and drawn from a generator seeded by ``seed``: same seed, same numbers. The noised
copies and the restored sites are stacked along the batch, ``max_rows`` rows per forward.
"""

from typing import Any, Callable, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from jaxtyping import Int
from torch import Tensor

from interp.hook_names import TRACE_KINDS, trace_name
from interp.patching.inputs import (check_count, check_metric_value, check_noise_std, check_subject, run_metric,
                                    whole_number)
from interp.patching.restoring import corrupted_run, fast_agrees, noised_scores, noiser, restored_scores, traces_fast

POSITION_GROUPS = (
    "before subject", "first subject token", "middle subject tokens", "last subject token",
    "first subsequent token", "further tokens", "last token",
)


def find_subject(tokens: Sequence[int], subject_tokens: Sequence[int]) -> tuple[int, int]:
    """Half-open ``(start, stop)`` of the last occurrence of ``subject_tokens`` in ``tokens``."""
    tokens, subject_tokens = list(map(int, tokens)), list(map(int, subject_tokens))
    n = len(subject_tokens)
    for start in range(len(tokens) - n, -1, -1):
        if n and tokens[start : start + n] == subject_tokens:
            return start, start + n
    raise ValueError(f"subject tokens {subject_tokens} do not occur in the prompt {tokens}; "
                     "pass the subject exactly as it is tokenized inside the prompt")


def position_group(pos: int, subject: tuple[int, int], n_pos: int) -> str:
    """ROME's token groups (fig. 2), plus the tokens before the subject."""
    start, stop = subject
    if pos == n_pos - 1:
        return "last token"
    if pos < start:
        return "before subject"
    if pos == start:
        return "first subject token"
    if pos == stop - 1:
        return "last subject token"
    if pos < stop:
        return "middle subject tokens"
    return "first subsequent token" if pos == stop else "further tokens"


def window_layers(layer: int, window: int, n_layers: int) -> list[int]:
    """ROME's window around ``layer``: ``[layer - window // 2, layer - window // 2 + window)``, clipped."""
    low = layer - window // 2
    return list(range(max(0, low), min(n_layers, low + window)))


def embedding_std(model: Any, tokens: Int[Tensor, "batch pos"], embed_hook: str = "hook_embed",
                  mask: Optional[Tensor] = None, **forward_kwargs: Any) -> float:
    """Standard deviation of all embedding entries of ``tokens`` (ROME's ``collect_embedding_std``).

    ``mask`` ([batch pos], bool) selects positions, e.g. the subject tokens only.
    """
    captured = {}

    def capture(act: Tensor, hook: Any) -> None:
        captured["embed"] = act.detach()

    with torch.no_grad():
        model.run_with_hooks(tokens, fwd_hooks=[(embed_hook, capture)], **forward_kwargs)
    embed = captured["embed"]
    return float((embed[mask] if mask is not None else embed).float().std())


def answer_probability(answer: int) -> Callable[[Tensor], Tensor]:
    """ROME's score: probability of ``answer`` at the last position, per row."""
    return lambda logits: torch.softmax(logits[:, -1].float(), dim=-1)[:, answer]


def causal_trace(
    model: Any,
    tokens: Int[Tensor, "1 pos"],
    subject: tuple[int, int],
    *,
    noise_std: float,
    answer: Optional[int] = None,
    metric: Optional[Callable[[Tensor], Tensor]] = None,
    kinds: Sequence[str] = ("resid", "mlp", "attn"),
    samples: int = 10,
    window: int = 10,
    seed: int = 0,
    embed_hook: str = "hook_embed",
    output_hook: Optional[str] = None,
    max_rows: int = 1024,
    fast: bool = True,
    **forward_kwargs: Any,
) -> pd.DataFrame:
    """Indirect effect of restoring each (kind, layer, pos) for one prompt; one row per site.

    Give ``answer`` (a token id; score = its probability at the last position) or a
    ``metric`` mapping the output of ``samples`` noised rows ([samples ...], or the
    activation at ``output_hook``) to a ``[samples]`` score. Columns: ``kind layer pos
    group score corrupted clean indirect_effect``; scores average the noise samples.

    ``fast`` (default): run the restored copies through :mod:`interp.patching.restoring` when the
    model honours its shortcuts (checked, with one site of each kind compared to the hooked
    batches on the model's first trace); ``fast=False`` always runs the hooked batches.
    """
    if tokens.ndim == 1:
        tokens = tokens[None]
    if tokens.ndim != 2 or tokens.shape[0] != 1 or tokens.shape[1] == 0:
        raise ValueError(f"trace one prompt at a time: tokens must be [1 pos] with pos >= 1, got {tuple(tokens.shape)}")
    n_pos, n_layers = tokens.shape[1], model.cfg.n_layers
    subject = check_subject(subject, n_pos)
    if (answer is None) == (metric is None):
        raise ValueError("give exactly one of answer (a token id) or metric (output -> [samples] score)")
    if isinstance(kinds, str) or not kinds:
        raise ValueError(f"kinds must be a non-empty sequence of {tuple(TRACE_KINDS)}, got {kinds!r}")
    unknown = [k for k in kinds if k not in TRACE_KINDS]
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; use some of {tuple(TRACE_KINDS)}")
    samples, window, max_rows = (check_count(name, value) for name, value in
                                 (("samples", samples), ("window", window), ("max_rows", max_rows)))
    noise_std = check_noise_std(noise_std)
    if whole_number(seed) is None or not -2**63 <= seed < 2**64:
        raise ValueError(f"seed must be a whole number in [-2**63, 2**64), got {seed!r}")

    names = sorted({trace_name(k, layer) for k in kinds for layer in range(n_layers)})
    with torch.no_grad():
        clean_out, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names, **forward_kwargs)
        if output_hook is not None:
            clean_out = run_metric(model, tokens, [], output_hook, **forward_kwargs)
    if answer is not None and (whole_number(answer) is None or not 0 <= answer < clean_out.shape[-1]):
        raise ValueError(f"answer must be a token id in [0, {clean_out.shape[-1]}), got {answer!r}")
    metric = answer_probability(answer) if metric is None else metric
    clean_score = float(check_metric_value(metric(clean_out), 1, per_example=True)[0])

    # one noise draw per sample, shared by every restoration (ROME reseeds per trace)
    generator = torch.Generator().manual_seed(seed)
    d_embed = cache[names[0]].shape[-1]
    noise = torch.randn(samples, subject[1] - subject[0], d_embed, generator=generator) * noise_std

    # sites: (kind, layer, pos) -> the hook names restored at pos
    sites = [(k, layer, pos) for k in kinds for layer in range(n_layers) for pos in range(n_pos)]
    restores = [  # (hook name, layer) written at pos
        [(trace_name(k, layer), layer)] if k == "resid"
        else [(trace_name(k, other), other) for other in window_layers(layer, window, n_layers)]
        for k, layer, _ in sites
    ]
    positions = [pos for _, _, pos in sites]
    scores = None
    if fast and output_hook is None and not forward_kwargs:
        out, receiver = corrupted_run(model, tokens, noise, subject, embed_hook)
        _check_finite(out, clean_out, noise_std)  # before the checks of traces_fast, which are kept per model
        if traces_fast(model, receiver, out, metric) and fast_agrees(model, tokens, out, receiver, cache, sites,
                                                                     restores, noise, subject, metric, embed_hook):
            with torch.no_grad():
                corrupted_score = float(check_metric_value(metric(out), samples, per_example=True).float().mean())
            scores = restored_scores(model, receiver, out, cache, restores, positions, metric, subject[0], max_rows)
    if scores is None:
        corrupted_score = float(noised_scores(model, tokens, [[]], [0], noise, subject, cache, metric, embed_hook,
                                              output_hook, max_rows, forward_kwargs)[0])
        _check_finite(torch.tensor(corrupted_score), torch.tensor(clean_score), noise_std)
        scores = noised_scores(model, tokens, [[name for name, _ in r] for r in restores], positions, noise, subject,
                               cache, metric, embed_hook, output_hook, max_rows, forward_kwargs)
    df = pd.DataFrame(sites, columns=["kind", "layer", "pos"])
    df["group"] = [position_group(pos, subject, n_pos) for pos in df["pos"]]
    df["score"] = scores.numpy().astype(np.float64)
    df["corrupted"], df["clean"] = corrupted_score, clean_score
    df["indirect_effect"] = df["score"] - corrupted_score
    return df


def _check_finite(noised: Tensor, clean: Tensor, noise_std: float) -> None:
    """Noise so large that the model overflows (float32 LayerNorms square it) gives NaN scores: say so."""
    if torch.isfinite(clean).all() and not torch.isfinite(noised).all():
        raise ValueError(f"noise_std={noise_std:g} overflows the model's activations (the noised run is not "
                         "finite); use a smaller noise_std, such as 3 * embedding_std(model, subject_tokens)")


def trace_site_by_site(model: Any, tokens: Int[Tensor, "1 pos"], subject: tuple[int, int], noise: Tensor, answer: int,
                       sites: Sequence[tuple[str, int, int]], window: int = 10,
                       embed_hook: str = "hook_embed") -> tuple[list[float], float]:
    """ROME's procedure written out, for checks and benchmarks: one forward per restored site, the noise
    samples (``noise``: ``[samples subject_len d_model]``) as its batch, hooks doing the noising and the
    restoring. Returns the mean answer probability of each ``(kind, layer, pos)`` in ``sites``, and the
    corrupted run's. Works on any hooked model (a ``TransformerBridge`` too)."""
    samples, n_layers = noise.shape[0], model.cfg.n_layers
    names = sorted({trace_name(kind, layer) for kind, _, _ in sites for layer in range(n_layers)})
    with torch.no_grad():
        _, clean = model.run_with_cache(tokens, names_filter=lambda name: name in names)

    add_noise = noiser(noise, subject)

    def restore(name: str, pos: int) -> tuple[str, Callable]:
        def hook(act: Tensor, hook: Any) -> Tensor:
            act[:, pos] = clean[name][0, pos].to(act)
            return act

        return name, hook

    def score(hooks: list) -> float:
        with torch.no_grad():
            logits = model.run_with_hooks(tokens.repeat(samples, 1), fwd_hooks=[(embed_hook, add_noise), *hooks])
        return float(torch.softmax(logits[:, -1].float(), dim=-1)[:, answer].mean())

    scores = []
    for kind, layer, pos in sites:
        restored = [layer] if kind == "resid" else window_layers(layer, window, n_layers)
        scores.append(score([restore(trace_name(kind, other), pos) for other in restored]))
    return scores, score([])


def average_indirect_effect(traces: pd.DataFrame, by: Sequence[str] = ("kind", "layer", "group"),
                            value: str = "indirect_effect", z: float = 1.96) -> pd.DataFrame:
    """Mean over facts with a normal-approximation 95% interval (mean +- 1.96 standard errors).

    ``traces`` stacks :func:`causal_trace` frames with a ``fact`` column; a fact with
    several tokens in one group (e.g. "further tokens") contributes their mean once.
    """
    if "fact" not in traces:
        raise ValueError("traces needs a 'fact' column identifying the prompt each row came from")
    per_fact = traces.groupby(["fact", *by], sort=False)[value].mean().reset_index()
    stats = per_fact.groupby(list(by), sort=False)[value].agg(["mean", "std", "count"]).reset_index()
    stats["sem"] = (stats["std"] / np.sqrt(stats["count"])).fillna(0.0)
    stats["ci_low"], stats["ci_high"] = stats["mean"] - z * stats["sem"], stats["mean"] + z * stats["sem"]
    return stats.rename(columns={"count": "n_facts"}).drop(columns="std")
