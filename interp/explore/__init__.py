"""A local web explorer: pick a model, type a prompt, look inside (``interp explore``).

The page shows the tokens with their next-token top-k, attention patterns per layer and head,
the logit lens, the top MLP neurons at a position with their direct logit attribution, and
activation-patching and causal-tracing heatmaps computed by :mod:`interp.patching` (activation patching and
causal tracing). A JSON API underneath (:mod:`interp.explore.app`) serves the page and
scripts alike. Everything is served from the package: no CDN, nothing fetched.

    from interp.explore import Entry, Registry, create_app, serve
    serve(Registry({"mine": Entry(lambda: my_model)}))     # http://127.0.0.1:8765
"""

from interp.explore.app import create_app
from interp.explore.queries import Limits
from interp.explore.server import serve
from interp.explore.subjects import Entry, Registry, Subject

__all__ = ["Entry", "Limits", "Registry", "Subject", "create_app", "serve"]
