import json

from typer.testing import CliRunner

from analyses.cli import app

runner = CliRunner()


def test_params_json_has_one_key_per_component():
    result = runner.invoke(app, ["params", "gpt3", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert set(counts) == {"embed", "pos_embed", "attn", "mlp", "ln", "unembed", "total"}
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_params_weights_only_is_the_seed_table():
    counts = json.loads(runner.invoke(app, ["params", "gpt3", "--weights-only", "--json"]).stdout)
    assert counts["embed"] == 617_558_016 and counts["ln"] == 0


def test_unknown_preset_and_analysis_fail_clearly():
    result = runner.invoke(app, ["params", "gpt4"])
    assert result.exit_code == 2 and "gpt2-small" in result.output
    result = runner.invoke(app, ["run", "parms", "--quick"])
    assert result.exit_code == 2 and "params" in result.output


def test_list_json_names_every_analysis():
    import analyses

    result = runner.invoke(app, ["list", "--json"])
    assert set(json.loads(result.stdout)) == set(analyses.ANALYSES)


def test_run_writes_report_and_honours_set(tmp_path):
    result = runner.invoke(
        app, ["run", "params", "--quick", "--out", str(tmp_path), "--set", "check_layers=2", "--seed", "5", "--json"]
    )
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "params" / "results.json").read_text())
    assert results["config"]["check_layers"] == 2 and results["seed"] == 5
    assert (tmp_path / "params" / "report.html").is_file()


def test_bad_set_is_refused(tmp_path):
    result = runner.invoke(app, ["run", "params", "--quick", "--out", str(tmp_path), "--set", "check_layerz=2"])
    assert result.exit_code == 2 and "check_layers" in result.output


def test_a_failing_analysis_does_not_stop_the_others(tmp_path, monkeypatch):
    import analyses
    from analyses import params

    monkeypatch.setitem(analyses.ANALYSES, "broken", "analyses.params")
    real_run, calls = params.run, []

    def run(config):  # the first analysis ("broken") raises, the second runs
        calls.append(config)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real_run(config)

    monkeypatch.setattr(params, "run", run)
    result = runner.invoke(app, ["run", "broken", "params", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "boom" in result.output and "broken" in result.output
    assert (tmp_path / "params" / "results.json").is_file(), "the analysis after the failing one did not run"
    assert (tmp_path / "index.html").is_file()


def _imports_after(args: list[str]) -> set[str]:
    """Modules imported by one light CLI call, in a fresh interpreter."""
    import subprocess
    import sys

    code = ("import sys; from typer.testing import CliRunner; from analyses.cli import app; "
            f"r = CliRunner().invoke(app, {args!r}); assert r.exit_code == 0, r.output; "
            "print(' '.join(sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_light_commands_import_neither_torch_nor_analysis_modules():
    for args in (["list"], ["params", "gpt3"], ["--help"], ["run", "--help"]):
        heavy = {m for m in _imports_after(args) if m.split(".")[0] in ("torch", "transformer_lens", "transformers",
                                                                        "pandas", "matplotlib")
                 or (m.startswith("analyses.") and m != "analyses" and m.split(".")[1] != "cli")}  # the CLI lives there
        assert not heavy, f"interp {' '.join(args)} imported {sorted(heavy)[:5]}: it should answer without them"


def test_list_questions_are_the_modules_docstrings():
    import importlib

    import analyses

    for name, module in analyses.ANALYSES.items():
        doc = importlib.import_module(module).__doc__.strip().splitlines()[0]
        assert analyses.question(name) == doc, f"interp list shows a different question for {name}"


def test_params_says_which_total_is_which():
    text = runner.invoke(app, ["params", "gpt3"]).stdout
    assert "every parameter (weights, biases, LayerNorms, position embedding): 175,221,867,601  <- this table" in text
    assert "weight matrices only (3Blue1Brown's GPT-3 table): 175,181,291,520  (--weights-only)" in text
    text = runner.invoke(app, ["params", "gpt3", "--weights-only"]).stdout
    assert "175,181,291,520  <- this table" in text


def test_run_help_lists_the_analyses():
    import analyses

    text = runner.invoke(app, ["run", "--help"]).output
    assert all(name in text for name in analyses.ANALYSES), text


def test_a_single_run_rewrites_the_index_and_writes_a_run_log(tmp_path):
    (tmp_path / "index.html").write_text("stale")
    result = runner.invoke(app, ["run", "params", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    index = (tmp_path / "index.html").read_text()
    assert index != "stale" and "quick" in index and "<td>0</td>" in index, "index lacks the preset or seed"
    results = json.loads((tmp_path / "params" / "results.json").read_text())
    assert results["preset"] == "quick" and results["date"] in index
    description = next(iter(results["headline_descriptions"].values()))
    assert description.split()[0] in index, "index shows raw keys without their descriptions"
    log = (tmp_path / "run.log").read_text()
    assert "[1/1] params" in log and "report.html" in log, log
    assert "1 of 1 report(s) written" in result.stdout, "stdout alone should say where the reports and log went"


def test_chat_facts_names_unknown_words_instead_of_answering(monkeypatch):
    from models import zoo
    from models.facts_subject import FactsSubjectConfig, build_facts_model

    model = build_facts_model(FactsSubjectConfig.quick())  # untrained is enough: the words are checked first
    monkeypatch.setattr(zoo, "load", lambda *a, **k: model)
    result = runner.invoke(app, ["chat", "facts"], input="michael jordan plays the sport of\n\n")
    assert "does not know 'michael', 'jordan'" in result.output, result.output
    assert model.corpus.people[0].name in result.output, "the error should list names the subject knows"
    assert "michael jordan plays the sport of " not in result.output, "it answered about <unk> anyway"


def test_chat_with_a_non_language_subject_is_one_line():
    result = runner.invoke(app, ["chat", "digits"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_zoo_list_and_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path))
    folder = tmp_path / "facts" / "quick-seed0-abc"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "zoo.json").write_text(json.dumps({"seed": 0, "train_seconds": 12.0}))
    listed = runner.invoke(app, ["zoo", "list"]).output
    assert "facts" in listed and "trained in 12 s" in listed and str(tmp_path) in listed, listed
    assert runner.invoke(app, ["zoo", "clear"]).exit_code == 2, "clear without a name must not delete everything"
    assert runner.invoke(app, ["zoo", "clear", "facts"]).exit_code == 0 and not folder.exists()


def test_report_time_includes_training_its_subject_in_the_same_run(tmp_path, monkeypatch):
    import dataclasses
    import sys
    import time
    import types

    import analyses
    from interp.report import Report
    from models import zoo

    @dataclasses.dataclass(frozen=True)
    class Config:
        seed: int = 0

        @classmethod
        def quick(cls):
            return cls()

    def run(config):  # the zoo trains the subject (0.3 s) before the analysis makes its report
        time.sleep(0.3)
        zoo.TRAINED.append({"name": "fake", "quick": True, "seed": 0, "seconds": 0.3})
        report = Report("fake", "Fake", config=config)
        report.headline("x", 1, "one")
        return report

    module = types.ModuleType("fake_analysis")
    module.Config, module.run = Config, run
    monkeypatch.setitem(sys.modules, "fake_analysis", module)
    monkeypatch.setitem(analyses.ANALYSES, "fake", "fake_analysis")
    monkeypatch.setattr(zoo, "TRAINED", [])
    result = runner.invoke(app, ["run", "fake", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "fake" / "results.json").read_text())
    assert results["elapsed_seconds"] >= 0.3, "the report's time left out the training before it was made"
    assert results["subject_training_seconds"] == 0.3
    assert "0 s training the zoo subject `fake`" in (tmp_path / "fake" / "report.md").read_text()
