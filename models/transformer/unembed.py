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
        logits = normalized @ self.W_U
        return logits if self.b_U is None else logits + self.b_U
