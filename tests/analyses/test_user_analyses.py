"""Analyses users write: a file run by path, an installed one found by its entry point."""

import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import analyses
from analyses.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def readme_example() -> str:
    """The README's example analysis: the Python block of its "Your own analysis" section."""
    section = (ROOT / "README.md").read_text().split("## Your own analysis", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def test_the_readme_example_is_short_and_runs_by_path_like_a_built_in_analysis(tmp_path):
    code = readme_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 24  # "a 20-line example": 22 now
    (tmp_path / "cosines.py").write_text(code)
    out = tmp_path / "reports"
    result = runner.invoke(app, ["run", str(tmp_path / "cosines.py"), "--quick", "--workers", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "cosines" / "results.json").read_text())
    cosines = [results["headline"][f"max_cos_d{d}"] for d in (10, 100, 1000)]
    assert cosines == sorted(cosines, reverse=True) and 0 < cosines[-1] < 0.3 < cosines[0] <= 1  # 1/sqrt(d) shrinkage
    assert results["preset"] == "quick" and results["config"]["vectors"] == 200
    assert "cosines/report.html" in (out / "index.html").read_text()
    assert "sweeps on processes (2 workers)" in (out / "run.log").read_text()
    serial = runner.invoke(app, ["run", str(tmp_path / "cosines.py"), "--quick", "--backend", "serial",
                                 "--out", str(tmp_path / "serial")])
    assert serial.exit_code == 0 and json.loads((tmp_path / "serial" / "cosines" / "results.json").read_text()
                                                )["headline"] == results["headline"]


@pytest.mark.parametrize("source, words", [
    ("x = 1\n", "lacks a Config dataclass, run(config) -> Report"),
    ("from dataclasses import dataclass\n@dataclass\nclass Config:\n    n: int = 1\ndef run(c): pass\n",
     "lacks a seed field in Config"),
    ("from dataclasses import dataclass\n@dataclass\nclass Config:\n    seed: int = 0\ndef run(c): pass\n",
     "lacks Config.quick() (the small preset)"),
    ("def broken(:\n", "failed to import: SyntaxError"),
    ("import no_such_module_here\n", "failed to import: ModuleNotFoundError: No module named 'no_such_module_here'"),
])
def test_a_file_that_is_not_an_analysis_is_one_line_and_exit_code_2(tmp_path, source, words, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the file's folder goes on the path: undo it
    name = f"not_an_analysis_{abs(hash(source))}"
    (tmp_path / f"{name}.py").write_text(source)
    result = runner.invoke(app, ["run", str(tmp_path / f"{name}.py"), "--quick", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines


def test_a_missing_file_and_a_taken_module_name_are_refused(tmp_path):
    result = runner.invoke(app, ["run", str(tmp_path / "nowhere.py"), "--quick"])
    assert result.exit_code == 2 and "no analysis file" in result.stderr
    (tmp_path / "json.py").write_text("")
    result = runner.invoke(app, ["run", str(tmp_path / "json.py"), "--quick"])
    assert result.exit_code == 2 and "the module name 'json' is taken by" in result.stderr


def test_an_installed_analysis_is_found_by_its_entry_point(monkeypatch):
    from importlib.metadata import EntryPoint

    points = [EntryPoint(name="installed_jl", value="analyses.jl", group=analyses.ENTRY_POINTS)]
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: points if group == analyses.ENTRY_POINTS else [])
    assert analyses.known()["installed_jl"] == "analyses.jl"
    assert analyses.get("installed_jl").Config().seed == 0
    listed = runner.invoke(app, ["list", "--json"])
    assert json.loads(listed.output)["installed_jl"] == analyses.question("jl")
