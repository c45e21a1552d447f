"""The MLP sublayer: up-projection, activation, down-projection."""

from typing import Callable

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from transformer_lens.hook_points import HookPoint

from models.transformer.config import TransformerConfig

# gelu_new is GPT-2's tanh approximation of GELU (Hendrycks & Gimpel 2016, eq. 2);
# F.gelu(approximate="tanh") computes exactly that formula.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
}


class MLP(nn.Module):
    """``act(x @ W_in + b_in) @ W_out + b_out`` with ``hook_pre`` and ``hook_post`` [batch pos d_mlp].

    >>> cfg = TransformerConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=32, d_vocab=10, n_ctx=4)
    >>> MLP(cfg)(torch.randn(2, 3, 8)).shape
    torch.Size([2, 3, 8])
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        if cfg.d_mlp is None:
            raise ValueError("MLP needs cfg.d_mlp; an attention-only config (d_mlp=None) has no MLP.")
        self.cfg = cfg
        self.act = ACTIVATIONS[cfg.act_fn]
        self.W_in = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp))
        self.W_out = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model))
        if cfg.use_bias:
            self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
            self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        else:
            self.register_parameter("b_in", None)
            self.register_parameter("b_out", None)
        self.hook_pre = HookPoint()  # [batch pos d_mlp]
        self.hook_post = HookPoint()  # [batch pos d_mlp]

    def forward(self, normalized: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        # plain matmuls (bias fused in by addmm-style broadcasting): torch.einsum costs ~50 us
        # per call in dispatch, which dominated small forwards such as patching sweeps
        pre = normalized @ self.W_in
        if self.b_in is not None:
            pre = pre + self.b_in
        post = self.hook_post(self.act(self.hook_pre(pre)))
        out = post @ self.W_out
        if self.b_out is not None:
            out = out + self.b_out
        return out
