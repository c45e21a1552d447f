"""The examples in docstrings, the README, docs/explorer.md and docs/cluster.md run, and print what they say."""

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def modules_with_examples() -> list[str]:
    names = []
    for package in ("interp", "models", "analyses"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>>" in path.read_text():
                parts = path.relative_to(ROOT).with_suffix("").parts
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = modules_with_examples()


def test_modules_with_examples_are_found():
    assert {"interp.lens", "interp.explore.app", "models.zoo", "models.transformer.tokenizer"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples in {name} failed (above)"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


DOC_BLOCKS = [(doc, i, block) for doc in ("README.md", "docs/explorer.md", "docs/cluster.md")
              for i, block in enumerate(python_blocks(ROOT / doc))]


@pytest.mark.slow
@pytest.mark.parametrize("doc, index, block", DOC_BLOCKS, ids=[f"{d}-{i}" for d, i, _ in DOC_BLOCKS])
def test_python_blocks_in_the_docs_run(doc, index, block):
    if block.lstrip().startswith("# with `interp explore` running"):
        pytest.skip("talks to a running explorer server (tests/interp/test_explore_browser.py drives one)")
    exec(compile(block, f"{doc} block {index}", "exec"), {"__name__": f"docs_{index}"})


def run_commands(path: Path) -> list[list[str]]:
    """Every `interp run NAME ... --set k=v` line in the document's shell blocks, as arguments."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
        for line in block.splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("interp run ") and "--set" in line:
                commands.append(line.split()[2:])
    return commands


@pytest.mark.parametrize("args", [a for doc in ("README.md", "docs/explorer.md") for a in run_commands(ROOT / doc)],
                         ids=lambda args: " ".join(args))
def test_documented_set_overrides_name_real_fields(args):
    from analyses.cli import build_config

    names = [a for a in args if not a.startswith("--")]
    sets = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    seed = int(args[args.index("--seed") + 1]) if "--seed" in args else None
    build_config(names[0], "--quick" in args, seed, sets)  # raises ValueError on a field that does not exist


def interp_commands(path: Path) -> list[str]:
    """Every `interp ...` line in the document's shell blocks, without its comment."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S):
        for line in block.splitlines():
            line = line.split("#")[0].strip()
            if line.startswith("interp "):
                lines.append(line)
    return lines


# README commands that take more than a minute, or serve or talk until stopped, and where they are exercised
ELSEWHERE = {
    "interp run all --quick --out /tmp/reports": "each analysis's quick preset runs in tests/analyses",
    "interp run digits --seed 3 --set relu_epochs=10": "minutes of training; its --set is checked above",
    "interp run facts --workers 2": "tests/analyses/test_cli_sweeps.py runs sweeps on 2 workers",
    "interp chat facts": "trains the full facts subject; tests/models/transformer/test_generation.py drives chat",
    "interp explore": "a server; tests/interp/test_explore_browser.py drives one",
    "interp spread facts diffusion --seeds 5": "half an hour; tests/analyses/test_seed_spread.py runs the quick preset",
}
README_COMMANDS = interp_commands(ROOT / "README.md")


def test_every_readme_command_is_run_here_or_says_where():
    assert README_COMMANDS, "the README's shell blocks should hold interp commands"
    assert set(ELSEWHERE) <= set(README_COMMANDS), "ELSEWHERE names a command the README no longer has"


@pytest.mark.parametrize("line", [c for c in README_COMMANDS if c not in ELSEWHERE])
def test_readme_commands_run(line, tmp_path, monkeypatch):
    """The README's quick commands, as typed (a run writes into a temporary folder, not reports/)."""
    from typer.testing import CliRunner

    from analyses.cli import app

    monkeypatch.chdir(tmp_path)  # `interp run params` writes ./reports/params: here, not into the repository
    result = CliRunner().invoke(app, line.split()[1:])
    assert result.exit_code == 0, f"{line!r} failed:\n{result.output}"
    assert result.stdout.strip(), f"{line!r} printed nothing"
