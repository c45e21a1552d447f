"""Rotary position embeddings (RoPE, Su et al. 2021, eq. 34), in Hugging Face Llama's layout.

Each query and key head is rotated by an angle proportional to its position: the pair of
dimensions ``(i, i + rotary_dim / 2)`` turns by ``position * rotary_base ** (-2i / rotary_dim)``
("rotate half", the GPT-NeoX / Llama layout; Meta's original interleaves the pairs, and
``transformers`` permutes the weights of such checkpoints into this layout when loading).
Dimensions past ``rotary_dim`` pass unrotated. So the score between a query at ``m`` and a
key at ``n`` depends on ``m - n`` only.

The angles are computed in float32 whatever the model's dtype, as ``transformers`` does:
that is how these models were trained, and it keeps float64 runs equal to the reference.

>>> q = torch.randn(1, 5, 2, 8)                      # [batch pos head_index d_head]
>>> cos, sin = rotary_cos_sin(torch.arange(5)[None], rotary_dim=8, base=10000.0, dtype=q.dtype)
>>> rotate(q, cos, sin).shape
torch.Size([1, 5, 2, 8])
"""

import torch
from jaxtyping import Float, Int
from torch import Tensor


def inverse_frequencies(rotary_dim: int, base: float) -> Float[Tensor, "half"]:
    """``base ** (-2i / rotary_dim)`` for ``i < rotary_dim / 2``, in float32 (as transformers computes it)."""
    return 1.0 / (base ** (torch.arange(0, rotary_dim, 2, dtype=torch.int64).float() / rotary_dim))


def rotary_cos_sin(
    positions: Int[Tensor, "batch pos"], rotary_dim: int, base: float, dtype: torch.dtype
) -> tuple[Float[Tensor, "batch pos 1 rotary_dim"], Float[Tensor, "batch pos 1 rotary_dim"]]:
    """Cosines and signed sines of every position's angles, laid out to broadcast over heads.

    The cosines repeat each half (``cat(freqs, freqs)``); the sines are ``cat(-sin, sin)``, so
    that :func:`rotate` is ``x * cos + swap_halves(x) * sin`` (the sign moved from the rotated
    half onto the sine: the same products, exactly).
    """
    freqs = positions[..., None].float() * inverse_frequencies(rotary_dim, base).to(positions.device)
    cos, sin = freqs.cos().to(dtype), freqs.sin().to(dtype)
    return torch.cat([cos, cos], dim=-1)[:, :, None], torch.cat([-sin, sin], dim=-1)[:, :, None]


def rotate(
    x: Float[Tensor, "batch pos head_index d_head"],
    cos: Float[Tensor, "batch pos 1 rotary_dim"],
    sin: Float[Tensor, "batch pos 1 rotary_dim"],
) -> Float[Tensor, "batch pos head_index d_head"]:
    """``x * cos + rotate_half(x) * sin`` on the first ``rotary_dim`` dimensions of every head.

    Four tensor operations (a generation step rotates queries and keys in every layer, and each
    operation's dispatch costs as much as its arithmetic on one position).
    """
    rotary_dim = cos.shape[-1]
    if rotary_dim == x.shape[-1]:
        return x * cos + x.roll(rotary_dim // 2, dims=-1) * sin
    x_rot, x_pass = x[..., :rotary_dim], x[..., rotary_dim:]
    return torch.cat([x_rot * cos + x_rot.roll(rotary_dim // 2, dims=-1) * sin, x_pass], dim=-1)
