"""Token and learned position embeddings."""

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from models.transformer.config import TransformerConfig


class Embed(nn.Module):
    """Look up each token's row of ``W_E`` [d_vocab d_model].

    >>> cfg = TransformerConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=None, d_vocab=10, n_ctx=4)
    >>> Embed(cfg)(torch.tensor([[1, 2, 3]])).shape
    torch.Size([1, 3, 8])
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model))

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        return self.W_E[tokens]


class PosEmbed(nn.Module):
    """The rows of ``W_pos`` [n_ctx d_model] for positions ``0..pos-1``, repeated over the batch."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model))

    def forward(self, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "batch pos d_model"]:
        batch, pos = tokens.shape
        return self.W_pos[:pos].unsqueeze(0).expand(batch, pos, self.cfg.d_model)
