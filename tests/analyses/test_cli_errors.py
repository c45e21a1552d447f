"""A user's mistake on the command line is one line and exit code 2; a bug keeps its traceback.

``BAD_ARGUMENTS`` is the list of mistakes tried (docs/reliability.md counts them).
"""

import json

import pytest
from typer.testing import CliRunner

from analyses import cli
from analyses.cli import app

runner = CliRunner()

# (arguments, words the one-line error must contain); "{file}" is an existing file
BAD_ARGUMENTS = [
    (["bogus"], "No such command 'bogus'"),
    (["list", "--bogus"], "No such option: --bogus"),
    (["run"], "Missing argument"),
    (["run", "nosuch"], "unknown analysis 'nosuch'"),
    (["run", "parms", "--quick"], "Did you mean params"),
    (["run", "params", "--bogus"], "No such option: --bogus"),
    (["run", "params", "--set", "check_layerz=2"], "Did you mean check_layers"),
    (["run", "params", "--set", "check_layers"], "--set expects key=value"),
    (["run", "params", "--set", "=2"], "has no field ''"),
    (["run", "params", "--set", "check_layers=abc"], "--set check_layers: 'abc' is not a valid int"),
    (["run", "params", "--set", "check_layers=1e-3"], "--set check_layers: '1e-3' is not a valid int"),
    (["run", "params", "--set", "check_layers=2.5"], "not a valid int"),
    (["run", "params", "--set", "check_layers=0"], "check_layers must be at least 1"),
    (["run", "params", "--set", "sweep_widths=4"], "sweep_widths"),
    (["run", "jl", "--set", "eps_values=2"], "eps_values"),
    (["run", "all", "--set", "seed=1"], "--set applies to named analyses only"),
    (["run", "params", "--seed", "abc"], "Invalid value for '--seed'"),
    (["run", "params", "--seed", "-1"], "-1 is not a seed"),
    (["run", "params", "--seed", str(2**40)], "is not a seed"),
    (["run", "params", "--quick", "--out", "{file}"], "is a file; give a folder"),
    (["run", "params", "--quick", "--out", "{file}/reports"], "cannot write into --out"),
    (["run", "params", "--threads", "0"], "0 is not a thread count"),
    (["run", "params", "--threads", "-1"], "-1 is not a thread count"),
    (["run", "params", "--threads", "x"], "Invalid value for '--threads'"),
    (["run", "params", "--workers", "0"], "0 is not a worker count"),
    (["run", "params", "--backend", "dask"], "unknown backend 'dask'; use one of serial, processes, ray"),
    (["run", "params", "--backend", "ray", "--address", "127.0.0.1:9"], "cannot reach a Ray cluster at 127.0.0.1:9"),
    (["run", "params", "--address", "nowhere"], "is not host:port"),
    (["run", "params", "--backend", "processes", "--address", "127.0.0.1:9"], "needs --backend ray"),
    (["params"], "Missing argument 'preset'"),
    (["params", "gpt4"], "unknown preset 'gpt4'"),
    (["params", "gpt3", "--weights"], "No such option: --weights"),
    (["chat", "nosuch"], "no zoo subject named 'nosuch'"),
    (["chat", "facts", "--temperature", "-1"], "temperature must be >= 0"),
    (["chat", "facts", "--temperature", "hot"], "Invalid value for '--temperature'"),
    (["chat", "facts", "--max-new-tokens", "-2"], "max_new_tokens must be an integer >= 0"),
    (["chat", "smollm2", "--top-p", "1.5"], "top_p must lie in (0, 1]"),
    (["chat", "facts", "--seed", "-5"], "not a seed"),
    (["zoo", "clear"], "name one subject to clear, or pass --all"),
    (["zoo", "clear", "nosuch"], "no zoo subject named 'nosuch'"),
    (["zoo", "retrain", "nosuch"], "no zoo subject named 'nosuch'"),
    (["explore", "--model", "nosuch"], "unknown model 'nosuch'"),
    (["explore", "--port", "70000"], "--port 70000 is out of range"),
    (["explore", "--port", "http"], "Invalid value for '--port'"),
    (["explore", "--max-tokens", "0"], "0 is not a prompt length"),
    (["explore", "--bogus"], "No such option: --bogus"),
    (["zoo", "retrain", "facts", "--seed", "x"], "Invalid value for '--seed'"),
    (["zoo", "bogus"], "No such command 'bogus'"),
    (["spread"], "Missing argument"),
    (["spread", "nosuch"], "unknown analysis 'nosuch'"),
    (["spread", "params", "--seeds", "1"], "too few seeds for a spread"),
    (["spread", "params", "--seeds", "x"], "Invalid value for '--seeds'"),
    (["spread", "params", "--into", "{file}"], "is a file; give a folder"),
    (["spread", "params", "--into", "{file}/spreads"], "cannot write into --into"),
]


@pytest.mark.parametrize("arguments, words", BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS])
def test_a_mistake_is_one_line_and_exit_code_2(tmp_path, monkeypatch, arguments, words):
    from models import zoo

    def no_loading(*args, **kwargs):  # a mistake must be caught before any model is built
        raise AssertionError("the zoo was asked for a model")

    monkeypatch.setattr(zoo, "load", no_loading) if "nosuch" not in arguments else None
    monkeypatch.chdir(tmp_path)  # should a mistake slip through, its report must not land in the repository's reports/
    (tmp_path / "file").write_text("not a folder")
    arguments = [a.replace("{file}", str(tmp_path / "file")) for a in arguments]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2, f"exit code {result.exit_code} for {arguments}:\n{result.output}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"not one error line:\n{result.stderr}"
    assert words in lines[0], f"{words!r} missing from: {lines[0]}"
    assert "Traceback" not in result.output


def test_ray_asked_for_but_not_installed_is_one_line_and_exit_code_2(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    result = runner.invoke(app, ["run", "params", "--quick", "--backend", "ray", "--out", str(tmp_path)])
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [
        "error: Ray is not installed; install it with: pip install 'ray==2.60.0'"]
    assert not (tmp_path / "params").exists()


def test_a_bare_command_shows_its_help():
    for arguments in ([], ["zoo"]):
        result = runner.invoke(app, arguments)
        assert result.exit_code == 2 and "Usage" in result.output and "Traceback" not in result.output


def test_a_bug_keeps_its_traceback_and_says_where_to_report_it(monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli.analyses, "question", broken)
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 1, result.output
    assert "Traceback" in result.stderr and "ZeroDivisionError: a bug" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"error: {cli.BUG_HINT}"


def test_a_failing_analysis_says_where_to_report_it(tmp_path, monkeypatch):
    from analyses import params

    def broken(config):
        raise RuntimeError("boom")

    monkeypatch.setattr(params, "run", broken)
    result = runner.invoke(app, ["run", "params", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "report it to the interp maintainers" in result.stderr.splitlines()[-1]
    assert "RuntimeError: boom" in (tmp_path / "run.log").read_text()


def test_ctrl_c_during_a_run_is_exit_code_130_and_keeps_the_old_report(tmp_path, monkeypatch):
    from analyses import params

    assert runner.invoke(app, ["run", "params", "--quick", "--out", str(tmp_path)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in (tmp_path / "params").iterdir() if p.is_file()}

    def interrupted(name, config, out, preset=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.run_command, "run_analysis", interrupted)
    result = runner.invoke(app, ["run", "params", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("error: interrupted"), result.stderr
    assert "Traceback" not in result.output
    after = {p.name: p.read_bytes() for p in (tmp_path / "params").iterdir() if p.is_file()}
    assert after == before, "the interrupted run changed the previous report"


def test_good_commands_still_exit_0(tmp_path):
    result = runner.invoke(app, ["params", "gpt3", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["total"] > 0
    assert runner.invoke(app, ["run", "--help"]).exit_code == 0
