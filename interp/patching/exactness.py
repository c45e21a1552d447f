"""Whether each shortcut of :mod:`interp.patching.resume` reproduces the model's own forward, checked once per model.

Example::

    from interp.patching.exactness import CHECKS, resumes_exactly

    resumes_exactly(model, tokens, {2: resid_pre_2}, [2])   # runs two forwards the first time
    CHECKS[model][("start", 2)]                              # True: kept for every later sweep

A shortcut is used only where its check passed on the receiver's own (unpatched) run; a model
that does not honour it (an encoder bridge that rebuilds its input from the tokens, a forward
skewed when told to stop early) falls back to a slower form, down to running from the tokens.
Any exception inside a check counts as a failure.
"""

import inspect
import weakref
from typing import Any, Callable, Hashable, Optional

import torch
from torch import Tensor

from interp.patching import resume
from interp.patching.resume import finish_layer, prefix_kv


class ShortcutChecks:
    """The verdicts of the exactness checks, per model: ``CHECKS[model]`` is a dict ``{key: bool}``.

    Keys: ``("start", L)`` (``start_at_layer=L`` from the stream entering block ``L``, to the end),
    ``("prefix", L)`` (the same on the later positions, the earlier ones' keys and values given),
    ``("block", L)`` (block ``L`` alone: ``start_at_layer=L, stop_at_layer=L + 1``), ``"unembed"``
    (``start_at_layer=n_layers``), ``("chain", L)`` (blocks ``L`` onwards one call each, then the
    unembedding), ``"trim"`` (the last block on the last position alone), ``("finish", activation, L)``
    (block ``L`` finished by hand after a patch of ``activation``) and ``"trace"`` (causal tracing's
    restored runs give the hooked batches' scores).

    Keyed by the model object, weakly: the entries go when the model does. A check costs a few
    forwards (on SmolLM2 the first sweep's checks are a third of its time), and what it decides is
    how the model's forward code treats its arguments, which no weight edit changes; so a verdict is
    never invalidated while the model lives. :meth:`forget` drops a model's verdicts (after
    replacing its forward, say).
    """

    def __init__(self) -> None:
        self._verdicts: "weakref.WeakKeyDictionary[Any, dict[Hashable, bool]]" = weakref.WeakKeyDictionary()

    def __getitem__(self, model: Any) -> dict[Hashable, bool]:
        return self._verdicts[model]

    def known(self, model: Any, key: Hashable) -> Optional[bool]:
        """The kept verdict, or None when ``key`` has not been checked on ``model``."""
        return self._verdicts.get(model, {}).get(key)

    def verdict(self, model: Any, key: Hashable, check: Callable[[], bool]) -> bool:
        """``check()`` the first time ``key`` is asked of ``model``, then its kept answer."""
        verdicts = self._verdicts.setdefault(model, {})
        if key not in verdicts:
            verdicts[key] = bool(check())
        return verdicts[key]

    def forget(self, model: Any) -> None:
        """Drop every verdict kept for ``model``."""
        self._verdicts.pop(model, None)


CHECKS = ShortcutChecks()


def holds(check: Callable[[], bool]) -> bool:
    """``check()`` without gradients, False when it raises: any failure means the shortcut is not used."""
    try:
        with torch.no_grad():
            return bool(check())
    except Exception:  # noqa: BLE001 - a model without the parts a shortcut reads: do not use it
        return False


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


def _accepts(model: Any, argument: str) -> bool:
    try:
        return argument in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def accepts_start_at_layer(model: Any) -> bool:
    """Whether ``model.forward`` takes a ``start_at_layer`` argument."""
    return _accepts(model, "start_at_layer")


def accepts_prefix_kv(model: Any) -> bool:
    """Whether ``model.forward`` takes ``prefix_kv`` (keys and values of earlier positions)."""
    return _accepts(model, "prefix_kv")


def resumes_exactly(model: Any, tokens: Tensor, resid: dict[int, Tensor], layers: list[int],
                    full: Optional[Tensor] = None) -> bool:
    """Whether ``start_at_layer`` reproduces the full forward at every layer in ``layers``.

    Not every forward that takes the argument honours it (an encoder bridge, say, may
    rebuild its input from tokens), so it is checked on the unpatched input, one batch per
    layer, before any patched forward relies on it. ``resid[L]`` is the residual stream
    entering block ``L`` (for ``L = n_layers``, the one leaving the last block).
    """
    reference = [full]

    def own_forward() -> Tensor:
        if reference[0] is None:
            with torch.no_grad():
                reference[0] = model(tokens)
        return reference[0]

    def check(layer: int) -> bool:
        full = own_forward()  # outside holds: a forward that fails on the tokens is not a failed shortcut
        return holds(lambda: reproduces(model(resid[layer], start_at_layer=layer), full))

    return all([CHECKS.verdict(model, ("start", layer), lambda layer=layer: check(layer)) for layer in layers])


def prefix_exactly(model: Any, start: int, resid: Tensor, receiver: dict, full: Tensor) -> bool:
    """Whether resuming at block ``start`` on the later positions, with the earlier ones'
    keys and values given, reproduces the full forward's logits there (checked once)."""
    if resid.shape[1] < 2:  # one position: nothing to split (and nothing to learn about the model)
        return False
    n_prefix = max(1, resid.shape[1] // 2)
    return CHECKS.verdict(model, ("prefix", start), lambda: holds(lambda: reproduces(
        model(resid[:, n_prefix:], start_at_layer=start,
              prefix_kv=prefix_kv(receiver, start, model.cfg.n_layers, n_prefix, 1)),
        full[:, n_prefix:])))


def chains_exactly(model: Any, start: int, resid: Tensor, receiver: dict, full: Tensor) -> bool:
    """Whether running blocks ``start`` onwards one call each (``start_at_layer=b``,
    ``stop_at_layer=b + 1``, with or without the earlier positions' keys and values), then
    ``start_at_layer=n_layers`` for the unembedding, reproduces the model's own forward
    (checked once per model and block). :func:`~interp.patching.resume.staggered_forward` relies on it.

    Checked call by call: each block, run alone on the receiver's stream entering it (``resid``
    for block ``start``), reproduces the stream entering the next (on every position, and on the
    later half with the earlier half's keys and values), and the unembedding reproduces
    ``full``; so each block is run once for all starts (a check per start from its block to the
    end cost SmolLM2 30 times 15 blocks).
    """
    known = CHECKS.known(model, ("chain", start))
    if known is not None:
        return known
    n_layers = model.cfg.n_layers
    streams = {b: _stream(receiver, b, n_layers) for b in range(start, n_layers + 1)}
    streams[start] = resid
    if any(stream is None for stream in streams.values()):  # not cached for this receiver
        return False
    return CHECKS.verdict(model, ("chain", start), lambda: all(
        _block_alone_exactly(model, b, streams[b], streams[b + 1], receiver) for b in range(start, n_layers)
    ) and _unembeds_exactly(model, streams[n_layers], full))


def _stream(receiver: dict, block: int, n_layers: int) -> Optional[Tensor]:
    """The receiver's residual stream entering ``block`` (``n_layers``: leaving the last block), if cached."""
    pre = receiver.get(("resid_pre", block)) if block < n_layers else None
    return pre if pre is not None else receiver.get(("resid_post", block - 1))


def _block_alone_exactly(model: Any, block: int, x: Tensor, y: Tensor, receiver: dict) -> bool:
    """Whether ``start_at_layer=block, stop_at_layer=block + 1`` maps the stream ``x`` entering the block
    to ``y`` entering the next, on every position and on the later half given the earlier half's keys
    and values (checked once per model and block)."""
    n_prefix = x.shape[1] // 2

    def check() -> bool:
        if not reproduces(model(x, start_at_layer=block, stop_at_layer=block + 1), y):
            return False
        return not n_prefix or reproduces(model(x[:, n_prefix:], start_at_layer=block, stop_at_layer=block + 1,
                                                prefix_kv=prefix_kv(receiver, block, block + 1, n_prefix, 1)),
                                          y[:, n_prefix:])

    return CHECKS.verdict(model, ("block", block), lambda: holds(check))


def _unembeds_exactly(model: Any, x: Tensor, full: Tensor) -> bool:
    """Whether ``start_at_layer=n_layers`` maps the stream leaving the last block to the logits ``full``."""
    return CHECKS.verdict(model, "unembed",
                          lambda: holds(lambda: reproduces(model(x, start_at_layer=model.cfg.n_layers), full)))


def trims_exactly(model: Any, receiver: dict, full: Tensor) -> bool:
    """Whether :func:`~interp.patching.resume.last_position_through` (keys and values of the earlier
    positions by :func:`~interp.patching.resume.block_kv`) reproduces the full forward's
    last-position logits (checked once)."""
    last = model.cfg.n_layers - 1

    def check() -> bool:
        resid = receiver.get(("resid_pre", last))
        n_prefix = resid.shape[1] // 2
        # looked up on the module: the check runs whatever staggered_forward runs (a test counts the calls)
        x = resume.last_position_through(model, resid[:, n_prefix:], last, receiver, n_prefix, 1)
        return reproduces(model(x, start_at_layer=model.cfg.n_layers), full[:, -1:])

    return CHECKS.verdict(model, "trim", lambda: holds(check))


def finishes_exactly(model: Any, activation: str, layer: int, receiver: dict) -> bool:
    """Whether finishing block ``layer`` by hand reproduces its ``resid_post`` on the receiver."""
    def check() -> bool:
        batch, n_pos = receiver[("resid_post", layer)].shape[:2]
        b, pos = torch.arange(batch).repeat_interleave(n_pos), torch.arange(n_pos).repeat(batch)
        acts = receiver[(activation, layer)]
        head = torch.arange(len(b)) % acts.shape[2] if activation == "z" else None
        own = acts[b, pos] if head is None else acts[b, pos, head]
        mine = finish_layer(model, activation, layer, receiver, own, b, pos, head)
        return reproduces(mine, receiver[("resid_post", layer)][b, pos])

    return CHECKS.verdict(model, ("finish", activation, layer), lambda: holds(check))


def reads_last_position_only(metric: Any, out: Tensor, value: Tensor) -> bool:
    """Whether ``metric(out)`` reads the last position only: it returns ``value`` again when every
    earlier position holds NaN, and when it holds noise (two extra calls of the metric)."""
    if out.ndim < 3 or out.shape[1] < 2:
        return False
    noise = torch.randn(out[:, :-1].shape, generator=torch.Generator().manual_seed(0), dtype=out.dtype)

    def check() -> bool:
        for fill in (torch.full_like(out[:, :-1], float("nan")), noise * (1 + out.abs().max())):
            probe = out.clone()
            probe[:, :-1] = fill
            if not torch.equal(torch.as_tensor(metric(probe)), value):
                return False
        return True

    try:
        return check()
    except Exception:  # noqa: BLE001 - a metric that cannot take the probe: run every position
        return False
