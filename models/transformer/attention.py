"""Causal self-attention with the pattern materialised, so hooks can edit it; optionally
rotary positions and grouped key/value heads (the Llama family)."""

import math
from typing import NamedTuple, Optional, Protocol

import einops
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from transformer_lens.hook_points import HookPoint

from models.transformer.config import TransformerConfig
from models.transformer.rotary import rotary_cos_sin, rotate


def grouped_scores(
    q: Float[Tensor, "batch query_pos head_index d_head"], k: Float[Tensor, "batch kv_head_index key_pos d_head"]
) -> Float[Tensor, "batch head_index query_pos key_pos"]:
    """``q · k`` per head, query head ``h`` reading key head ``h // group`` (transformers' ``repeat_kv``).

    Batched matmuls over the key/value heads, the query heads of a group stacked as rows, so
    keys are never copied once per query head; no einsum (its dispatch cost ~50 us a call,
    twice per layer, a tenth of a generation step). Keys come head-major, as a key/value
    cache holds them, so the cache's buffers are read in place (a position-major cache cost a
    transposing copy of every layer's keys and values at every step, ~7 ms a step on SmolLM2).
    """
    batch, n_query, n_heads, d_head = q.shape
    n_kv = k.shape[1]
    group = n_heads // n_kv
    q = q.permute(0, 2, 1, 3).reshape(batch, n_kv, group * n_query, d_head)
    scores = q @ k.transpose(-1, -2)  # [batch kv_head (group query_pos) key_pos]
    return scores.view(batch, n_heads, n_query, k.shape[2])


def grouped_mix(
    pattern: Float[Tensor, "batch head_index query_pos key_pos"], v: Float[Tensor, "batch kv_head_index key_pos d_head"]
) -> Float[Tensor, "batch query_pos head_index d_head"]:
    """``pattern @ v`` per head, query head ``h`` reading value head ``h // group`` (values head-major)."""
    batch, n_heads, n_query, n_key = pattern.shape
    n_kv = v.shape[1]
    z = pattern.reshape(batch, n_kv, (n_heads // n_kv) * n_query, n_key) @ v
    return z.view(batch, n_heads, n_query, -1).permute(0, 2, 1, 3)


class Layout(NamedTuple):
    """What every block's attention needs to know about positions, computed once per forward.

    ``mask``: True where a query may not attend to a key [batch_or_1 1 query_pos key_pos];
    ``cos``, ``sin``: the rotary angles [batch_or_1 pos rotary_dim] of every key position, or of
    the query positions only where the earlier keys come rotated from a cache (None without
    rotary embeddings).
    """

    mask: Tensor
    cos: Optional[Tensor]
    sin: Optional[Tensor]


def attention_layout(
    cfg: TransformerConfig, n_query: int, n_key: int, positions: Optional[Int[Tensor, "batch key_pos"]] = None,
    key_mask: Optional[Bool[Tensor, "batch key_pos"]] = None, dtype: torch.dtype = torch.float32,
    device: Optional[torch.device] = None, prefix_rotated: bool = False,
) -> Layout:
    """The causal (and padding) mask and the rotary angles for ``n_query`` queries, the last of ``n_key`` keys.

    Query ``i`` sits at position ``n_key - n_query + i`` and may attend to keys up to it. A
    padding key (``key_mask`` False) is attended to by no query but itself, so no row is empty.
    ``prefix_rotated``: the earlier keys are already rotated (a key/value cache holds them so),
    so angles are needed for the queries' positions only.
    """
    mask = torch.ones(n_query, n_key, dtype=torch.bool, device=device).triu(n_key - n_query + 1)[None, None]
    if key_mask is not None:
        own = torch.zeros_like(mask[0, 0]).diagonal_scatter(torch.ones(n_query, dtype=torch.bool, device=device),
                                                            n_key - n_query)
        mask = mask | (~key_mask[:, None, None, :] & ~own)
    if cfg.positional_embedding != "rotary":
        return Layout(mask, None, None)
    if positions is None:
        positions = torch.arange(n_key, device=device)[None]
    if prefix_rotated:
        positions = positions[:, -n_query:]
    cos, sin = rotary_cos_sin(positions, cfg.rotary_dim, cfg.rotary_base, dtype)
    return Layout(mask, cos, sin)


class CachedKeys(Protocol):
    """One block's slot in a key/value cache (``models.transformer.kv_cache``)."""

    def extend(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store the new positions' rotated keys and values [batch kv_head_index pos d_head]; return
        every position's so far, earlier ones first."""
        ...


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
        self._fused: tuple[tuple, Tensor, Optional[Tensor]] = ((), torch.empty(0), None)

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

    def _fused_weights(self) -> tuple[Tensor, Optional[Tensor]]:
        """``W_Q | W_K | W_V`` as one [d_model (head_index + 2 kv_head_index) d_head] matrix, and the biases.

        Rebuilt only when a weight changes (a new tensor, or an in-place edit, which bumps its
        version): concatenating them cost a copy of the layer's weights at every call, a quarter
        of a generation step on SmolLM2. With gradients on, built afresh so they flow to the weights.
        """
        W_K, W_V, b_K, b_V = self.key_value_weights()
        tensors = (self.W_Q, W_K, W_V, self.b_Q, b_K, b_V)
        grads = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
        key = tuple((t.data_ptr(), t._version, t.dtype, t.device) if t is not None else None for t in tensors)
        if grads or key != self._fused[0]:
            W = torch.cat([einops.rearrange(W, "head_index d_model d_head -> d_model (head_index d_head)")
                           for W in (self.W_Q, W_K, W_V)], dim=1)
            b = None if self.b_Q is None else torch.cat([self.b_Q.flatten(), b_K.flatten(), b_V.flatten()])
            if grads:
                return W, b
            self._fused = (key, W, b)
        return self._fused[1], self._fused[2]

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries [batch pos head_index d_head], keys and values [batch pos kv_head_index d_head]:
        one matmul over all three and every head."""
        # (torch.einsum per projection cost ~50 us of dispatch each, which dominated small forwards)
        n_heads, n_kv, d_head = self.cfg.n_heads, self.cfg.n_kv_heads, self.cfg.d_head
        W, b = self._fused_weights()
        flat = x.reshape(-1, x.shape[-1])
        out = flat @ W if b is None else torch.addmm(b, flat, W)
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
        layout: Optional[Layout] = None,
        cache: Optional[CachedKeys] = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """``prefix``: keys and values ``[batch prefix_pos kv_head_index d_head]`` of positions before
        ``normalized`` (as ``hook_k`` / ``hook_v`` saw them); the queries are then the later
        positions only. ``cache``: instead, a key/value cache's slot for this block, holding the
        earlier positions' keys (rotated, as ``hook_rot_k`` left them) and values; the new
        positions' are stored in it. ``positions``: the position of every key (prefix first;
        default ``0, 1, ...``), read by rotary embeddings. ``key_mask``: False at padding keys,
        which no query attends to (a padding query still attends to itself, so no row is empty).
        ``layout``: the mask and rotary angles that ``positions`` and ``key_mask`` give
        (:func:`attention_layout`), when the caller has computed them once for every block."""
        if prefix is not None and cache is not None:
            raise ValueError("give the earlier positions' keys and values as a prefix or as a cache, not both.")
        q, k, v = self._qkv(normalized)
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        n_query = q.shape[1]
        n_key = n_query + (0 if prefix is None else prefix[0].shape[1])
        if layout is None:
            if cache is not None:
                raise ValueError("a cached attention needs the layout its model computes for every block.")
            layout = attention_layout(self.cfg, n_query, n_key, positions, key_mask, q.dtype, q.device)
        if self.rotary:
            cos, sin = layout.cos, layout.sin
            q = self.hook_rot_q(rotate(q, cos[:, -n_query:], sin[:, -n_query:]))
            k = self.hook_rot_k(rotate(k, cos[:, -n_query:], sin[:, -n_query:]))
            if prefix is not None:
                prefix = (rotate(prefix[0], cos[:, :-n_query], sin[:, :-n_query]), prefix[1])
        if prefix is not None:
            k, v = torch.cat([prefix[0], k], dim=1), torch.cat([prefix[1], v], dim=1)
        k, v = k.transpose(1, 2), v.transpose(1, 2)  # [batch kv_head_index key_pos d_head]
        if cache is not None:
            k, v = cache.extend(k, v)
        scores = self.hook_attn_scores(grouped_scores(q, k).div(self.attn_scale).masked_fill(layout.mask, float("-inf")))
        pattern = self.hook_pattern(scores.softmax(dim=-1))
        z = self.hook_z(grouped_mix(pattern, v))
        flat = z.reshape(-1, self.cfg.n_heads * self.cfg.d_head)  # [(batch pos) (head_index d_head)]
        W_O = self.W_O.reshape(-1, self.W_O.shape[-1])  # [(head_index d_head) d_model]
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
