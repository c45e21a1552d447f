"""What TransformerLens's tools read off a model besides its hooks: stacked weights, the cache object,
the unembedding directions, biases; a mixin of our ``Transformer``.

``cache.accumulated_resid``, ``logit_attrs``, ``transformer_lens.patching`` and
``tools.analysis`` call these by TransformerLens's names, so they run on our models unchanged.
"""

from typing import Any, Union

import torch
from jaxtyping import Float
from torch import Tensor

from transformer_lens import ActivationCache

from models.transformer.heap import keep_freed_heap


class TransformerLensSurface:
    """TransformerLens's model surface for a ``HookedRootModule`` with our components."""

    # ----- TransformerLens's analysis surface (ActivationCache, logit lens, DLA, patching) --------

    def run_with_cache(self, *model_args: Any, return_cache_object: bool = True, remove_batch_dim: bool = False,
                       **kwargs: Any) -> tuple[Any, Union[ActivationCache, dict[str, Tensor]]]:
        """``(output, cache)``: the cache is TransformerLens's ``ActivationCache``, as ``HookedTransformer``'s.

        So ``cache["blocks.0.hook_resid_pre"]``, ``cache["resid_pre", 0]``, ``cache.items()`` and
        TransformerLens's analyses (``accumulated_resid``, ``decompose_resid``,
        ``stack_head_results``, ``apply_ln_to_stack``, ``logit_attrs``) work on it;
        ``return_cache_object=False`` gives the plain dict. The first call keeps freed memory in the
        heap for later ones (:mod:`models.transformer.heap`; ``INTERP_KEEP_HEAP=0`` to opt out).
        """
        keep_freed_heap()
        out, cache = super().run_with_cache(*model_args, remove_batch_dim=remove_batch_dim, **kwargs)
        return out, ActivationCache(cache, self, has_batch_dim=not remove_batch_dim) if return_cache_object else cache

    @property
    def b_U(self) -> Float[Tensor, "d_vocab"]:
        """The unembedding bias; zeros when the model has none (TransformerLens's readouts add it)."""
        b_U = self.unembed.b_U
        return torch.zeros(self.cfg.d_vocab, dtype=self.W_E.dtype, device=self.W_E.device) if b_U is None else b_U

    def tokens_to_residual_directions(self, tokens: Union[str, int, Tensor]) -> Float[Tensor, "... d_model"]:
        """The direction in the *normalised* residual stream whose dot product is a token's logit (minus constants).

        That is ``W_U[:, token]`` times ``ln_final.w``: TransformerLens's ``W_U`` after its default
        ``fold_ln``, so ``cache.logit_attrs`` (which divides by ``ln_final``'s cached scale)
        splits a logit into parts that sum to ``logit - b_U - ln_final.b @ W_U`` and agree with
        a ``HookedTransformer`` of the same weights. ``[d_model]`` for one token, ``[... d_model]``
        for a tensor of them.
        """
        if isinstance(tokens, str):
            tokens = self.to_single_token(tokens)
        W_U = self.W_U if self.ln_final is None else self.ln_final.w[:, None] * self.W_U
        index = tokens if isinstance(tokens, Tensor) and tokens.numel() > 1 else int(tokens)
        return W_U[:, index].movedim(0, -1)

    def to_single_token(self, string: str) -> int:
        """The id of the one token ``string`` is (no BOS); raises if it is several."""
        token = self.to_tokens(string, prepend_bos=False).squeeze()
        if token.numel() != 1:
            pieces = self.to_str_tokens(string, prepend_bos=False)
            raise ValueError(f"{string!r} is {token.numel()} tokens, not one: {pieces}")
        return int(token.item())

    def accumulated_bias(self, layer: int, mlp_input: bool = False, include_mlp_biases: bool = True
                         ) -> Float[Tensor, "d_model"]:
        """Sum of the attention (``b_O``) and MLP (``b_out``) output biases of blocks before ``layer``
        (and the attention bias of ``layer`` itself with ``mlp_input``), as TransformerLens's."""
        total = torch.zeros(self.cfg.d_model, dtype=self.W_E.dtype, device=self.W_E.device)
        for index, block in enumerate(self.blocks[: layer + 1]):
            if index < layer or mlp_input:
                total = total + (0 if block.attn.b_O is None else block.attn.b_O)
            mlp = getattr(block, "mlp", None)
            if index < layer and include_mlp_biases and getattr(mlp, "b_out", None) is not None:
                total = total + mlp.b_out
        return total

    # ----- weights stacked over layers, as TransformerLens exposes them ------------------------

    @property
    def W_E(self) -> Float[Tensor, "d_vocab d_model"]:
        return self.embed.W_E

    @property
    def W_pos(self) -> Float[Tensor, "n_ctx d_model"]:
        if self.cfg.positional_embedding != "standard":
            raise AttributeError("a model with rotary positions has no W_pos; positions act inside the attention.")
        return self.pos_embed.W_pos

    @property
    def W_U(self) -> Float[Tensor, "d_model d_vocab"]:
        return self.unembed.W_U

    def _stack(self, path: str) -> Tensor:
        parts = path.split(".")
        tensors = []
        for block in self.blocks:
            obj: Any = block
            for part in parts:
                obj = getattr(obj, part)
            tensors.append(obj)
        return torch.stack(tensors)

    @property
    def W_Q(self) -> Float[Tensor, "n_layers n_heads d_model d_head"]:
        return self._stack("attn.W_Q")

    @property
    def W_K(self) -> Float[Tensor, "n_layers n_heads d_model d_head"]:
        return self._stack("attn.W_K")

    @property
    def W_V(self) -> Float[Tensor, "n_layers n_heads d_model d_head"]:
        return self._stack("attn.W_V")

    @property
    def W_O(self) -> Float[Tensor, "n_layers n_heads d_head d_model"]:
        return self._stack("attn.W_O")

    @property
    def W_in(self) -> Float[Tensor, "n_layers d_model d_mlp"]:
        return self._stack("mlp.W_in")

    @property
    def W_out(self) -> Float[Tensor, "n_layers d_mlp d_model"]:
        return self._stack("mlp.W_out")

    @property
    def W_gate(self) -> Float[Tensor, "n_layers d_model d_mlp"]:
        return self._stack("mlp.W_gate")
