"""Word analogies ``a : b :: c : ?`` over any embedding matrix, batched, gensim-compatible.

Two scoring rules (Levy and Goldberg 2014, "Linguistic Regularities in Sparse and
Explicit Word Representations"): 3CosAdd, ``argmax_d cos(d, b - a + c)`` (Mikolov et al.
2013; eq. 3 there), and 3CosMul, ``argmax_d cos'(d, b) cos'(d, c) / (cos'(d, a) + eps)``
with cosines shifted to [0, 1] (eq. 4 and footnote 7).

Which questions count and which answers are allowed follow
``gensim.models.KeyedVectors.evaluate_word_analogies`` exactly, so the accuracies agree
section by section: only the first ``restrict_vocab`` words are candidates; with
``case_insensitive`` words are compared upper-cased and a word's vector is that of its
first case variant; a question with a word outside that vocabulary is skipped (or
counted wrong with ``dummy4unknown``); the three input words are excluded, and among the
top five remaining candidates the first one that is not a case variant of an input is
the answer.

Example::

    import torch
    from interp.directions import evaluate_analogies, analogy_accuracy, load_analogy_questions

    W_E, vocab = torch.randn(1000, 64), [f"w{i}" for i in range(1000)]
    questions = load_analogy_questions()
    per_question = evaluate_analogies(W_E, vocab, questions, method="3cosadd")
    analogy_accuracy(per_question)    # one row per section plus "total"
"""

import functools
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from einops import einsum
from jaxtyping import Float
from torch import Tensor

METHODS = ("3cosadd", "3cosmul")
TOPN = 5  # gensim asks most_similar for 5 candidates and takes the first allowed one


class Vocabulary:
    """gensim's ``ok_vocab``: upper-cased (or exact) word -> index of its first occurrence."""

    def __init__(self, words: Sequence[str], restrict_vocab: int | None = 300000, case_insensitive: bool = True):
        self.words = list(words)
        self.n_candidates = len(self.words) if restrict_vocab is None else min(restrict_vocab, len(self.words))
        self.case_insensitive = case_insensitive
        ok = self.words[: self.n_candidates]
        # reversed so that the first occurrence of a key wins, as in gensim
        self.index = {self.key(w): i for i, w in reversed(list(enumerate(ok)))}

    @functools.cached_property
    def canonical(self) -> Tensor:
        """canonical[i]: index of the first word sharing word i's key; equal canonicals = same word."""
        ok = self.words[: self.n_candidates]
        return torch.tensor([self.index[self.key(w)] for w in ok], dtype=torch.long)

    def key(self, word: str) -> str:
        return word.upper() if self.case_insensitive else word

    def lookup(self, words: Sequence[str]) -> np.ndarray:
        """Index of each word, -1 where it is outside the vocabulary."""
        return np.array([self.index.get(self.key(w), -1) for w in words], dtype=np.int64)


def unit_rows(W: Float[Tensor, "d_vocab d_model"]) -> Float[Tensor, "d_vocab d_model"]:
    """Rows scaled to unit length (gensim's ``get_vector(norm=True)``)."""
    return W / W.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(W.dtype).tiny)


def analogy_scores(
    unit: Float[Tensor, "d_vocab d_model"],
    a: Tensor,
    b: Tensor,
    c: Tensor,
    method: str = "3cosadd",
    epsilon: float = 1e-3,
) -> Float[Tensor, "batch d_vocab"]:
    """Score of every vocabulary row as the answer ``d`` to ``a : b :: c : d`` (higher is better).

    ``unit`` holds unit-length rows; ``a, b, c`` are index tensors of shape (batch,).
    3CosAdd scores are cosines with ``b - a + c``; 3CosMul uses ``epsilon`` (Levy and
    Goldberg use 0.001; gensim's ``most_similar_cosmul`` uses 1e-6).
    """
    if method == "3cosadd":
        query = unit[b] + unit[c] - unit[a]
        query = query / query.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(unit.dtype).tiny)
        return einsum(query, unit, "batch d_model, d_vocab d_model -> batch d_vocab")
    if method == "3cosmul":
        abc = torch.stack([unit[a], unit[b], unit[c]])
        cos = (1 + einsum(abc, unit, "word batch d_model, d_vocab d_model -> word batch d_vocab")) / 2
        return cos[1] * cos[2] / (cos[0] + epsilon)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def evaluate_analogies(
    W: Float[Tensor, "d_vocab d_model"],
    vocab: Sequence[str],
    questions: pd.DataFrame,
    method: str = "3cosadd",
    restrict_vocab: int | None = 300000,
    case_insensitive: bool = True,
    dummy4unknown: bool = False,
    epsilon: float = 1e-3,
    batch_size: int = 512,
) -> pd.DataFrame:
    """Answer every question in batches; one row per question.

    Columns: ``section, a, b, c, expected, method, in_vocab, predicted, correct``.
    ``predicted`` is the vocabulary entry chosen (None where a word is out of vocabulary);
    ``counted`` says whether the question enters the accuracy (in vocabulary, or any
    question with ``dummy4unknown``).
    """
    if W.ndim != 2 or W.shape[0] != len(vocab):
        raise ValueError(f"W must be (d_vocab, d_model) with one row per vocab entry; got {tuple(W.shape)} and {len(vocab)} words")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    missing = {"section", "a", "b", "c", "expected"} - set(questions.columns)
    if missing:
        raise ValueError(f"questions lacks columns {sorted(missing)}; use load_analogy_questions()")
    words = Vocabulary(vocab, restrict_vocab, case_insensitive)
    if words.n_candidates < 4:
        raise ValueError(f"need at least 4 candidate words, got {words.n_candidates}; raise restrict_vocab")
    unit = unit_rows(W[: words.n_candidates])
    ids = np.stack([words.lookup(questions[col].tolist()) for col in ("a", "b", "c", "expected")], axis=1)
    in_vocab = (ids >= 0).all(axis=1)
    predicted = np.full(len(questions), -1, dtype=np.int64)
    todo = torch.from_numpy(ids[in_vocab])
    answers = []
    with torch.no_grad():
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            answers.append(_answer(unit, words.canonical, chunk, method, epsilon))
    if answers:
        predicted[in_vocab] = torch.cat(answers).numpy()
    canonical = words.canonical.numpy()
    correct = np.zeros(len(questions), dtype=bool)
    correct[in_vocab] = canonical[predicted[in_vocab]] == ids[in_vocab, 3]
    out = questions[["section", "a", "b", "c", "expected"]].reset_index(drop=True).copy()
    out["method"] = method
    out["in_vocab"] = in_vocab
    out["counted"] = in_vocab | dummy4unknown
    out["predicted"] = [words.words[i] if i >= 0 else None for i in predicted]
    out["correct"] = correct
    out.attrs["sections"] = questions.attrs.get("sections", list(dict.fromkeys(questions["section"])))
    return out


def _answer(unit: Tensor, canonical: Tensor, chunk: Tensor, method: str, epsilon: float) -> Tensor:
    """Index of the answer for each (a, b, c, expected) row of ``chunk``, gensim's selection rule."""
    scores = analogy_scores(unit, chunk[:, 0], chunk[:, 1], chunk[:, 2], method, epsilon)
    rows = torch.arange(len(chunk)).unsqueeze(1)
    scores[rows, chunk[:, :3]] = -torch.inf  # most_similar never returns its input indices
    top_scores, top = scores.topk(min(TOPN, scores.shape[-1]), dim=-1)  # (batch, TOPN), best first
    present = torch.isfinite(top_scores)  # a tiny vocabulary may have fewer than five non-inputs
    # then the first candidate that is not a case variant of an input word
    allowed = (canonical[top].unsqueeze(-1) != chunk[:, None, :3]).all(dim=-1) & present
    # if none is allowed gensim keeps the last candidate it saw
    first = torch.where(allowed.any(dim=-1), allowed.int().argmax(dim=-1), present.sum(dim=-1) - 1)
    return top.gather(1, first.unsqueeze(1)).squeeze(1)


def analogy_accuracy(per_question: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per section (file order) and ``total``: ``method, section, n_questions, n_counted, n_correct, accuracy``.

    ``accuracy`` is NaN for a section with no counted question (gensim logs 0 there).
    """
    rows = []
    sections = per_question.attrs.get("sections") or list(dict.fromkeys(per_question["section"]))
    for method, df in per_question.groupby("method", sort=False):
        for section in [*sections, "total"]:
            part = df if section == "total" else df[df["section"] == section]
            n_counted = int(part["counted"].sum())
            n_correct = int((part["correct"] & part["counted"]).sum())
            accuracy = n_correct / n_counted if n_counted else float("nan")
            rows.append((method, section, len(part), n_counted, n_correct, accuracy))
    return pd.DataFrame(rows, columns=["method", "section", "n_questions", "n_counted", "n_correct", "accuracy"])
