"""Multi-head causal self-attention with the pattern materialised, so hooks can edit it."""

import math
from typing import Optional

import einops
import torch
from jaxtyping import Float
from torch import Tensor, nn

from transformer_lens.hook_points import HookPoint

from models.transformer.config import TransformerConfig


class Attention(nn.Module):
    """Causal self-attention (Vaswani et al. 2017, eq. 1) computed head by head.

    No fused kernel: scores and pattern are real tensors passing through
    ``hook_attn_scores`` and ``hook_pattern``, so an edit there changes the output.

    >>> cfg = TransformerConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=None, d_vocab=10, n_ctx=4)
    >>> Attention(cfg)(torch.randn(2, 3, 8)).shape
    torch.Size([2, 3, 8])
    """

    causal_mask: Tensor

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        n_heads, d_model, d_head = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_K = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_V = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self.W_O = nn.Parameter(torch.empty(n_heads, d_head, d_model))
        if cfg.use_bias:
            self.b_Q = nn.Parameter(torch.zeros(n_heads, d_head))
            self.b_K = nn.Parameter(torch.zeros(n_heads, d_head))
            self.b_V = nn.Parameter(torch.zeros(n_heads, d_head))
            self.b_O = nn.Parameter(torch.zeros(d_model))
        else:
            for name in ("b_Q", "b_K", "b_V", "b_O"):
                self.register_parameter(name, None)
        # True above the diagonal: a query may not attend to later keys.
        mask = torch.triu(torch.ones(cfg.n_ctx, cfg.n_ctx, dtype=torch.bool), diagonal=1)
        self.register_buffer("causal_mask", mask, persistent=False)
        self.attn_scale = math.sqrt(d_head)

        self.hook_q = HookPoint()  # [batch pos head_index d_head]
        self.hook_k = HookPoint()  # [batch pos head_index d_head]
        self.hook_v = HookPoint()  # [batch pos head_index d_head]
        self.hook_attn_scores = HookPoint()  # [batch head_index query_pos key_pos]
        self.hook_pattern = HookPoint()  # [batch head_index query_pos key_pos]
        self.hook_z = HookPoint()  # [batch pos head_index d_head]

    def _project(self, x: Tensor, W: Tensor, b: Tensor | None) -> Tensor:
        # one 2-D matmul over all heads (torch.einsum's per-call dispatch cost dominated small forwards)
        flat = x @ einops.rearrange(W, "head_index d_model d_head -> d_model (head_index d_head)")
        out = einops.rearrange(flat, "batch pos (head_index d_head) -> batch pos head_index d_head",
                               head_index=W.shape[0])
        return out if b is None else out + b

    def forward(
        self, normalized: Float[Tensor, "batch pos d_model"], prefix: Optional[tuple[Tensor, Tensor]] = None
    ) -> Float[Tensor, "batch pos d_model"]:
        """``prefix``: keys and values ``[batch prefix_pos head_index d_head]`` of positions before
        ``normalized`` (a KV cache); the queries are then the later positions only."""
        q = self.hook_q(self._project(normalized, self.W_Q, self.b_Q))
        k = self.hook_k(self._project(normalized, self.W_K, self.b_K))
        v = self.hook_v(self._project(normalized, self.W_V, self.b_V))
        if prefix is not None:
            k, v = torch.cat([prefix[0], k], dim=1), torch.cat([prefix[1], v], dim=1)
        scores = einops.einsum(
            q, k, "batch query_pos head_index d_head, batch key_pos head_index d_head -> batch head_index query_pos key_pos"
        ) / self.attn_scale
        n_query, n_key = q.shape[1], k.shape[1]  # query i sits at position n_key - n_query + i
        mask = self.causal_mask[n_key - n_query : n_key, :n_key]
        scores = self.hook_attn_scores(scores.masked_fill(mask, float("-inf")))
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = self.hook_z(
            einops.einsum(
                pattern, v, "batch head_index query_pos key_pos, batch key_pos head_index d_head -> batch query_pos head_index d_head"
            )
        )
        out = einops.rearrange(z, "batch pos head_index d_head -> batch pos (head_index d_head)") @ \
            einops.rearrange(self.W_O, "head_index d_head d_model -> (head_index d_head) d_model")
        return out if self.b_O is None else out + self.b_O
