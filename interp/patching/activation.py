"""Activation patching, batched: many (layer, position[, head]) patches per forward pass.

Example::

    from interp.patching import activation_patching, patching_frame

    def logit_diff(logits):                       # [batch pos d_vocab] -> scalar
        return (logits[:, -1, right] - logits[:, -1, wrong]).mean()

    effect = activation_patching(model, clean_tokens, corrupted_tokens, logit_diff, "resid_pre")
    effect.shape                                  # (n_layers, pos), as transformer_lens.patching
    df = patching_frame(effect, "resid_pre")      # one row per (layer, pos)

Convention (stated once, as in ROME's ``causal_trace.py``): ``direction="denoise"`` runs
the *corrupted* tokens and writes in the *clean* activation at one site (what
``transformer_lens.patching`` does: a high metric means the site carries what the clean run
needs); ``direction="noise"`` runs the clean tokens and writes in the corrupted
activation (a drop means the site is necessary).

Why it is fast: TransformerLens's sweep runs one forward per site, from the tokens. Here
the receiving input is stacked once per site along the batch and row block ``s`` is
patched at site ``s`` (each row sees exactly one patched site, so the results are the same
numbers in a few forwards), and each forward computes only what the patch can change
(:mod:`interp.patching.resume`, every shortcut checked against the model's own forward first):
it starts at the patched layer from the receiver's residual stream, or one block later
for a patch after the attention (the patched position's vector finished by hand), and
runs only the positions from the first patched one, the earlier ones entering as the
receiver's keys and values; sites of several layers that start at the same position share
one pass, each row joining at its own block; and when the metric reads only the last
position (probed once), the last block runs that position alone. Sites where donor and
receiver agree exactly are not run at all. On the facts model that is 12-14x
TransformerLens's sweep for one prompt pair (30-33x per head), 7-9x for 8 pairs and 5-6x
for 24 (9x per head; ``benchmarks/bench_patching.py``): with a large batch each of
TransformerLens's forwards is mostly arithmetic, and the arithmetic skipped bounds the gain.

Everything goes through ``run_with_hooks`` / ``run_with_cache`` with TransformerLens hook
names, so any ``HookedRootModule`` or ``TransformerBridge`` works (``output_hook`` lets the
metric read a hidden state, e.g. of an encoder that has no logits). On our Llama family
(rotary positions, grouped-query heads) every shortcut holds too: the receiver's keys and
values enter before rotation, one per key/value head, and ``"z"`` is patched per query head.
On SmolLM2-135M a 12-token pair's ``resid_pre`` sweep equals TransformerLens's on its bridge to
2e-5 and takes 1.05 s to its 81 s on one thread, 77x (1.5 s, 54x, on a model's first call, which
also runs the shortcut checks; ``benchmarks/bench_patching_lm.py``).
"""

from typing import Any, Optional

import pandas as pd
import torch
from jaxtyping import Int
from torch import Tensor

from interp.hook_names import PATCHABLE
from interp.hooks import cached_run
from interp.patching.exactness import accepts_prefix_kv, reads_last_position_only
from interp.patching.inputs import (Metric, check_count, check_layers, check_metric_value, check_token_pair, hook_name,
                                    repeat_kwargs)
from interp.patching.plan import can_resume
from interp.patching.resume import receiver_names
from interp.patching.runner import Sweep, patched_values

DIRECTIONS = ("denoise", "noise")


def activation_patching(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    activation: str = "resid_pre",
    *,
    direction: str = "denoise",
    per_example: bool = False,
    layers: Optional[list[int]] = None,
    max_rows: int = 1024,
    output_hook: Optional[str] = None,
    **forward_kwargs: Any,
) -> Tensor:
    """Metric after patching each (layer, pos) — or (layer, pos, head) for ``"z"``.

    Returns ``[layer pos]`` (``[layer pos head_index]`` for ``"z"``), with a trailing
    ``batch`` dim when ``per_example``. ``metric`` maps the output of one patched copy of
    the batch (``[batch ...]``) to a scalar, or to ``[batch]`` when ``per_example``.
    ``max_rows`` bounds the stacked batch of one forward (memory).
    """
    check_token_pair(clean_tokens, corrupted_tokens)
    if not isinstance(activation, str) or activation not in PATCHABLE:
        raise ValueError(f"unknown activation {activation!r}; use one of {PATCHABLE}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    layers = check_layers(layers, model.cfg.n_layers)
    max_rows = check_count("max_rows", max_rows)
    donor, receiver = (clean_tokens, corrupted_tokens) if direction == "denoise" else (corrupted_tokens, clean_tokens)
    names = [hook_name(activation, layer) for layer in layers]
    batch = receiver.shape[0]
    # donor and receiver in one forward: the donor activations, plus the receiver's to
    # find sites where both agree exactly (a no-op patch: its value is the unpatched run)
    # and (when the forward can be resumed part-way) what the shortcuts read
    both = torch.cat([donor, receiver])
    resume = can_resume(model, output_hook, forward_kwargs)
    extra = receiver_names(activation, layers, model.cfg.n_layers, accepts_prefix_kv(model)) if resume else {}
    extra.update({name: (activation, layer) for layer, name in zip(layers, names)})
    wanted = set(names) | set(extra) | ({output_hook} if output_hook else set())
    with torch.no_grad():
        out, cache = cached_run(model, both, sorted(wanted), **repeat_kwargs(forward_kwargs, batch, 2))
    baseline = check_metric_value(metric((cache[output_hook] if output_hook else out)[batch:]), batch, per_example)
    donor_acts = {layer: cache[name][:batch] for layer, name in zip(layers, names)}
    receiver_acts = {key: cache[name][batch:] for name, key in extra.items()}
    n_pos = receiver.shape[1]
    n_heads = donor_acts[layers[0]].shape[2] if activation == "z" else 1
    # one site per (layer, pos, head), in the row-major order of the result
    grid = torch.cartesian_prod(torch.tensor(layers), torch.arange(n_pos), torch.arange(n_heads)).reshape(-1, 3)
    # [layer pos (head)]: True where donor and receiver agree for the whole batch
    agree = torch.stack([
        (cache[name][:batch] == cache[name][batch:]).flatten(3 if activation == "z" else 2).all(-1).all(0)
        for name in names
    ])
    same = agree.reshape(-1) if activation == "z" else agree.repeat_interleave(n_heads, -1).reshape(-1)
    values = baseline.float().expand(len(grid), *baseline.shape).clone()
    if (~same).any():
        last_only = resume and reads_last_position_only(metric, out[batch:], baseline)
        values[~same] = patched_values(model, Sweep(
            receiver, donor_acts, grid[~same], metric, activation, per_example=per_example, max_rows=max_rows,
            output_hook=output_hook, forward_kwargs=forward_kwargs, receiver_acts=receiver_acts if resume else None,
            receiver_out=None if output_hook else out[batch:], last_only=last_only))
    shape = (len(layers), n_pos) + ((n_heads,) if activation == "z" else ()) + ((receiver.shape[0],) if per_example else ())
    return values.reshape(shape)


def patch_sites(
    model: Any,
    receiver: Int[Tensor, "batch pos"],
    donor_acts: dict[int, Tensor],
    sites: Int[Tensor, "site 3"],
    metric: Metric,
    activation: str,
    *,
    per_example: bool = False,
    max_rows: int = 1024,
    output_hook: Optional[str] = None,
    **forward_kwargs: Any,
) -> Tensor:
    """Metric for each site ``(layer, pos, head)`` of ``sites``, in order.

    ``receiver`` is run; at site ``(layer, pos, head)`` the activation ``activation`` of
    ``layer`` is overwritten with ``donor_acts[layer]`` at ``pos`` (and ``head`` for
    ``"z"``; the head column is ignored otherwise). Returns ``[site]`` or
    ``[site batch]`` when ``per_example``.
    """
    if activation not in PATCHABLE:
        raise ValueError(f"unknown activation {activation!r}; use one of {PATCHABLE}")
    return patched_values(model, Sweep(receiver, donor_acts, sites, metric, activation, per_example=per_example,
                                       max_rows=max_rows, output_hook=output_hook, forward_kwargs=forward_kwargs))


def patching_frame(effect: Tensor, activation: str, value_name: str = "metric") -> pd.DataFrame:
    """Long format: one row per (layer, pos[, head][, example]) with the value."""
    names = ["layer", "pos"] + (["head"] if activation == "z" else [])
    names += ["example"] if effect.ndim > len(names) else []
    if effect.ndim != len(names):
        raise ValueError(f"effect of shape {tuple(effect.shape)} does not fit axes {names}")
    index = pd.MultiIndex.from_product([range(n) for n in effect.shape], names=names)
    return pd.DataFrame({value_name: effect.detach().cpu().flatten().numpy()}, index=index).reset_index().assign(
        activation=activation
    )
