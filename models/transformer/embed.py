"""Token and learned position embeddings."""

from typing import Optional

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
    """The rows of ``W_pos`` [n_ctx d_model] for each token's position (``0..pos-1`` unless given).

    Gathered into a new tensor, never a view of ``W_pos``, so a hook that edits
    ``hook_pos_embed`` in place cannot change the weights.
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model))

    def forward(
        self, tokens: Int[Tensor, "batch pos"], positions: Optional[Int[Tensor, "batch pos"]] = None
    ) -> Float[Tensor, "batch pos d_model"]:
        batch, pos = tokens.shape
        if positions is None:
            positions = torch.arange(pos, device=tokens.device)[None]
        return self.W_pos[positions.expand(batch, pos)]
