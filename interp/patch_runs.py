"""Running the patched copies of a batch for many sites at once: the engine behind :mod:`interp.patching`.

Example::

    from interp.patch_runs import patched_values

    # metric after patching each (layer, pos, head) site of ``sites`` from ``donor_acts``
    values = patched_values(model, corrupted_tokens, {0: clean_resid_pre_0}, sites, metric, "resid_pre",
                            per_example=False, max_rows=1024, output_hook=None, forward_kwargs={})

The receiving batch is stacked once per site and row block ``s`` is patched at site ``s``.
Sites are grouped into forwards (by layer, then by first patched position), and each
forward takes the cheapest shortcut of :mod:`interp.resume` that the model was checked to
honour: start at the patched layer, or finish it by hand and start after it; run only the
positions from the first patched one; let rows of several layers share one staggered
pass; run the last block for the last position alone when the metric reads only it.
Models that honour none of them run every forward from the tokens with a writing hook.
"""

import operator
from typing import Any, Callable, Optional

import einops
import torch
from jaxtyping import Int
from torch import Tensor

from interp.hooks import cached_run
from interp.hook_names import PATCHABLE, act_name
from interp.resume import (POST_ATTENTION, accepts_prefix_kv, accepts_start_at_layer, chains_exactly,
                           finish_layer, finishes_exactly, position_chunks, prefix_exactly, prefix_kv, receiver_names,
                           resumes_exactly, staggered_forward, trims_exactly)


def hook_name(activation: str, layer: int) -> str:
    """``hook_name("mlp_out", 2) == "blocks.2.hook_mlp_out"``."""
    if activation not in PATCHABLE:
        raise ValueError(f"unknown activation {activation!r}; use one of {PATCHABLE}")
    return act_name(activation, layer)


def whole_number(value: Any) -> Optional[int]:
    """``value`` as an int when it is a whole number type (numpy and 0-d torch integers too; not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def check_count(name: str, value: Any) -> int:
    """``value`` as an int >= 1, or a ValueError naming ``name``."""
    count = whole_number(value)
    if count is None or count < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return count


def check_metric_value(value: Any, batch: int, per_example: bool) -> Tensor:
    """The metric's value as a tensor, or a ValueError saying which shape was expected."""
    try:
        value = torch.as_tensor(value)
    except (TypeError, RuntimeError, ValueError):  # a string, None, a ragged list ...
        want = f"a [batch] tensor of length {batch}" if per_example else "a scalar (0-d tensor)"
        raise ValueError(f"the metric must return {want}, got {type(value).__name__} {value!r:.60}") from None
    expected = (batch,) if per_example else ()
    if tuple(value.shape) != expected:
        want = f"a [batch] tensor of length {batch}" if per_example else "a scalar (0-d tensor)"
        hint = "" if per_example else "; reduce over the batch (e.g. .mean()) or pass per_example=True"
        raise ValueError(f"the metric must return {want}, got shape {tuple(value.shape)}{hint}")
    return value


def repeat_kwargs(kwargs: dict, batch: int, repeats: int) -> dict:
    """Repeat tensor keyword arguments that carry a batch dim (an attention mask)."""
    return {
        k: v.repeat(repeats, *([1] * (v.ndim - 1))) if isinstance(v, Tensor) and v.ndim and v.shape[0] == batch else v
        for k, v in kwargs.items()
    }


def run_metric(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    fwd_hooks: list,
    output_hook: Optional[str] = None,
    **forward_kwargs: Any,
) -> Tensor:
    """The model's output, or the activation at ``output_hook``, with ``fwd_hooks`` attached."""
    if output_hook is None:
        return model.run_with_hooks(tokens, fwd_hooks=fwd_hooks, **forward_kwargs)
    captured = {}

    def capture(act: Tensor, hook: Any) -> None:
        captured["out"] = act

    model.run_with_hooks(tokens, fwd_hooks=[*fwd_hooks, (output_hook, capture)], **forward_kwargs)
    if "out" not in captured:
        raise ValueError(f"output_hook {output_hook!r} never fired; check the hook name against model.hook_dict")
    return captured["out"]


def patched_values(model, receiver, donor_acts, sites, metric, activation, per_example, max_rows, output_hook,
                 forward_kwargs, receiver_acts=None, receiver_out=None, last_only=False):
    """Sites grouped by layer; each batched forward patches sites of one layer only.

    When the model's forward can be resumed (see :mod:`interp.resume`), a forward for
    layer ``L`` starts at block ``L`` from the receiver's residual stream (a hook writes
    the donor), or, for a patch after the attention, at block ``L + 1`` from the residual
    stream with the patched position's vector computed by hand, and (when it takes
    ``prefix_kv``) sites are grouped by position so a forward runs only the positions from
    its group's first; otherwise it runs from the tokens with the writing hook attached.
    ``last_only``: the metric reads the last position only, so a staggered pass runs the
    last block for that position alone (when the model passes ``trims_exactly``).
    """
    batch, n_pos = receiver.shape
    sites_per_forward = max(1, max_rows // batch)
    layers = sorted(set(sites[:, 0].tolist()))
    plan = _resume_plan(model, receiver, activation, layers, output_hook, forward_kwargs, receiver_acts, receiver_out,
                        last_only)
    jobs = []  # (layer, site indices, first position run), one forward each unless merged below
    for layer in layers:
        index = (sites[:, 0] == layer).nonzero().flatten()
        block = _start_block(plan, layer)
        by_position = plan["prefix"].get(block, False) or plan["chain"].get(block, False)
        if by_position:  # run positions >= the group's first patched one; earlier ones come as keys/values
            index = index[torch.argsort(sites[index, 1], stable=True)]
            groups = position_chunks(sites[index, 1].tolist(), batch, n_pos, max_rows)
        else:
            groups = [range(start, min(start + sites_per_forward, len(index)))
                      for start in range(0, len(index), sites_per_forward)]
        for group in groups:
            rows = index[list(group)]
            jobs.append((layer, rows, int(sites[rows, 1].min()) if by_position else 0))
    values = [None] * len(sites)
    with torch.no_grad():
        for merged in _merge_jobs(jobs, plan, activation, batch, max_rows):
            first = merged[0][2]
            if len(merged) == 1:
                layer, rows, _ = merged[0]
                out = _patched_forward(model, plan, activation, layer, sites[rows], donor_acts[layer], receiver,
                                       first, output_hook, forward_kwargs)
            else:
                out = _staggered(model, plan, activation, [(layer, sites[rows]) for layer, rows, _ in merged],
                                 donor_acts, batch, first)
            site_output = _site_outputs(out, plan, batch, trimmed=len(merged) > 1 and plan["last_only"])
            for s, row in enumerate(torch.cat([rows for _, rows, _ in merged]).tolist()):
                # cloned: the value may be a view of an output that the next site overwrites
                values[row] = check_metric_value(metric(site_output(s)), batch, per_example).clone()
    return torch.stack(values).detach().float()


def _site_outputs(out: Tensor, plan: dict, batch: int, trimmed: bool) -> Callable[[int], Tensor]:
    """Row block ``s`` of ``out`` as the metric takes it (``[batch pos ...]``).

    A trimmed pass (``last_only``) returns the last position only; each site's is written into one
    copy of the receiver's output, reused for every site, since the metric reads nothing else
    (on SmolLM2 a copy per site was 2.4 MB of logits, 0.6 GB for a one-pair sweep).
    """
    if not trimmed:
        return lambda s: out[s * batch : (s + 1) * batch]
    frame = plan["out"].clone()

    def site(s: int) -> Tensor:
        frame[:, -1:] = out[s * batch : (s + 1) * batch]
        return frame

    return site


def _start_block(plan: dict, layer: int) -> int:
    """The block a forward patched at ``layer`` starts from: the next one when the patched block is finished by hand."""
    return layer + 1 if plan["how"][layer] == "finish" else layer


def _direct(plan: dict, activation: str, layer: int) -> bool:
    """Whether the patched value goes straight into the residual stream a resumed forward starts from."""
    return plan["how"][layer] == "finish" or (plan["how"][layer] == "start" and activation == "resid_pre")


def _merge_jobs(jobs: list, plan: dict, activation: str, batch: int, max_rows: int) -> list[list]:
    """Jobs grouped into passes: consecutive direct jobs (of any layers) that start at the same
    position share one :func:`interp.resume.staggered_forward` while their rows fit ``max_rows``."""
    passes, open_pass = [], {}
    for job in jobs:
        layer, rows, first = job
        block = _start_block(plan, layer)
        if not (_direct(plan, activation, layer) and plan["chain"].get(block, False)):
            passes.append([job])
            continue
        current = open_pass.get(first)
        if current is not None and sum(len(r) for _, r, _ in current) * batch + len(rows) * batch <= max_rows:
            current.append(job)
        else:
            open_pass[first] = [job]
            passes.append(open_pass[first])
    return passes


def _staggered(model, plan, activation, chunks, donor_acts, batch, first):
    """The output for several layers' chunks of sites in one staggered pass (see ``staggered_forward``);
    the last position's only when ``plan["last_only"]``."""
    entries = [_direct_input(model, plan, activation, layer, chunk, donor_acts[layer], batch, first)
               for layer, chunk in chunks]
    out = staggered_forward(model, entries, plan["acts"], first, batch, plan["last_only"])
    if plan["last_only"]:  # the last position only (see _site_outputs)
        return out
    if first:  # earlier positions' logits are the receiver's own
        out = torch.cat([plan["out"][:, :first].repeat(out.shape[0] // batch, 1, 1), out], dim=1)
    return out


def _direct_input(model, plan, activation, layer, chunk, donor, batch, first) -> tuple[int, Tensor]:
    """(block, residual stream entering it) for row block ``s`` patched at site ``chunk[s]``, positions ``first`` on."""
    n = len(chunk)
    acts = plan["acts"]
    row, b, pos, head = _site_rows(chunk, batch)
    value = donor[b, pos, head] if activation == "z" else donor[b, pos]
    if plan["how"][layer] == "finish":
        resid = acts[("resid_post", layer)][:, first:].repeat(n, 1, 1)
        resid[row, pos - first] = finish_layer(model, activation, layer, acts, value, b, pos, head)
        return _start_block(plan, layer), resid
    resid = acts[("resid_pre", layer)][:, first:].repeat(n, 1, 1)
    resid[row, pos - first] = value
    return layer, resid


def _patched_forward(model, plan, activation, layer, chunk, donor, receiver, first, output_hook, forward_kwargs):
    """The output for the stacked receiver, row block ``s`` patched at site ``chunk[s]`` of ``layer``.

    ``first > 0``: only positions ``first`` onwards are run (the earlier ones' keys and
    values come from the receiver) and the receiver's own logits fill the earlier positions.
    """
    batch, n = receiver.shape[0], len(chunk)
    acts = plan["acts"]
    how, first = _one_call(model, plan, receiver, layer, first)
    block = layer + 1 if how == "finish" else layer
    later = {"prefix_kv": prefix_kv(acts, block, model.cfg.n_layers, first, n)} if first else {}
    if how == "finish" or (how == "start" and activation == "resid_pre"):
        # the patched vector goes straight into the residual stream the forward starts from
        # (no hook: TransformerLens's hook clean-up costs ~2 ms per forward)
        _, resid = _direct_input(model, plan, activation, layer, chunk, donor, batch, first)
        out = model(resid, start_at_layer=block, **later)
    else:
        hooks = [(hook_name(activation, layer), _block_writer(chunk, donor, batch, activation == "z", first))]
        if how == "start":
            out = model.run_with_hooks(acts[("resid_pre", layer)][:, first:].repeat(n, 1, 1),
                                       start_at_layer=layer, fwd_hooks=hooks, **later)
        else:
            out = run_metric(model, receiver.repeat(n, 1), hooks, output_hook,
                             **repeat_kwargs(forward_kwargs, batch, n))
    if first:  # earlier positions' logits are the receiver's own
        out = torch.cat([plan["out"][:, :first].repeat(n, 1, 1), out], dim=1)
    return out


def _one_call(model, plan, receiver, layer, first) -> tuple[Optional[str], int]:
    """``(how, first)`` for a forward patched at ``layer`` run as one call from its start block.

    The plan's, except where its checks covered the block-by-block pass only (a block that
    passed ``chains_exactly``): the one-call forms are then checked the first time a forward
    needs them, and one that does not hold runs every position instead of the later ones
    (``prefix_exactly``), or from the tokens (``resumes_exactly``).
    """
    how = plan["how"][layer]
    if how is None:
        return None, 0
    block = _start_block(plan, layer)
    acts, out = plan["acts"], plan["out"]
    resid = acts[("resid_post", layer)] if how == "finish" else acts[("resid_pre", layer)]
    if first and block not in plan["prefix"]:
        plan["prefix"][block] = prefix_exactly(model, block, resid, acts, out)
    if first and not plan["prefix"][block]:
        first = 0
    if not first and block not in plan["start"]:
        plan["start"][block] = resumes_exactly(model, receiver, {block: resid}, [block], out)
    return (how if first or plan["start"][block] else None), first


def can_resume(model: Any, output_hook: Optional[str], forward_kwargs: dict) -> bool:
    return output_hook is None and not forward_kwargs and accepts_start_at_layer(model)


def _resume_plan(model, receiver, activation, layers, output_hook, forward_kwargs, receiver_acts, receiver_out,
                 last_only=False) -> dict:
    """Per layer: ``"finish"`` (resume after the block), ``"start"`` (resume at it) or None (from tokens).

    A start block that passes ``chains_exactly`` (checked block by block, each block once for all
    starts) needs nothing more for the staggered passes; the one-call shortcuts
    (``resumes_exactly``, ``prefix_exactly``: a run from the block to the end, for each start) are
    then checked only where a forward uses them (:func:`_one_call`). On SmolLM2 that took a
    one-pair sweep's first call from 10 s to 1.2 s (0.9 s later calls; one thread).
    """
    if not can_resume(model, output_hook, forward_kwargs):
        return {"how": {layer: None for layer in layers}, "acts": {}, "prefix": {}, "chain": {}, "start": {},
                "last_only": False}
    if receiver_acts is None:
        receiver_acts = receiver_activations(model, receiver, activation, layers)
    if receiver_out is None:
        with torch.no_grad():
            receiver_out = model(receiver)
    how, prefix, chain, start = {}, {}, {}, {}
    with_prefix = accepts_prefix_kv(model) and all(("k", layer) in receiver_acts for layer in layers)
    for layer in layers:
        finish = activation in POST_ATTENTION and finishes_exactly(model, activation, layer, receiver_acts)
        how[layer] = None
        options = [("finish", layer + 1, receiver_acts.get(("resid_post", layer)))] if finish else []
        for kind, block, resid in options + [("start", layer, receiver_acts[("resid_pre", layer)])]:
            if with_prefix and chains_exactly(model, block, resid, receiver_acts, receiver_out):
                chain[block] = True
            elif resumes_exactly(model, receiver, {block: resid}, [block], receiver_out):
                chain[block], start[block] = False, True
                if with_prefix:
                    prefix[block] = prefix_exactly(model, block, resid, receiver_acts, receiver_out)
            else:
                continue
            how[layer] = kind
            break
    last_only = last_only and with_prefix and trims_exactly(model, receiver_acts, receiver_out)
    return {"how": how, "acts": receiver_acts, "prefix": prefix, "chain": chain, "start": start, "out": receiver_out,
            "last_only": last_only}


def receiver_activations(model: Any, tokens: Int[Tensor, "batch pos"], activation: str,
                         layers: list[int]) -> dict[tuple[str, int], Tensor]:
    """The receiver activations :mod:`interp.resume` reads, keyed ``(activation, layer)``."""
    names = receiver_names(activation, layers, model.cfg.n_layers, accepts_prefix_kv(model))
    names.update({hook_name(activation, layer): (activation, layer) for layer in layers})
    with torch.no_grad():
        _, cache = cached_run(model, tokens, list(names))
    return {key: cache[name] for name, key in names.items()}


def _site_rows(chunk: Tensor, batch: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Row ``s * batch + b`` is copy ``b`` of the batch patched at site ``chunk[s]``: (row, b, pos, head)."""
    n = len(chunk)
    b = torch.arange(batch).repeat(n)
    rows = einops.repeat(torch.arange(n), "site -> (site batch)", batch=batch) * batch + b
    pos = einops.repeat(chunk[:, 1], "site -> (site batch)", batch=batch)
    head = einops.repeat(chunk[:, 2], "site -> (site batch)", batch=batch)
    return rows, b, pos, head


def _block_writer(chunk: Tensor, donor: Tensor, batch: int, per_head: bool, first: int = 0) -> Callable:
    """A hook writing ``donor`` into row block ``s`` at the site of ``chunk[s]``.

    ``first``: the forward runs positions ``first`` onwards, so position ``p`` is column ``p - first``.
    """
    rows, b, pos, head = _site_rows(chunk, batch)

    def write(act: Tensor, hook: Any) -> Tensor:
        if per_head:
            act[rows, pos - first, head] = donor[b, pos, head].to(act.dtype)
        else:
            act[rows, pos - first] = donor[b, pos].to(act.dtype)
        return act

    return write
