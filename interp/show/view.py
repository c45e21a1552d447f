"""A self-contained interactive view: data for one of ``views.js``'s renderers, as HTML.

    >>> from interp.show import View
    >>> view = View("heatmap", {"rows": ["a", "b"], "cols": ["x"], "values": [[0.5], [-1.0]]})
    >>> html = view._repr_html_()          # what a notebook shows: a <div>, <style>, <script>
    >>> page = view.to_html(title="demo")  # a whole page; view.save("demo.html") writes it

The HTML loads nothing: ``views.css`` and ``views.js`` are inlined, the data is embedded as
JSON with ``<``, ``>`` and ``&`` escaped (a token ``</script>`` cannot end the script), and
the standalone page carries a Content-Security-Policy that forbids every network request.
Tensors and arrays become plain Python numbers (float32 and narrower as the shortest decimal
that reads back as the same float32); NaN and infinities become ``null``, drawn as a grey
striped cell.
"""

import html
import json
import math
import os
import tempfile
import uuid
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

KINDS = ("attention", "tokens", "lens", "heatmap")

# the standalone page may run its own inline script and style, and fetch nothing
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


@lru_cache(maxsize=None)
def _asset(name: str) -> str:
    return resources.files("interp.show").joinpath(name).read_text(encoding="utf-8")


def views_js() -> str:
    """The text of ``views.js`` (defines ``window.interpViews``; safe to load twice)."""
    return _asset("views.js")


def views_css() -> str:
    """The text of ``views.css`` (classes prefixed ``iv-``)."""
    return _asset("views.css")


def script_json(data: Any) -> str:
    """``data`` as JSON that is safe inside ``<script>``: ``<``, ``>``, ``&`` written as ``\\u003c`` etc.

    ASCII only (so U+2028/U+2029 are escaped too); ``NaN`` and infinities are refused, so
    the text is valid JSON and a valid JavaScript expression.
    """
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def jsonable(value: Any) -> Any:
    """``value`` with tensors, arrays and NumPy scalars as plain Python lists and numbers.

    Non-finite floats become ``None``. float32 (and float16, bfloat16) values become the
    shortest decimal that reads back as the same float32, so the JSON stays short.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(value, torch.Tensor):
        tensor = value.detach().cpu()
        if tensor.dtype in (torch.bfloat16, torch.float16):
            tensor = tensor.float()
        return jsonable(tensor.numpy())
    if isinstance(value, np.ndarray):
        return _array_jsonable(value)
    if isinstance(value, np.generic):
        return jsonable(_array_jsonable(np.asarray(value)))
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    raise ValueError(f"cannot put a {type(value).__name__} into a view's data; give numbers, strings, "
                     "lists, dicts, tensors or NumPy arrays")


def _array_jsonable(array: np.ndarray) -> Any:
    if array.dtype.kind == "f":
        if array.dtype.itemsize <= 4:  # shortest float32 repr, read back as a Python float
            array = array.astype(np.float32).astype(str).astype(np.float64)
        array = array.astype(np.float64)
        finite = np.isfinite(array)
        if not finite.all():
            array = np.where(finite, array, None)
        return array.tolist()
    if array.dtype.kind in "iub":
        return array.tolist()
    if array.dtype.kind in "UO":
        return jsonable(array.tolist())
    raise ValueError(f"cannot put an array of dtype {array.dtype} into a view's data; give real numbers")


class View:
    """One view: a ``kind`` of ``views.js`` renderer and its JSON-able ``data``.

        >>> view = View("tokens", {"tokens": ["<bos>", "h", "i"], "values": [0.0, 1.5, -2.0], "label": "neuron 3"})
        >>> view.kind, view.data["values"]
        ('tokens', [0.0, 1.5, -2.0])

    Data shapes (checked here, with a ``ValueError`` saying what to change):
    ``attention``: ``tokens [pos]``, ``patterns [layer][head][query_pos][key_pos]``,
    ``layer_labels [layer]`` (optional); ``tokens``: ``tokens [pos]``, ``values [pos]``,
    ``label`` (optional); ``lens``: ``tokens [pos]``, ``layer_labels [layer]``,
    ``top_tokens [layer][pos]``, ``probs [layer][pos]`` (optional ``top_k_tokens`` and
    ``top_k_probs [layer][pos][k]`` add the next tokens to the tooltip); ``heatmap``:
    ``rows``, ``cols``, ``values [row][col]``, optional ``title row_name col_name value_name``.
    In a notebook the view shows itself (``_repr_html_``); ``to_html`` is a standalone
    page and ``save(path)`` writes one atomically.

    Labels show whitespace: a leading or trailing space as ``·``, a newline as ``↵``, a tab
    as ``⇥``, the empty token as ``∅``; tooltips quote tokens as they are (``' Paris'``) and
    write values with 4 significant digits, as ``format(v, ".4g")`` does.
    """

    def __init__(self, kind: str, data: dict[str, Any]):
        if kind not in KINDS:
            raise ValueError(f"unknown view kind {kind!r}; use one of {KINDS}")
        if not isinstance(data, dict):
            raise ValueError(f"a view's data is a dict of its fields, got {type(data).__name__}")
        self.kind = kind
        self.data = jsonable(data)
        _CHECKS[kind](self.data)

    def __repr__(self) -> str:
        return f"View({self.kind!r}, fields={sorted(self.data)})"

    def to_json(self) -> str:
        """The data as JSON (safe to embed in ``<script>``), as ``views.js`` takes it."""
        return script_json(self.data)

    def _repr_html_(self) -> str:
        """A self-contained fragment: a ``<div>``, the inlined style and script, and the call."""
        element_id = f"iv-{uuid.uuid4().hex}"
        return (
            f'<div id="{element_id}" class="iv-root">interp.show {self.kind} view: it needs JavaScript '
            "(in Jupyter, trust the notebook).</div>\n"
            f"<style>{views_css()}</style>\n"
            f"<script>\n{views_js()}\n"
            f'(function () {{ var el = document.getElementById("{element_id}"); '
            f"if (el) window.interpViews.{self.kind}(el, {self.to_json()}); }})();\n</script>"
        )

    def to_html(self, title: Optional[str] = None) -> str:
        """A whole standalone HTML page showing the view; it fetches nothing."""
        title = title if title is not None else self.data.get("title") or self.data.get("label") or f"{self.kind} view"
        return (
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(str(title))}</title>\n"
            "<style>body { margin: 16px; background: #fff; }</style>\n</head>\n<body>\n"
            f"{self._repr_html_()}\n</body>\n</html>\n"
        )

    def save(self, path: Union[str, os.PathLike], title: Optional[str] = None) -> Path:
        """Write :meth:`to_html` to ``path`` atomically (a temporary file beside it, then ``os.replace``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self.to_html(title)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path


# ----------------------------------------------------------------------------- checks


def _strings(data: dict, field: str, kind: str) -> list:
    value = data.get(field)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"a {kind} view needs {field!r}: a list of strings")
    return value


def _matrix(data: dict, field: str, n_rows: int, n_cols: int, what: str, kind: str) -> None:
    value = data.get(field)
    if not isinstance(value, list) or len(value) != n_rows:
        got = len(value) if isinstance(value, list) else type(value).__name__
        raise ValueError(f"a {kind} view's {field!r} must have {n_rows} rows ({what}), got {got}")
    for i, row in enumerate(value):
        if not isinstance(row, list) or len(row) != n_cols:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise ValueError(f"a {kind} view's {field}[{i}] must have {n_cols} entries ({what}), got {got}")


def _check_attention(data: dict) -> None:
    tokens = _strings(data, "tokens", "attention")
    patterns = data.get("patterns")
    if not isinstance(patterns, list) or not patterns:
        raise ValueError("an attention view needs 'patterns' [layer][head][query_pos][key_pos] with at least one layer")
    for layer, heads in enumerate(patterns):
        if not isinstance(heads, list) or not heads:
            raise ValueError(f"patterns[{layer}] must be a list of heads [head][query_pos][key_pos]")
        for head, pattern in enumerate(heads):
            _matrix({"p": pattern}, "p", len(tokens), len(tokens),
                    f"layer {layer} head {head}: query_pos x key_pos for {len(tokens)} tokens", "attention")
    if "layer_labels" in data and len(_strings(data, "layer_labels", "attention")) != len(patterns):
        raise ValueError(f"layer_labels has {len(data['layer_labels'])} labels for {len(patterns)} layers")


def _check_tokens(data: dict) -> None:
    tokens = _strings(data, "tokens", "tokens")
    values = data.get("values")
    if not isinstance(values, list) or len(values) != len(tokens):
        got = len(values) if isinstance(values, list) else type(values).__name__
        raise ValueError(f"a tokens view needs one value per token: {len(tokens)} tokens, got {got} values")
    if "label" in data and not isinstance(data["label"], str):
        raise ValueError("a tokens view's 'label' must be a string")


def _check_lens(data: dict) -> None:
    tokens = _strings(data, "tokens", "lens")
    labels = _strings(data, "layer_labels", "lens")
    _matrix(data, "top_tokens", len(labels), len(tokens), "layer x pos", "lens")
    _matrix(data, "probs", len(labels), len(tokens), "layer x pos", "lens")


def _check_heatmap(data: dict) -> None:
    rows = _strings(data, "rows", "heatmap")
    cols = _strings(data, "cols", "heatmap")
    _matrix(data, "values", len(rows), len(cols), f"{len(rows)} rows x {len(cols)} cols", "heatmap")
    for field in ("title", "row_name", "col_name", "value_name"):
        if data.get(field) is not None and not isinstance(data[field], str):
            raise ValueError(f"a heatmap view's {field!r} must be a string")


_CHECKS = {"attention": _check_attention, "tokens": _check_tokens, "lens": _check_lens, "heatmap": _check_heatmap}
