"""Smoke test: the directions analysis runs its quick preset and writes a complete report."""

import json

import pytest

from analyses import directions


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    return directions.run(directions.Config.quick()).save(out)


def test_report_files_exist(saved):
    for name in ("report.md", "report.html", "results.json", "analogy_accuracy.csv", "seed_examples.csv",
                 "direction_tests.csv", "word_similarity.csv"):
        assert (saved / name).is_file(), f"{name} missing from the directions report"
    figures = {p.name for p in (saved / "figures").iterdir()}
    assert {"analogy_accuracy.png", "direction_tests.png", "direction_families.png", "gender_projection.png"} <= figures


def test_headlines_agree_with_gensim_and_the_tables(saved):
    results = json.loads((saved / "results.json").read_text())
    headlines = results["headline"]
    assert headlines["gensim_agreement"] is True, "batched analogies disagree with gensim on the check subset"
    assert 0 <= headlines["analogy_accuracy_3cosadd"] <= 1
    assert headlines["queen_rank"] >= 1


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="methods"):
        directions.Config(methods=("3cosdiv",))


def test_gensim_agreement_ignores_sections_without_questions():
    import pandas as pd

    from analyses.directions import gensim_claim

    def table(counted_b, correct_b):
        return pd.DataFrame({"section": ["a", "b", "empty"], "gensim_correct": [3, correct_b, 0],
                             "ours_correct": [3, 2, 0], "gensim_counted": [5, counted_b, 0], "ours_counted": [5, 4, 0]})

    claim, text = gensim_claim(table(4, 2))
    assert claim.holds and "all 2 sections that have questions" in text and "1 section(s) without" in text, text
    claim, text = gensim_claim(table(4, 1))
    assert not claim.holds and "disagree in 1 of 2" in text and text.endswith(": b"), text
    nothing = pd.DataFrame({"section": ["x"], "gensim_correct": [0], "ours_correct": [0], "gensim_counted": [0],
                            "ours_counted": [0]})
    assert not gensim_claim(nothing)[0].holds, "no questions at all is not agreement"
