"""A key/value cache for generation: each block's keys and values so far, appended step by step.

Generation runs the prompt once and then feeds one token per step; the attention reads the
earlier positions from this cache through the forward's ``prefix_kv``, so a step costs one
position's work and gives the logits the full forward gives.
"""

import contextlib
from typing import Any, Callable, Iterator, Optional

from jaxtyping import Float, Int
from torch import Tensor

from models.transformer.model import Transformer


class KeyValueCache:
    """Every block's keys and values so far, as ``blocks.{L}.attn.hook_k`` / ``hook_v`` saw them
    (keys before rotary: the attention rotates its prefix itself), [batch pos kv_head_index d_head],
    in buffers sized for the whole generation so that a step appends without copying the past.

    >>> cache = KeyValueCache(model.cfg.n_layers, n_positions=tokens.shape[1] + 1)  # doctest: +SKIP
    >>> with cache.recording(model):                                               # doctest: +SKIP
    ...     cache.forward(model, tokens[:, :-1])
    ...     last = cache.forward(model, tokens[:, -1:])      # == model(tokens)[:, -1]
    """

    def __init__(self, n_layers: int, n_positions: int):
        self.n_positions = n_positions
        self.keys: list[Optional[Tensor]] = [None] * n_layers
        self.values: list[Optional[Tensor]] = [None] * n_layers
        self.n_filled = 0

    def prefix(self) -> Optional[list[tuple[Tensor, Tensor]]]:
        """The forward's ``prefix_kv``: views of the filled part of every block's buffers."""
        if not self.n_filled:
            return None
        return [(k[:, : self.n_filled], v[:, : self.n_filled]) for k, v in zip(self.keys, self.values)]

    def forward(self, model: Transformer, tokens: Int[Tensor, "batch pos"],
                attention_mask: Optional[Int[Tensor, "batch key_pos"]] = None) -> Float[Tensor, "batch d_vocab"]:
        """The last position's logits of ``tokens``, the positions after those cached; call inside
        ``recording``, which appends their keys and values."""
        if self.n_filled + tokens.shape[1] > self.n_positions:
            raise ValueError(f"the cache holds {self.n_positions} positions; {self.n_filled} are filled and "
                             f"{tokens.shape[1]} more do not fit.")
        logits = last_logits(model, tokens, attention_mask, self.prefix())
        self.n_filled += tokens.shape[1]
        return logits

    @contextlib.contextmanager
    def recording(self, model: Transformer) -> Iterator["KeyValueCache"]:
        """Within, every forward writes its keys and values after the filled positions.

        Plain torch forward hooks, registered after the model's own hooks (so they see what those
        left) and removed on exit, even on error; TransformerLens's ``reset_hooks`` never sees them.
        """
        handles = []
        try:
            for layer, block in enumerate(model.blocks):
                handles.append(block.attn.hook_k.register_forward_hook(self._writer(self.keys, layer)))
                handles.append(block.attn.hook_v.register_forward_hook(self._writer(self.values, layer)))
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _writer(self, buffers: list[Optional[Tensor]], layer: int) -> Callable:
        def write(module: Any, inputs: Any, output: Tensor) -> None:
            if buffers[layer] is None:
                buffers[layer] = output.new_empty(output.shape[0], self.n_positions, *output.shape[2:])
            buffers[layer][:, self.n_filled : self.n_filled + output.shape[1]] = output

        return write


def last_logits(
    model: Transformer,
    tokens: Int[Tensor, "batch pos"],
    attention_mask: Optional[Int[Tensor, "batch key_pos"]] = None,
    prefix_kv: Optional[list[tuple[Tensor, Tensor]]] = None,
) -> Float[Tensor, "batch d_vocab"]:
    """``model(tokens, prefix_kv=prefix_kv, attention_mask=attention_mask)[:, -1]``, with the final
    norm and the unembedding run at the last position only (``ln_final``'s hooks see that position).

    The only logits generation reads; as Hugging Face's ``logits_to_keep=1``, this spares the
    unembedding of every other prompt position, which on SmolLM2 costs a fifth of a step each.
    """
    residual = model(tokens, prefix_kv=prefix_kv, attention_mask=attention_mask, stop_at_layer=model.cfg.n_layers)
    residual = residual[:, -1:]
    if model.ln_final is not None:
        residual = model.ln_final(residual)
    return model.unembed(residual)[:, -1]
