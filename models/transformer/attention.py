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

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values [batch pos head_index d_head]: one matmul over all three and every head."""
        # (torch.einsum per projection cost ~50 us of dispatch each, which dominated small forwards)
        W = einops.rearrange(torch.stack([self.W_Q, self.W_K, self.W_V]),
                             "qkv head_index d_model d_head -> d_model (qkv head_index d_head)")
        flat = x.reshape(-1, x.shape[-1])
        if self.b_Q is None:
            out = flat @ W
        else:
            out = torch.addmm(torch.stack([self.b_Q, self.b_K, self.b_V]).flatten(), flat, W)
        out = out.reshape(*x.shape[:-1], 3, self.W_Q.shape[0], self.W_Q.shape[2])
        return out[..., 0, :, :], out[..., 1, :, :], out[..., 2, :, :]

    def forward(
        self, normalized: Float[Tensor, "batch pos d_model"], prefix: Optional[tuple[Tensor, Tensor]] = None
    ) -> Float[Tensor, "batch pos d_model"]:
        """``prefix``: keys and values ``[batch prefix_pos head_index d_head]`` of positions before
        ``normalized`` (a KV cache); the queries are then the later positions only."""
        q, k, v = self._qkv(normalized)
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
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
        flat = einops.rearrange(z, "batch pos head_index d_head -> (batch pos) (head_index d_head)")
        W_O = einops.rearrange(self.W_O, "head_index d_head d_model -> (head_index d_head) d_model")
        out = flat @ W_O if self.b_O is None else torch.addmm(self.b_O, flat, W_O)
        return out.reshape(*z.shape[:2], -1)
