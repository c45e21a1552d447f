"""Denoising diffusion (Ho et al. 2020) with classifier-free guidance (Ho & Salimans 2022).

Example::

    import torch
    from models.diffusion import DDPM, DiffusionConfig, train_ddpm

    cfg = DiffusionConfig(height=8, width=8, d_cond=10, n_steps=50)
    ddpm = DDPM(cfg)
    images = torch.rand(64, 1, 8, 8) * 2 - 1                 # data scaled to [-1, 1]
    cond = torch.nn.functional.one_hot(torch.arange(64) % 10, 10).float()
    losses = train_ddpm(ddpm, images, cond, steps=20, batch_size=32)
    samples = ddpm.sample(cond[:4], sampler="ddpm", guidance=2.0, seed=0)   # [4 1 8 8]
    # the denoiser is a HookedRootModule: ddpm.denoiser.run_with_cache(x_t, t, cond)

``DDPM`` owns the noise schedule (as buffers) and the samplers; ``Denoiser`` (in
:mod:`models.denoiser`, re-exported here) is the noise-prediction network, a residual MLP
whose activations pass through ``HookPoint``s with TransformerLens-style names. Time steps are 0-based: ``t = 0`` is the paper's
``t = 1`` (the least noisy) and ``t = n_steps - 1`` its ``T``.
"""

import itertools
import math
import operator
from numbers import Real
from typing import Callable, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from models.denoiser import Denoiser, DiffusionConfig
from models.train import TrainConfig, train

__all__ = ["DDPM", "Denoiser", "DiffusionConfig", "SAMPLERS", "check_guidance", "cosine_beta_schedule", "extract",
           "linear_beta_schedule", "train_ddpm"]

Sampler = Literal["ddpm", "ddpm_no_noise", "ddim"]
SAMPLERS = ("ddpm", "ddpm_no_noise", "ddim")


def linear_beta_schedule(n_steps: int) -> Float[Tensor, "n_steps"]:
    """Ho et al. (2020, sec. 4): betas rising linearly from 1e-4 to 0.02 over T = 1000,
    rescaled so that fewer steps reach the same total noise (as in Nichol & Dhariwal's code)."""
    scale = 1000.0 / n_steps
    return torch.linspace(scale * 1e-4, min(scale * 0.02, 0.999), n_steps, dtype=torch.float64)


def cosine_beta_schedule(n_steps: int, s: float = 0.008) -> Float[Tensor, "n_steps"]:
    """Nichol & Dhariwal (2021, eq. 17): alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2), betas clipped at 0.999."""
    steps = torch.arange(n_steps + 1, dtype=torch.float64) / n_steps
    alpha_bar = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)


def extract(a: Float[Tensor, "n_steps"], t: Int[Tensor, "batch"], x_shape: torch.Size) -> Tensor:
    """``a[t]`` reshaped to ``[batch 1 1 ...]`` so it broadcasts against a tensor of ``x_shape``.

    >>> extract(torch.tensor([0.1, 0.2, 0.3]), torch.tensor([2, 0]), (2, 1, 4, 4)).shape
    torch.Size([2, 1, 1, 1])
    """
    return a.gather(0, t).reshape(t.shape[0], *([1] * (len(x_shape) - 1)))


def check_guidance(guidance: object) -> float:
    """The guidance scale as a float; anything but a finite real number is a ValueError."""
    if isinstance(guidance, bool) or not isinstance(guidance, Real) or not math.isfinite(guidance):
        raise ValueError(f"guidance scale must be a finite number such as 0, 1.5 or 4, got {guidance!r}")
    return float(guidance)

class DDPM(nn.Module):
    """The forward (noising) process as schedule buffers, plus the reverse samplers.

    Buffers are float64 so that ``add_noise`` is exactly the closed form of Ho et al.
    (2020, eq. 4) for float64 inputs; they are cast to the input's dtype when used.
    """

    def __init__(self, cfg: DiffusionConfig, denoiser: Denoiser | None = None):
        super().__init__()
        self.cfg = cfg
        self.denoiser = denoiser if denoiser is not None else Denoiser(cfg)
        betas = cosine_beta_schedule(cfg.n_steps) if cfg.schedule == "cosine" else linear_beta_schedule(cfg.n_steps)
        # Buffers are computed in numpy float64: alpha_bar_t = prod_{s<=t} (1 - beta_s) multiplied
        # left to right, and correctly rounded square roots, so that they are bit for bit the
        # textbook formulas (torch.cumprod and torch.sqrt may differ in the last bit).
        b = betas.numpy()
        alpha_bar = np.array(list(itertools.accumulate(1.0 - b, operator.mul)))
        alpha_bar_prev = np.concatenate([[1.0], alpha_bar[:-1]])
        buffers = {
            "betas": b,
            "alphas_cumprod": alpha_bar,
            "alphas_cumprod_prev": alpha_bar_prev,
            "sqrt_alphas_cumprod": np.sqrt(alpha_bar),
            "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - alpha_bar),
            "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / alpha_bar),
            "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / alpha_bar - 1.0),
            # Posterior q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eqs. 6-7).
            "posterior_variance": b * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar),
            "posterior_mean_coef1": b * np.sqrt(alpha_bar_prev) / (1.0 - alpha_bar),
            "posterior_mean_coef2": (1.0 - alpha_bar_prev) * np.sqrt(1.0 - b) / (1.0 - alpha_bar),
        }
        for name, value in buffers.items():
            self.register_buffer(name, torch.from_numpy(value.copy()), persistent=False)

    def _check_images(self, x: Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.cfg.image_shape:
            raise ValueError(f"expected images of shape [batch {' '.join(map(str, self.cfg.image_shape))}], got {list(x.shape)}; "
                             f"resize the data or build the model with matching n_channels/height/width")

    def _at(self, name: str, t: Tensor, x: Tensor) -> Tensor:
        return extract(getattr(self, name), t, x.shape).to(x.dtype)

    def add_noise(
        self, x0: Float[Tensor, "batch channel height width"], t: Int[Tensor, "batch"], noise: Float[Tensor, "batch channel height width"]
    ) -> Float[Tensor, "batch channel height width"]:
        """``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps`` (Ho et al. 2020, eq. 4)."""
        self._check_images(x0)
        return self._at("sqrt_alphas_cumprod", t, x0) * x0 + self._at("sqrt_one_minus_alphas_cumprod", t, x0) * noise

    def draw_noise(self, batch: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Random time steps [batch], noise [batch channel height width] and a 0/1 mask
        [batch 1] that keeps each condition with probability ``1 - p_uncond``."""
        t = torch.randint(0, self.cfg.n_steps, (batch,), generator=generator)
        noise = torch.randn((batch, *self.cfg.image_shape), generator=generator)
        keep = (torch.rand(batch, 1, generator=generator) >= self.cfg.p_uncond).float()
        return t, noise, keep

    def noise_prediction_loss(self, x0: Tensor, cond: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """L_simple (Ho et al. 2020, eq. 14): ``|eps - eps_theta(x_t, t, cond)|^2``."""
        return F.mse_loss(self.denoiser(self.add_noise(x0, t, noise), t, cond), noise)

    def loss(self, x0: Tensor, cond: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """L_simple with the condition zeroed at rate ``p_uncond`` (Ho & Salimans 2022,
        Algorithm 1), so one network learns both eps(x, c) and eps(x)."""
        t, noise, keep = self.draw_noise(x0.shape[0], generator)
        return self.noise_prediction_loss(x0, cond * keep.to(cond.dtype), t, noise)

    def predict_noise(self, x_t: Tensor, t: Tensor, cond: Tensor, guidance: float = 0.0) -> Tensor:
        """Classifier-free guidance: ``eps_c + guidance * (eps_c - eps_u)`` (Ho & Salimans 2022, eq. 6);
        ``guidance = 0`` is the plain conditional model."""
        guidance = check_guidance(guidance)
        if guidance == 0.0:
            return self.denoiser(x_t, t, cond)
        both = self.denoiser(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([cond, torch.zeros_like(cond)]))
        eps_cond, eps_uncond = both.chunk(2)
        return eps_cond + guidance * (eps_cond - eps_uncond)

    @torch.no_grad()
    def sample(
        self,
        cond: Float[Tensor, "batch d_cond"],
        sampler: Sampler = "ddpm",
        guidance: float = 0.0,
        seed: int = 0,
        n_ddim_steps: int = 50,
        clip_denoised: bool = True,
    ) -> Float[Tensor, "batch channel height width"]:
        """Images generated from pure noise, one per row of ``cond`` (zeros = unconditional).

        - ``"ddpm"``: ancestral sampling (Ho et al. 2020, Algorithm 2): the posterior mean
          given the predicted x_0, plus fresh noise of the posterior variance at every step;
        - ``"ddpm_no_noise"``: the same means without the fresh noise;
        - ``"ddim"``: deterministic DDIM (Song et al. 2021, eq. 12 with eta = 0) on
          ``n_ddim_steps`` evenly spaced steps.

        ``clip_denoised`` clips the predicted x_0 to the data range [-1, 1], as in Ho et
        al.'s released code.
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
        guidance = check_guidance(guidance)
        if cond.ndim != 2 or cond.shape[1] != self.cfg.d_cond:
            raise ValueError(f"cond must be [batch {self.cfg.d_cond}], got {list(cond.shape)}")
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn((cond.shape[0], *self.cfg.image_shape), generator=generator)
        if sampler == "ddim":
            steps = torch.linspace(self.cfg.n_steps - 1, 0, min(n_ddim_steps, self.cfg.n_steps)).round().long().unique_consecutive()
        else:
            steps = torch.arange(self.cfg.n_steps - 1, -1, -1)
        for i, step in enumerate(steps.tolist()):
            t = torch.full((x.shape[0],), step, dtype=torch.long)
            eps = self.predict_noise(x, t, cond, guidance)
            x0 = self._at("sqrt_recip_alphas_cumprod", t, x) * x - self._at("sqrt_recipm1_alphas_cumprod", t, x) * eps
            if clip_denoised:
                x0 = x0.clamp(-1.0, 1.0)
            if sampler == "ddim":
                if i + 1 == len(steps):
                    x = x0
                    continue
                t_next = torch.full_like(t, steps[i + 1])
                # Recompute eps from the clipped x0 so that both DDIM terms agree.
                eps = (self._at("sqrt_recip_alphas_cumprod", t, x) * x - x0) / self._at("sqrt_recipm1_alphas_cumprod", t, x)
                x = self._at("sqrt_alphas_cumprod", t_next, x) * x0 + self._at("sqrt_one_minus_alphas_cumprod", t_next, x) * eps
                continue
            x = self._at("posterior_mean_coef1", t, x) * x0 + self._at("posterior_mean_coef2", t, x) * x
            if sampler == "ddpm" and step > 0:
                x = x + self._at("posterior_variance", t, x).sqrt() * torch.randn(x.shape, generator=generator)
        return x


def train_ddpm(
    ddpm: DDPM,
    images: Float[Tensor, "batch channel height width"],
    cond: Float[Tensor, "batch d_cond"],
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 2e-3,
    warmup: int = 100,
    seed: int = 0,
    progress: bool = False,
    eval_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    eval_every: int | None = None,
) -> pd.DataFrame:
    """Fit the denoiser with ``models.train`` (AdamW, linear warm-up then cosine decay to
    zero, gradient clipping at 1, no weight decay); returns the per-step history
    (``step``, ``loss``, ``lr``, ``grad_norm``).

    Each batch (images, time steps, noise, which conditions to drop) is drawn from a
    generator seeded by ``(seed, step)``, so a run is a pure function of its arguments.
    ``eval_fn(ddpm)`` runs every ``eval_every`` steps and at the end, e.g. to keep a
    snapshot of a briefly trained model.
    """
    ddpm._check_images(images)
    if cond.shape != (images.shape[0], ddpm.cfg.d_cond):
        raise ValueError(f"cond must be [{images.shape[0]} {ddpm.cfg.d_cond}], got {list(cond.shape)}")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, weight_decay=0.0, warmup_steps=min(warmup, steps),
                      min_lr_ratio=0.0, grad_clip=1.0, eval_every=eval_every, seed=seed)

    def batches(step: int) -> tuple[Tensor, ...]:
        generator = torch.Generator().manual_seed(seed * 1_000_003 + step)
        index = torch.randint(0, images.shape[0], (batch_size,), generator=generator)
        t, noise, keep = ddpm.draw_noise(batch_size, generator)
        return images[index], cond[index] * keep, t, noise

    def loss_fn(model: DDPM, batch: tuple[Tensor, ...]) -> Tensor:
        return model.noise_prediction_loss(*batch)

    result = train(ddpm, batches, loss_fn, cfg, eval_fn=eval_fn, progress=progress, desc="ddpm")
    ddpm.eval()
    return pd.DataFrame(result.history)
