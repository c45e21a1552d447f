"""Plain text inside Markdown: escape what Markdown would read as markup.

>>> literal("D* = 2/5 for W_i and <first> [1], _x_")
'D\\\\* = 2/5 for W_i and \\\\<first> \\\\[1\\\\], \\\\_x\\\\_'
>>> literal("|cos| in `code_x*`", cell=True)
'\\\\|cos\\\\| in `code_x*`'

``*``, ``_`` at a word's edge, ``[``, ``]``, ``\\`` and a ``<`` that could open a tag, outside backtick code spans get a backslash
(CommonMark escapes; ``interp.report`` turns ``\\<`` into ``&lt;`` for the HTML page). ``|``
is plain text outside tables, so only table cells (``cell=True``) escape it. Code spans
stay as they are.
"""

import re

CODE_SPAN = re.compile(r"(```.*?```|`[^`\n]*`)", re.DOTALL)
# "<" only where it could open an HTML tag ("<first>", "</b>", "<!--"); "<=" and "a < b" stay as written
# "_" only at a word's edge: inside a word (W_i, margin_drop) neither CommonMark nor Python-Markdown
# reads it as emphasis, and the raw Markdown stays readable
_MARKUP = re.compile(r"([\\*\[\]]|<(?=[A-Za-z/!?])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")
_CELL_MARKUP = re.compile(r"([\\*|\[\]]|<(?=[A-Za-z/!?])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9]))")


def literal(text: str, cell: bool = False) -> str:
    """``text`` as Markdown that shows every character as written (see the module docstring)."""
    markup = _CELL_MARKUP if cell else _MARKUP
    parts = CODE_SPAN.split(text)
    return "".join(part if i % 2 else markup.sub(r"\\\1", part) for i, part in enumerate(parts))
