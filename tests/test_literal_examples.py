"""The examples written as literal blocks (``Example::`` and an indented block) in docstrings run.

Doctests (``>>>``) are run by ``tests/test_docs.py``. A literal block is run like a doctest, in a
copy of its module's globals, from an empty working folder (so ``report.save("out")`` writes
nowhere that matters). Not run, each for a reason named here:

- a *fragment*: a block that uses a name it never defines (``model``, ``tokens``: a sketch of a
  call inside a longer session); every fragment is listed in ``FRAGMENTS`` below, so a new
  example that is not self-contained is a decision, not an accident;
- a whole analysis (``run(Config.quick())``): each analysis's quick preset is run by its own test
  in ``tests/analyses/``;
- a formula shown as a literal block (not Python).
"""

import ast
import builtins
import importlib
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# module: the names of its docstrings (<module>, a function or class) whose blocks are fragments
FRAGMENTS = {
    "interp.editing": {"<module>"}, "interp.hooks": {"<module>"}, "interp.neurons": {"<module>"},
    "interp.patching": {"<module>"}, "interp.patching.activation": {"<module>"},
    "interp.patching.attribution": {"<module>"}, "interp.patching.exactness": {"<module>"},
    "interp.patching.plan": {"<module>"}, "interp.patching.restoring": {"<module>"},
    "interp.patching.resume": {"<module>"}, "interp.patching.runner": {"<module>"},
    "interp.patching.tracing": {"<module>"}, "interp.rome_values": {"<module>", "target_values"},
    "analyses.facts_lm.and_ablation": {"<module>"}, "analyses.facts_lm.counterfact": {"<module>"},
    "analyses.facts_lm.edit_inputs": {"<module>"}, "analyses.facts_lm.edit_runs": {"<module>"},
    "analyses.facts_lm.edit_scores": {"<module>"}, "analyses.facts_lm.known": {"<module>"},
    "analyses.facts_lm.neurons": {"<module>"}, "analyses.facts_lm.trace": {"<module>"},
}
WHOLE_ANALYSES = {"analyses.context", "analyses.diffusion", "analyses.diffusion.sections", "analyses.directions",
                  "analyses.facts", "analyses.facts_lm", "analyses.lm", "analyses.params"}
NOT_PYTHON = {("interp.editing", "<module>", 1)}  # the ROME update written as a formula


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def literal_blocks(source: str) -> list[tuple[str, str]]:
    """(docstring owner, code) of every literal block without ``>>>`` in the docstrings of ``source``."""
    tree = ast.parse(source)
    owners = [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                     ast.ClassDef))]
    found = []
    for node in owners:
        lines = (ast.get_docstring(node, clean=True) or "").splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].rstrip().endswith("::"):
                i += 1
                continue
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            body = []
            while j < len(lines) and (not lines[j].strip() or lines[j].startswith((" ", "\t"))):
                body.append(lines[j])
                j += 1
            code = textwrap.dedent("\n".join(body)).strip("\n")
            if code and ">>>" not in code:
                found.append((getattr(node, "name", "<module>"), code))
            i = j
    return found


def free_names(code: str, known: set[str]) -> set[str]:
    """Names ``code`` reads but neither defines nor finds in ``known`` or the builtins."""
    tree = ast.parse(code)
    defined = set(known) | set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            defined.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - defined


def all_blocks() -> list[tuple[str, str, int, str]]:
    rows = []
    for package in ("interp", "models", "analyses"):
        for path in sorted((ROOT / package).rglob("*.py")):
            counts: dict[str, int] = {}
            for owner, code in literal_blocks(path.read_text()):
                counts[owner] = counts.get(owner, 0) + 1
                rows.append((module_name(path), owner, counts[owner] - 1, code))
    return rows


BLOCKS = all_blocks()


def test_blocks_are_found():
    names = {module for module, *_ in BLOCKS}
    assert {"interp.jl", "models.toy", "interp.patching"} <= names and len(BLOCKS) > 60


def test_the_fragment_list_is_exactly_the_blocks_that_use_undefined_names():
    fragments = {}
    for module, owner, index, code in BLOCKS:
        if (module, owner, index) in NOT_PYTHON:
            continue
        namespace = set(vars(importlib.import_module(module)))
        if free_names(code, namespace):
            fragments.setdefault(module, set()).add(owner)
    assert fragments == FRAGMENTS


@pytest.mark.slow
@pytest.mark.parametrize("module, owner, index, code", BLOCKS, ids=[f"{m}:{o}:{i}" for m, o, i, _ in BLOCKS])
def test_literal_example_runs(module, owner, index, code, tmp_path, monkeypatch):
    if (module, owner, index) in NOT_PYTHON:
        pytest.skip("a formula, not Python")
    if owner in FRAGMENTS.get(module, ()):
        pytest.skip("a fragment: uses names a longer session defines (listed in FRAGMENTS)")
    if module in WHOLE_ANALYSES:
        pytest.skip("runs a whole analysis: its quick preset has its own test in tests/analyses/")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    namespace = dict(vars(importlib.import_module(module)))
    try:
        exec(compile(code, f"{module} ({owner}) literal block {index}", "exec"), namespace)
    finally:
        plt.close("all")
