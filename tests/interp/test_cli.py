import json

from typer.testing import CliRunner

from interp.cli import app

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
