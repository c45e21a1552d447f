"""Is there a direction? Consistency of word-pair differences against random pairs.

For a hypothesised direction given by pairs (man/woman, king/queen, uncle/aunt, ...), the
differences of the unit word vectors ``u(w2) - u(w1)`` should point the same way. The
statistic is their mean pairwise cosine (the "offset consistency" of Fu et al. 2014 and
Drozd et al. 2016); the null is the same statistic over sets of the same number of random
word pairs, and the p-value is the Monte Carlo permutation p-value
``(1 + #{random >= observed}) / (1 + n_random)`` (Phipson and Smyth 2010).

Example::

    import torch
    from interp.directions import direction_consistency, direction_tests, project_onto_direction

    vocab = [f"w{i}" for i in range(200)]
    W = torch.randn(200, 16); W[100:110] = W[:10] + 3.0    # w{i+100} - w{i} share an offset
    pairs = {"offset": [(f"w{i}", f"w{i + 100}") for i in range(10)]}
    samples = direction_consistency(W, vocab, pairs, n_random=200)
    direction_tests(samples)                                 # consistency, baseline, p_value
    project_onto_direction(W, vocab, ["w0", "w100"], pairs["offset"])
"""

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from einops import einsum
from jaxtyping import Float
from torch import Tensor

from interp.directions.analogies import Vocabulary, unit_rows


def word_indices(vocab: Sequence[str] | Vocabulary, words: Sequence[str], case_insensitive: bool = True) -> np.ndarray:
    """Index of each word; a ValueError lists the words missing from the vocabulary."""
    lookup = vocab if isinstance(vocab, Vocabulary) else Vocabulary(vocab, None, case_insensitive)
    ids = lookup.lookup(words)
    missing = [w for w, i in zip(words, ids) if i < 0]
    if missing:
        raise ValueError(f"words not in the vocabulary: {missing}; choose pairs whose words are single vocabulary entries")
    return ids


def mean_pairwise_cosine(differences: Float[Tensor, "draw pair d_model"]) -> Float[Tensor, "draw"]:
    """Mean cosine over the distinct pairs (i < j) of the difference vectors in each draw."""
    n = differences.shape[1]
    if n < 2:
        raise ValueError("consistency needs at least two pairs")
    unit = unit_rows(differences)
    gram = einsum(unit, unit, "draw pair_i d_model, draw pair_j d_model -> draw pair_i pair_j")
    off_diagonal = gram.sum(dim=(1, 2)) - gram.diagonal(dim1=1, dim2=2).sum(dim=1)
    return off_diagonal / (n * (n - 1))


def direction_consistency(
    W: Float[Tensor, "d_vocab d_model"],
    vocab: Sequence[str],
    families: dict[str, Sequence[tuple[str, str]]],
    n_random: int = 1000,
    seed: int = 0,
    candidates: Sequence[int] | None = None,
) -> pd.DataFrame:
    """Consistency of each family's pair differences and of ``n_random`` random pair sets.

    Long format: ``direction, kind ("observed" | "random"), draw, n_pairs, consistency``.
    Random words are drawn (distinct within a set) from ``candidates`` (row indices;
    default all rows), so restrict them to real words when the vocabulary has sub-words.
    """
    if n_random < 1:
        raise ValueError(f"n_random must be at least 1, got {n_random}")
    unit = unit_rows(W.double())
    pool = np.arange(W.shape[0]) if candidates is None else np.asarray(candidates)
    rng = np.random.default_rng(seed)
    rows = []
    for name, pairs in families.items():
        ids = word_indices(vocab, [w for pair in pairs for w in pair]).reshape(-1, 2)
        observed = mean_pairwise_cosine((unit[ids[:, 1]] - unit[ids[:, 0]]).unsqueeze(0))
        rows.append((name, "observed", 0, len(ids), float(observed[0])))
        if len(pool) < 2 * len(ids):
            raise ValueError(f"{len(pool)} candidate words cannot form {len(ids)} distinct random pairs")
        draws = np.stack([rng.choice(pool, size=2 * len(ids), replace=False) for _ in range(n_random)])
        draws = torch.from_numpy(draws.reshape(n_random, len(ids), 2))
        null = mean_pairwise_cosine(unit[draws[..., 1]] - unit[draws[..., 0]])
        rows += [(name, "random", k + 1, len(ids), float(v)) for k, v in enumerate(null)]
    return pd.DataFrame(rows, columns=["direction", "kind", "draw", "n_pairs", "consistency"])


def direction_tests(samples: pd.DataFrame) -> pd.DataFrame:
    """One row per direction: observed consistency, random-pair mean and sd, permutation p-value."""
    rows = []
    for name, df in samples.groupby("direction", sort=False):
        observed = float(df.loc[df["kind"] == "observed", "consistency"].iloc[0])
        null = df.loc[df["kind"] == "random", "consistency"].to_numpy()
        p_value = (1 + int((null >= observed).sum())) / (1 + len(null))
        rows.append((name, int(df["n_pairs"].iloc[0]), observed, null.mean(), null.std(ddof=1) if len(null) > 1 else 0.0, p_value, len(null)))
    return pd.DataFrame(rows, columns=["direction", "n_pairs", "consistency", "random_mean", "random_std", "p_value", "n_random"])


def direction_from_pairs(
    W: Float[Tensor, "d_vocab d_model"], vocab: Sequence[str] | Vocabulary, pairs: Sequence[tuple[str, str]]
) -> Float[Tensor, "d_model"]:
    """Unit vector along the mean difference ``u(w2) - u(w1)`` over the pairs."""
    ids = torch.from_numpy(word_indices(vocab, [w for pair in pairs for w in pair]).reshape(-1, 2))
    unit = unit_rows(W[ids].double())  # (pair, 2, d_model)
    mean = (unit[:, 1] - unit[:, 0]).mean(dim=0)
    return mean / mean.norm()


def project_onto_direction(
    W: Float[Tensor, "d_vocab d_model"],
    vocab: Sequence[str],
    words: Sequence[str],
    direction: Float[Tensor, "d_model"] | Sequence[tuple[str, str]],
) -> pd.DataFrame:
    """Cosine of each word's vector with the direction (given as a vector or as word pairs): ``word, projection``."""
    if not isinstance(direction, Tensor):
        direction = direction_from_pairs(W, vocab, direction)
    direction = direction.double() / direction.double().norm()
    unit = unit_rows(W[torch.from_numpy(word_indices(vocab, words))].double())
    projection = einsum(unit, direction, "word d_model, d_model -> word")
    return pd.DataFrame({"word": list(words), "projection": projection.numpy()})
