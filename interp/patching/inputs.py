"""What the patching family takes, checked once: token pairs, layers, counts, metric values, hook names.

    >>> hook_name("mlp_out", 2)
    'blocks.2.hook_mlp_out'
    >>> check_layers([2, 0], n_layers=3)
    [2, 0]
    >>> check_count("samples", 0)
    Traceback (most recent call last):
    ...
    ValueError: samples must be a whole number >= 1, got 0

Every check raises a ValueError saying what to change. Hook names come from
:mod:`interp.hook_names`, the one vocabulary of the instruments; :func:`run_metric` is the one
hooked forward whose output (the logits, or the activation at ``output_hook``) a metric reads.
"""

import math
import operator
from typing import Any, Callable, Iterable, Optional

import torch
from jaxtyping import Int
from torch import Tensor

from interp.hook_names import PATCHABLE, act_name

Metric = Callable[[Tensor], Tensor]


def hook_name(activation: str, layer: int) -> str:
    """``hook_name("mlp_out", 2) == "blocks.2.hook_mlp_out"``; only the activations patching sweeps."""
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


def check_token_pair(clean_tokens: Tensor, corrupted_tokens: Tensor) -> None:
    """Raise unless the two inputs can be patched position by position."""
    if clean_tokens.ndim != 2:
        raise ValueError(f"tokens must be [batch pos], got shape {tuple(clean_tokens.shape)}; add a batch dim")
    if clean_tokens.shape != corrupted_tokens.shape:
        raise ValueError(
            f"clean tokens have shape {tuple(clean_tokens.shape)} but corrupted tokens "
            f"{tuple(corrupted_tokens.shape)}: patching pairs positions one to one, so the prompts "
            "must have the same number of tokens (choose a corruption of equal length, or pad both)"
        )


def check_layers(layers: Optional[Iterable[int]], n_layers: int) -> list[int]:
    """``layers`` as a list of block indices (every block when None), or a ValueError saying what to change.

    A layer may appear twice (its row is computed twice); a negative one is refused rather than
    counted from the end, so that a mistake in computing it cannot pass for the last block.
    """
    if layers is None:
        return list(range(n_layers))
    try:
        wanted = list(layers) if not isinstance(layers, str) else None
    except TypeError:  # a single int, say
        wanted = None
    if not wanted:
        raise ValueError(f"layers must be a non-empty list of block indices in [0, {n_layers}) or None (every "
                         f"block), got {layers!r}")
    bad = [layer for layer in wanted if whole_number(layer) is None or not 0 <= whole_number(layer) < n_layers]
    if bad:
        raise ValueError(f"layers must lie in [0, {n_layers}) (n_layers={n_layers}), got {bad} in {layers!r}")
    return [whole_number(layer) for layer in wanted]


def check_subject(subject: tuple[int, int], n_pos: int) -> tuple[int, int]:
    """``subject`` as a pair of ints inside a prompt of ``n_pos`` tokens, or a ValueError saying what to change."""
    try:
        pair = [whole_number(i) for i in subject] if not isinstance(subject, str) else []
    except TypeError:  # not a sequence at all
        pair = []
    if len(pair) != 2 or None in pair or not 0 <= pair[0] < pair[1] <= n_pos:
        raise ValueError(f"subject span {subject!r} is not inside the prompt of {n_pos} tokens; "
                         "it must be (start, stop), whole numbers with 0 <= start < stop <= n_pos")
    return pair[0], pair[1]


def check_noise_std(noise_std: Any) -> float:
    """``noise_std`` as a float, or a ValueError unless it is a finite number >= 0."""
    try:
        std = float(noise_std) if not isinstance(noise_std, (str, bytes, bool)) else math.nan
    except (TypeError, ValueError, RuntimeError):  # not a number, or a tensor of several
        std = math.nan
    if not (math.isfinite(std) and std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0 (ROME: 3 times the embeddings' standard "
                         f"deviation, see embedding_std), got {noise_std!r}")
    return std


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
