"""Attribution patching: a first-order estimate of every patch from one forward and one backward pass.

Example::

    from interp.patching import attribution_patching

    change = attribution_patching(model, clean_tokens, corrupted_tokens, logit_diff, "mlp_out")
    change.shape                                  # (n_layers, pos): estimated metric changes

It trades exactness (:func:`~interp.patching.activation_patching`) for speed: one backward pass
instead of one patched forward per site, good where the metric is near-linear in the
activation (Nanda 2023, "Attribution patching"). One forward and one backward need no row
blocks, so it shares with the runner (:mod:`interp.patching.runner`) only the inputs and the
hook-name vocabulary (:mod:`interp.patching.inputs`), not its batching.
"""

import contextlib
from typing import Any, Callable, Optional

import einops
import torch
from jaxtyping import Int
from torch import Tensor

from interp.patching.inputs import Metric, check_metric_value, check_token_pair, hook_name, run_metric


def attribution_patching(
    model: Any,
    clean_tokens: Int[Tensor, "batch pos"],
    corrupted_tokens: Int[Tensor, "batch pos"],
    metric: Metric,
    activation: str = "resid_pre",
    *,
    output_hook: Optional[str] = None,
    **forward_kwargs: Any,
) -> Tensor:
    """First-order estimate of denoising patching from one forward and one backward pass.

    ``metric(patched) - metric(corrupted) ~= (clean_act - corrupted_act) . d metric / d act``
    at the corrupted run (Nanda 2023, "Attribution patching"), summed over ``d_model``
    (``d_head`` for ``"z"``). Returns ``[layer pos]`` (``[layer pos head_index]`` for ``"z"``)
    of estimated *changes* of the metric (not patched values). ``metric`` must be scalar.
    """
    check_token_pair(clean_tokens, corrupted_tokens)
    layers = list(range(model.cfg.n_layers))
    names = [hook_name(activation, layer) for layer in layers]
    with torch.no_grad():
        _, clean_cache = model.run_with_cache(clean_tokens, names_filter=lambda name: name in names, **forward_kwargs)
    acts: dict[str, Tensor] = {}

    def keeper(name: str) -> Callable:
        def keep(act: Tensor, hook: Any) -> None:
            acts[name] = act  # keyed by our name: a bridge's hook.name may be an alias

        return keep

    with _grad_through_activations(model):
        value = check_metric_value(
            metric(run_metric(model, corrupted_tokens, [(n, keeper(n)) for n in names], output_hook, **forward_kwargs)),
            corrupted_tokens.shape[0], per_example=False,
        )
        grads = torch.autograd.grad(value, [acts[n] for n in names], allow_unused=True)
    rows = []
    for name, grad in zip(names, grads):
        diff = clean_cache[name] - acts[name].detach()
        grad = torch.zeros_like(diff) if grad is None else grad
        pattern = "batch pos head d_head, batch pos head d_head -> pos head" if activation == "z" else \
            "batch pos d_model, batch pos d_model -> pos"
        rows.append(einops.einsum(diff, grad, pattern))
    return torch.stack(rows).detach().float()


@contextlib.contextmanager
def _grad_through_activations(model: Any):
    """Make activations differentiable without touching parameters' ``.grad``.

    Parameters get ``requires_grad`` for the duration (a frozen model has none), and
    gradients are taken with ``torch.autograd.grad`` so no ``.grad`` field is written.
    """
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(True)
        with torch.enable_grad():
            yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
