"""The unembedding: residual stream to logits over the vocabulary."""

from typing import Optional

import torch
from jaxtyping import Float
from torch import Tensor, nn

from models.transformer.config import TransformerConfig
from models.transformer.embed import Embed


class Unembed(nn.Module):
    """``logits = x @ W_U + b_U`` with ``W_U`` [d_model d_vocab].

    With ``cfg.tied_embeddings`` pass the model's ``Embed``: ``W_U`` is then ``W_E.T``
    and the unembedding owns no parameters (GPT-2 has no ``b_U`` either).

    >>> cfg = TransformerConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=None, d_vocab=10, n_ctx=4)
    >>> Unembed(cfg)(torch.randn(2, 3, 8)).shape
    torch.Size([2, 3, 10])
    """

    def __init__(self, cfg: TransformerConfig, embed: Optional[Embed] = None):
        super().__init__()
        self.cfg = cfg
        if cfg.tied_embeddings:
            if embed is None:
                raise ValueError("cfg.tied_embeddings is True: pass the model's Embed to Unembed(cfg, embed).")
            # Kept in a tuple so nn.Module does not register the embedding a second
            # time (that would duplicate embed.W_E in state_dict under unembed.*).
            self._tied_to = (embed,)
            self.register_parameter("b_U", None)
        else:
            self._tied_to = ()
            self.W_U = nn.Parameter(torch.empty(cfg.d_model, cfg.d_vocab))
            if cfg.use_bias:
                self.b_U = nn.Parameter(torch.zeros(cfg.d_vocab))
            else:
                self.register_parameter("b_U", None)

    def __getattr__(self, name: str):
        if name == "W_U" and self.__dict__.get("_tied_to"):
            return self.__dict__["_tied_to"][0].W_E.T
        return super().__getattr__(name)

    def forward(self, normalized: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_vocab"]:
        W_U = self.W_U
        flat = normalized.reshape(-1, normalized.shape[-1])
        needs_grad = torch.is_grad_enabled() and (flat.requires_grad or W_U.requires_grad)
        if needs_grad or flat.shape[0] < CHUNKED_MIN_ROWS or W_U.shape[1] <= 2 * VOCAB_CHUNK:
            logits = flat @ W_U if self.b_U is None else torch.addmm(self.b_U, flat, W_U)
        else:
            logits = chunked_logits(flat, W_U, self.b_U)
        return logits.reshape(*normalized.shape[:-1], W_U.shape[1])


# A large vocabulary is unembedded a block of 2,048 columns at a time: a block of W_U (4.7 MB for
# d_model 576) stays in cache while every row reads it. On SmolLM2 (512 rows, d_vocab 49,152) that
# took 218-225 ms against 258 ms for the one product, with bit-identical logits.
VOCAB_CHUNK = 2048
CHUNKED_MIN_ROWS = 64  # a generation step's few rows read W_U once either way


def chunked_logits(flat: Float[Tensor, "rows d_model"], W_U: Float[Tensor, "d_model d_vocab"],
                   b_U: Optional[Tensor]) -> Float[Tensor, "rows d_vocab"]:
    """``flat @ W_U + b_U``, computed ``VOCAB_CHUNK`` vocabulary columns at a time (no autograd)."""
    logits = flat.new_empty(flat.shape[0], W_U.shape[1])
    for start in range(0, W_U.shape[1], VOCAB_CHUNK):
        block = slice(start, start + VOCAB_CHUNK)
        logits[:, block] = flat @ W_U[:, block] if b_U is None else torch.addmm(b_U[block], flat, W_U[:, block])
    return logits
