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


def test_family_points_have_an_orientation_that_does_not_hang_on_rounding():
    """The 2-D family plot's y axis is an SVD axis, whose sign is arbitrary; it is fixed by the word
    farthest along it. (It was fixed by the sign of the centred y's sum, which is rounding noise, so
    the direction_families figure flipped between runs of the same code.)"""
    import torch

    from analyses.directions.measures import FAMILIES, family_points
    from models.pretrained import minilm_embeddings

    W_E, vocab = minilm_embeddings()
    points = family_points(W_E, vocab)
    assert set(points["family"]) == set(FAMILIES)
    for family, rows in points.groupby("family"):
        far = rows.loc[rows["y"].abs().idxmax()]
        assert far["y"] > 0, f"{family}: the farthest word {far['word']!r} lies at y={far['y']:.3g}"
        assert abs(rows["y"].sum()) < 1e-9, "y is centred: its sum says nothing about the orientation"
    again = family_points(-W_E, vocab)  # flipping every vector flips the SVD's axes: the plot must not flip
    assert (again["y"] - points["y"]).abs().max() < 1e-9
    for seed in range(5):  # nor on the last bits of the embeddings
        noise = torch.randn(W_E.shape, generator=torch.Generator().manual_seed(seed), dtype=W_E.dtype)
        nudged = family_points(W_E + 1e-6 * W_E.abs().max() * noise, vocab)
        assert (nudged["y"] - points["y"]).abs().max() < 1e-3, f"seed {seed}: the plot flipped"
