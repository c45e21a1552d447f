"""A second run on a warm zoo cache trains nothing and reports the same numbers.

The digit networks, the diffusion models, the CLIP and the toy models of superposition with
their sparse autoencoders are zoo subjects: the first run
trains them (the digit networks as one sweep) and caches their weights with the history
and timings recorded while training; the second reads all of it back.
"""

import json

import pytest
from typer.testing import CliRunner

from analyses.cli import app

runner = CliRunner()

SMALL = {  # quick presets, shrunk further: the point is the cache, not the results
    "digits": ["--set", "n_seeds=1", "--set", "sigmoid_epochs=2", "--set", "relu_epochs=2", "--set", "n_noise=50"],
    "diffusion": ["--set", "digits_train_steps=20", "--set", "shapes_train_steps=20", "--set", "early_steps=10",
                  "--set", "clip_train_steps=20", "--set", "n_shapes=300", "--set", "n_classifier=200"],
    "superposition": ["--set", "intro_steps=100", "--set", "dim_steps=100", "--set", "phase_steps=100",
                      "--set", "sae_steps=100", "--set", "sae_samples=1000"],
}


def run_twice(name: str, tmp_path) -> tuple[dict, dict, str]:
    outcomes = []
    for attempt in ("first", "second"):
        out = tmp_path / attempt
        result = runner.invoke(app, ["run", name, "--quick", "--out", str(out), "--backend", "serial", *SMALL[name]])
        assert result.exit_code == 0, result.output
        outcomes.append(json.loads((out / name / "results.json").read_text()))
    return outcomes[0], outcomes[1], (tmp_path / "second" / name / "report.md").read_text()


@pytest.mark.parametrize("name, subjects", [("digits", {"digit_network"}),
                                            ("diffusion", {"digits_ddpm", "shapes_ddpm", "shapes_clip"}),
                                            ("superposition", {"toy_model", "toy_sae"})])
def test_the_second_run_trains_nothing_and_reports_the_same(name, subjects, tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "zoo"))
    first, second, text = run_twice(name, tmp_path)
    assert {t["name"] for t in first["subject_training"]} == subjects, "a fresh cache should train every subject"
    assert second["subject_training"] == [] and second["subject_training_seconds"] == 0, (
        f"the second run trained {second['subject_training']}: a subject is not cached, or its key changed")
    assert first["headline"] == second["headline"], "the cached subjects give other numbers than the trained ones"
    assert "read from the cache, not trained" in text, "the report should say its models came from the cache"


def test_the_context_probes_reuse_the_digits_network(tmp_path, monkeypatch):
    from analyses.context.measures import digit_probes
    from analyses.digits import RELU, Config
    from analyses.digits.training import trained_variants
    from models import zoo

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "zoo"))
    monkeypatch.setattr(zoo, "TRAINED", [])
    variants = Config(sigmoid_epochs=2, relu_epochs=2).variants()
    trained_variants({RELU: variants[RELU]}, [0])
    assert len(zoo.TRAINED) == 1
    probes, accuracy = digit_probes(seed=0, cv=2, epochs=2)
    assert len(zoo.TRAINED) == 1, "the context analysis trained the digit network again instead of reading the cache"
    assert 0 < accuracy <= 1 and len(probes) == 3
