"""The toy model of superposition (Elhage et al. 2022), many instances trained at once.

Each instance squeezes ``n_features`` sparse features through ``n_hidden < n_features``
dimensions and reads them back out: ``h = W x``, ``x' = ReLU(Wᵀ h + b)`` (the paper's
"ReLU output model", section "Demonstrating Superposition"), or ``x' = Wᵀ h + b`` for
the linear model it is contrasted with. Instances share nothing but the training loop, so
a sweep over sparsity (or importance) is one batched einsum instead of a Python loop.

Example::

    from models.toy import train_toy

    model = train_toy(5, 2, feature_probability=[1.0, 0.1, 0.01], n_instances=3,
                      importance=[0.9 ** i for i in range(5)], steps=500)
    model.W.shape        # (3, 2, 5): instances hidden features
    model.b.shape        # (3, 5)
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import einops
import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor, nn
from transformer_lens.hook_points import HookPoint
from transformer_lens import HookedRootModule

from models.schedules import cosine_annealing
from models.train import TrainConfig, train


@dataclass(frozen=True)
class ToyConfig:
    """Sizes of a batch of toy models; ``relu=False`` gives the linear model."""

    n_features: int
    n_hidden: int
    n_instances: int = 1
    relu: bool = True

    def __post_init__(self):
        for name in ("n_features", "n_hidden", "n_instances"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ToyConfig.{name} must be at least 1, got {getattr(self, name)}")


class ToyModel(HookedRootModule):
    """``n_instances`` independent toy models; hooks ``hook_hidden`` and ``hook_out``."""

    def __init__(self, cfg: ToyConfig):
        super().__init__()
        self.cfg = cfg
        # W: [instances hidden features]; column W[k, :, i] is feature i's direction.
        self.W = nn.Parameter(torch.empty(cfg.n_instances, cfg.n_hidden, cfg.n_features))
        self.b = nn.Parameter(torch.zeros(cfg.n_instances, cfg.n_features))
        # Xavier-normal per instance, as in the paper's accompanying notebook.
        nn.init.xavier_normal_(self.W)
        self.hook_hidden = HookPoint()  # [batch instances hidden]
        self.hook_out = HookPoint()  # [batch instances features]
        self.setup()

    def forward(self, x: Float[Tensor, "batch instances features"]) -> Float[Tensor, "batch instances features"]:
        hidden = self.hook_hidden(einops.einsum(
            self.W, x, "instances hidden features, batch instances features -> batch instances hidden"))
        out = einops.einsum(
            self.W, hidden, "instances hidden features, batch instances hidden -> batch instances features") + self.b
        return self.hook_out(torch.relu(out) if self.cfg.relu else out)


def _per_instance_features(value, n_instances: int, n_features: int, name: str) -> Tensor:
    """Broadcast a scalar, per-instance or per-(instance, feature) value to [instances features]."""
    tensor = torch.as_tensor(value, dtype=torch.float32)
    if tensor.ndim == 1 and tensor.shape[0] == n_instances and n_instances != n_features:
        tensor = tensor[:, None]
    try:
        return torch.broadcast_to(tensor, (n_instances, n_features)).clone()
    except RuntimeError:
        raise ValueError(
            f"{name} has shape {tuple(tensor.shape)}; give a scalar, one value per instance "
            f"({n_instances}), one per feature ({n_features}) or an [instances features] array"
        ) from None


def generate_batch(
    feature_probability: Float[Tensor, "instances features"], batch_size: int, seed: int = 0
) -> Float[Tensor, "batch instances features"]:
    """Synthetic inputs: each feature is present with its probability, then uniform in [0, 1]."""
    sampler = FeatureSampler(torch.as_tensor(feature_probability, dtype=torch.float32), seed)
    return sampler.draw(batch_size).permute(2, 0, 1)


class FeatureSampler:
    """Draws ``x: [instances features batch]`` (the layout the training step uses).

    One uniform u per entry does both jobs: the feature is present when u < p, and then
    u / p is itself uniform on [0, 1), so ``x = relu(1 - u / p)`` (half the random numbers
    of two draws). The uniforms come from 32-bit words of numpy's SFC64 generator, raw,
    scaled to [0, 1] in the same pass that applies ``1 - u / p`` (about 4x cheaper than
    ``torch.rand`` on CPU, which dominated the batched training step).
    """

    def __init__(self, probability: Float[Tensor, "instances features"], seed: int = 0):
        self.shape = tuple(probability.shape)
        self.bits = np.random.SFC64(seed)
        # int32 word w -> u = w / 2^32 + 1/2 in [0, 1]; x = relu(1 - u / p) = relu(offset + w * scale)
        self.scale = (-(2.0 ** -32) / probability)[:, :, None]
        self.offset = (1 - 0.5 / probability)[:, :, None]

    def draw(self, batch_size: int) -> Float[Tensor, "instances features batch"]:
        n = self.shape[0] * self.shape[1] * batch_size
        words = np.ascontiguousarray(self.bits.random_raw((n + 1) // 2).view(np.int32)[:n])
        x = torch.from_numpy(words).view(*self.shape, batch_size).float()
        return x.mul_(self.scale).add_(self.offset).relu_()


def loss_and_grads(
    W: Tensor, b: Tensor, x: Float[Tensor, "instances features batch"], importance: Tensor, relu: bool,
) -> tuple[Tensor, Tensor, Tensor]:
    """Summed per-instance loss on ``x: [instances features batch]`` and its gradients by hand.

    The same loss as ``toy_loss(model(x), x, importance).sum()`` (x transposed); the backward
    pass is written out (checked against autograd in the tests) so a step is five batched
    products with the batch as the long, contiguous axis (small-by-long products, which
    are ~10x faster on CPU than long-by-small ones) and no autograd graph:
    ``h = W x``, ``o = Wᵀ h + b``, ``y = relu(o)``, ``L = Σ_k mean_{i,b} I_ki (y - x)²``;
    ``δ = ∂L/∂o = 2 I (y - x) [o > 0] / (batch · features)``, ``∂L/∂b = Σ_batch δ``,
    ``∂L/∂W = h δᵀ + (W δ) xᵀ``. The ReLU's mask is applied by ``threshold_backward`` (the
    kernel autograd uses for ReLU: one pass, no boolean mask tensor). The loss is one more
    pass (``vecdot`` of ``y - x`` with itself along the batch), 5-15% of a quick-sized step.
    """
    n_instances, features, batch = x.shape
    hidden = torch.bmm(W, x)  # [instances hidden batch]
    out = torch.baddbmm(b[:, :, None], W.transpose(1, 2), hidden)  # [instances features batch]
    if relu:
        out.relu_()  # y; y > 0 exactly where o > 0
    delta = out - x
    loss = (torch.linalg.vecdot(delta, delta) * importance).sum() / (batch * features)
    if relu:
        delta = torch.ops.aten.threshold_backward(delta, out, 0.0)
    weighted = delta.mul_((importance * (2 / (batch * features)))[:, :, None])  # δ = ∂L/∂o
    grad_b = weighted.sum(dim=2)
    grad_W = torch.bmm(hidden, weighted.transpose(1, 2))  # via o = Wᵀ h
    grad_W.baddbmm_(torch.bmm(W, weighted), x.transpose(1, 2))  # via h = W x
    return loss, grad_W, grad_b


def build_toy(
    n_features: int,
    n_hidden: int,
    feature_probability: float | Sequence[float] | Tensor,
    importance: float | Sequence[float] | Tensor | None = None,
    n_instances: int = 1,
    relu: bool = True,
) -> ToyModel:
    """Untrained toy models (Xavier-normal ``W`` from torch's global RNG) that know the distribution
    they are for: ``model.feature_probability`` and ``model.importance``, both [instances features]
    (what :func:`evaluate_loss` and :func:`sample_hidden` draw from). Checks the values as
    :func:`train_toy` does, which calls it."""
    config = ToyConfig(n_features, n_hidden, n_instances, relu)
    probability = _per_instance_features(feature_probability, n_instances, n_features, "feature_probability")
    if not bool(((probability > 0) & (probability <= 1)).all()):
        raise ValueError(
            "feature_probability (1 - sparsity) must lie in (0, 1], i.e. sparsity in [0, 1); "
            f"got values from {probability.min().item():g} to {probability.max().item():g}"
        )
    weight = _per_instance_features(1.0 if importance is None else importance, n_instances, n_features, "importance")
    if not bool((weight >= 0).all()):
        raise ValueError("importance must be non-negative")
    model = ToyModel(config)
    model.feature_probability = probability
    model.importance = weight
    return model


def train_toy(
    n_features: int,
    n_hidden: int,
    feature_probability: float | Sequence[float] | Tensor,
    importance: float | Sequence[float] | Tensor | None = None,
    n_instances: int = 1,
    steps: int = 5_000,
    seed: int = 0,
    relu: bool = True,
    batch_size: int = 1024,
    lr: float = 1e-3,
    progress: bool = False,
) -> ToyModel:
    """Train ``n_instances`` toy models at once and return them.

    ``feature_probability`` is 1 - S (S the sparsity), per instance or per feature;
    ``importance`` weights each feature's squared error (None: all 1). The loss is the
    paper's importance-weighted MSE, ``Σ_i I_i (x_i - x'_i)²``, averaged over the batch
    and features and summed over instances so instances train independently. AdamW with a
    cosine-decayed learning rate, as in the paper's notebook, in :func:`models.train.train`
    with the gradients written out by hand. torch's global RNG is seeded with ``seed``.
    """
    if steps < 0 or batch_size < 1:
        raise ValueError(f"steps must be >= 0 and batch_size >= 1, got {steps} and {batch_size}")
    torch.manual_seed(seed)
    model = build_toy(n_features, n_hidden, feature_probability, importance, n_instances, relu)
    probability, weight = model.feature_probability, model.importance
    sampler = FeatureSampler(probability, seed)

    def step_loss(model: ToyModel, x: Tensor) -> Tensor:
        loss, model.W.grad, model.b.grad = loss_and_grads(model.W.detach(), model.b.detach(), x, weight, relu)
        return loss

    if steps:
        # One AdamW over the two stacked parameters (every instance at once), one fused kernel;
        # gradients by hand (see loss_and_grads), no autograd graph per step. The sampler is
        # stateful (batches are not a function of the step): no checkpoints, so no resume.
        cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, weight_decay=0.0, min_lr_ratio=0.0,
                          grad_clip=None, seed=seed, threads=None)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0, fused=True)
        train(model, lambda step: sampler.draw(batch_size), step_loss, cfg, optimizer=optimizer,
              learning_rates=cosine_annealing(lr, steps), hand_gradients=True, progress=progress,
              desc="toy models")
    model.train_config = {**asdict(model.cfg), "steps": steps, "seed": seed, "batch_size": batch_size, "lr": lr}
    return model.eval()


def toy_loss(
    out: Float[Tensor, "batch instances features"],
    x: Float[Tensor, "batch instances features"],
    importance: Float[Tensor, "instances features"],
) -> Float[Tensor, "instances"]:
    """Importance-weighted squared error per instance, averaged over batch and features."""
    return einops.reduce(importance * (x - out) ** 2, "batch instances features -> instances", "mean")


@torch.no_grad()
def evaluate_loss(model: ToyModel, batch_size: int = 8192, seed: int = 12345) -> Float[Tensor, "instances"]:
    """Each instance's loss on one fresh batch drawn from its own training distribution."""
    x = generate_batch(model.feature_probability, batch_size, seed)
    return toy_loss(model(x), x, model.importance)


@torch.no_grad()
def sample_hidden(model: ToyModel, n_samples: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Inputs and the hidden activations (``hook_hidden``) they produce, via run_with_cache."""
    x = generate_batch(model.feature_probability, n_samples, seed)
    _, cache = model.run_with_cache(x, names_filter="hook_hidden")
    return x, cache["hook_hidden"]
