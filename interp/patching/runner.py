"""The runner: a receiving batch stacked once per site, row block ``s`` patched at site ``s``, many sites a forward.

Example::

    from interp.patching.runner import Sweep, patched_values

    # metric after patching each (layer, pos, head) site of ``sites`` from ``donor_acts``
    values = patched_values(model, Sweep(corrupted_tokens, {0: clean_resid_pre_0}, sites, metric, "resid_pre"))

Row block ``s`` (rows ``s * batch`` to ``(s + 1) * batch``) is a copy of the receiving batch with
one site patched, so every row sees exactly one patch and a forward gives many sites' numbers.
The pieces here are generic: :func:`block_rows` and :func:`writer` (a hook writing one value
per row block), :func:`run_pass` (rows of several blocks in one staggered pass,
:func:`~interp.patching.resume.staggered_forward`), :func:`from_tokens` (a hooked batch from the
tokens: the fallback), :func:`block_scores` (the metric per row block). Causal tracing
(:mod:`interp.patching.restoring`) groups its sites into passes with them; activation patching's
grouping is :func:`patched_values`: sites by layer, then by first patched position, each forward
taking the cheapest shortcut its :class:`~interp.patching.plan.Plan` allows: start at the patched
layer, or finish it by hand and start after it; run only the positions from the first patched
one; let rows of several layers share one staggered pass; run the last block for the last
position alone when the metric reads only it. Models that honour none of them run every forward
from the tokens with a writing hook. (Attribution patching is one forward and one backward and
needs none of this.)
"""

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence

import einops
import torch
from jaxtyping import Int
from torch import Tensor

from interp.hooks import attached
from interp.patching.inputs import Metric, check_metric_value, hook_name, repeat_kwargs, run_metric
from interp.patching.plan import Plan, plan_forwards
from interp.patching.resume import finish_layer, position_chunks, prefix_kv, staggered_forward


@dataclass(frozen=True, eq=False)
class Sweep:
    """One batched patching sweep: ``receiver`` run once per site, row block ``s`` patched at ``sites[s]``.

    At site ``(layer, pos, head)`` the activation ``activation`` of ``layer`` is overwritten with
    ``donor_acts[layer]`` at ``pos`` (and ``head`` for ``"z"``). ``receiver_acts`` /
    ``receiver_out``: the receiver's cached activations and output when the caller has them;
    ``last_only``: the metric was found to read the last position only.
    """

    receiver: Int[Tensor, "batch pos"]
    donor_acts: dict[int, Tensor]
    sites: Int[Tensor, "site 3"]
    metric: Metric
    activation: str
    per_example: bool = False
    max_rows: int = 1024
    output_hook: Optional[str] = None
    forward_kwargs: dict = field(default_factory=dict)
    receiver_acts: Optional[dict] = None
    receiver_out: Optional[Tensor] = None
    last_only: bool = False


def per_row(values: Tensor, batch: int) -> Tensor:
    """One entry per site -> one per row: each repeated for the ``batch`` rows of its row block."""
    return einops.repeat(values, "site -> (site batch)", batch=batch)


def block_rows(blocks: Tensor, batch: int) -> tuple[Tensor, Tensor]:
    """``(row, b)``: row ``s * batch + b`` is copy ``b`` of the batch in row block ``s``, each ``s`` of ``blocks``."""
    b = torch.arange(batch).repeat(len(blocks))
    return per_row(blocks, batch) * batch + b, b


def writer(rows: Tensor, cols: Any, values: Tensor, heads: Optional[Tensor] = None) -> Callable:
    """A hook writing ``values`` at ``(rows, cols)`` (and ``heads``) of its activation."""
    def write(act: Tensor, hook: Any) -> Tensor:
        if heads is None:
            act[rows, cols] = values.to(act.dtype)
        else:
            act[rows, cols, heads] = values.to(act.dtype)
        return act

    return write


def run_pass(model: Any, entries: list[tuple[int, Tensor]], receiver: dict, first: int, batch: int,
             last_only: bool = False, hooks: Sequence[tuple[str, Callable]] = ()) -> Tensor:
    """:func:`~interp.patching.resume.staggered_forward` with ``hooks`` attached (writes the stream does not carry)."""
    with attached(model, hooks):
        return staggered_forward(model, entries, receiver, first, batch, last_only)


def from_tokens(model: Any, tokens: Tensor, repeats: int, hooks: list, output_hook: Optional[str],
                forward_kwargs: dict) -> Tensor:
    """``tokens`` stacked ``repeats`` times and run from the start with ``hooks`` attached (no shortcut)."""
    return run_metric(model, tokens.repeat(repeats, 1), hooks, output_hook,
                      **repeat_kwargs(forward_kwargs, tokens.shape[0], repeats))


def block_scores(out: Tensor, metric: Metric, batch: int, per_example: bool,
                 frame: Optional[Tensor] = None) -> Iterator[Tensor]:
    """The metric of each row block of ``out``, checked (and cloned: it may be a view of ``out``).

    ``frame``: ``out`` holds the last position only; each block's is written into ``frame`` (one
    output of the receiver, reused for every block, since the metric reads nothing else: on SmolLM2
    a copy per site was 2.4 MB of logits, 0.6 GB for a one-pair sweep).
    """
    for s in range(out.shape[0] // batch):
        block = out[s * batch : (s + 1) * batch]
        if frame is not None:
            frame[:, -1:] = block
            block = frame
        yield check_metric_value(metric(block), batch, per_example).clone()


def patched_values(model: Any, sweep: Sweep) -> Tensor:
    """The metric for each site of ``sweep``, in order: ``[site]``, or ``[site batch]`` when ``per_example``.

    Each batched forward patches sites of one layer only, except a staggered pass, which
    takes rows of several layers that enter the residual stream directly and start at the same
    position. ``sweep.last_only``: a staggered pass runs the last block for the last position
    alone (when the model passes ``trims_exactly``).
    """
    receiver, sites, activation = sweep.receiver, sweep.sites, sweep.activation
    batch, n_pos = receiver.shape
    sites_per_forward = max(1, sweep.max_rows // batch)
    layers = sorted(set(sites[:, 0].tolist()))
    plan = plan_forwards(model, receiver, activation, layers, output_hook=sweep.output_hook,
                         forward_kwargs=sweep.forward_kwargs, receiver_acts=sweep.receiver_acts,
                         receiver_out=sweep.receiver_out, last_only=sweep.last_only)
    jobs = []  # (layer, site indices, first position run), one forward each unless merged below
    for layer in layers:
        index = (sites[:, 0] == layer).nonzero().flatten()
        by_position = plan.by_position(layer)
        if by_position:  # run positions >= the group's first patched one; earlier ones come as keys/values
            index = index[torch.argsort(sites[index, 1], stable=True)]
            groups = position_chunks(sites[index, 1].tolist(), batch, n_pos, sweep.max_rows)
        else:
            groups = [range(start, min(start + sites_per_forward, len(index)))
                      for start in range(0, len(index), sites_per_forward)]
        for group in groups:
            rows = index[list(group)]
            jobs.append((layer, rows, int(sites[rows, 1].min()) if by_position else 0))
    values = [None] * len(sites)
    with torch.no_grad():
        for merged in _merge_jobs(jobs, plan, activation, batch, sweep.max_rows):
            first = merged[0][2]
            trimmed = len(merged) > 1 and plan.last_only
            if len(merged) == 1:
                layer, rows, _ = merged[0]
                out = _one_forward(model, plan, sweep, layer, sites[rows], first)
            else:
                entries = [_direct_input(model, plan, activation, layer, sites[rows], sweep.donor_acts[layer], batch,
                                         first) for layer, rows, _ in merged]
                out = run_pass(model, entries, plan.acts, first, batch, plan.last_only)
                if first and not trimmed:  # earlier positions' logits are the receiver's own
                    out = torch.cat([plan.out[:, :first].repeat(out.shape[0] // batch, 1, 1), out], dim=1)
            scores = block_scores(out, sweep.metric, batch, sweep.per_example, plan.out.clone() if trimmed else None)
            for row, value in zip(torch.cat([rows for _, rows, _ in merged]).tolist(), scores):
                values[row] = value
    return torch.stack(values).detach().float()


def _merge_jobs(jobs: list, plan: Plan, activation: str, batch: int, max_rows: int) -> list[list]:
    """Jobs grouped into passes: consecutive direct jobs (of any layers) that start at the same
    position share one staggered pass while their rows fit ``max_rows``."""
    passes, open_pass = [], {}
    for job in jobs:
        layer, rows, first = job
        if not (plan.direct(activation, layer) and plan.chain.get(plan.start_block(layer), False)):
            passes.append([job])
            continue
        current = open_pass.get(first)
        if current is not None and sum(len(r) for _, r, _ in current) * batch + len(rows) * batch <= max_rows:
            current.append(job)
        else:
            open_pass[first] = [job]
            passes.append(open_pass[first])
    return passes


def _site_rows(chunk: Tensor, batch: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Row ``s * batch + b`` is copy ``b`` of the batch patched at site ``chunk[s]``: (row, b, pos, head)."""
    rows, b = block_rows(torch.arange(len(chunk)), batch)
    return rows, b, per_row(chunk[:, 1], batch), per_row(chunk[:, 2], batch)


def _direct_input(model, plan, activation, layer, chunk, donor, batch, first) -> tuple[int, Tensor]:
    """(block, residual stream entering it) for row block ``s`` patched at site ``chunk[s]``, positions ``first`` on."""
    row, b, pos, head = _site_rows(chunk, batch)
    value = donor[b, pos, head] if activation == "z" else donor[b, pos]
    resid = plan.stream(layer)[:, first:].repeat(len(chunk), 1, 1)
    if plan.how[layer] == "finish":
        value = finish_layer(model, activation, layer, plan.acts, value, b, pos, head)
    resid[row, pos - first] = value
    return plan.start_block(layer), resid


def _one_forward(model: Any, plan: Plan, sweep: Sweep, layer: int, chunk: Tensor, first: int) -> Tensor:
    """The output for the stacked receiver, row block ``s`` patched at site ``chunk[s]`` of ``layer``.

    ``first > 0``: only positions ``first`` onwards are run (the earlier ones' keys and
    values come from the receiver) and the receiver's own logits fill the earlier positions.
    """
    activation, receiver, donor = sweep.activation, sweep.receiver, sweep.donor_acts[layer]
    batch, n = receiver.shape[0], len(chunk)
    how, first = plan.one_call(model, receiver, layer, first)
    block = layer + 1 if how == "finish" else layer
    later = {"prefix_kv": prefix_kv(plan.acts, block, model.cfg.n_layers, first, n)} if first else {}
    if how == "finish" or (how == "start" and activation == "resid_pre"):
        # the patched vector goes straight into the residual stream the forward starts from
        # (no hook: TransformerLens's hook clean-up costs ~2 ms per forward)
        _, resid = _direct_input(model, plan, activation, layer, chunk, donor, batch, first)
        out = model(resid, start_at_layer=block, **later)
    else:
        rows, b, pos, head = _site_rows(chunk, batch)
        per_head = activation == "z"
        value = donor[b, pos, head] if per_head else donor[b, pos]
        hooks = [(hook_name(activation, layer), writer(rows, pos - first, value, head if per_head else None))]
        if how == "start":
            out = model.run_with_hooks(plan.acts[("resid_pre", layer)][:, first:].repeat(n, 1, 1),
                                       start_at_layer=layer, fwd_hooks=hooks, **later)
        else:
            out = from_tokens(model, receiver, n, hooks, sweep.output_hook, sweep.forward_kwargs)
    if first:  # earlier positions' logits are the receiver's own
        out = torch.cat([plan.out[:, :first].repeat(n, 1, 1), out], dim=1)
    return out
