"""Nearest words to a query vector, and the rank of an expected answer among them.

Used for single analogies written as vector arithmetic (the seed's ``woman - man + king``),
where the words may be built from several sub-word tokens and so need not be rows of
the embedding matrix.

Example::

    import torch
    from interp.directions import nearest_words, rank_of

    vocab = ["king", "queen", "man", "woman", "apple"]
    W = torch.tensor([[1., 1.], [1., -1.], [0., 1.], [0., -1.], [-1., 0.]])
    query = W[3] - W[2] + W[0]                      # woman - man + king
    nearest_words(W, vocab, query, topn=2, exclude=[0, 2, 3])   # queen first
    rank_of(W, query, W[1], exclude=[0, 2, 3])                  # 1
"""

from typing import Sequence

import pandas as pd
import torch
from einops import einsum
from jaxtyping import Float
from torch import Tensor

from interp.directions.analogies import unit_rows


def _cosines(W: Tensor, query: Tensor, exclude: Sequence[int], candidates: Tensor | None) -> Tensor:
    if query.shape != W.shape[1:]:
        raise ValueError(f"query must have shape ({W.shape[1]},), got {tuple(query.shape)}")
    unit = unit_rows(W.double())
    q = query.double() / query.double().norm()
    cos = einsum(unit, q, "d_vocab d_model, d_model -> d_vocab")
    allowed = torch.ones(len(cos), dtype=torch.bool) if candidates is None else candidates.clone()
    allowed[list(exclude)] = False
    return cos.masked_fill(~allowed, -torch.inf)


def nearest_words(
    W: Float[Tensor, "d_vocab d_model"],
    vocab: Sequence[str],
    query: Float[Tensor, "d_model"],
    topn: int = 10,
    exclude: Sequence[int] = (),
    candidates: Tensor | None = None,
) -> pd.DataFrame:
    """The ``topn`` rows most cosine-similar to ``query``: ``rank, word, cosine``.

    ``exclude`` lists row indices never returned (the input words); ``candidates`` is an
    optional boolean mask over rows (for example, whole words only).
    """
    cos = _cosines(W, query, exclude, candidates)
    top = cos.topk(min(topn, int(torch.isfinite(cos).sum())))
    return pd.DataFrame({
        "rank": range(1, len(top.indices) + 1),
        "word": [vocab[i] for i in top.indices.tolist()],
        "cosine": top.values.numpy(),
    })


def rank_of(
    W: Float[Tensor, "d_vocab d_model"],
    query: Float[Tensor, "d_model"],
    target: Float[Tensor, "d_model"],
    exclude: Sequence[int] = (),
    candidates: Tensor | None = None,
) -> int:
    """1 + the number of allowed rows more cosine-similar to ``query`` than ``target`` is.

    ``target`` is a vector, so a word built from sub-word pieces gets a rank too; a row
    identical to ``target`` does not count against it.
    """
    cos = _cosines(W, query, exclude, candidates)
    target_cos = float(target.double() @ query.double() / (target.double().norm() * query.double().norm()))
    return 1 + int((cos > target_cos + 1e-12).sum())
