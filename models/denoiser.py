"""The noise-prediction network of the DDPM: a residual MLP conditioned on the time step
and a condition vector, with ``HookPoint``s under TransformerLens-style names.

Example::

    import torch
    from models.denoiser import Denoiser, DiffusionConfig

    model = Denoiser(DiffusionConfig(height=8, width=8, d_cond=10, d_model=32, d_mlp=64))
    eps, cache = model.run_with_cache(torch.randn(2, 1, 8, 8), torch.tensor([0, 5]), torch.zeros(2, 10))
    cache["blocks.0.mlp.hook_post"].shape      # torch.Size([2, 64])

The schedule, ``add_noise`` and the samplers live in :mod:`models.diffusion`.
"""

import math
from dataclasses import dataclass

import einops
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens import HookedRootModule
from transformer_lens.hook_points import HookPoint

from models.transformer.layer_norm import LayerNorm
from models.transformer.mlp import MLP


def residual_mlp(cfg: "SublayerConstants") -> MLP:
    """The transformer's MLP (GELU), initialised for a residual MLP block: ``W_in`` with variance
    1/d_model, ``W_out`` with variance 1/(4 d_mlp), so that each block starts as a small update."""
    mlp = MLP(cfg)
    with torch.no_grad():
        mlp.W_in.copy_(torch.randn(cfg.d_model, cfg.d_mlp) / math.sqrt(cfg.d_model))
        mlp.W_out.copy_(torch.randn(cfg.d_mlp, cfg.d_model) / math.sqrt(cfg.d_mlp) * 0.5)
    return mlp


class SublayerConstants:
    """What the transformer's ``LayerNorm`` and ``MLP`` read from a config besides ``d_model`` and
    ``d_mlp``: this network's constants (class attributes, so not fields of the config dataclasses)."""

    eps = 1e-5
    act_fn = "gelu"
    use_bias = True


@dataclass(frozen=True)
class DiffusionConfig(SublayerConstants):
    """Sizes of the denoiser and the schedule. ``d_cond`` is the condition vector's width."""

    n_channels: int = 1
    height: int = 16
    width: int = 16
    d_cond: int = 10
    d_model: int = 256
    d_mlp: int = 512
    n_layers: int = 3
    d_time: int = 64  # sinusoidal features of the time step
    n_steps: int = 200  # T
    schedule: str = "cosine"  # "cosine" (Nichol & Dhariwal 2021) or "linear" (Ho et al. 2020)
    p_uncond: float = 0.1  # probability of dropping the condition during training
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("n_channels", "height", "width", "d_cond", "d_model", "d_mlp", "n_layers", "n_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"DiffusionConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.d_time < 2 or self.d_time % 2:
            raise ValueError(f"DiffusionConfig.d_time must be an even number >= 2, got {self.d_time}")
        if self.schedule not in ("cosine", "linear"):
            raise ValueError(f"DiffusionConfig.schedule must be 'cosine' or 'linear', got {self.schedule!r}")
        if not 0.0 <= self.p_uncond < 1.0:
            raise ValueError(f"DiffusionConfig.p_uncond must be in [0, 1), got {self.p_uncond}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.n_channels, self.height, self.width)


class DenoiserBlock(nn.Module):
    """A pre-LN residual MLP block; the time and condition embedding is added to its input,
    so every block knows how noisy its input is and what was asked for."""

    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        self.ln1 = LayerNorm(cfg)
        self.mlp = residual_mlp(cfg)
        self.W_ctx = nn.Parameter(torch.randn(cfg.d_model, cfg.d_model) / math.sqrt(cfg.d_model))
        self.hook_resid_pre = HookPoint()  # [batch d_model]
        self.hook_mlp_out = HookPoint()  # [batch d_model]
        self.hook_resid_post = HookPoint()  # [batch d_model]

    def forward(self, resid: Float[Tensor, "batch d_model"], context: Float[Tensor, "batch d_model"]) -> Float[Tensor, "batch d_model"]:
        resid = self.hook_resid_pre(resid)
        mlp_out = self.hook_mlp_out(self.mlp(self.ln1(resid) + context @ self.W_ctx))
        return self.hook_resid_post(resid + mlp_out)


class Denoiser(HookedRootModule):
    """Predicts the noise in ``x_t`` given the time step and a condition vector (zeros = none).

    >>> model = Denoiser(DiffusionConfig(height=8, width=8, d_cond=10, d_model=32, d_mlp=64))
    >>> eps, cache = model.run_with_cache(torch.randn(2, 1, 8, 8), torch.tensor([0, 5]), torch.zeros(2, 10))
    >>> eps.shape, cache["blocks.0.mlp.hook_post"].shape
    (torch.Size([2, 1, 8, 8]), torch.Size([2, 64]))
    """

    def __init__(self, cfg: DiffusionConfig):
        super().__init__()
        self.cfg = cfg
        # Seeded initialisation that leaves the caller's global RNG as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self._build(cfg)
        self.hook_embed = HookPoint()  # [batch d_model] the noisy image, embedded
        self.hook_time_embed = HookPoint()  # [batch d_model]
        self.hook_cond_embed = HookPoint()  # [batch d_model]
        self.hook_noise_pred = HookPoint()  # [batch channel height width]
        self.setup()

    def _build(self, cfg: DiffusionConfig) -> None:
        d_pixels = cfg.n_channels * cfg.height * cfg.width
        self.W_E = nn.Parameter(torch.randn(d_pixels, cfg.d_model) / math.sqrt(d_pixels))
        self.b_E = nn.Parameter(torch.zeros(cfg.d_model))
        self.W_time_in = nn.Parameter(torch.randn(cfg.d_time, cfg.d_model) / math.sqrt(cfg.d_time))
        self.W_time = nn.Parameter(torch.randn(cfg.d_model, cfg.d_model) / math.sqrt(cfg.d_model))
        self.b_time = nn.Parameter(torch.zeros(cfg.d_model))
        self.W_cond = nn.Parameter(torch.randn(cfg.d_cond, cfg.d_model) / math.sqrt(cfg.d_cond))
        self.b_cond = nn.Parameter(torch.zeros(cfg.d_model))  # the "no condition" embedding
        self.blocks = nn.ModuleList([DenoiserBlock(cfg) for _ in range(cfg.n_layers)])
        self.ln_final = LayerNorm(cfg)
        self.W_U = nn.Parameter(torch.zeros(cfg.d_model, d_pixels))  # zero init: predicts eps = 0 at first
        self.b_U = nn.Parameter(torch.zeros(d_pixels))
        # A time-dependent scalar skip from x_t to the prediction: the noise in x_t is
        # full-rank (d_pixels dims) while the residual stream may be narrower, but the best
        # prediction is eps = a(t) x_t minus a low-rank function of the image (Ho et al.
        # 2020, eq. 11 rearranged), so the network only has to supply the low-rank part.
        self.W_skip = nn.Parameter(torch.zeros(cfg.d_model))
        self.b_skip = nn.Parameter(torch.zeros(()))

    def time_features(self, t: Int[Tensor, "batch"]) -> Float[Tensor, "batch d_time"]:
        """Sinusoidal features of t (Vaswani et al. 2017, sec. 3.5; used this way by Ho et al. 2020)."""
        half = self.cfg.d_time // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32) / half)
        angles = einops.einsum(t.float(), freqs, "batch, half -> batch half")
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    def forward(
        self,
        x_t: Float[Tensor, "batch channel height width"],
        t: Int[Tensor, "batch"],
        cond: Float[Tensor, "batch d_cond"],
    ) -> Float[Tensor, "batch channel height width"]:
        cfg = self.cfg
        if tuple(x_t.shape[1:]) != cfg.image_shape:
            raise ValueError(f"expected images of shape [batch {' '.join(map(str, cfg.image_shape))}], got {list(x_t.shape)}; "
                             f"resize the data or build the model with matching n_channels/height/width")
        if cond.shape != (x_t.shape[0], cfg.d_cond):
            raise ValueError(f"expected a condition of shape [{x_t.shape[0]} {cfg.d_cond}], got {list(cond.shape)}")
        pixels = einops.rearrange(x_t, "batch channel height width -> batch (channel height width)")
        resid = self.hook_embed(pixels @ self.W_E + self.b_E)
        time_embed = self.hook_time_embed(F.gelu(self.time_features(t) @ self.W_time_in) @ self.W_time + self.b_time)
        cond_embed = self.hook_cond_embed(cond @ self.W_cond + self.b_cond)
        context = F.gelu(time_embed + cond_embed)
        for block in self.blocks:
            resid = block(resid, context)
        skip = time_embed @ self.W_skip + self.b_skip  # [batch]
        out = self.ln_final(resid) @ self.W_U + self.b_U + skip[:, None] * pixels
        return self.hook_noise_pred(einops.rearrange(
            out, "batch (channel height width) -> batch channel height width",
            channel=cfg.n_channels, height=cfg.height, width=cfg.width,
        ))
