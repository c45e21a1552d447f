"""The experiments: one research question per module.

Every analysis module ``analyses.<name>`` defines

- ``Config``: a frozen dataclass with a ``seed`` field; ``Config()`` is the full preset
  and ``Config.quick()`` the small one used in CI;
- ``run(config: Config) -> interp.report.Report``;
- a module docstring whose first line states the question it answers.

Add a new analysis by writing the module and listing it in ``ANALYSES`` below (one line).

``question(name)`` reads the docstring from the module's source without importing it, so
``interp list`` answers without loading torch or any model code.
"""

import ast
import importlib
import importlib.util
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


def get(name: str) -> ModuleType:
    """The analysis module called ``name``; unknown names list the known ones."""
    if name not in ANALYSES:
        import difflib

        close = difflib.get_close_matches(name, ANALYSES, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown analysis {name!r}.{hint} Known: {', '.join(ANALYSES)}")
    return importlib.import_module(ANALYSES[name])


def question(name: str) -> str:
    """First line of the analysis module's docstring, read from its source (the module is not imported)."""
    if name not in ANALYSES:
        get(name)  # raises the helpful KeyError
    spec = importlib.util.find_spec(ANALYSES[name])
    if spec is None or spec.origin is None:
        return ""
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
