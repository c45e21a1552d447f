"""RMSNorm (Zhang & Sennrich 2019) with the scale and the normalised value exposed as hooks."""

import torch
from jaxtyping import Float
from torch import Tensor, nn

from transformer_lens.hook_points import HookPoint

from models.transformer.config import TransformerConfig


class RMSNorm(nn.Module):
    """Divide by the root-mean-square (``hook_scale``), then ``* w``: LayerNorm without centring or bias.

    As in TransformerLens, ``hook_normalized`` holds the value before the gain ``w``.
    Computed in the input's dtype (Hugging Face's Llama computes it in float32 whatever the
    dtype; in float32, the dtype these models run in, the two agree).

    >>> cfg = TransformerConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=None, d_vocab=10, n_ctx=4,
    ...                         normalization="RMS")
    >>> RMSNorm(cfg)(torch.randn(2, 3, 8)).shape
    torch.Size([2, 3, 8])
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.eps = cfg.eps
        self.w = nn.Parameter(torch.ones(cfg.d_model))
        self.hook_scale = HookPoint()  # [batch pos 1]
        self.hook_normalized = HookPoint()  # [batch pos d_model], before w

    def forward(self, residual: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        scale = self.hook_scale((residual.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
        return self.hook_normalized(residual / scale) * self.w
