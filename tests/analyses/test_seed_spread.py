"""Headline figures over training seeds (analyses.seed_spread): the summaries, the report section, the
``interp spread`` command end to end, and the committed spreads against the committed reports."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import analyses
from analyses import seed_spread
from analyses.cli import app
from analyses.seed_spread import Spread, inside, spread_section, summarise
from interp.report import Report

ROOT = Path(__file__).resolve().parents[2]


def test_a_continuous_figure_gets_its_prediction_interval():
    from interp.intervals import prediction_interval

    values = [0.91, 0.95, 0.93, 0.97, 0.90]
    summary = summarise(values)
    assert summary["kind"] == "continuous" and summary["n"] == 5
    assert (summary["min"], summary["median"], summary["max"]) == (0.90, 0.93, 0.97)
    assert (summary["mean"], summary["low"], summary["high"]) == prediction_interval(values)
    assert inside(summary, 0.93) and not inside(summary, summary["high"] + 1e-9) and inside(summary, summary["low"])


def test_integer_and_boolean_figures_are_counted_not_averaged():
    assert summarise([2, 2, 3, 2, 1]) == {"kind": "discrete", "n": 5, "counts": {2: 3, 3: 1, 1: 1}}
    assert summarise([True, False, True])["counts"] == {True: 2, False: 1}
    assert inside(summarise([2, 2, 3]), 3) and not inside(summarise([2, 2, 3]), 4)
    assert summarise([1.0, 2])["kind"] == "continuous"  # a float among them: not a count
    assert summarise(["a", "b"])["kind"] == "other" and inside(summarise(["a", "b"]), "a") is None
    assert summarise([0.5])["kind"] == "other"  # one seed says nothing about a spread


def test_a_figure_that_never_moves_is_inside_only_at_its_value():
    summary = summarise([0.0, 0.0, 0.0])
    assert inside(summary, 0.0) and not inside(summary, 1e-12)


def spread_of(headlines: dict[int, dict], config: dict) -> Spread:
    return Spread("toy", "full", config, headlines, "2026-12-04", {"cpu": "test", "torch_cpu_capability": "AVX2"})


def toy_report(seed: int, **figures) -> Report:
    report = Report("toy", "Toy", config={"seed": seed, "width": 3})
    for name, value in figures.items():
        report.headline(name, value)
    return report


SEEDS = {0: {"share": 0.90, "layer": 1, "verdict_checks_passed": 2},
         1: {"share": 0.94, "layer": 1, "verdict_checks_passed": 3},
         2: {"share": 0.92, "layer": 2, "verdict_checks_passed": 2}}


@pytest.fixture
def spreads(tmp_path, monkeypatch):
    monkeypatch.setenv(seed_spread.ENV, str(tmp_path))
    seed_spread.save(spread_of(SEEDS, {"width": 3}))
    return tmp_path


def test_the_section_flags_a_figure_outside_its_spread_and_counts_the_verdicts(spreads):
    report = toy_report(7, share=0.50, layer=1, verdict_checks_passed=2)
    found = spread_section(report, {"seed": 7, "width": 3})
    assert found == {"seeds": [0, 1, 2], "inside": 2, "judged": 3, "outside": ["share"]}
    text = report.to_markdown()
    assert "**2 of 3** of this run's figures lie inside; outside: share." in text
    assert "2 in 2 of 3 seeds, 3 in 1 of 3 seeds" in text
    assert "is one of them" not in text  # seed 7 was not measured
    assert (lambda t: t.df.set_index("figure").loc["layer", "over seeds"])(report.tables()[0]) == "1 (2 seeds), 2 (1 seed)"


def test_a_run_of_a_measured_seed_says_whether_it_reproduced_that_seed(spreads):
    same = toy_report(1, **SEEDS[1])
    spread_section(same, {"seed": 1, "width": 3})
    assert "every figure equals that seed's" in same.to_markdown()
    moved = toy_report(1, share=0.93, layer=1, verdict_checks_passed=3)
    spread_section(moved, {"seed": 1, "width": 3})
    assert "1 of its 3 figures differ from that seed's (share)" in moved.to_markdown()


def test_no_section_for_another_config_or_without_a_spread(spreads, monkeypatch):
    report = toy_report(0, share=0.9)
    assert spread_section(report, {"seed": 0, "width": 4}) is None and not report.sections
    monkeypatch.setenv(seed_spread.ENV, str(spreads / "empty"))
    assert spread_section(report, {"seed": 0, "width": 3}) is None and not report.sections


def test_spread_command_then_a_run_of_a_measured_seed_reproduces_it(tmp_path, monkeypatch):
    """End to end on the diffusion quick preset: ``interp spread`` for seeds 0 and 1, then the analysis
    itself, which finds that spread, lies inside it and equals seed 0's figures exactly (same machine)."""
    from analyses.diffusion import Config, run

    result = CliRunner().invoke(app, ["spread", "diffusion", "--quick", "--seeds", "2", "--into", str(tmp_path)])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "diffusion-quick.json").read_text())
    assert sorted(saved["headlines"]) == ["0", "1"] and saved["config"] == seed_spread.seedless(Config.quick())
    assert saved["headlines"]["0"] != saved["headlines"]["1"]  # another seed trains other models
    monkeypatch.setenv(seed_spread.ENV, str(tmp_path))
    report = run(Config.quick())
    text = report.to_markdown()
    assert "## Spread over training seeds" in text and "every figure equals that seed's" in text
    assert "no" not in set(report.tables()[-1].df["inside"])  # "": not a number


COMMITTED = sorted(seed_spread.SPREADS.glob("*.json"))


def test_spreads_are_committed_for_the_analyses_that_train_in_the_run():
    assert {p.name for p in COMMITTED} >= {"facts-full.json", "diffusion-full.json"}


@pytest.mark.parametrize("path", COMMITTED, ids=[p.stem for p in COMMITTED])
def test_a_committed_spread_is_of_the_committed_report(path):
    """Measured with the preset's config, for the figures the report has, and its seed-0 run equals the
    committed report's figures (both were made with the same kernels): a report regenerated after a
    change that moved its figures fails here until its spread is measured again."""
    spread = Spread.from_json(json.loads(path.read_text()))
    module = analyses.get(spread.analysis)
    preset = module.Config.quick() if spread.preset == "quick" else module.Config()
    assert spread.config == seed_spread.seedless(preset), "measured with another config: run `interp spread` again"
    assert len(spread.seeds) >= 5
    results = json.loads((ROOT / "reports" / spread.analysis / "results.json").read_text())
    if results["preset"] == spread.preset:
        assert spread.headlines[results["seed"]] == results["headline"]
