"""Word similarity: cosine of word vectors against human judgements (WordSim-353, SimLex-999).

Pair filtering follows ``gensim.models.KeyedVectors.evaluate_word_pairs`` (same
``restrict_vocab``, ``case_insensitive`` and ``dummy4unknown`` rules), so the Spearman
correlation agrees with gensim's on the same vectors.

Example::

    import torch
    from interp.directions import word_similarity, gensim_test_data, load_word_pairs

    pairs = load_word_pairs(gensim_test_data("wordsim353.tsv"))
    vocab = sorted(set(pairs["word_1"]) | set(pairs["word_2"]))
    W_E = torch.randn(len(vocab), 8)  # random vectors: a Spearman correlation near 0
    word_similarity(W_E, vocab, pairs)["spearman"]
"""

from typing import Sequence

import numpy as np
import pandas as pd
from jaxtyping import Float
from scipy import stats
from torch import Tensor

from interp.directions.analogies import Vocabulary, unit_rows


def pair_similarities(
    W: Float[Tensor, "d_vocab d_model"],
    vocab: Sequence[str],
    pairs: pd.DataFrame,
    restrict_vocab: int | None = 300000,
    case_insensitive: bool = True,
    dummy4unknown: bool = False,
) -> pd.DataFrame:
    """``pairs`` plus ``in_vocab`` and the model's cosine ``model`` (0 for unknown pairs with dummy4unknown, else NaN)."""
    if W.shape[0] != len(vocab):
        raise ValueError(f"W has {W.shape[0]} rows but vocab has {len(vocab)} words; they must match")
    words = Vocabulary(vocab, restrict_vocab, case_insensitive)
    i, j = words.lookup(pairs["word_1"].tolist()), words.lookup(pairs["word_2"].tolist())
    in_vocab = (i >= 0) & (j >= 0)
    unit = unit_rows(W[: words.n_candidates].double()).numpy()
    model = np.full(len(pairs), 0.0 if dummy4unknown else np.nan)
    model[in_vocab] = (unit[i[in_vocab]] * unit[j[in_vocab]]).sum(axis=1)
    out = pairs.reset_index(drop=True).copy()
    out["in_vocab"] = in_vocab
    out["model"] = model
    return out


def word_similarity(
    W: Float[Tensor, "d_vocab d_model"],
    vocab: Sequence[str],
    pairs: pd.DataFrame,
    restrict_vocab: int | None = 300000,
    case_insensitive: bool = True,
    dummy4unknown: bool = False,
) -> dict[str, float]:
    """Spearman and Pearson correlation of cosine similarity with the human scores.

    Returns ``spearman, spearman_p, pearson, pearson_p, n_pairs, n_used, oov_ratio``
    (``oov_ratio`` in percent, as gensim reports it).
    """
    sims = pair_similarities(W, vocab, pairs, restrict_vocab, case_insensitive, dummy4unknown)
    used = sims if dummy4unknown else sims[sims["in_vocab"]]
    if len(used) < 3:
        raise ValueError(f"only {len(used)} of {len(sims)} pairs are in the vocabulary; a correlation needs at least 3")
    spearman = stats.spearmanr(used["gold"], used["model"])
    pearson = stats.pearsonr(used["gold"], used["model"])
    n_oov = int((~sims["in_vocab"]).sum())
    return {
        "spearman": float(spearman.statistic), "spearman_p": float(spearman.pvalue),
        "pearson": float(pearson.statistic), "pearson_p": float(pearson.pvalue),
        "n_pairs": len(sims), "n_used": len(used), "oov_ratio": 100.0 * n_oov / len(sims),
    }
