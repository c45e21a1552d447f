"""Do directions in a real model's token embeddings carry meaning (woman - man + king = queen)?

The seed (part 6) claims that differences between embeddings encode concepts. This
analysis tests the claim on the input token embeddings ``W_E`` of all-MiniLM-L6-v2 (a
real pretrained BERT encoder, 30,522 WordPiece tokens x 384 dimensions) with the field's
standard instruments: the Google analogy set (3CosAdd and 3CosMul, scored exactly as
gensim's ``evaluate_word_analogies``), word-similarity correlations on WordSim-353 and
SimLex-999, the seed's own examples, and consistency tests of hypothesised directions
against random word pairs.

Example::

    from analyses import directions
    report = directions.run(directions.Config.quick())
    report.save("reports")
"""

from dataclasses import asdict, dataclass

import pandas as pd
import torch

from analyses.directions import measures, plots
from interp.directions import METHODS, analogy_accuracy, direction_tests, load_analogy_questions
from interp.claims import Check, Claim
from interp.report import Report


@dataclass(frozen=True)
class Config:
    seed: int = 0
    methods: tuple[str, ...] = ("3cosadd", "3cosmul")
    questions_per_section: int | None = None  # None: the whole Google analogy set
    gensim_check_per_section: int = 25  # questions per section re-scored by gensim itself (0: skip)
    n_random: int = 1000  # random pair sets in each direction's baseline
    n_neighbours: int = 10

    def __post_init__(self) -> None:
        unknown = set(self.methods) - set(METHODS)
        if not self.methods or unknown:
            raise ValueError(f"methods must be a non-empty subset of {METHODS}, got {self.methods}")
        if self.questions_per_section is not None and self.questions_per_section < 1:
            raise ValueError("questions_per_section must be at least 1, or None for all questions")
        if self.gensim_check_per_section < 0:
            raise ValueError("gensim_check_per_section must be 0 (skip) or more")
        if self.n_random < 10:
            raise ValueError(f"n_random must be at least 10 for a meaningful p-value, got {self.n_random}")
        if self.n_neighbours < 1:
            raise ValueError("n_neighbours must be at least 1")

    @classmethod
    def quick(cls) -> "Config":
        return cls(questions_per_section=40, gensim_check_per_section=10, n_random=200, n_neighbours=5)


def run(config: Config) -> Report:
    from models.pretrained import minilm_embeddings, minilm_tokenizer

    torch.manual_seed(config.seed)
    W_E, vocab = minilm_embeddings()
    tokenizer = minilm_tokenizer()
    report = Report("directions", "Meaningful directions in MiniLM's token embeddings", config=asdict(config),
                    summary=f"Subject: the input token embeddings of all-MiniLM-L6-v2 ({W_E.shape[0]:,} WordPiece "
                            f"tokens x {W_E.shape[1]} dimensions, lower-case), loaded offline through TransformerLens. "
                            "Every vocabulary entry is a candidate answer, as in gensim.")
    _analogy_sections(report, config, W_E, vocab)
    _similarity_section(report, W_E, vocab)
    _seed_section(report, config, W_E, vocab, lambda w: tokenizer.convert_tokens_to_ids(tokenizer.tokenize(w)))
    _direction_sections(report, config, W_E, vocab)
    return report


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _analogy_sections(report: Report, config: Config, W_E, vocab) -> None:
    all_questions = load_analogy_questions()
    questions = measures.subsample_questions(all_questions, config.questions_per_section)
    single = measures.single_token_questions(questions, vocab)
    per_question = measures.analogies(W_E, vocab, questions, config.methods)
    accuracy = analogy_accuracy(per_question)
    total = accuracy[accuracy["section"] == "total"].set_index("method")
    scope = ("all of" if config.questions_per_section is None else f"the first {config.questions_per_section} per section of")
    lines = [f"Of {len(questions):,} questions ({scope} the {len(all_questions):,} in the Google set), "
             f"{int(single.sum()):,} ({_pct(single.mean())}) have all four words as single tokens and are scored; "
             "the others are skipped, as gensim skips out-of-vocabulary questions."]
    for method, row in total.iterrows():
        lines.append(f"- **{method}**: {row.n_correct:,} of {row.n_counted:,} correct, accuracy **{_pct(row.accuracy)}**.")
        report.headline(f"analogy_accuracy_{method}", round(float(row.accuracy), 4),
                        f"{method} accuracy over single-token Google analogy questions")
    first = accuracy[(accuracy["method"] == config.methods[0]) & (accuracy["section"] != "total")].dropna(subset=["accuracy"])
    best, worst = first.loc[first["accuracy"].idxmax()], first.loc[first["accuracy"].idxmin()]
    lines.append(f"\nWith {config.methods[0]} the easiest section is *{best.section}* ({_pct(best.accuracy)} of "
                 f"{best.n_counted}) and the hardest *{worst.section}* ({_pct(worst.accuracy)} of {worst.n_counted}).")
    report.headline("analogy_questions_scored", int(single.sum()), "Google analogy questions whose four words are single tokens")
    section = report.section(
        "Do analogies a : b :: c : ? work on the token embeddings?",
        "For each question the answer is the vocabulary entry closest to b - a + c (3CosAdd: cosine with the sum of "
        "unit vectors; 3CosMul: Levy and Goldberg's multiplicative score, epsilon 0.001), excluding a, b and c "
        "themselves; it is correct if it is the expected word. Accuracy is the share of scored questions answered "
        "correctly.\n\n" + "\n".join(lines))
    section.figure(plots.plot_section_accuracy(accuracy), "analogy_accuracy",
                   "Analogy accuracy per section of the Google set and per method; n is the number of scored "
                   "(single-token) questions in the section.")
    section.table(accuracy, "analogy_accuracy", "Accuracy per section; n_counted questions were scored.")
    wrong = per_question[per_question["counted"] & ~per_question["correct"]]
    section.table(wrong.head(200), "analogy_mistakes", "Some questions answered wrongly, with the predicted token.",
                  max_rows=15)
    if config.gensim_check_per_section:
        _gensim_section(report, config, W_E, vocab, all_questions)


def gensim_claim(agreement: pd.DataFrame) -> tuple[Claim, str]:
    """Do gensim and ours agree? Only sections that have scored questions count (an empty one agrees trivially)."""
    asked = agreement[(agreement["gensim_counted"] > 0) | (agreement["ours_counted"] > 0)]
    same = (asked["gensim_correct"] == asked["ours_correct"]) & (asked["gensim_counted"] == asked["ours_counted"])
    empty = len(agreement) - len(asked)
    claim = Claim("gensim agrees in every section with questions", "same counts as gensim", (
        Check("sections with questions", len(asked), ">=", 1, fmt="d"),
        Check("of them, sections whose correct or scored counts differ", int((~same).sum()), "<=", 0, fmt="d")))
    skipped = f" ({empty} section(s) without scored questions left out)" if empty else ""
    verdict = (f"agree in all {len(asked)} sections that have questions{skipped}" if claim.holds else
               f"disagree in {int((~same).sum())} of {len(asked)} section(s){skipped}: "
               f"{', '.join(asked.loc[~same, 'section'])}")
    return claim, verdict


def _gensim_section(report: Report, config: Config, W_E, vocab, all_questions) -> None:
    subset = measures.subsample_questions(all_questions, config.gensim_check_per_section)
    agreement = measures.gensim_agreement(W_E, vocab, subset)
    claim, verdict = gensim_claim(agreement)
    report.headline("gensim_agreement", claim.holds, "3CosAdd correct/scored counts equal gensim's in every section "
                    "that has questions")
    section = report.section(
        "Does the batched evaluation agree with gensim?",
        f"The first {config.gensim_check_per_section} questions of each section were scored again by gensim's own "
        "`KeyedVectors.evaluate_word_analogies` on the same vectors (the MiniLM embeddings loaded into a "
        f"`KeyedVectors`, default restrict_vocab and case_insensitive). The two {verdict}. "
        "(The test suite and `benchmarks/bench_analogy.py` compare the full set.)\n\n" + claim.markdown())
    section.table(agreement, "gensim_agreement", "Correct and scored 3CosAdd questions per section, gensim vs ours.")


def _similarity_section(report: Report, W_E, vocab) -> None:
    table = measures.similarities(W_E, vocab)
    lines = []
    for row in table.itertuples():
        lines.append(f"- **{row.dataset}**: Spearman {row.spearman:.3f} over {row.n_used} of {row.n_pairs} pairs "
                     f"({row.oov_ratio:.1f}% skipped as not single tokens).")
        report.headline(f"{row.dataset.lower().replace('-', '')}_spearman", round(row.spearman, 4),
                        f"Spearman correlation with {row.dataset} human similarity")
    section = report.section(
        "Does embedding similarity track human similarity judgements?",
        "Cosine similarity of the two words' token embeddings against the human scores of WordSim-353 "
        "(relatedness) and SimLex-999 (similarity proper), as Spearman rank correlation; pairs with a word "
        "that is not a single token are skipped, as in gensim's `evaluate_word_pairs`.\n\n" + "\n".join(lines))
    section.table(table, "word_similarity", "Correlation with human judgements; oov_ratio in percent.")


def _seed_section(report: Report, config: Config, W_E, vocab, word_pieces) -> None:
    summary, neighbours = measures.seed_examples(W_E, vocab, word_pieces, config.n_neighbours)
    lines = []
    for row in summary.itertuples():
        pieces = "" if " " not in row.expected_pieces and " " not in row.input_pieces.replace(" / ", "/") else (
            f" (WordPiece splits: inputs {row.input_pieces}; expected {row.expected_pieces}; a split word is the "
            "mean of its pieces' unit vectors)")
        lines.append(f"- **{row.query}**: nearest token *{row.top_answer}*; '{row.expected}' ranks "
                     f"**{row.rank_of_expected}**{pieces}.")
    queen = summary.iloc[0]
    report.headline("queen_rank", int(queen.rank_of_expected), "rank of 'queen' among answers to king - man + woman")
    section = report.section(
        "The seed's examples",
        "Each query b - a + c is built from unit vectors; its nearest vocabulary entries (inputs excluded) and the "
        "rank of the word the seed expects (1 = nearest) are:\n\n" + "\n".join(lines))
    section.table(summary, "seed_examples", "Rank of the expected word among all vocabulary entries.")
    section.table(neighbours, "seed_neighbours", "Nearest tokens to each query by cosine.", max_rows=3 * config.n_neighbours)


def _direction_sections(report: Report, config: Config, W_E, vocab) -> None:
    candidates = measures.whole_word_mask(vocab)
    samples = measures.direction_samples(W_E, vocab, config.n_random, config.seed, candidates)
    tests = direction_tests(samples)
    lines = []
    for row in tests.itertuples():
        z = (row.consistency - row.random_mean) / row.random_std
        lines.append(f"- **{row.direction}** ({row.n_pairs} pairs): consistency {row.consistency:.3f} vs "
                     f"{row.random_mean:.3f} ± {row.random_std:.3f} for random pairs ({z:.1f} sd above), "
                     f"p = {row.p_value:.4f}.")
        report.headline(f"{row.direction}_consistency", round(row.consistency, 4),
                        f"mean pairwise cosine of {row.direction} offsets")
        report.headline(f"{row.direction}_p_value", round(row.p_value, 5), f"permutation p-value of the {row.direction} direction")
    section = report.section(
        "Do word pairs share a direction?",
        "For each family of pairs (man/woman, king/queen, ...) the offsets u(second) - u(first) of unit vectors "
        "should point the same way if the family is a direction. Consistency is their mean pairwise cosine; the "
        f"baseline draws {config.n_random} sets of as many random pairs of whole-word tokens (alphabetic, 3+ "
        "letters); p is the share of random sets at least as consistent as the family, (1 + k) / (1 + n), so "
        f"the smallest p this run can give is {1 / (1 + config.n_random):.4f}.\n\n"
        + "\n".join(lines))
    section.figure(plots.plot_direction_tests(samples), "direction_tests",
                   "Consistency of each family's offsets (red) against random word pairs (grey histogram).")
    section.table(tests, "direction_tests", "Consistency, random-pair baseline and permutation p-value.")
    points = measures.family_points(W_E, vocab)
    section.figure(plots.plot_family_points(points), "direction_families",
                   "Each family's words projected onto its mean offset (x) and the top principal axis of what "
                   "remains (y); arrows go from the first to the second word of each pair.")
    projection = measures.gender_projection(W_E, vocab)
    most_f, most_m = projection.iloc[-1], projection.iloc[0]
    section = report.section(
        "Where do other words fall along the gender direction?",
        "Cosine of each word's unit vector with the mean woman-minus-man offset of the gender pairs. The most "
        f"'female' word here is *{most_f.word}* ({most_f.projection:+.3f}), the most 'male' *{most_m.word}* "
        f"({most_m.projection:+.3f}).")
    section.figure(plots.plot_projection(projection), "gender_projection",
                   "Cosine with the woman - man direction; red positive (towards 'woman'), blue negative.")
    section.table(projection, "gender_projection", "Projection of words onto the gender direction.")
