"""Is a layer storing more features than it has dimensions? Geometry of feature directions.

Measures from Elhage et al. 2022, "Toy Models of Superposition", for any matrix whose
columns are feature directions, laid out ``[..., hidden, features]`` (leading dimensions,
such as ``instances``, are kept):

- ``feature_norms``: ``||W_i||``, about 1 for a represented feature, 0 for a dropped one;
- ``interference``: ``Σ_{j≠i} (Ŵ_i · W_j)²``, how much other features leak onto feature i
  (the colour of the paper's bar charts, section "Demonstrating Superposition");
- ``feature_dimensionality``: ``D_i = ||W_i||² / Σ_j (Ŵ_i · W_j)²`` (section "Feature
  Dimensionality"), the fraction of a dimension feature i gets: 1 alone, 1/2 in an
  antipodal pair, 2/5 in a pentagon, 3/4 in a tetrahedron;
- ``dimensions_per_feature``: ``D* = m / ||W||_F²`` (section "The Geometry of
  Superposition"), hidden dimensions per (norm-weighted) feature.

Example::

    import math, torch
    from interp.superposition import feature_dimensionality

    angles = torch.arange(5) * 2 * math.pi / 5
    pentagon = torch.stack([angles.cos(), angles.sin()])   # [hidden=2, features=5]
    feature_dimensionality(pentagon)                       # tensor([0.4, 0.4, 0.4, 0.4, 0.4])
"""

import einops
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor


def _check(W: Tensor) -> None:
    if W.ndim < 2:
        raise ValueError(f"W must be laid out [..., hidden, features], got shape {tuple(W.shape)}")


def feature_norms(W: Float[Tensor, "... hidden features"]) -> Float[Tensor, "... features"]:
    """``||W_i||`` for each feature column."""
    _check(W)
    return W.norm(dim=-2)


def _projections(W: Tensor, eps: float) -> Tensor:
    """``(Ŵ_i · W_j)`` for all i, j: [..., features(i), features(j)]; rows of dead features are 0."""
    norms = feature_norms(W)
    unit = W / norms.clamp_min(eps).unsqueeze(-2)
    unit = torch.where(norms.unsqueeze(-2) > eps, unit, torch.zeros_like(unit))
    return einops.einsum(unit, W, "... hidden i, ... hidden j -> ... i j")


def interference(W: Float[Tensor, "... hidden features"], eps: float = 1e-8) -> Float[Tensor, "... features"]:
    """``Σ_{j≠i} (Ŵ_i · W_j)²``: squared length of the other features along feature i."""
    _check(W)
    squared = _projections(W, eps) ** 2
    return squared.sum(-1) - torch.diagonal(squared, dim1=-2, dim2=-1)


def feature_dimensionality(W: Float[Tensor, "... hidden features"], eps: float = 1e-8) -> Float[Tensor, "... features"]:
    """``D_i = ||W_i||² / Σ_j (Ŵ_i · W_j)²``; 0 for features the model dropped (W_i = 0)."""
    _check(W)
    denominator = (_projections(W, eps) ** 2).sum(-1)
    numerator = feature_norms(W) ** 2
    return torch.where(denominator > eps, numerator / denominator.clamp_min(eps), torch.zeros_like(numerator))


def dimensions_per_feature(W: Float[Tensor, "... hidden features"]) -> Float[Tensor, "..."]:
    """``D* = m / ||W||_F²``, with m the number of hidden dimensions."""
    _check(W)
    return W.shape[-2] / (W**2).sum(dim=(-2, -1))


def superposition_table(W: Float[Tensor, "instances hidden features"]) -> pd.DataFrame:
    """One row per (instance, feature): norm, interference and dimensionality."""
    if W.ndim != 3:
        raise ValueError(f"superposition_table wants W as [instances hidden features], got {tuple(W.shape)}")
    W = W.detach().double()
    n_instances, _, n_features = W.shape
    return pd.DataFrame({
        "instance": torch.arange(n_instances).repeat_interleave(n_features).numpy(),
        "feature": torch.arange(n_features).repeat(n_instances).numpy(),
        "norm": feature_norms(W).flatten().numpy(),
        "interference": interference(W).flatten().numpy(),
        "dimensionality": feature_dimensionality(W).flatten().numpy(),
    })
