"""Interactive views that work offline: in a notebook (``_repr_html_``) or as standalone HTML files.

    >>> import torch
    >>> from models.transformer import Transformer, TransformerConfig
    >>> from interp import show
    >>> model = Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32, d_vocab=30, n_ctx=16))
    >>> view = show.attention(model, torch.tensor([[1, 5, 7, 9]]))   # a notebook cell shows it
    >>> path = view.save("/tmp/attention.html")                       # or open this file in a browser

Four views, each rendered by one function of ``views.js`` (``window.interpViews``), which the
local explorer page uses too: ``attention`` (pick a layer and head; query x key grid),
``tokens`` (the prompt coloured by a value per token), ``lens`` (the logit lens: top token
per layer and position) and ``heatmap`` (any 2-D array; patching and tracing results).
Nothing is fetched from the network: script, style and data are inlined.
"""

from interp.show.from_model import attention, heatmap, logit_lens, patching, token_values, tracing
from interp.show.view import KINDS, View, jsonable, script_json, views_css, views_js

__all__ = [
    "View", "KINDS", "attention", "token_values", "logit_lens", "heatmap", "patching", "tracing",
    "jsonable", "script_json", "views_js", "views_css",
]
