"""Smoke test: the context analysis runs its quick preset and writes a complete report."""

import json

import pytest

from analyses import context
from analyses.context.sentences import SENSES


def test_every_sense_has_at_least_20_sentences():
    assert {"mole", "bank", "bat"} <= set(SENSES)
    assert set(SENSES["mole"]) == {"animal", "chemistry", "skin"}
    for word, senses in SENSES.items():
        for sense, sentences in senses.items():
            assert len(sentences) >= 20, f"{word}/{sense} has only {len(sentences)} sentences"
            assert len(set(sentences)) == len(sentences), f"{word}/{sense} repeats a sentence"


def test_quick_report_is_complete(tmp_path):
    saved = context.run(context.Config.quick()).save(tmp_path)
    for name in ("report.md", "report.html", "results.json", "sense_probes.csv", "sense_cosines.csv",
                 "top_context_tokens.csv", "digit_probes.csv"):
        assert (saved / name).is_file(), f"{name} missing from the context report"
    figures = {p.name for p in (saved / "figures").iterdir()}
    assert {"sense_probes.png", "sense_cosines.png", "context_share.png", "digit_probes.png"} <= figures
    headline = json.loads((saved / "results.json").read_text())["headline"]
    for word in ("mole", "bank", "bat"):
        assert 0 <= headline[f"{word}_probe_last"] <= 1
    assert headline["digit_probe_hidden_1"] > 0.5, "the digit network's hidden layer should encode the digit"


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="words"):
        context.Config(words=("cat",))
    with pytest.raises(ValueError, match="per_sense"):
        context.Config(per_sense=3, cv=5)
