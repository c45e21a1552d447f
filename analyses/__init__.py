"""The experiments: one research question per module.

Every analysis module ``analyses.<name>`` defines

- ``Config``: a frozen dataclass with a ``seed`` field; ``Config()`` is the full preset
  and ``Config.quick()`` the small one used in CI;
- ``run(config: Config) -> interp.report.Report``;
- a module docstring whose first line states the question it answers.

Add a new analysis by writing the module and listing it in ``ANALYSES`` below.
"""

import importlib
from types import ModuleType

# name -> module; the order is the order of ``interp run all`` and of the index page.
ANALYSES: dict[str, str] = {
    "params": "analyses.params",
    "digits": "analyses.digits",
    "backprop": "analyses.backprop",
    "facts": "analyses.facts",
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
    """First line of the analysis module's docstring."""
    doc = get(name).__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""
