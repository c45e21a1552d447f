"""Running a causal trace's restored copies fast: the engine behind :func:`interp.tracing.causal_trace`.

Example::

    from interp.trace_runs import corrupted_run, restored_scores, traces_fast

    out, receiver = corrupted_run(model, tokens, noise, subject)          # the noised copies, cached
    if traces_fast(model, receiver, out, metric):
        scores = restored_scores(model, receiver, out, clean_cache, restores, positions, metric,
                                 subject_start=subject[0], max_rows=1024)

A restored run differs from the corrupted run only from the restored layer on, and only at
the restored position and after it (attention is causal). So each restored site is run from
the block where it first differs (the block after a restored hidden state, which enters the
stream directly; the first layer of a restored MLP or attention window, whose outputs are
written by hooks), on the positions from the restored one only, the earlier positions entering
as the corrupted run's keys and values (``prefix_kv``); sites of every layer that restore the
same position share one pass over the blocks, each joining at its own block; and since the
score reads the last position only, the last block runs that position alone
(:func:`interp.resume.last_position_through`). A position before the subject holds in the
corrupted run what it holds in the clean one (the noise enters at the subject), so restoring
it changes nothing and is not run: its score is the corrupted score.

Every shortcut is one :mod:`interp.resume` checks against the model's own forward
(:func:`interp.resume.chains_exactly`, :func:`~interp.resume.trims_exactly`); a model that
fails them, or a metric that reads more than the last position, is traced by the hooked
batches of :mod:`interp.tracing` instead.
"""

from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor

from interp.hook_names import act_name
from interp.hooks import attached, cached_run
from interp.patch_runs import check_metric_value
from interp.resume import (accepts_prefix_kv, accepts_start_at_layer, chains_exactly, last_position_through, prefix_kv,
                           reads_last_position_only, trims_exactly)

# a site restores [(hook name, layer), ...]; a hidden state alone enters the stream directly
Restore = Sequence[tuple[str, int]]


def corrupted_run(model: Any, tokens: Tensor, noise: Tensor, subject: tuple[int, int],
                  embed_hook: str = "hook_embed") -> tuple[Tensor, dict]:
    """The noised copies' output and what the shortcuts read: every block's input, keys and values
    (``("resid_pre", L)``, ``("k", L)``, ``("v", L)``) and the last block's output, for ``noise.shape[0]``
    copies of ``tokens`` ([1 pos]) with ``noise`` added to the subject's embeddings."""
    n_layers = model.cfg.n_layers
    names = {act_name("resid_pre", layer): ("resid_pre", layer) for layer in range(n_layers)}
    names.update({act_name(kv, layer): (kv, layer) for layer in range(n_layers) for kv in "kv"})
    names[act_name("resid_post", n_layers - 1)] = ("resid_post", n_layers - 1)

    def add_noise(act: Tensor, hook: Any) -> Tensor:
        act = act.clone()
        act[:, subject[0] : subject[1]] += noise.to(act)
        return act

    with torch.no_grad(), attached(model, [(embed_hook, add_noise)]):
        out, cache = cached_run(model, tokens.repeat(noise.shape[0], 1), list(names))
    return out, {key: cache[name] for name, key in names.items()}


def traces_fast(model: Any, receiver: dict, out: Tensor, metric: Callable[[Tensor], Tensor]) -> bool:
    """Whether the model honours every shortcut (checked once per model) and the metric reads the last position only."""
    if not (accepts_start_at_layer(model) and accepts_prefix_kv(model) and out.ndim == 3 and out.shape[1] > 1):
        return False
    if ("resid_pre", 0) not in receiver:
        return False
    with torch.no_grad():
        if not reads_last_position_only(metric, out, metric(out)):
            return False
        return chains_exactly(model, 0, receiver[("resid_pre", 0)], receiver, out) and trims_exactly(model, receiver, out)


def restored_scores(model: Any, receiver: dict, out: Tensor, clean: dict[str, Tensor], restores: Sequence[Restore],
                    positions: Sequence[int], metric: Callable[[Tensor], Tensor], subject_start: int,
                    max_rows: int = 1024, progress: Optional[Callable[[int], None]] = None) -> Tensor:
    """Mean score over the noise samples for each site: site ``i`` writes the clean ``clean[name][0, positions[i]]``
    into every ``(name, layer)`` of ``restores[i]`` in the corrupted run (``out``, ``receiver`` from
    :func:`corrupted_run`). Needs :func:`traces_fast`. ``progress(n)`` is told each time ``n`` more sites are done."""
    samples = out.shape[0]
    with torch.no_grad():
        corrupted = float(check_metric_value(metric(out), samples, per_example=True).float().mean())
    scores = torch.full((len(restores),), corrupted)
    frame = out.clone()  # each site's last position is written into it: the metric reads nothing else
    by_position: dict[int, list[int]] = {}
    for i, pos in enumerate(positions):
        by_position.setdefault(int(pos), []).append(i)
    per_pass = max(1, max_rows // samples)
    for pos, index in sorted(by_position.items()):
        if pos < subject_start:  # the clean state there is the corrupted one
            if progress:
                progress(len(index))
            continue
        index.sort(key=lambda i: _entry_block(restores[i]))
        for start in range(0, len(index), per_pass):
            chunk = index[start : start + per_pass]
            with torch.no_grad():
                last = _restored_pass(model, receiver, clean, [restores[i] for i in chunk], pos, samples)
                for j, i in enumerate(chunk):
                    frame[:, -1:] = last[j * samples : (j + 1) * samples]
                    scores[i] = check_metric_value(metric(frame), samples, per_example=True).float().mean()
            if progress:
                progress(len(chunk))
    return scores


def _entry_block(restore: Restore) -> int:
    """The first block whose input differs from the corrupted run's."""
    if _direct(restore):
        return restore[0][1] + 1
    return min(layer for _, layer in restore)


def _direct(restore: Restore) -> bool:
    return len(restore) == 1 and restore[0][0].endswith(".hook_resid_post")


def _restored_pass(model: Any, receiver: dict, clean: dict[str, Tensor], restores: Sequence[Restore], pos: int,
                   samples: int) -> Tensor:
    """Last-position logits ``[len(restores) * samples, 1, d_vocab]`` of the sites of one position (sorted by
    entry block), from one pass over the blocks: positions ``pos`` on, earlier ones as the corrupted run's keys
    and values, each site's rows joining at its entry block."""
    n_layers = model.cfg.n_layers
    n_pos = receiver[("resid_pre", 0)].shape[1]
    joining: dict[int, list[Tensor]] = {}
    writes: dict[str, list[int]] = {}
    for s, restore in enumerate(restores):
        block = _entry_block(restore)
        stream = receiver[("resid_pre", block)] if block < n_layers else receiver[("resid_post", n_layers - 1)]
        stream = stream[:, pos:]
        if _direct(restore):
            stream = stream.clone()
            stream[:, 0] = clean[restore[0][0]][0, pos]
        else:
            for name, layer in restore:
                # in the last block only the last position runs: a write elsewhere cannot reach the output
                if layer < n_layers - 1 or pos == n_pos - 1:
                    writes.setdefault(name, []).extend(range(s * samples, (s + 1) * samples))
        joining.setdefault(block, []).append(stream)
    hooks = [(name, _writer(torch.tensor(rows), clean[name][0, pos])) for name, rows in writes.items()]
    first = min(joining)
    x = None
    with attached(model, hooks):
        for block in range(first, n_layers + 1):
            if block in joining:
                entry = torch.cat(joining[block])
                if block == n_layers and x is not None:
                    entry = entry[:, -1:]  # past the trimmed last block: the last position
                x = entry if x is None else torch.cat([x, entry])
            if block == n_layers:
                break
            repeats = x.shape[0] // samples
            if block == n_layers - 1 and x.shape[1] > 1:
                x = last_position_through(model, x, block, receiver, pos, repeats)
            else:
                kv = prefix_kv(receiver, block, block + 1, pos, repeats) if pos else None
                x = model(x, start_at_layer=block, stop_at_layer=block + 1, prefix_kv=kv)
        return model(x[:, -1:], start_at_layer=n_layers)


def _writer(rows: Tensor, value: Tensor) -> Callable:
    """A hook writing ``value`` at the first position run (the restored one) of ``rows``."""
    def write(act: Tensor, hook: Any) -> Tensor:
        act[rows, 0] = value.to(act.dtype)
        return act

    return write
