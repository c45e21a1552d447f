"""interp.directions against gensim's KeyedVectors on small constructed vocabularies."""

import numpy as np
import pandas as pd
import pytest
import torch
from gensim.models import KeyedVectors

from interp.directions import (
    analogy_accuracy, direction_consistency, direction_tests, evaluate_analogies, load_analogy_questions,
    load_word_pairs, mean_pairwise_cosine, nearest_words, project_onto_direction, rank_of, word_similarity,
)

D_MODEL = 12


@pytest.fixture(scope="module")
def embedding():
    """60 base words with analogy structure, each followed later by an upper-case variant near it."""
    rng = np.random.default_rng(0)
    base = [f"w{i}" for i in range(60)]
    vectors = rng.normal(size=(60, D_MODEL)).astype(np.float32)
    offset = rng.normal(size=D_MODEL).astype(np.float32) * 2
    vectors[30:] = vectors[:30] + offset + 0.8 * rng.normal(size=(30, D_MODEL)).astype(np.float32)
    # case variants close to their word, so gensim's "skip case variants of the inputs" rule matters
    variants = [w.upper() for w in base[::2]]
    variant_vectors = vectors[::2] + 0.05 * rng.normal(size=(30, D_MODEL)).astype(np.float32)
    vocab = base + variants + ["W3"]  # "W3" also appears as a duplicate upper-case key after "w3"
    W = np.concatenate([vectors, variant_vectors, vectors[3:4] * -1])
    return torch.from_numpy(W), vocab


@pytest.fixture(scope="module")
def questions_file(tmp_path_factory):
    rng = np.random.default_rng(1)
    lines = [": offset"]
    for _ in range(80):
        i, j = rng.choice(30, size=2, replace=False)
        lines.append(f"w{i} w{i + 30} w{j} w{j + 30}")
    lines += [": mixed-case", "W1 w31 w2 W32", "w4 w34 w5 w35", "not a question", "w6 w36 unknown w37"]
    lines += [": empty", ": random"]
    for _ in range(60):
        lines.append(" ".join(f"w{k}" for k in rng.choice(60, size=4, replace=False)))
    path = tmp_path_factory.mktemp("analogies") / "questions.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _gensim(W, vocab):
    kv = KeyedVectors(W.shape[1])
    kv.add_vectors(vocab, W.numpy())
    return kv


@pytest.mark.parametrize("case_insensitive, restrict_vocab, dummy4unknown", [
    (True, 300000, False), (False, 300000, False), (True, 50, False), (True, 300000, True),
])
def test_3cosadd_matches_gensim_question_by_question(embedding, questions_file, case_insensitive, restrict_vocab, dummy4unknown):
    W, vocab = embedding
    _, sections = _gensim(W, vocab).evaluate_word_analogies(
        questions_file, restrict_vocab=restrict_vocab, case_insensitive=case_insensitive, dummy4unknown=dummy4unknown)
    ours = evaluate_analogies(W, vocab, load_analogy_questions(questions_file), restrict_vocab=restrict_vocab,
                              case_insensitive=case_insensitive, dummy4unknown=dummy4unknown)
    accuracy = analogy_accuracy(ours).set_index("section")
    assert list(accuracy.index) == [s["section"] for s in sections[:-1]] + ["total"], "sections out of gensim's order"
    for section in sections:
        name = "total" if section["section"] == "Total accuracy" else section["section"]
        assert accuracy.loc[name, "n_correct"] == len(section["correct"]), f"correct count differs in {name}"
        assert accuracy.loc[name, "n_counted"] == len(section["correct"]) + len(section["incorrect"]), f"counted differs in {name}"
    key = (lambda w: w.upper()) if case_insensitive else (lambda w: w)
    gensim_correct = {tuple(q) for s in sections[:-1] for q in s["correct"]}
    ours_correct = {tuple(key(w) for w in row) for row in ours.loc[ours["correct"], ["a", "b", "c", "expected"]].itertuples(index=False)}
    assert ours_correct == gensim_correct
    assert 0 < len(gensim_correct) < len(ours), "the fixture should produce both right and wrong answers"


def test_3cosmul_matches_gensim_most_similar_cosmul(embedding, questions_file):
    W, vocab = embedding
    kv = _gensim(W, vocab)
    questions = load_analogy_questions(questions_file).query("section == 'offset'").head(25)
    ours = evaluate_analogies(W, vocab, questions, method="3cosmul", case_insensitive=False, epsilon=1e-6)
    for row in ours.itertuples():
        expected = kv.most_similar_cosmul(positive=[row.b, row.c], negative=[row.a], topn=1)[0][0]
        assert row.predicted == expected, f"{row.a}:{row.b}::{row.c}:? 3CosMul disagrees with gensim"


def test_3cosmul_and_3cosadd_solve_an_exact_parallelogram():
    vocab = ["man", "woman", "king", "queen", "apple", "pear"]
    W = torch.tensor([[1.0, 0, 0.2], [1.0, 1, 0.2], [0.1, 0, 1], [0.1, 1, 1], [-1.0, 0.3, -1], [-1.0, -0.5, 0.4]])
    questions = pd.DataFrame([("family", "man", "woman", "king", "queen")], columns=["section", "a", "b", "c", "expected"])
    for method in ("3cosadd", "3cosmul"):
        assert bool(evaluate_analogies(W, vocab, questions, method=method)["correct"].iloc[0]), method


def test_word_similarity_matches_gensim(embedding, tmp_path):
    W, vocab = embedding
    rng = np.random.default_rng(2)
    lines = ["# comment", "w1\tw2\t3.5", "bad line", "W4\tw5\t1.0", "w6\tmissing\t2.0"]
    lines += [f"w{i}\tw{j}\t{rng.uniform(0, 10):.2f}" for i, j in rng.integers(0, 60, size=(40, 2))]
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n")
    for dummy4unknown in (False, True):
        pearson, spearman, oov = _gensim(W, vocab).evaluate_word_pairs(path, dummy4unknown=dummy4unknown)
        ours = word_similarity(W, vocab, load_word_pairs(path), dummy4unknown=dummy4unknown)
        assert ours["spearman"] == pytest.approx(spearman.statistic, abs=1e-6)
        assert ours["pearson"] == pytest.approx(pearson.statistic, abs=1e-6)
        assert ours["oov_ratio"] == pytest.approx(oov)


def test_mean_pairwise_cosine_known_answer():
    differences = torch.tensor([[[2.0, 0], [1.0, 0], [0, 3.0]]])  # cosines 1, 0, 0 over the three pairs
    assert mean_pairwise_cosine(differences).item() == pytest.approx(1 / 3)


def test_planted_direction_is_significant_and_random_pairs_are_not():
    rng = np.random.default_rng(3)
    vocab = [f"w{i}" for i in range(400)]
    W = torch.from_numpy(rng.normal(size=(400, 16)))
    W[100:108] = W[:8] + 4 * torch.from_numpy(rng.normal(size=16))
    families = {"planted": [(f"w{i}", f"w{i + 100}") for i in range(8)],
                "random": [(f"w{i}", f"w{i + 200}") for i in range(8)]}
    tests = direction_tests(direction_consistency(W, vocab, families, n_random=200, seed=0)).set_index("direction")
    assert tests.loc["planted", "p_value"] == pytest.approx(1 / 201), "a planted offset should beat every random set"
    assert tests.loc["planted", "consistency"] > 0.5
    assert tests.loc["random", "p_value"] > 0.05, "unrelated pairs should look like the random baseline"
    assert abs(tests.loc["random", "random_mean"]) < 0.05


def test_neighbours_rank_and_projection_known_answers():
    vocab = ["king", "queen", "man", "woman", "apple"]
    W = torch.tensor([[1.0, 1], [1, -1], [0, 1], [0, -1], [-1, 0]])
    query = W[3] - W[2] + W[0]
    assert nearest_words(W, vocab, query, topn=2, exclude=[0, 2, 3])["word"].tolist() == ["queen", "apple"]
    assert rank_of(W, query, W[1], exclude=[0, 2, 3]) == 1
    assert rank_of(W, query, W[4], exclude=[0, 2, 3]) == 2
    projection = project_onto_direction(W, vocab, ["king", "woman"], [("man", "woman")])
    np.testing.assert_allclose(projection["projection"], [-2 ** -0.5, 1.0])


def test_bad_input_is_rejected_with_a_hint(embedding):
    W, vocab = embedding
    questions = pd.DataFrame([("s", "w1", "w2", "w3", "w4")], columns=["section", "a", "b", "c", "expected"])
    with pytest.raises(ValueError, match="method"):
        evaluate_analogies(W, vocab, questions, method="3cosdiv")
    with pytest.raises(ValueError, match="one row per vocab"):
        evaluate_analogies(W[:-1], vocab, questions)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        project_onto_direction(W, vocab, ["w1"], [("w1", "nope")])
