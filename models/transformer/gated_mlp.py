"""The gated MLP sublayer of the Llama family (Shazeer 2020, "GLU Variants Improve Transformer")."""

import torch
from jaxtyping import Float
from torch import Tensor, nn

from transformer_lens.hook_points import HookPoint

from models.transformer.config import TransformerConfig
from models.transformer.mlp import ACTIVATIONS, linear


class GatedMLP(nn.Module):
    """``(act(x @ W_gate) * (x @ W_in) + b_in) @ W_out + b_out``, named and laid out as in TransformerLens.

    ``hook_pre`` is the gate before the activation, ``hook_pre_linear`` the linear branch
    and ``hook_post`` their product [batch pos d_mlp]: a neuron's activation is
    ``hook_post``, and its output direction is its row of ``W_out``. In Hugging Face's
    Llama, ``W_gate``, ``W_in`` and ``W_out`` are ``gate_proj``, ``up_proj`` and
    ``down_proj`` (transposed).

    >>> cfg = TransformerConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=32, d_vocab=10, n_ctx=4,
    ...                         gated_mlp=True, act_fn="silu")
    >>> GatedMLP(cfg)(torch.randn(2, 3, 8)).shape
    torch.Size([2, 3, 8])
    """

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        if cfg.d_mlp is None:
            raise ValueError("GatedMLP needs cfg.d_mlp; an attention-only config (d_mlp=None) has no MLP.")
        self.cfg = cfg
        self.act = ACTIVATIONS[cfg.act_fn]
        # Each stored output-major, as transposed views (shapes and names as TransformerLens's; state
        # dicts, in-place edits and safetensors files unchanged): a generation step's matmuls, a few rows
        # tall, then read every output's weights contiguously, as Hugging Face's Linear does, which on
        # SmolLM2 made a step of 4 prompts 11% faster than input-major weights did.
        self.W_gate = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model).T)
        self.W_in = nn.Parameter(torch.empty(cfg.d_mlp, cfg.d_model).T)
        self.W_out = nn.Parameter(torch.empty(cfg.d_model, cfg.d_mlp).T)
        if cfg.use_bias:
            self.b_in = nn.Parameter(torch.zeros(cfg.d_mlp))
            self.b_out = nn.Parameter(torch.zeros(cfg.d_model))
        else:
            self.register_parameter("b_in", None)
            self.register_parameter("b_out", None)
        self.hook_pre = HookPoint()  # [batch pos d_mlp], the gate before act
        self.hook_pre_linear = HookPoint()  # [batch pos d_mlp]
        self.hook_post = HookPoint()  # [batch pos d_mlp]

    def forward(self, normalized: Float[Tensor, "batch pos d_model"]) -> Float[Tensor, "batch pos d_model"]:
        # the activation runs while the gate is still in cache (HF's order); hooks fire as before
        activated = self.act(self.hook_pre(linear(normalized, self.W_gate, None)))
        post = activated * self.hook_pre_linear(linear(normalized, self.W_in, None))
        post = self.hook_post(post if self.b_in is None else post + self.b_in)
        return linear(post, self.W_out, self.b_out)
