"""The MLP sublayer: up-projection, activation, down-projection."""

from typing import Callable, Optional

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
    "silu": F.silu,  # x * sigmoid(x) (Elfwing et al. 2018), Llama's activation
}


class MLP(nn.Module):
    """``act(x @ W_in + b_in) @ W_out + b_out`` with ``hook_pre`` and ``hook_post`` [batch pos d_mlp].

    It reads ``cfg.d_model, d_mlp, act_fn, use_bias``; the denoiser and the CLIP use it on
    ``[batch d_model]`` inputs with their own configs (``models.denoiser.residual_mlp``).

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
        # 2-D matmuls with the bias fused in (addmm): torch.einsum costs ~50 us per call in
        # dispatch and a separate bias add another pass, which dominated patching sweeps
        pre = linear(normalized, self.W_in, self.b_in)
        post = self.hook_post(self.act(self.hook_pre(pre)))
        return linear(post, self.W_out, self.b_out)


def linear(x: Float[Tensor, "... d_in"], W: Float[Tensor, "d_in d_out"], b: Optional[Tensor]) -> Tensor:
    """``x @ W + b`` as one addmm over the flattened leading dims."""
    flat = x.reshape(-1, x.shape[-1])
    out = flat @ W if b is None else torch.addmm(b, flat, W)
    return out.reshape(*x.shape[:-1], W.shape[-1])
