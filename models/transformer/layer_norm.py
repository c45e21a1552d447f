"""LayerNorm with the scale and the normalised value exposed as hooks."""

import torch
from jaxtyping import Float
from torch import Tensor, nn

from transformer_lens.hook_points import HookPoint

from models.transformer.config import TransformerConfig


class LayerNorm(nn.Module):
    """Centre, divide by the root-mean-square (``hook_scale``), then ``* w + b``.

    Written out rather than ``nn.LayerNorm`` so that the scale can be read or frozen
    through ``hook_scale`` (used when attributing through the LN). ``hook_normalized``
    holds the value before the affine ``w, b``, as in TransformerLens 4's bridge, so
    caches of our models and of bridged real models mean the same thing. It reads only
    ``cfg.d_model`` and ``cfg.eps``, and normalises the last dimension whatever comes before
    it, so the denoiser and the CLIP (inputs ``[batch d_model]``) use it with their own configs.

    >>> cfg = TransformerConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=None, d_vocab=10, n_ctx=4)
    >>> LayerNorm(cfg)(torch.randn(2, 3, 8)).shape
    torch.Size([2, 3, 8])
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.eps = cfg.eps
        self.w = nn.Parameter(torch.ones(cfg.d_model))
        self.b = nn.Parameter(torch.zeros(cfg.d_model))
        self.hook_scale = HookPoint()  # [batch pos 1]
        self.hook_normalized = HookPoint()  # [batch pos d_model], before w and b

    def forward(self, residual: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        residual = residual - residual.mean(-1, keepdim=True)
        scale = self.hook_scale((residual.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        return self.hook_normalized(residual / scale) * self.w + self.b
