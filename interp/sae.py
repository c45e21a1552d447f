"""Can a sparse dictionary read superposed features back out of a layer's activations?

A sparse autoencoder (Sharkey, Braun & Millidge 2022, "Taking features out of
superposition with sparse autoencoders"; Bricken et al. 2023, "Towards Monosemanticity")
learns an overcomplete dictionary ``W_dec`` whose rows reconstruct activations from a few
active latents: ``f = ReLU((x - b_dec) W_enc + b_enc)``, ``x̂ = f W_dec + b_dec``. Sparsity
comes from an L1 penalty on ``f`` (weighted by the decoder row norms, so shrinking the
decoder cannot dodge it) or from keeping only the k largest latents (Gao et al. 2024,
"Scaling and evaluating sparse autoencoders"). Parameter names follow SAELens.

Example::

    import torch
    from interp.sae import train_sae, recovery_score

    true = torch.nn.functional.normalize(torch.randn(6, 3), dim=1)     # 6 features in 3 dims
    codes = torch.rand(4096, 6) * (torch.rand(4096, 6) < 0.1)
    sae = train_sae(codes @ true, d_sae=12, steps=2000)
    recovery_score(sae.W_dec, true)            # mean over features of the best |cos|
"""

from typing import Literal

import einops
import torch
from jaxtyping import Float
from torch import Tensor, nn

from models.schedules import cosine_annealing
from models.train import TrainConfig, train


class SparseAutoencoder(nn.Module):
    """``d_in -> d_sae -> d_in`` with ReLU (L1) or top-k latents."""

    def __init__(self, d_in: int, d_sae: int, k: int | None = None):
        super().__init__()
        if d_in < 1 or d_sae < 1:
            raise ValueError(f"d_in and d_sae must be >= 1, got {d_in}, {d_sae}")
        if k is not None and not 1 <= k <= d_sae:
            raise ValueError(f"k must lie in [1, d_sae={d_sae}], got {k}")
        self.k = k
        W_dec = nn.functional.normalize(torch.randn(d_sae, d_in), dim=1)
        self.W_dec = nn.Parameter(W_dec)  # [d_sae d_in]: row a is latent a's direction
        self.W_enc = nn.Parameter(W_dec.T.clone())  # tied at init (Bricken et al. 2023)
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.b_dec = nn.Parameter(torch.zeros(d_in))

    def encode(self, x: Float[Tensor, "batch d_in"]) -> Float[Tensor, "batch d_sae"]:
        pre = einops.einsum(x - self.b_dec, self.W_enc, "batch d_in, d_in d_sae -> batch d_sae") + self.b_enc
        if self.k is None:
            return torch.relu(pre)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))

    def decode(self, latents: Float[Tensor, "batch d_sae"]) -> Float[Tensor, "batch d_in"]:
        return einops.einsum(latents, self.W_dec, "batch d_sae, d_sae d_in -> batch d_in") + self.b_dec

    def forward(self, x: Float[Tensor, "batch d_in"]) -> tuple[Tensor, Tensor]:
        latents = self.encode(x)
        return self.decode(latents), latents


def train_sae(
    activations: Float[Tensor, "batch d_in"],
    d_sae: int,
    *,
    penalty: Literal["l1", "topk"] = "l1",
    l1_coefficient: float = 3e-3,
    k: int = 4,
    steps: int = 3000,
    batch_size: int = 512,
    lr: float = 3e-3,
    seed: int = 0,
    progress: bool = False,
) -> SparseAutoencoder:
    """Fit a sparse autoencoder to ``activations`` (rows are samples).

    Loss: mean squared reconstruction error (summed over ``d_in``) plus, for
    ``penalty="l1"``, ``l1_coefficient · Σ_a f_a ||W_dec,a||``. Adam with a cosine schedule, in
    :func:`models.train.train`; torch's global RNG is seeded with ``seed``.
    """
    if activations.ndim != 2 or activations.shape[0] < 2:
        raise ValueError(f"activations must be [batch d_in] with batch >= 2, got {tuple(activations.shape)}")
    if penalty not in ("l1", "topk"):
        raise ValueError(f"penalty must be 'l1' or 'topk', got {penalty!r}")
    if l1_coefficient < 0 or steps < 0:
        raise ValueError("l1_coefficient and steps must be non-negative")
    torch.manual_seed(seed)
    activations = activations.detach().float()
    sae = SparseAutoencoder(activations.shape[1], d_sae, k=k if penalty == "topk" else None)
    with torch.no_grad():
        sae.b_dec.copy_(activations.median(dim=0).values)  # start the bias at the data's centre
    generator = torch.Generator().manual_seed(seed)

    def batches(step: int) -> Tensor:  # from one generator, in order: no checkpoints, so no resume
        return activations[torch.randint(0, activations.shape[0], (batch_size,), generator=generator)]

    def loss_fn(sae: SparseAutoencoder, x: Tensor) -> Tensor:
        reconstruction, latents = sae(x)
        loss = ((reconstruction - x) ** 2).sum(-1).mean()
        if penalty == "l1":
            loss = loss + l1_coefficient * (latents * sae.W_dec.norm(dim=1)).sum(-1).mean()
        return loss

    if steps:
        # AdamW without weight decay is Adam; the cosine schedule is torch's CosineAnnealingLR.
        cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, weight_decay=0.0, min_lr_ratio=0.0,
                          grad_clip=None, seed=seed, threads=None)
        train(sae, batches, loss_fn, cfg, learning_rates=cosine_annealing(lr, steps), progress=progress, desc="sae")
    return sae.eval()


def max_cosine_similarity(
    dictionary: Float[Tensor, "d_sae d_in"], true_features: Float[Tensor, "features d_in"]
) -> Float[Tensor, "features"]:
    """For each true feature, the largest cosine with any dictionary row."""
    if dictionary.shape[-1] != true_features.shape[-1]:
        raise ValueError(
            f"dictionary rows ({dictionary.shape[-1]}) and true features ({true_features.shape[-1]}) "
            "must live in the same space; pass W_dec as [d_sae d_in] and features as [features d_in]"
        )
    cos = einops.einsum(
        nn.functional.normalize(true_features.detach().float(), dim=-1),
        nn.functional.normalize(dictionary.detach().float(), dim=-1),
        "features d_in, d_sae d_in -> features d_sae",
    )
    return cos.max(dim=-1).values


def recovery_score(dictionary: Float[Tensor, "d_sae d_in"], true_features: Float[Tensor, "features d_in"]) -> float:
    """Mean max cosine similarity (MMCS, Sharkey et al. 2022): 1 means every feature was found."""
    return max_cosine_similarity(dictionary, true_features).mean().item()
