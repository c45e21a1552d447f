"""A causal trace's restored runs as the runner's row blocks, one restored site each (:func:`causal_trace`).

Example::

    from interp.patching.restoring import corrupted_run, restored_scores, traces_fast

    out, receiver = corrupted_run(model, tokens, noise, subject)          # the noised copies, cached
    if traces_fast(model, receiver, out, metric):
        scores = restored_scores(model, receiver, out, clean_cache, restores, positions, metric,
                                 subject_start=subject[0], max_rows=1024)

Row block ``s`` is the ``samples`` noised copies of the prompt with site ``s`` restored. A
restored run differs from the corrupted run only from the restored layer on, and only at the
restored position and after it (attention is causal). So each restored site is run from the
block where it first differs (the block after a restored hidden state, which enters the stream
directly; the first layer of a restored MLP or attention window, whose outputs are written by
hooks), on the positions from the restored one only, the earlier positions entering as the
corrupted run's keys and values; sites of every layer that restore the same position share one
pass over the blocks (:func:`~interp.patching.runner.run_pass`), each joining at its own block;
and since the score reads the last position only, the last block runs that position alone. A
position before the subject holds in the corrupted run what it holds in the clean one (the noise
enters at the subject), so restoring it changes nothing and is not run: its score is the
corrupted score.

Every shortcut is one :mod:`interp.patching.exactness` checks against the model's own forward
(``chains_exactly``, ``trims_exactly``); a model that fails them, or a metric that reads more than
the last position, is traced by the hooked batches (:func:`noised_scores`) instead.
"""

from typing import Any, Callable, Optional, Sequence

import einops
import torch
from torch import Tensor

from interp.hook_names import act_name
from interp.hooks import attached, cached_run
from interp.patching.exactness import (CHECKS, accepts_prefix_kv, accepts_start_at_layer, chains_exactly,
                                       reads_last_position_only, trims_exactly)
from interp.patching.inputs import check_metric_value
from interp.patching.runner import block_rows, block_scores, from_tokens, per_row, run_pass, writer

# a site restores [(hook name, layer), ...] at its position; a hidden state alone enters the stream directly
Restore = Sequence[tuple[str, int]]


def noiser(noise: Tensor, subject: tuple[int, int]) -> Callable:
    """A hook adding ``noise`` (``[rows subject_len d_model]``) to the subject's embeddings."""
    def add_noise(act: Tensor, hook: Any) -> Tensor:
        act = act.clone()
        act[:, subject[0] : subject[1]] += noise.to(act)
        return act

    return add_noise


def corrupted_run(model: Any, tokens: Tensor, noise: Tensor, subject: tuple[int, int],
                  embed_hook: str = "hook_embed") -> tuple[Tensor, dict]:
    """The noised copies' output and what the shortcuts read: every block's input, keys and values
    (``("resid_pre", L)``, ``("k", L)``, ``("v", L)``) and the last block's output, for ``noise.shape[0]``
    copies of ``tokens`` ([1 pos]) with ``noise`` added to the subject's embeddings."""
    n_layers = model.cfg.n_layers
    names = {act_name("resid_pre", layer): ("resid_pre", layer) for layer in range(n_layers)}
    names.update({act_name(kv, layer): (kv, layer) for layer in range(n_layers) for kv in "kv"})
    names[act_name("resid_post", n_layers - 1)] = ("resid_post", n_layers - 1)
    with torch.no_grad(), attached(model, [(embed_hook, noiser(noise, subject))]):
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
        index.sort(key=lambda i: entry_block(restores[i]))
        for start in range(0, len(index), per_pass):
            chunk = index[start : start + per_pass]
            with torch.no_grad():
                last = _restored_pass(model, receiver, clean, [restores[i] for i in chunk], pos, samples)
                for i, score in zip(chunk, block_scores(last, metric, samples, True, frame)):
                    scores[i] = score.float().mean()
            if progress:
                progress(len(chunk))
    return scores


def entry_block(restore: Restore) -> int:
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
        block = entry_block(restore)
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
    hooks = [(name, writer(torch.tensor(rows), 0, clean[name][0, pos])) for name, rows in writes.items()]
    entries = [(block, torch.cat(streams)) for block, streams in sorted(joining.items())]
    return run_pass(model, entries, receiver, pos, samples, last_only=True, hooks=hooks)


def noised_scores(model: Any, tokens: Tensor, restores: Sequence[Sequence[str]], positions: Sequence[int],
                  noise: Tensor, subject: tuple[int, int], cache: dict, metric: Callable[[Tensor], Tensor],
                  embed_hook: str, output_hook: Optional[str], max_rows: int, forward_kwargs: dict) -> Tensor:
    """The hooked batches: mean score over noise samples for each site, site ``i`` restoring the hooks
    ``restores[i]`` at ``positions[i]``, every forward from the tokens (any hooked model)."""
    samples = noise.shape[0]
    per_forward = max(1, max_rows // samples)
    out = []
    with torch.no_grad():
        for start in range(0, len(restores), per_forward):
            chunk = range(start, min(start + per_forward, len(restores)))
            hooks = [(embed_hook, noiser(noise.repeat(len(chunk), 1, 1), subject))]
            by_name: dict[str, list[int]] = {}
            for row_block, i in enumerate(chunk):
                for name in restores[i]:
                    by_name.setdefault(name, []).append(row_block)
            for name, blocks in by_name.items():
                rows, _ = block_rows(torch.tensor(blocks), samples)
                pos = per_row(torch.tensor([positions[start + b] for b in blocks]), samples)
                hooks.append((name, writer(rows, pos, cache[name][0, pos])))
            n_rows = len(chunk) * samples
            result = from_tokens(model, tokens, n_rows, hooks, output_hook, forward_kwargs)
            values = check_metric_value(metric(result), n_rows, per_example=True)
            out.append(einops.reduce(values.float(), "(site sample) -> site", "mean", sample=samples))
    return torch.cat(out).cpu()


def fast_agrees(model, tokens, out, receiver, cache, sites, restores, noise, subject, metric, embed_hook) -> bool:
    """Whether :func:`restored_scores` scores one site of each kind (at the subject's last token) as
    :func:`noised_scores` does, within 1e-4 of the score's scale; checked on a model's first trace only
    (kept as ``CHECKS[model]["trace"]``)."""
    def check() -> bool:
        probe = [i for i, (kind, layer, pos) in enumerate(sites)
                 if pos == subject[1] - 1 and layer == model.cfg.n_layers // 2]
        probe = list({sites[i][0]: i for i in probe}.values())
        chosen = [restores[i] for i in probe]
        positions = [sites[i][2] for i in probe]
        fast = restored_scores(model, receiver, out, cache, chosen, positions, metric, subject[0])
        hooked = noised_scores(model, tokens, [[name for name, _ in r] for r in chosen], positions, noise, subject,
                               cache, metric, embed_hook, None, 1024, {})
        scale = max(1.0, float(hooked.abs().max())) if len(probe) else 1.0
        return bool(((fast - hooked).abs() <= 1e-4 * scale).all())

    return CHECKS.verdict(model, "trace", check)
