"""Directions in embedding space: analogies, word similarity, direction consistency.

Example::

    from interp.directions import (evaluate_analogies, analogy_accuracy,
                                   load_analogy_questions)
"""

from interp.directions.analogies import Vocabulary, analogy_accuracy, analogy_scores, evaluate_analogies, unit_rows
from interp.directions.data import gensim_test_data, load_analogy_questions, load_word_pairs

__all__ = [
    "Vocabulary", "analogy_accuracy", "analogy_scores", "evaluate_analogies", "unit_rows",
    "gensim_test_data", "load_analogy_questions", "load_word_pairs",
]
