"""The word-level test sets gensim bundles: Google analogies, WordSim-353, SimLex-999.

Example::

    from interp.directions.data import gensim_test_data, load_analogy_questions

    questions = load_analogy_questions()          # questions-words.txt, 19,544 rows
    questions.groupby("section").size()           # 14 sections
    gensim_test_data("simlex999.txt")             # Path inside the installed gensim
"""

from pathlib import Path

import pandas as pd

TEST_SETS = ("questions-words.txt", "wordsim353.tsv", "simlex999.txt")


def gensim_test_data(name: str) -> Path:
    """Path of a file in ``gensim/test/test_data/``, located through the installed package."""
    try:
        import gensim
    except ModuleNotFoundError:
        raise ModuleNotFoundError("the word test sets ship with gensim; install it with `pip install gensim`") from None
    path = Path(gensim.__file__).parent / "test" / "test_data" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; gensim's bundled test sets include {', '.join(TEST_SETS)}")
    return path


def load_analogy_questions(path: str | Path | None = None) -> pd.DataFrame:
    """Analogy questions ``a : b :: c : expected`` with their section, in file order.

    Parses like ``KeyedVectors.evaluate_word_analogies``: a line starting with ``": "``
    opens a section, a line that does not split into exactly four words is skipped.
    Sections with no valid line are kept in ``df.attrs["sections"]`` (gensim lists them).
    """
    path = Path(path) if path is not None else gensim_test_data("questions-words.txt")
    rows, sections, section = [], [], None
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if line.startswith(": "):
            section = line.lstrip(": ").strip()
            sections.append(section)
            continue
        if section is None:
            raise ValueError(f"{path} line {line_no + 1}: a ': section name' line must come before the first question")
        words = line.split()
        if len(words) == 4:
            rows.append((section, *words))
    df = pd.DataFrame(rows, columns=["section", "a", "b", "c", "expected"])
    df.attrs["sections"] = sections
    return df


def load_word_pairs(path: str | Path, delimiter: str = "\t") -> pd.DataFrame:
    """Word pairs with a human similarity score (``word_1, word_2, gold``); ``#`` lines are comments.

    Parses like ``KeyedVectors.evaluate_word_pairs``: lines that are not exactly two
    words and a number are skipped.
    """
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines(keepends=True):
        if not line or line.startswith("#"):
            continue
        parts = line.split(delimiter)
        if len(parts) != 3:
            continue
        try:
            gold = float(parts[2])
        except ValueError:
            continue
        rows.append((parts[0], parts[1], gold))
    return pd.DataFrame(rows, columns=["word_1", "word_2", "gold"])
