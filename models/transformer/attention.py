"""Causal self-attention with the pattern materialised, so hooks can edit it; optionally
rotary positions and grouped key/value heads (the Llama family)."""

import math
from typing import Optional

import einops
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from transformer_lens.hook_points import HookPoint

from models.transformer.config import TransformerConfig
from models.transformer.rotary import rotary_cos_sin, rotate


class Attention(nn.Module):
    """Causal self-attention (Vaswani et al. 2017, eq. 1) computed head by head.

    No fused kernel: scores and pattern are real tensors passing through
    ``hook_attn_scores`` and ``hook_pattern``, so an edit there changes the output. With
    ``cfg.positional_embedding == "rotary"`` queries and keys are rotated by position
    after ``hook_q`` / ``hook_k`` (``hook_rot_q`` / ``hook_rot_k`` hold the rotated ones).

    >>> cfg = TransformerConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=None, d_vocab=10, n_ctx=4)
    >>> Attention(cfg)(torch.randn(2, 3, 8)).shape
    torch.Size([2, 3, 8])
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        n_heads, d_model, d_head = cfg.n_heads, cfg.d_model, cfg.d_head
        self.W_Q = nn.Parameter(torch.empty(n_heads, d_model, d_head))
        self._init_key_value(cfg)
        self.W_O = nn.Parameter(torch.empty(n_heads, d_head, d_model))
        if cfg.use_bias:
            self.b_Q = nn.Parameter(torch.zeros(n_heads, d_head))
            self.b_O = nn.Parameter(torch.zeros(d_model))
        else:
            self.register_parameter("b_Q", None)
            self.register_parameter("b_O", None)
        self.attn_scale = math.sqrt(d_head)
        self.rotary = cfg.positional_embedding == "rotary"

        self.hook_q = HookPoint()  # [batch pos head_index d_head]
        self.hook_k = HookPoint()  # [batch pos kv_head_index d_head]
        self.hook_v = HookPoint()  # [batch pos kv_head_index d_head]
        if self.rotary:
            self.hook_rot_q = HookPoint()  # [batch pos head_index d_head]
            self.hook_rot_k = HookPoint()  # [batch pos kv_head_index d_head]
        self.hook_attn_scores = HookPoint()  # [batch head_index query_pos key_pos]
        self.hook_pattern = HookPoint()  # [batch head_index query_pos key_pos]
        self.hook_z = HookPoint()  # [batch pos head_index d_head]

    def _init_key_value(self, cfg: TransformerConfig) -> None:
        self.W_K = nn.Parameter(torch.empty(cfg.n_heads, cfg.d_model, cfg.d_head))
        self.W_V = nn.Parameter(torch.empty(cfg.n_heads, cfg.d_model, cfg.d_head))
        for name in ("b_K", "b_V"):
            self.register_parameter(name, nn.Parameter(torch.zeros(cfg.n_heads, cfg.d_head)) if cfg.use_bias else None)

    def key_value_weights(self) -> tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
        """``W_K, W_V [kv_head_index d_model d_head]`` and ``b_K, b_V`` as stored (one per key/value head)."""
        return self.W_K, self.W_V, self.b_K, self.b_V

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries [batch pos head_index d_head], keys and values [batch pos kv_head_index d_head]:
        one matmul over all three and every head."""
        # (torch.einsum per projection cost ~50 us of dispatch each, which dominated small forwards)
        W_K, W_V, b_K, b_V = self.key_value_weights()
        n_heads, n_kv, d_head = self.W_Q.shape[0], W_K.shape[0], self.W_Q.shape[2]
        W = torch.cat([einops.rearrange(W, "head_index d_model d_head -> d_model (head_index d_head)")
                       for W in (self.W_Q, W_K, W_V)], dim=1)
        flat = x.reshape(-1, x.shape[-1])
        if self.b_Q is None:
            out = flat @ W
        else:
            out = torch.addmm(torch.cat([self.b_Q.flatten(), b_K.flatten(), b_V.flatten()]), flat, W)
        out = out.reshape(*x.shape[:-1], n_heads + 2 * n_kv, d_head)
        return out[..., :n_heads, :], out[..., n_heads:n_heads + n_kv, :], out[..., n_heads + n_kv:, :]

    def keys_values(self, normalized: Float[Tensor, "batch pos d_model"]) -> tuple[Tensor, Tensor]:
        """What ``hook_k`` and ``hook_v`` see for ``normalized`` [batch pos kv_head_index d_head]
        (keys before any rotation): a key/value cache entry, as ``forward``'s ``prefix`` takes it."""
        _, k, v = self._qkv(normalized)
        return k, v

    def forward(
        self,
        normalized: Float[Tensor, "batch pos d_model"],
        prefix: Optional[tuple[Tensor, Tensor]] = None,
        positions: Optional[Int[Tensor, "batch key_pos"]] = None,
        key_mask: Optional[Bool[Tensor, "batch key_pos"]] = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """``prefix``: keys and values ``[batch prefix_pos kv_head_index d_head]`` of positions before
        ``normalized`` (a KV cache, as ``hook_k`` / ``hook_v`` saw them); the queries are then the later
        positions only. ``positions``: the position of every key (prefix first; default ``0, 1, ...``),
        read by rotary embeddings. ``key_mask``: False at padding keys, which no query attends to
        (a padding query still attends to itself, so no row is empty)."""
        q, k, v = self._qkv(normalized)
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        n_query = q.shape[1]
        n_key = n_query + (0 if prefix is None else prefix[0].shape[1])
        if self.rotary:
            if positions is None:
                positions = torch.arange(n_key, device=q.device)[None]
            cos, sin = rotary_cos_sin(positions, self.cfg.rotary_dim, self.cfg.rotary_base, q.dtype)
            q = self.hook_rot_q(rotate(q, cos[:, -n_query:], sin[:, -n_query:]))
            k = self.hook_rot_k(rotate(k, cos[:, -n_query:], sin[:, -n_query:]))
            if prefix is not None:
                prefix = (rotate(prefix[0], cos[:, :-n_query], sin[:, :-n_query]), prefix[1])
        if prefix is not None:
            k, v = torch.cat([prefix[0], k], dim=1), torch.cat([prefix[1], v], dim=1)
        group = q.shape[2] // k.shape[2]
        if group > 1:  # query head h reads key/value head h // group (transformers' repeat_kv)
            k, v = k.repeat_interleave(group, dim=2), v.repeat_interleave(group, dim=2)
        scores = einops.einsum(
            q, k, "batch query_pos head_index d_head, batch key_pos head_index d_head -> batch head_index query_pos key_pos"
        ) / self.attn_scale
        # query i sits at position n_key - n_query + i; True above that diagonal: a later key
        mask = torch.ones(n_query, n_key, dtype=torch.bool, device=q.device).triu(n_key - n_query + 1)
        if key_mask is not None:
            own = torch.zeros_like(mask).diagonal_scatter(torch.ones(n_query, dtype=torch.bool, device=q.device),
                                                          n_key - n_query)
            mask = mask | (~key_mask[:, None, None, :] & ~own)
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


class GroupedQueryAttention(Attention):
    """Attention with ``n_key_value_heads`` key/value heads shared by groups of query heads.

    Stored as in TransformerLens: ``_W_K``, ``_W_V`` (and ``_b_K``, ``_b_V``)
    [kv_head_index d_model d_head]; ``W_K`` and ``W_V`` are views expanded to one per query
    head, so code written for ordinary attention (``W_Q[h]`` with ``W_K[h]``) reads them
    unchanged. ``hook_k`` and ``hook_v`` hold the key/value heads, ``hook_z`` the query heads.

    >>> cfg = TransformerConfig(d_model=8, n_layers=1, n_heads=4, d_mlp=None, d_vocab=10, n_ctx=4,
    ...                         n_key_value_heads=2)
    >>> attn = GroupedQueryAttention(cfg)
    >>> attn._W_K.shape, attn.W_K.shape
    (torch.Size([2, 8, 2]), torch.Size([4, 8, 2]))
    """

    def _init_key_value(self, cfg: TransformerConfig) -> None:
        n_kv = cfg.n_kv_heads
        self._W_K = nn.Parameter(torch.empty(n_kv, cfg.d_model, cfg.d_head))
        self._W_V = nn.Parameter(torch.empty(n_kv, cfg.d_model, cfg.d_head))
        for name in ("_b_K", "_b_V"):
            self.register_parameter(name, nn.Parameter(torch.zeros(n_kv, cfg.d_head)) if cfg.use_bias else None)

    def key_value_weights(self) -> tuple[Tensor, Tensor, Optional[Tensor], Optional[Tensor]]:
        return self._W_K, self._W_V, self._b_K, self._b_V

    def _expanded(self, t: Optional[Tensor]) -> Optional[Tensor]:
        return None if t is None else t.repeat_interleave(self.cfg.n_heads // self.cfg.n_kv_heads, dim=0)

    @property
    def W_K(self) -> Float[Tensor, "head_index d_model d_head"]:
        return self._expanded(self._W_K)

    @property
    def W_V(self) -> Float[Tensor, "head_index d_model d_head"]:
        return self._expanded(self._W_V)

    @property
    def b_K(self) -> Optional[Float[Tensor, "head_index d_head"]]:
        return self._expanded(self._b_K)

    @property
    def b_V(self) -> Optional[Float[Tensor, "head_index d_head"]]:
        return self._expanded(self._b_V)
