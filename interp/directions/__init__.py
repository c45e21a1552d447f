"""Directions in embedding space: analogies, word similarity, direction consistency.

Example::

    from interp.directions import (evaluate_analogies, analogy_accuracy,
                                   load_analogy_questions)
"""

from interp.directions.analogies import METHODS, Vocabulary, analogy_accuracy, analogy_scores, evaluate_analogies, unit_rows
from interp.directions.consistency import (
    direction_consistency, direction_from_pairs, direction_tests, mean_pairwise_cosine, project_onto_direction,
    word_indices,
)
from interp.directions.data import gensim_test_data, load_analogy_questions, load_word_pairs
from interp.directions.neighbours import nearest_words, rank_of
from interp.directions.similarity import pair_similarities, word_similarity

__all__ = [
    "METHODS", "Vocabulary", "analogy_accuracy", "analogy_scores", "evaluate_analogies", "unit_rows",
    "gensim_test_data", "load_analogy_questions", "load_word_pairs",
    "direction_consistency", "direction_from_pairs", "direction_tests", "mean_pairwise_cosine",
    "project_onto_direction", "word_indices", "nearest_words", "rank_of", "pair_similarities", "word_similarity",
]
