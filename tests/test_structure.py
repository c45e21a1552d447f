"""The layer rules of ARCHITECTURE.md, read from the source: what may import what, and whose
underscore names may be used where.

- ``interp/`` (the instruments) imports nothing from ``analyses`` and no model class: it works
  on any hooked model handed to it, ours or a pretrained one (functions from ``models``, such as
  the persistence helpers or the kernel pinning, are allowed);
- no module reaches into another project module's underscore names, by ``from m import _x`` or
  by ``m._x`` on an imported module (tests and benchmarks included: they use the public surface).
"""

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("interp", "models", "analyses")
SOURCES = [path for folder in (*PROJECT, "tests", "benchmarks") for path in sorted((ROOT / folder).rglob("*.py"))]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def absolute(node: ast.ImportFrom, here: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = here.split(".") if is_package else here.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, module, names)`` of every import in ``path``, relative ones made absolute."""
    tree, here = ast.parse(path.read_text(), str(path)), module_name(path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, absolute(node, here, path.name == "__init__.py"),
                          [alias.name for alias in node.names]))
    return found


def is_project(module: str) -> bool:
    return module.split(".")[0] in PROJECT


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_the_scan_sees_the_project():
    names = {module_name(path) for path in SOURCES}
    assert {"interp.patching.runner", "models.checkpoint.runs", "analyses.cli"} <= names
    assert any(module == "models.checkpoint" and "atomic_path" in what
               for _, module, what in imports(ROOT / "interp/parallel/store.py"))


def test_instruments_import_no_analysis_and_no_model_class():
    wrong = []
    for path in (ROOT / "interp").rglob("*.py"):
        for line, module, names in imports(path):
            where = f"{path.relative_to(ROOT)}:{line}"
            if module.split(".")[0] == "analyses":
                wrong.append(f"{where} imports {module}")
            if module.split(".")[0] != "models":
                continue
            for name in names:
                target = getattr(importlib.import_module(module), name, None)
                if isinstance(target, type) and issubclass(target, torch.nn.Module):
                    wrong.append(f"{where} imports the model class {module}.{name}")
    assert not wrong, "\n".join(wrong)


def reach_ins(path: Path) -> list[str]:
    here, tree = module_name(path), ast.parse(path.read_text(), str(path))
    wrong, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_project(alias.name):
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            module = absolute(node, here, path.name == "__init__.py")
            if not is_project(module):
                continue
            for alias in node.names:
                if private(alias.name) and module != here:
                    wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {module}.{alias.name}")
                elif is_submodule(module, alias.name):  # from models import zoo: zoo._x reaches into models.zoo
                    aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and private(node.attr):
            dotted = dotted_name(node.value)
            if dotted in aliases and aliases[dotted] != here:
                wrong.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {aliases[dotted]}.{node.attr}")
    return wrong


def is_submodule(package: str, name: str) -> bool:
    spec = importlib.util.find_spec(package)
    return spec is not None and spec.submodule_search_locations is not None \
        and importlib.util.find_spec(f"{package}.{name}") is not None


def dotted_name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted_name(node.value)}.{node.attr}"
    return ""


@pytest.mark.parametrize("folder", [*PROJECT, "tests", "benchmarks"])
def test_no_module_uses_another_modules_underscore_names(folder):
    wrong = [line for path in sorted((ROOT / folder).rglob("*.py")) for line in reach_ins(path)]
    assert not wrong, "\n".join(wrong)


def test_the_reach_in_check_can_fail(tmp_path):
    sample = ROOT / "tests" / "_structure_sample.py"
    sample.write_text("from models.zoo import _subject_dir\nimport models.zoo as zoo\nzoo._subject_dir\n")
    try:
        assert len(reach_ins(sample)) == 2
    finally:
        sample.unlink()
