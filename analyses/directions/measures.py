"""Computations of the directions analysis on an embedding matrix: pure functions returning DataFrames."""

import re
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from interp.directions import (
    analogy_accuracy, direction_consistency, direction_from_pairs, evaluate_analogies, gensim_test_data,
    load_word_pairs, nearest_words, project_onto_direction, rank_of, unit_rows, word_similarity,
)

# Families of pairs hypothesised to share one offset (all single WordPiece tokens in MiniLM).
FAMILIES: dict[str, list[tuple[str, str]]] = {
    "gender": [("man", "woman"), ("king", "queen"), ("uncle", "aunt"), ("boy", "girl"), ("brother", "sister"),
               ("father", "mother"), ("he", "she"), ("son", "daughter"), ("husband", "wife"), ("prince", "princess")],
    "capital": [("france", "paris"), ("germany", "berlin"), ("italy", "rome"), ("japan", "tokyo"), ("spain", "madrid"),
                ("russia", "moscow"), ("china", "beijing"), ("egypt", "cairo"), ("greece", "athens"), ("canada", "ottawa")],
    "plural": [("cat", "cats"), ("dog", "dogs"), ("car", "cars"), ("house", "houses"), ("tree", "trees"),
               ("book", "books"), ("bird", "birds"), ("hand", "hands"), ("river", "rivers"), ("song", "songs")],
    "comparative": [("big", "bigger"), ("small", "smaller"), ("tall", "taller"), ("old", "older"), ("fast", "faster"),
                    ("strong", "stronger"), ("young", "younger"), ("cold", "colder"), ("long", "longer"), ("high", "higher")],
}
# The seed's examples, written a : b :: c : expected, i.e. b - a + c = expected.
SEED_EXAMPLES = [("man", "woman", "king", "queen"), ("germany", "italy", "hitler", "mussolini"),
                 ("japan", "germany", "sushi", "bratwurst")]
# Words projected onto the gender direction: occupations, and four words of the pairs as anchors.
PROJECTED_WORDS = ["nurse", "doctor", "engineer", "teacher", "secretary", "soldier", "dancer", "pilot",
                   "actress", "actor", "queen", "king", "girl", "boy"]
SIMILARITY_SETS = {"WordSim-353": "wordsim353.tsv", "SimLex-999": "simlex999.txt"}


def whole_word_mask(vocab: Sequence[str], min_length: int = 3) -> Tensor:
    """Vocabulary entries that are whole alphabetic words (no ``##`` pieces, ``[unused]`` or punctuation)."""
    pattern = re.compile(rf"^[a-z]{{{min_length},}}$")
    return torch.tensor([bool(pattern.match(w)) for w in vocab])


def subsample_questions(questions: pd.DataFrame, per_section: int | None) -> pd.DataFrame:
    """The first ``per_section`` questions of each section (all of them for None), file order kept."""
    if per_section is None:
        return questions
    out = questions.groupby("section", sort=False).head(per_section).reset_index(drop=True)
    out.attrs["sections"] = questions.attrs["sections"]
    return out


def analogies(W: Tensor, vocab: Sequence[str], questions: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """Per-question answers for every method (long format)."""
    frames = [evaluate_analogies(W, vocab, questions, method=m) for m in methods]
    out = pd.concat(frames, ignore_index=True)
    out.attrs["sections"] = questions.attrs["sections"]
    return out


def gensim_agreement(W: Tensor, vocab: Sequence[str], questions: pd.DataFrame) -> pd.DataFrame:
    """3CosAdd correct counts per section from ours and from gensim's evaluate_word_analogies, side by side."""
    from gensim.models import KeyedVectors

    kv = KeyedVectors(W.shape[1])
    kv.add_vectors(list(vocab), W.numpy())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "questions.txt"
        lines = []
        for section, part in questions.groupby("section", sort=False):
            lines.append(f": {section}")
            lines += [" ".join(row) for row in part[["a", "b", "c", "expected"]].itertuples(index=False)]
        path.write_text("\n".join(lines) + "\n")
        _, sections = kv.evaluate_word_analogies(path)
    ours = analogy_accuracy(evaluate_analogies(W, vocab, questions))
    ours = ours.set_index("section")
    rows = []
    for s in sections:
        name = "total" if s["section"] == "Total accuracy" else s["section"]
        rows.append({"section": name, "gensim_correct": len(s["correct"]),
                     "gensim_counted": len(s["correct"]) + len(s["incorrect"]),
                     "ours_correct": int(ours.loc[name, "n_correct"]), "ours_counted": int(ours.loc[name, "n_counted"])})
    return pd.DataFrame(rows)


def similarities(W: Tensor, vocab: Sequence[str]) -> pd.DataFrame:
    """Spearman (and Pearson) correlation with WordSim-353 and SimLex-999, one row per data set."""
    rows = []
    for name, file in SIMILARITY_SETS.items():
        result = word_similarity(W, vocab, load_word_pairs(gensim_test_data(file)))
        rows.append({"dataset": name, **result})
    return pd.DataFrame(rows)


def seed_examples(W: Tensor, vocab: Sequence[str], word_pieces: Callable[[str], list[int]], n_neighbours: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``b - a + c`` for the seed's examples: the expected word's rank and the nearest neighbours.

    A word that is several WordPiece tokens is the mean of its pieces' unit vectors. Input
    words that are single tokens are excluded from the answers (as in gensim).
    """
    unit = unit_rows(W.double())
    summary, neighbours = [], []
    for a, b, c, expected in SEED_EXAMPLES:
        ids = {w: word_pieces(w) for w in (a, b, c, expected)}
        vec = {w: unit[i].mean(dim=0) for w, i in ids.items()}
        query = vec[b] - vec[a] + vec[c]
        exclude = [i[0] for w, i in ids.items() if w != expected and len(i) == 1]
        label = f"{b} - {a} + {c}"
        near = nearest_words(W, vocab, query, n_neighbours, exclude=exclude).assign(query=label)
        summary.append({"query": label, "expected": expected,
                        "expected_pieces": " ".join(vocab[i] for i in ids[expected]),
                        "input_pieces": " / ".join(" ".join(vocab[i] for i in ids[w]) for w in (a, b, c)),
                        "rank_of_expected": rank_of(W, query, vec[expected], exclude=exclude),
                        "top_answer": near["word"].iloc[0]})
        neighbours.append(near)
    return pd.DataFrame(summary), pd.concat(neighbours, ignore_index=True)[["query", "rank", "word", "cosine"]]


def direction_samples(W: Tensor, vocab: Sequence[str], n_random: int, seed: int, candidates: Tensor) -> pd.DataFrame:
    """Observed and random-pair consistencies for every family (long format)."""
    return direction_consistency(W, vocab, FAMILIES, n_random=n_random, seed=seed,
                                 candidates=torch.nonzero(candidates).squeeze(1).numpy())


def family_points(W: Tensor, vocab: Sequence[str]) -> pd.DataFrame:
    """Each family's words in 2-D: x along the family's mean offset, y the top principal axis of the rest.

    Long format ``family, pair, role (first|second), word, x, y``.
    """
    from interp.directions import Vocabulary, word_indices

    lookup = Vocabulary(vocab, None)
    rows = []
    for family, pairs in FAMILIES.items():
        direction = direction_from_pairs(W, lookup, pairs)
        ids = torch.from_numpy(word_indices(lookup, [w for pair in pairs for w in pair]))
        X = unit_rows(W[ids].double())
        x = X @ direction
        residual = X - x[:, None] * direction[None, :]
        residual = residual - residual.mean(dim=0)
        _, _, V = torch.linalg.svd(residual, full_matrices=False)
        y = residual @ V[0]
        # a fixed orientation, independent of the SVD's sign: the word farthest along the axis on its
        # positive side (y is centred, so the sign of its sum was rounding noise, and flipped between runs)
        y = y * torch.sign(y[y.abs().argmax()])
        for k, word in enumerate(w for pair in pairs for w in pair):
            rows.append({"family": family, "pair": k // 2, "role": ("first", "second")[k % 2], "word": word,
                         "x": float(x[k]), "y": float(y[k])})
    return pd.DataFrame(rows)


def gender_projection(W: Tensor, vocab: Sequence[str]) -> pd.DataFrame:
    """Cosine of words with the gender direction (mean woman-minus-man offset over the gender pairs)."""
    return project_onto_direction(W, vocab, PROJECTED_WORDS, FAMILIES["gender"]).sort_values("projection", ignore_index=True)


def single_token_questions(questions: pd.DataFrame, vocab: Sequence[str]) -> np.ndarray:
    """Which questions have all four words as single vocabulary entries (case-insensitive)."""
    keys = {w.upper() for w in vocab}
    cols = [questions[c].str.upper().isin(keys).to_numpy() for c in ("a", "b", "c", "expected")]
    return np.logical_and.reduce(cols)
