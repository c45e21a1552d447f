"""MLP neurons as AND gates: activations, AND-gate scores, direct logit attribution, ablation.

Example::

    from interp.neurons import (mlp_activations, and_gate_score, neuron_logit_attribution,
                                top_activating, ablation_hooks)

    both = mlp_activations(model, tokens, positions)            # [batch layer d_mlp]
    score = and_gate_score(both, first_only, last_only)         # [batch layer d_mlp]
    dla = neuron_logit_attribution(model, layer=1, neurons=[7], token_ids=[12, 30])  # [neuron token]
    logits = model.run_with_hooks(tokens, fwd_hooks=ablation_hooks({1: [7]}, replacement))

The 3Blue1Brown series (part 7) pictures a fact such as "Michael Jordan plays basketball"
as a neuron whose up-projection row matches "first name Michael" + "last name Jordan",
whose ReLU turns it on only when both are present (an AND gate), and whose
down-projection row (``W_out[layer, neuron]``) adds the "basketball" direction to the
residual stream. These functions measure each part of that picture on any model with
TransformerLens hook names (``blocks.{L}.mlp.hook_post`` and ``W_out``, ``W_U``).
"""

from typing import Any, Callable, Optional, Sequence

import einops
import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.hook_names import act_name



def mlp_activations(
    model: Any,
    tokens: Int[Tensor, "batch pos"],
    positions: Int[Tensor, "batch"],
    layers: Optional[Sequence[int]] = None,
    **forward_kwargs: Any,
) -> Float[Tensor, "batch layer d_mlp"]:
    """Post-nonlinearity MLP activations of every neuron at ``positions[b]`` of row ``b``."""
    layers = list(range(model.cfg.n_layers)) if layers is None else list(layers)
    positions = torch.as_tensor(positions)
    if positions.shape != (tokens.shape[0],):
        raise ValueError(f"positions must hold one index per row ({tokens.shape[0]}), got shape {tuple(positions.shape)}")
    if int(positions.max()) >= tokens.shape[1] or int(positions.min()) < 0:
        raise ValueError(f"positions must lie in [0, {tokens.shape[1]}), got {positions.tolist()}")
    names = [act_name("post", layer) for layer in layers]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names, **forward_kwargs)
    rows = torch.arange(tokens.shape[0])
    return torch.stack([cache[name][rows, positions] for name in names], dim=1)


def and_gate_score(
    both: Float[Tensor, "*fact neuron"],
    first_only: Float[Tensor, "*fact neuron"],
    last_only: Float[Tensor, "*fact neuron"],
) -> Float[Tensor, "*fact neuron"]:
    """How much more a neuron fires for the pair than for either name alone.

    ``both`` is the activation for the true (first, last) pair; ``first_only`` and
    ``last_only`` the mean activation over pairs sharing only the first / only the last
    name. ``both - max(first_only, last_only)``: large and positive for an AND gate, near
    zero for a neuron that reads one name (or neither).
    """
    if not both.shape == first_only.shape == last_only.shape:
        raise ValueError(f"shapes differ: both {tuple(both.shape)}, first_only {tuple(first_only.shape)}, "
                         f"last_only {tuple(last_only.shape)}; average the contrasts per fact first")
    return both - torch.maximum(first_only, last_only)


def neuron_logit_attribution(
    model: Any,
    layer: int,
    neurons: Sequence[int],
    token_ids: Sequence[int],
) -> Float[Tensor, "neuron token"]:
    """Direct logit attribution of each neuron's output direction to each token, per unit activation.

    ``W_out[layer, n] @ W_U[:, t]``, after removing the mean over ``d_model`` when the final
    normalisation is a LayerNorm (it subtracts the mean, so that part never reaches the
    logits). The LayerNorm scale
    is a positive number shared by all tokens, so it changes sizes, not rankings.
    """
    direction = model.W_out[layer][list(neurons)]  # [neuron d_model]
    if _final_norm_centres(model):
        direction = direction - direction.mean(-1, keepdim=True)
    return einops.einsum(direction, model.W_U[:, list(token_ids)], "neuron d_model, d_model token -> neuron token").detach()


def _final_norm_centres(model: Any) -> bool:
    """Whether the final normalisation subtracts the mean (LayerNorm does, RMSNorm does not)."""
    cfg = model.cfg
    norm = getattr(cfg, "normalization", getattr(cfg, "normalization_type", "LN"))
    return norm in ("LN", "LNPre")


def top_activating(
    activations: Float[Tensor, "input neuron"],
    labels: Sequence[str],
    neurons: Sequence[int],
    k: int = 5,
) -> pd.DataFrame:
    """The ``k`` inputs that excite each neuron most: one row per (neuron, rank)."""
    if activations.shape[0] != len(labels):
        raise ValueError(f"{activations.shape[0]} activation rows but {len(labels)} labels")
    rows = []
    for n in neurons:
        values, order = activations[:, n].topk(min(k, len(labels)))
        rows += [{"neuron": n, "rank": r + 1, "input": labels[i], "activation": float(v)}
                 for r, (v, i) in enumerate(zip(values.tolist(), order.tolist()))]
    return pd.DataFrame(rows)


def ablation_hooks(
    neurons: dict[int, Sequence[int]],
    replacement: Optional[dict[int, Float[Tensor, "d_mlp"]]] = None,
    positions: Optional[Int[Tensor, "batch"]] = None,
) -> list[tuple[str, Callable]]:
    """Forward hooks that set the given neurons of ``{layer: [neuron, ...]}`` to a fixed value.

    ``replacement[layer]`` (e.g. each neuron's mean activation over the corpus: mean
    ablation) defaults to zero. With ``positions`` only row ``b``'s position
    ``positions[b]`` is ablated; otherwise every position.
    """
    hooks = []
    for layer, chosen in neurons.items():
        index = torch.as_tensor(list(chosen), dtype=torch.long)
        value = None if replacement is None else replacement[layer][index]

        def ablate(act: Tensor, hook: Any, index: Tensor = index, value: Optional[Tensor] = value) -> Tensor:
            fill = torch.zeros(len(index), dtype=act.dtype) if value is None else value.to(act.dtype)
            act = act.clone()
            if positions is None:
                act[..., index] = fill
            else:
                rows = torch.arange(act.shape[0])[:, None]
                act[rows, torch.as_tensor(positions)[:, None], index[None]] = fill
            return act

        hooks.append((act_name("post", layer), ablate))
    return hooks


def neuron_frame(scores: Float[Tensor, "fact layer d_mlp"], value_name: str = "and_score") -> pd.DataFrame:
    """Long format: one row per (fact, layer, neuron)."""
    index = pd.MultiIndex.from_product([range(n) for n in scores.shape], names=["fact", "layer", "neuron"])
    return pd.DataFrame({value_name: scores.detach().cpu().flatten().numpy()}, index=index).reset_index()
