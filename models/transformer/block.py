"""One pre-norm transformer block: attention then MLP, each added to the residual stream."""

from typing import Optional

import torch
from jaxtyping import Float
from torch import Tensor, nn

from transformer_lens.hook_points import HookPoint

from models.transformer.attention import Attention, CachedKeys, GroupedQueryAttention, Layout
from models.transformer.config import TransformerConfig
from models.transformer.gated_mlp import GatedMLP
from models.transformer.layer_norm import LayerNorm
from models.transformer.mlp import MLP
from models.transformer.rms_norm import RMSNorm


def make_norm(cfg: TransformerConfig) -> Optional[nn.Module]:
    """The block's (and the final) normalisation: LayerNorm, RMSNorm or none, by ``cfg.normalization``."""
    return {"LN": LayerNorm, "RMS": RMSNorm}[cfg.normalization](cfg) if cfg.normalization else None


class TransformerBlock(nn.Module):
    """``resid_mid = resid_pre + attn(ln1(resid_pre))``; ``resid_post = resid_mid + mlp(ln2(resid_mid))``.

    An attention-only block (``cfg.d_mlp is None``) has no ``ln2``, ``mlp``,
    ``hook_resid_mid`` or ``hook_mlp_out``: hooks that never fire are not declared.

    >>> cfg = TransformerConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=32, d_vocab=10, n_ctx=4)
    >>> TransformerBlock(cfg)(torch.randn(2, 3, 8)).shape
    torch.Size([2, 3, 8])
    """

    # TransformerLens's logit lens reads this off each block: hook_resid_post is the one stream ln_final reads
    hook_out_is_single_residual_stream = True

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.hook_resid_pre = HookPoint()  # [batch pos d_model]
        self.ln1 = make_norm(cfg)
        self.attn = Attention(cfg) if cfg.n_key_value_heads is None else GroupedQueryAttention(cfg)
        self.hook_attn_out = HookPoint()  # [batch pos d_model]
        if not cfg.attn_only:
            self.hook_resid_mid = HookPoint()  # [batch pos d_model]
            self.ln2 = make_norm(cfg)
            self.mlp = GatedMLP(cfg) if cfg.gated_mlp else MLP(cfg)
            self.hook_mlp_out = HookPoint()  # [batch pos d_model]
        self.hook_resid_post = HookPoint()  # [batch pos d_model]

    def forward(
        self,
        resid_pre: Float[Tensor, "batch pos d_model"],
        prefix: Optional[tuple[Tensor, Tensor]] = None,
        layout: Optional[Layout] = None,
        cache: Optional[CachedKeys] = None,
    ) -> Float[Tensor, "batch pos d_model"]:
        """``prefix`` or ``cache``, ``layout``: the attention's keys and values of earlier positions, and
        the mask and rotary angles the model computed once for every block (see ``Attention.forward``)."""
        resid_pre = self.hook_resid_pre(resid_pre)
        attn_in = resid_pre if self.ln1 is None else self.ln1(resid_pre)
        resid = resid_pre + self.hook_attn_out(self.attn(attn_in, prefix, layout=layout, cache=cache))
        if not self.cfg.attn_only:
            resid = self.hook_resid_mid(resid)
            mlp_in = resid if self.ln2 is None else self.ln2(resid)
            resid = resid + self.hook_mlp_out(self.mlp(mlp_in))
        return self.hook_resid_post(resid)
