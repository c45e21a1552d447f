"""Resuming a forward pass part-way, so a patched run recomputes only what the patch changes.

Example::

    from interp.patching.resume import prefix_kv, staggered_forward

    # rows patched at blocks 0 and 2 (residual streams entering them, positions 3 on) in one pass
    logits = staggered_forward(model, [(0, x0), (2, x2)], receiver_acts, first=3, batch=1)

Patching an activation of layer ``L`` leaves every earlier layer as in the receiver's own
run. The shortcuts that follow are each checked against the model's own forward before it is
used (:mod:`interp.patching.exactness`; a model that does not honour one falls back to a slower
form, down to running from the tokens):

- ``start_at_layer``: a forward that takes the residual stream entering block ``L``
  (ours, TransformerLens's) starts there instead of at the tokens.
- Finishing the patched layer by hand: a patch *after* the attention of layer ``L``
  (``attn_out``, ``z``, ``resid_mid``, ``mlp_out``, ``resid_post``) changes the residual
  stream leaving block ``L`` at the patched position only, since the MLP acts position by
  position. That one vector is computed from the receiver's cached activations
  (``resid_mid = resid_pre + attn_out``, ``attn_out = Σ_h z_h W_O[h] + b_O``,
  ``resid_post = resid_mid + mlp(ln2(resid_mid))``, through the block's own ``ln2`` and
  ``mlp``; :func:`finish_layer`) and the forward resumes at block ``L + 1``, so block ``L``
  is not rerun.
- Later positions only: a patch at position ``p`` leaves positions ``< p`` as in the
  receiver's run (attention is causal), so a forward that takes the receiver's keys and
  values of those positions (``prefix_kv``, ours; :func:`prefix_kv`) runs positions ``>= p``
  only; sites are grouped by position so each group starts at its smallest (:func:`position_chunks`).
- One pass for several layers: a model that also takes ``stop_at_layer`` can run its
  blocks one call each, so the rows patched at different layers join one batch at their
  own block (:func:`staggered_forward`) instead of each layer running its own forward;
  on small batches a block call costs about as much as its arithmetic.
- The last position only, in the last block: when the metric reads nothing but the last
  position's output, the last block needs the other positions only as keys and values, so
  it computes those by hand (:func:`block_kv`) and runs its attention output and MLP for the
  last position alone (:func:`last_position_through`; about half of a patched sweep's block
  work sits in the last block).

The same holds on the Llama family: rotary keys enter a prefix unrotated (the attention
rotates them by their positions) and grouped-query attention caches one key/value head per
group. Nothing here checks anything or calls back into the rest of the package.
"""

from typing import Any

import einops
import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.hook_names import act_name

POST_ATTENTION = ("attn_out", "z", "resid_mid", "mlp_out", "resid_post")
# what finishing a block by hand after each post-attention patch reads from the receiver's run
# (besides the patched activation and the block's own resid_post)
FINISH_NEEDS = {
    "attn_out": ("resid_pre",),
    "z": ("resid_pre", "z"),
    "resid_mid": (),
    "mlp_out": ("resid_mid",),
    "resid_post": (),
}


def receiver_names(activation: str, layers: list[int], n_layers: int,
                   prefix: bool = False) -> dict[str, tuple[str, int]]:
    """Hook name -> (activation, layer) of the receiver activations the shortcuts read."""
    names = {act_name("resid_pre", layer): ("resid_pre", layer) for layer in layers}
    if prefix and layers:
        # every block's input and the last one's output: chains_exactly checks the blocks one by one
        names[act_name("resid_post", n_layers - 1)] = ("resid_post", n_layers - 1)
        for layer in range(min(layers), n_layers):
            names[act_name("resid_pre", layer)] = ("resid_pre", layer)
            names[act_name("k", layer)] = ("k", layer)
            names[act_name("v", layer)] = ("v", layer)
    if activation in POST_ATTENTION:
        for layer in layers:
            for act in (*FINISH_NEEDS[activation], "resid_post"):
                names[act_name(act, layer)] = (act, layer)
    return names


def prefix_kv(receiver: dict, start: int, n_layers: int, n_prefix: int, repeats: int) -> list[tuple[Tensor, Tensor]]:
    """The receiver's keys and values of positions ``< n_prefix`` for blocks ``start`` onwards, repeated.

    A batch of one is expanded, not copied (the attention only reads the prefix; on SmolLM2 the
    copies were an eighth of a one-pair sweep)."""
    def tiled(kv: Tensor) -> Tensor:
        kv = kv[:, :n_prefix]
        return kv.expand(repeats, *kv.shape[1:]) if kv.shape[0] == 1 else kv.repeat(repeats, 1, 1, 1)

    return [(tiled(receiver[("k", layer)]), tiled(receiver[("v", layer)])) for layer in range(start, n_layers)]


def block_kv(model: Any, layer: int, resid: Float[Tensor, "batch pos d_model"]) -> tuple[Tensor, Tensor]:
    """Keys and values of block ``layer`` for the residual stream entering it, as ``hook_k`` / ``hook_v``
    hold them (``[batch pos kv_head_index d_head]``; keys before any rotary rotation, which the
    attention applies to a key/value prefix itself); ``trims_exactly`` checks them.

    From the attention's own ``keys_values`` where it has one (ours: grouped key/value heads
    included), else from the block's ``ln1``, ``W_K``, ``W_V`` (and ``b_K``, ``b_V``).
    """
    block = model.blocks[layer]
    attn = block.attn
    x = resid if getattr(block, "ln1", None) is None else block.ln1(resid)
    if callable(getattr(attn, "keys_values", None)):
        return attn.keys_values(x)
    out = []
    for W, b in ((attn.W_K, getattr(attn, "b_K", None)), (attn.W_V, getattr(attn, "b_V", None))):
        kv = einops.einsum(x, W, "batch pos d_model, head_index d_model d_head -> batch pos head_index d_head")
        out.append(kv if b is None else kv + b)
    return out[0], out[1]


def last_position_through(model: Any, x: Tensor, block: int, receiver: dict, first: int, repeats: int) -> Tensor:
    """Block ``block`` (the last) on ``x`` (positions ``first`` on) for the last position only: the
    earlier positions enter as keys and values, the receiver's before ``first``, by hand after it."""
    k, v = block_kv(model, block, x[:, :-1])
    if first:
        (k0, v0), = prefix_kv(receiver, block, block + 1, first, repeats)
        k, v = torch.cat([k0, k], dim=1), torch.cat([v0, v], dim=1)
    return model(x[:, -1:], start_at_layer=block, stop_at_layer=block + 1, prefix_kv=[(k, v)])


def staggered_forward(model: Any, entries: list[tuple[int, Tensor]], receiver: dict, first: int,
                      batch: int, last_only: bool = False) -> Tensor:
    """The logits of several resumed inputs from one pass over the blocks.

    ``entries``: ``(block, residual stream entering it)`` in order of block, each
    ``[sites x batch, positions first.., d_model]``; an entry's rows join the running batch
    at its block, so each block runs once for every row that needs it instead of once per
    entry (on small batches a block call costs about as much as its arithmetic). Returns the
    logits in the order of the entries' rows. Hooks attached to the model fire in each block
    call, on the rows joined so far. Needs ``chains_exactly``. ``last_only``: the last block
    runs the last position alone (:func:`last_position_through`) and only its logits come back
    (needs ``trims_exactly``).
    """
    blocks = [block for block, _ in entries]
    if blocks != sorted(blocks):
        raise ValueError(f"entries must come in order of block, got blocks {blocks}")
    n_layers = model.cfg.n_layers
    x, joined = None, 0
    for block in range(blocks[0], n_layers + 1):
        while joined < len(entries) and blocks[joined] == block:
            entry = entries[joined][1]
            if last_only and block == n_layers:  # past the trimmed last block: its last position
                entry = entry[:, -1:]
            x = entry if x is None else torch.cat([x, entry])
            joined += 1
        if block == n_layers:
            break
        repeats = x.shape[0] // batch
        if last_only and block == n_layers - 1:
            x = last_position_through(model, x, block, receiver, first, repeats)
        else:
            kv = prefix_kv(receiver, block, block + 1, first, repeats) if first else None
            x = model(x, start_at_layer=block, stop_at_layer=block + 1, prefix_kv=kv)
    return model(x, start_at_layer=n_layers)


def position_chunks(positions: list[int], batch: int, n_pos: int, max_rows: int,
                    overhead: int = 192) -> list[list[int]]:
    """Split sites (given by their positions, sorted) into groups run in one forward each.

    A group starting at position ``P`` costs ``rows x (n_pos - P)`` token rows plus a fixed
    ``overhead`` (in token rows) per forward; groups hold at most ``max_rows`` rows. Exact
    minimum by dynamic programming over cut points of the sorted list.
    """
    n = len(positions)
    per_forward = max(1, max_rows // batch)
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for end in range(1, n + 1):
        for start in range(max(0, end - per_forward), end):
            cost = best[start] + overhead + (end - start) * batch * (n_pos - positions[start])
            if cost < best[end]:
                best[end], cut[end] = cost, start
    groups, end = [], n
    while end > 0:
        groups.append(list(range(cut[end], end)))
        end = cut[end]
    return groups[::-1]


def finish_layer(
    model: Any,
    activation: str,
    layer: int,
    receiver: dict,
    value: Tensor,
    b: Int[Tensor, "row"],
    pos: Int[Tensor, "row"],
    head: Int[Tensor, "row"],
) -> Float[Tensor, "row d_model"]:
    """``resid_post`` of block ``layer`` at ``(b, pos)`` after writing ``value`` into ``activation`` there.

    ``receiver[(act, layer)]`` holds the receiver's cached activations; ``value`` is one
    row per patched site (``[row d_model]``, or ``[row d_head]`` written into ``head`` for ``"z"``).
    """
    block = model.blocks[layer]
    if activation == "resid_post":
        return value
    if activation == "mlp_out":
        return receiver[("resid_mid", layer)][b, pos] + value
    if activation == "resid_mid":
        mid = value
    else:
        if activation == "z":
            z = receiver[("z", layer)][b, pos].clone()  # [row head_index d_head]
            z[torch.arange(len(b)), head] = value
            attn_out = einops.einsum(z, block.attn.W_O, "row head_index d_head, head_index d_head d_model -> row d_model")
            value = attn_out if getattr(block.attn, "b_O", None) is None else attn_out + block.attn.b_O
        mid = receiver[("resid_pre", layer)][b, pos] + value
    if getattr(block, "mlp", None) is None:  # attention-only block
        return mid
    normalized = mid[:, None] if getattr(block, "ln2", None) is None else block.ln2(mid[:, None])
    return mid + block.mlp(normalized)[:, 0]
