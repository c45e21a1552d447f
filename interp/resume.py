"""Resuming a forward pass part-way, so a patched run recomputes only what the patch changes.

Patching an activation of layer ``L`` leaves every earlier layer as in the receiver's own
run. Two shortcuts follow, each checked against the model's own forward before it is used
(a model that does not honour them falls back to running from the tokens):

- ``start_at_layer``: a forward that takes the residual stream entering block ``L``
  (ours, TransformerLens's) starts there instead of at the tokens.
- Finishing the patched layer by hand: a patch *after* the attention of layer ``L``
  (``attn_out``, ``z``, ``resid_mid``, ``mlp_out``, ``resid_post``) changes the residual
  stream leaving block ``L`` at the patched position only, since the MLP acts position by
  position. That one vector is computed from the receiver's cached activations
  (``resid_mid = resid_pre + attn_out``, ``attn_out = Σ_h z_h W_O[h] + b_O``,
  ``resid_post = resid_mid + mlp(ln2(resid_mid))``, through the block's own ``ln2`` and
  ``mlp``) and the forward resumes at block ``L + 1``, so block ``L`` is not rerun.
- Later positions only: a patch at position ``p`` leaves positions ``< p`` as in the
  receiver's run (attention is causal), so a forward that takes the receiver's keys and
  values of those positions (``prefix_kv``, ours) runs positions ``>= p`` only; sites are
  grouped by position so each group starts at its smallest (:func:`position_chunks`).
- One pass for several layers: a model that also takes ``stop_at_layer`` can run its
  blocks one call each, so the rows patched at different layers join one batch at their
  own block (:func:`staggered_forward`) instead of each layer running its own forward;
  on small batches a block call costs about as much as its arithmetic.
- The last position only, in the last block: when the metric reads nothing but the last
  position's output (:func:`reads_last_position_only`), the last block needs the other
  positions only as keys and values, so it computes those by hand (:func:`block_kv`) and
  runs its attention output and MLP for the last position alone (about half of a patched
  sweep's block work sits in the last block).

The same holds on the Llama family: rotary keys enter a prefix unrotated (the attention
rotates them by their positions), grouped-query attention caches one key/value head per
group, and the checks compare each vector to its own scale (:func:`reproduces`), since a
30-layer model's rounding grows with it.
"""

import inspect
import weakref
from typing import Any, Optional

import einops
import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.hook_names import act_name

POST_ATTENTION = ("attn_out", "z", "resid_mid", "mlp_out", "resid_post")
# what each post-attention patch needs from the receiver's run (besides the patched activation)
_NEEDS = {
    "attn_out": ("resid_pre",),
    "z": ("resid_pre", "z"),
    "resid_mid": (),
    "mlp_out": ("resid_mid",),
    "resid_post": (),
}
# the patchable activations and their hook names: interp/hook_names.py ("z" is per head)

# model -> {key: bool}: whether a shortcut reproduces the model's own forward; checked once
_CHECKED: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def reproduces(mine: Any, expected: Tensor, tol: float = 1e-5) -> bool:
    """Whether ``mine`` is ``expected`` up to rounding: same shape, and each vector (the last dim at
    one index) within ``tol`` times its own largest entry (at least 1), plus 1e-6. (Never stricter
    than the ``allclose(rtol=1e-5, atol=1e-6)`` it replaces, so what passed that passes this.)

    Relative to the vector, not to each entry: rounding carried through many layers grows with a
    vector's scale (SmolLM2's residual stream holds entries up to ~2e4 beside entries near 0, and
    its logits, O(30), differ by ~3e-5 between a batch of one and of two), while a shortcut that
    does not hold is off by O(1) of the scale.
    """
    if not isinstance(mine, Tensor) or mine.shape != expected.shape:
        return False
    scale = expected.abs().amax(dim=-1, keepdim=True).clamp(min=1.0)
    return bool(((mine - expected).abs() <= 1e-6 + tol * scale).all())


def accepts_start_at_layer(model: Any) -> bool:
    """Whether ``model.forward`` takes a ``start_at_layer`` argument."""
    try:
        return "start_at_layer" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def accepts_prefix_kv(model: Any) -> bool:
    """Whether ``model.forward`` takes ``prefix_kv`` (keys and values of earlier positions)."""
    try:
        return "prefix_kv" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


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
            for act in (*_NEEDS[activation], "resid_post"):
                names[act_name(act, layer)] = (act, layer)
    return names


def resumes_exactly(model: Any, tokens: Tensor, resid: dict[int, Tensor], layers: list[int],
                    full: Optional[Tensor] = None) -> bool:
    """Whether ``start_at_layer`` reproduces the full forward at every layer in ``layers``.

    Not every forward that takes the argument honours it (an encoder bridge, say, may
    rebuild its input from tokens), so it is checked on the unpatched input, one batch per
    layer, before any patched forward relies on it. ``resid[L]`` is the residual stream
    entering block ``L`` (for ``L = n_layers``, the one leaving the last block).
    """
    checked = _CHECKED.setdefault(model, {})
    todo = [layer for layer in layers if ("start", layer) not in checked]
    if todo:
        with torch.no_grad():
            full = model(tokens) if full is None else full
            for layer in todo:
                try:
                    resumed = model(resid[layer], start_at_layer=layer)
                    ok = reproduces(resumed, full)
                except Exception:  # noqa: BLE001 - any failure means: do not resume
                    ok = False
                checked[("start", layer)] = ok
    return all(checked[("start", layer)] for layer in layers)


def prefix_kv(receiver: dict, start: int, n_layers: int, n_prefix: int, repeats: int) -> list[tuple[Tensor, Tensor]]:
    """The receiver's keys and values of positions ``< n_prefix`` for blocks ``start`` onwards, repeated.

    A batch of one is expanded, not copied (the attention only reads the prefix; on SmolLM2 the
    copies were an eighth of a one-pair sweep)."""
    def tiled(kv: Tensor) -> Tensor:
        kv = kv[:, :n_prefix]
        return kv.expand(repeats, *kv.shape[1:]) if kv.shape[0] == 1 else kv.repeat(repeats, 1, 1, 1)

    return [(tiled(receiver[("k", layer)]), tiled(receiver[("v", layer)])) for layer in range(start, n_layers)]


def prefix_exactly(model: Any, start: int, resid: Tensor, receiver: dict, full: Tensor) -> bool:
    """Whether resuming at block ``start`` on the later positions, with the earlier ones'
    keys and values given, reproduces the full forward's logits there (checked once)."""
    checked = _CHECKED.setdefault(model, {})
    key = ("prefix", start)
    if resid.shape[1] < 2:  # one position: nothing to split (and nothing to learn about the model)
        return False
    if key not in checked:
        n_prefix = max(1, resid.shape[1] // 2)
        try:
            with torch.no_grad():
                later = model(resid[:, n_prefix:], start_at_layer=start,
                              prefix_kv=prefix_kv(receiver, start, model.cfg.n_layers, n_prefix, 1))
            checked[key] = reproduces(later, full[:, n_prefix:])
        except Exception:  # noqa: BLE001 - any failure means: run every position
            checked[key] = False
    return checked[key]


def chains_exactly(model: Any, start: int, resid: Tensor, receiver: dict, full: Tensor) -> bool:
    """Whether running blocks ``start`` onwards one call each (``start_at_layer=b``,
    ``stop_at_layer=b + 1``, with or without the earlier positions' keys and values), then
    ``start_at_layer=n_layers`` for the unembedding, reproduces the model's own forward
    (checked once per model and block). :func:`staggered_forward` relies on it.

    Checked call by call: each block, run alone on the receiver's stream entering it (``resid``
    for block ``start``), reproduces the stream entering the next (on every position, and on the
    later half with the earlier half's keys and values), and the unembedding reproduces
    ``full``; so each block is run once for all starts (a check per start from its block to the
    end cost SmolLM2 30 times 15 blocks).
    """
    checked = _CHECKED.setdefault(model, {})
    key = ("chain", start)
    if key not in checked:
        n_layers = model.cfg.n_layers
        streams = {b: _stream(receiver, b, n_layers) for b in range(start, n_layers + 1)}
        streams[start] = resid
        if any(stream is None for stream in streams.values()):  # not cached for this receiver
            return False
        checked[key] = all(_block_alone_exactly(model, b, streams[b], streams[b + 1], receiver)
                           for b in range(start, n_layers)) and _unembeds_exactly(model, streams[n_layers], full)
    return checked[key]


def _stream(receiver: dict, block: int, n_layers: int) -> Optional[Tensor]:
    """The receiver's residual stream entering ``block`` (``n_layers``: leaving the last block), if cached."""
    pre = receiver.get(("resid_pre", block)) if block < n_layers else None
    return pre if pre is not None else receiver.get(("resid_post", block - 1))


def _block_alone_exactly(model: Any, block: int, x: Optional[Tensor], y: Optional[Tensor], receiver: dict) -> bool:
    """Whether ``start_at_layer=block, stop_at_layer=block + 1`` maps the stream ``x`` entering the block
    to ``y`` entering the next, on every position and on the later half given the earlier half's keys
    and values (checked once per model and block)."""
    checked = _CHECKED.setdefault(model, {})
    key = ("block", block)
    if x is None or y is None:  # not cached for this receiver: unknown, so not usable
        return False
    if key not in checked:
        n_prefix = x.shape[1] // 2
        try:
            with torch.no_grad():
                ok = reproduces(model(x, start_at_layer=block, stop_at_layer=block + 1), y)
                if ok and n_prefix:
                    later = model(x[:, n_prefix:], start_at_layer=block, stop_at_layer=block + 1,
                                  prefix_kv=prefix_kv(receiver, block, block + 1, n_prefix, 1))
                    ok = reproduces(later, y[:, n_prefix:])
            checked[key] = ok
        except Exception:  # noqa: BLE001 - any failure means: one forward per group
            checked[key] = False
    return checked[key]


def _unembeds_exactly(model: Any, x: Optional[Tensor], full: Tensor) -> bool:
    """Whether ``start_at_layer=n_layers`` maps the stream leaving the last block to the logits ``full``."""
    checked = _CHECKED.setdefault(model, {})
    if x is None:
        return False
    if "unembed" not in checked:
        try:
            with torch.no_grad():
                checked["unembed"] = reproduces(model(x, start_at_layer=model.cfg.n_layers), full)
        except Exception:  # noqa: BLE001 - no unembedding on its own: one forward per group
            checked["unembed"] = False
    return checked["unembed"]


def reads_last_position_only(metric: Any, out: Tensor, value: Tensor) -> bool:
    """Whether ``metric(out)`` reads the last position only: it returns ``value`` again when every
    earlier position holds NaN, and when it holds noise (two extra calls of the metric)."""
    if out.ndim < 3 or out.shape[1] < 2:
        return False
    noise = torch.randn(out[:, :-1].shape, generator=torch.Generator().manual_seed(0), dtype=out.dtype)
    try:
        for fill in (torch.full_like(out[:, :-1], float("nan")), noise * (1 + out.abs().max())):
            probe = out.clone()
            probe[:, :-1] = fill
            if not torch.equal(torch.as_tensor(metric(probe)), value):
                return False
    except Exception:  # noqa: BLE001 - a metric that cannot take the probe: run every position
        return False
    return True


def block_kv(model: Any, layer: int, resid: Float[Tensor, "batch pos d_model"]) -> tuple[Tensor, Tensor]:
    """Keys and values of block ``layer`` for the residual stream entering it, as ``hook_k`` / ``hook_v``
    hold them (``[batch pos kv_head_index d_head]``; keys before any rotary rotation, which the
    attention applies to a key/value prefix itself); :func:`trims_exactly` checks them.

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


def trims_exactly(model: Any, receiver: dict, full: Tensor) -> bool:
    """Whether :func:`last_position_through` reproduces the full forward's last-position logits (checked once)."""
    checked = _CHECKED.setdefault(model, {})
    last = model.cfg.n_layers - 1
    if "trim" not in checked:
        resid = receiver.get(("resid_pre", last))
        try:
            with torch.no_grad():
                n_prefix = resid.shape[1] // 2
                x = last_position_through(model, resid[:, n_prefix:], last, receiver, n_prefix, 1)
                mine = model(x, start_at_layer=model.cfg.n_layers)
            checked["trim"] = reproduces(mine, full[:, -1:])
        except Exception:  # noqa: BLE001 - no ln1 / W_K / W_V to read: run every position
            checked["trim"] = False
    return checked["trim"]


def staggered_forward(model: Any, entries: list[tuple[int, Tensor]], receiver: dict, first: int,
                      batch: int, last_only: bool = False) -> Tensor:
    """The logits of several resumed inputs from one pass over the blocks.

    ``entries``: ``(block, residual stream entering it)`` in order of block, each
    ``[sites x batch, positions first.., d_model]``; an entry's rows join the running batch
    at its block, so each block runs once for every row that needs it instead of once per
    entry (on small batches a block call costs about as much as its arithmetic). Returns the
    logits in the order of the entries' rows. Needs :func:`chains_exactly`. ``last_only``: the
    last block runs the last position alone and only its logits come back (needs
    :func:`trims_exactly`).
    """
    blocks = [block for block, _ in entries]
    if blocks != sorted(blocks):
        raise ValueError(f"entries must come in order of block, got blocks {blocks}")
    x, joined = None, 0
    for block in range(blocks[0], model.cfg.n_layers + 1):
        while joined < len(entries) and blocks[joined] == block:
            entry = entries[joined][1]
            if last_only and block == model.cfg.n_layers:  # past the trimmed last block: its last position
                entry = entry[:, -1:]
            x = entry if x is None else torch.cat([x, entry])
            joined += 1
        if last_only and block == model.cfg.n_layers - 1:
            x = last_position_through(model, x, block, receiver, first, x.shape[0] // batch)
        elif block < model.cfg.n_layers:
            x = _run_blocks(model, x, block, receiver, first, x.shape[0] // batch, stop=block + 1)
    return model(x, start_at_layer=model.cfg.n_layers)


def _run_blocks(model: Any, x: Tensor, start: int, receiver: dict, n_prefix: int, repeats: int,
                stop: Optional[int] = None) -> Tensor:
    """Blocks ``start`` to ``stop`` (default: all, then the unembedding) one call each; earlier positions as keys and values."""
    for block in range(start, stop or model.cfg.n_layers):
        kv = prefix_kv(receiver, block, block + 1, n_prefix, repeats) if n_prefix else None
        x = model(x, start_at_layer=block, stop_at_layer=block + 1, prefix_kv=kv)
    return x if stop is not None else model(x, start_at_layer=model.cfg.n_layers)


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


def finishes_exactly(model: Any, activation: str, layer: int, receiver: dict) -> bool:
    """Whether finishing block ``layer`` by hand reproduces its ``resid_post`` on the receiver."""
    checked = _CHECKED.setdefault(model, {})
    key = ("finish", activation, layer)
    if key not in checked:
        batch, n_pos = receiver[("resid_post", layer)].shape[:2]
        b, pos = torch.arange(batch).repeat_interleave(n_pos), torch.arange(n_pos).repeat(batch)
        try:
            with torch.no_grad():
                head = torch.arange(len(b)) % receiver[(activation, layer)].shape[2] if activation == "z" else None
                own = receiver[(activation, layer)][b, pos] if head is None else receiver[(activation, layer)][b, pos, head]
                mine = finish_layer(model, activation, layer, receiver, own, b, pos, head)
            expected = receiver[("resid_post", layer)][b, pos]
            checked[key] = reproduces(mine, expected)
        except Exception:  # noqa: BLE001 - a model without ln2 / mlp / W_O: run the block instead
            checked[key] = False
    return checked[key]


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
