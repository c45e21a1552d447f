"""The logit lens (nostalgebraist 2020): read the residual stream after each block as if it were the last.

    >>> import torch
    >>> from models.transformer import Transformer, TransformerConfig
    >>> model = Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32, d_vocab=20, n_ctx=8))
    >>> probs = logit_lens(model, torch.tensor([[1, 2, 3]]))
    >>> probs.shape                                   # [layer pos d_vocab]; row 0 is the embedding
    torch.Size([3, 3, 20])
    >>> top = lens_top(probs, k=2)
    >>> top.indices.shape                             # [layer pos k]
    torch.Size([3, 3, 2])

Row ``0`` is the embedding (``blocks.0.hook_resid_pre``), row ``L + 1`` the residual stream
after block ``L`` (``blocks.{L}.hook_resid_post``). Each row goes through the model's own
final normalisation (recomputed for that row, as nostalgebraist's lens does, not the final
layer's cached scale) and unembedding; the last row is checked against the model's output.
"""

from typing import Any, NamedTuple

import torch
from jaxtyping import Float, Int
from torch import Tensor

from interp.hook_names import act_name


def lens_names(n_layers: int) -> list[str]:
    """The hook names the lens reads, in row order: the embedding, then after each block."""
    return [act_name("resid_pre", 0)] + [act_name("resid_post", layer) for layer in range(n_layers)]


def lens_labels(n_layers: int) -> list[str]:
    """A label per row of :func:`logit_lens`: ``"embed"``, then ``"0"`` .. ``"n_layers-1"``."""
    return ["embed"] + [str(layer) for layer in range(n_layers)]


@torch.no_grad()
def logit_lens(model: Any, tokens: Int[Tensor, "1 pos"], atol: float = 1e-4, *, logits: Any = None,
               cache: Any = None) -> Float[Tensor, "layer pos d_vocab"]:
    """Next-token probabilities read from the residual stream after each block, for one prompt.

    Needs ``model.ln_final`` and ``model.unembed`` (a decoder with an unembedding); raises
    ``RuntimeError`` when the last row differs from the model's own output by more than
    ``atol`` (a model whose output is not ``unembed(ln_final(resid))``). Pass the ``logits`` and
    ``cache`` of a forward that cached :func:`lens_names` to skip running the model again.
    """
    if tokens.ndim != 2 or tokens.shape[0] != 1:
        raise ValueError(f"the lens reads one prompt: tokens must be [1 pos], got {tuple(tokens.shape)}")
    if not (hasattr(model, "ln_final") and hasattr(model, "unembed")):
        raise ValueError(f"{type(model).__name__} has no ln_final and unembed: the logit lens needs an unembedding")
    names = lens_names(model.cfg.n_layers)
    if (logits is None) != (cache is None):
        raise ValueError("give both logits and cache (of one forward on these tokens), or neither")
    if cache is None:
        logits, cache = model.run_with_cache(tokens, names_filter=names)
    resid = torch.stack([cache[name][0] for name in names])  # [layer pos d_model]
    probs = model.unembed(model.ln_final(resid)).float().softmax(-1)
    final = logits[0].float().softmax(-1)
    if not torch.allclose(probs[-1], final, atol=atol):
        gap = float((probs[-1] - final).abs().max())
        raise RuntimeError(f"the lens at the last layer differs from the model's own output by {gap:.2g}: "
                           "its output is not unembed(ln_final(residual stream))")
    return probs


class LensTop(NamedTuple):
    values: Float[Tensor, "layer pos k"]
    indices: Int[Tensor, "layer pos k"]


def lens_top(probs: Float[Tensor, "layer pos d_vocab"], k: int = 5) -> LensTop:
    """The ``k`` most probable tokens at each (layer, position), most probable first."""
    top = probs.topk(min(k, probs.shape[-1]), dim=-1)
    return LensTop(top.values, top.indices)
