"""The experiments: one research question per module.

Every analysis module ``analyses.<name>`` defines

- ``Config``: a frozen dataclass with a ``seed`` field; ``Config()`` is the full preset
  and ``Config.quick()`` the small one used in CI;
- ``run(config: Config) -> interp.report.Report``;
- a module docstring whose first line states the question it answers.

Add a new analysis by writing the module and listing it in ``ANALYSES`` below (one line).
Analyses outside this package follow the same contract and run the same way:

- a file: ``interp run path/to/my_analysis.py`` (:func:`load_file`);
- a module another package installs, named in its entry-point group ``interp.analyses``
  (``[project.entry-points."interp.analyses"] cosines = "mypkg.cosines"``): ``interp run
  cosines``, listed by ``interp list`` (:func:`installed`).

``question(name)`` reads the docstring from the module's source without importing it, so
``interp list`` answers without loading torch or any model code.
"""

import ast
import dataclasses
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

# name -> module; the order is the order of ``interp run all`` and of the index page.
ANALYSES: dict[str, str] = {
    "params": "analyses.params",
    "digits": "analyses.digits",
    "backprop": "analyses.backprop",
    "facts": "analyses.facts",
    "facts_lm": "analyses.facts_lm",
    "lm": "analyses.lm",
    "directions": "analyses.directions",
    "context": "analyses.context",
    "jl": "analyses.jl",
    "superposition": "analyses.superposition",
    "diffusion": "analyses.diffusion",
}


ENTRY_POINTS = "interp.analyses"  # the entry-point group other packages list their analyses in


def installed() -> dict[str, str]:
    """Analyses other packages install (entry points of group ``interp.analyses``): name -> module."""
    from importlib.metadata import entry_points

    return {point.name: point.value for point in entry_points(group=ENTRY_POINTS) if point.name not in ANALYSES}


def known() -> dict[str, str]:
    """Every analysis a name reaches: this package's, then the installed ones."""
    return {**ANALYSES, **installed()}


def is_file(name: str) -> bool:
    """Whether ``name`` names an analysis file (``interp run path/to/x.py``) rather than an analysis."""
    return name.endswith(".py")


def label(name: str) -> str:
    """A short name for an analysis: the file's stem for a file, else the name."""
    return Path(name).stem if is_file(name) else name


def get(name: str) -> ModuleType:
    """The analysis module called ``name`` (or in the file ``name``); unknown names list the known ones."""
    if is_file(name):
        return load_file(name)
    table = known()
    if name not in table:
        import difflib

        close = difflib.get_close_matches(name, table, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown analysis {name!r}.{hint} Known: {', '.join(table)} (or a path to an analysis .py file)")
    return check_contract(importlib.import_module(table[name]), name)


def load_file(path: str | Path) -> ModuleType:
    """The analysis in the Python file ``path``, imported as a module named after the file (its folder goes on
    ``sys.path``, so that worker processes find its task functions too)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise KeyError(f"no analysis file {str(path)!r}")
    if not path.stem.isidentifier():
        raise KeyError(f"{path.name}: an analysis file's name must be a Python identifier (letters, digits, _)")
    if path.stem in sys.modules and Path(getattr(sys.modules[path.stem], "__file__", "") or "").resolve() == path:
        return check_contract(sys.modules[path.stem], path.name)
    spec = importlib.util.find_spec(path.stem)
    if spec is not None and spec.origin and Path(spec.origin).resolve() != path:
        raise KeyError(f"{path.name}: the module name {path.stem!r} is taken by {spec.origin}; rename the file")
    sys.path.insert(0, str(path.parent))
    try:
        module = importlib.import_module(path.stem)
    except Exception as error:  # the user's code: say where it broke, in one line
        import traceback

        where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
        at = f" (line {where.lineno} of {Path(where.filename).name})" if where and not isinstance(error, SyntaxError) else ""
        raise KeyError(f"{path.name} failed to import: {traceback.format_exception_only(error)[-1].strip()}{at}") from None
    return check_contract(module, path.name)


def check_contract(module: ModuleType, name: str) -> ModuleType:
    """``module`` if it follows the analysis contract, else a KeyError saying what it lacks."""
    config, run = getattr(module, "Config", None), getattr(module, "run", None)
    lacks = []
    if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        lacks.append("a Config dataclass")
    elif "seed" not in {f.name for f in dataclasses.fields(config)}:
        lacks.append("a seed field in Config")
    elif not callable(getattr(config, "quick", None)):
        lacks.append("Config.quick() (the small preset)")
    if not callable(run):
        lacks.append("run(config) -> Report")
    if lacks:
        raise KeyError(f"{name} is not an analysis: it lacks {', '.join(lacks)} (see the example in the README)")
    return module


def question(name: str) -> str:
    """First line of the analysis module's docstring, read from its source (the module is not imported)."""
    table = known()
    if name not in table:
        get(name)  # raises the helpful KeyError
    spec = importlib.util.find_spec(table[name])
    if spec is None or spec.origin is None:
        return ""
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
