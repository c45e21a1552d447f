"""A key/value cache for generation: each block's keys and values so far, appended step by step.

Generation runs the prompt once and then feeds one token per step; the attention reads the
earlier positions from this cache (the forward's ``past_kv_cache``), so a step costs one
position's work and gives the logits the full forward gives.
"""

from typing import Optional

from jaxtyping import Float, Int
from torch import Tensor

from models.transformer.model import Transformer


class KeyValueCache:
    """Every block's keys and values so far, in buffers [batch kv_head_index pos d_head] sized for the
    whole generation, so that a step appends without copying the past.

    Keys are stored as ``attn.hook_rot_k`` left them (rotated; ``hook_k`` without rotary
    embeddings) and values as ``attn.hook_v`` left them, so an edit made by a hook persists
    into later steps as in the full forward; each earlier key is rotated once, not at every
    step. Head-major, as the attention's matmuls read them, in place (Hugging Face's layout).

    >>> import torch
    >>> from models.transformer import Transformer, TransformerConfig
    >>> model = Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32, d_vocab=20, n_ctx=8,
    ...                                       normalization="RMS", positional_embedding="rotary")).eval()
    >>> tokens = torch.tensor([[3, 1, 4, 1, 5]])
    >>> cache = KeyValueCache(model.cfg.n_layers, n_positions=tokens.shape[1])
    >>> with torch.no_grad():
    ...     _ = cache.forward(model, tokens[:, :-1])           # the prompt, cached
    ...     last = cache.forward(model, tokens[:, -1:])        # one new position
    ...     full = model(tokens)[:, -1]
    >>> torch.allclose(last, full, atol=1e-6), cache.n_filled
    (True, 5)
    """

    def __init__(self, n_layers: int, n_positions: int):
        self.n_positions = n_positions
        self.n_filled = 0
        self.blocks = [BlockCache(self) for _ in range(n_layers)]

    def forward(self, model: Transformer, tokens: Int[Tensor, "batch pos"],
                attention_mask: Optional[Int[Tensor, "batch key_pos"]] = None) -> Float[Tensor, "batch d_vocab"]:
        """The last position's logits of ``tokens``, the positions after those cached, whose keys
        and values are then appended. ``attention_mask`` covers the cached positions first."""
        if len(self.blocks) != model.cfg.n_layers:
            raise ValueError(f"the cache has {len(self.blocks)} blocks and the model {model.cfg.n_layers}.")
        if self.n_filled + tokens.shape[1] > self.n_positions:
            raise ValueError(f"the cache holds {self.n_positions} positions; {self.n_filled} are filled and "
                             f"{tokens.shape[1]} more do not fit.")
        logits = last_logits(model, tokens, attention_mask, past_kv_cache=self)
        self.n_filled += tokens.shape[1]
        return logits


class BlockCache:
    """One block's keys and values in a :class:`KeyValueCache` (what ``Attention.forward`` takes as ``cache``)."""

    def __init__(self, cache: KeyValueCache):
        self.cache = cache
        self.keys: Optional[Tensor] = None
        self.values: Optional[Tensor] = None

    def extend(self, k: Float[Tensor, "batch kv_head_index pos d_head"],
               v: Float[Tensor, "batch kv_head_index pos d_head"]) -> tuple[Tensor, Tensor]:
        """Write the new positions after the filled ones; views of every position's so far."""
        start, n_positions = self.cache.n_filled, self.cache.n_positions
        if self.keys is None:
            self.keys = k.new_empty(k.shape[0], k.shape[1], n_positions, k.shape[3])
            self.values = v.new_empty(v.shape[0], v.shape[1], n_positions, v.shape[3])
        end = start + k.shape[2]
        self.keys[:, :, start:end] = k
        self.values[:, :, start:end] = v
        return self.keys[:, :, :end], self.values[:, :, :end]


def last_logits(
    model: Transformer,
    tokens: Int[Tensor, "batch pos"],
    attention_mask: Optional[Int[Tensor, "batch key_pos"]] = None,
    past_kv_cache: Optional[KeyValueCache] = None,
) -> Float[Tensor, "batch d_vocab"]:
    """``model(tokens, past_kv_cache=..., attention_mask=attention_mask)[:, -1]``, with the final
    norm and the unembedding run at the last position only (``ln_final``'s hooks see that position).

    The only logits generation reads; as Hugging Face's ``logits_to_keep=1``, this spares the
    unembedding of every other prompt position, which on SmolLM2 costs a fifth of a step each.
    """
    residual = model(tokens, past_kv_cache=past_kv_cache, attention_mask=attention_mask,
                     stop_at_layer=model.cfg.n_layers)
    residual = residual[:, -1:]
    if model.ln_final is not None:
        residual = model.ln_final(residual)
    return model.unembed(residual)[:, -1]
