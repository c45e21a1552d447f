"""Several views in one page, with ``views.css`` and ``views.js`` inlined once rather than once per view.

    >>> from interp.show import View
    >>> from interp.show.embed import assets, fragment, page
    >>> views = [View("heatmap", {"rows": ["a"], "cols": ["x"], "values": [[float(i)]]}) for i in range(3)]
    >>> html = assets() + "".join(fragment(view) for view in views)   # e.g. inside a longer page
    >>> html.count("window.interpViews = {"), html.count('class="iv-root"')
    (1, 3)
    >>> standalone = page(views, title="three views")                 # a whole page that fetches nothing

A view's own ``_repr_html_`` carries the script and style, so that a notebook cell stands alone;
a page showing many views (a report) would carry ~25 kB of the same text per view. ``fragment``
is that same ``_repr_html_`` with the two assets taken out, so it runs only after ``assets()``
has run earlier in the page.
"""

import html
from collections.abc import Sequence

from interp.show.view import CSP, View, views_css, views_js


def assets() -> str:
    """``views.css`` and ``views.js`` as one ``<style>`` and one ``<script>``: put it once, before any fragment."""
    return f"<style>{views_css()}</style>\n<script>\n{views_js()}\n</script>\n"


def fragment(view: View) -> str:
    """``view._repr_html_()`` without the inlined style and script: the view's ``<div>`` and the call that draws it."""
    full = view._repr_html_()
    style, script = f"<style>{views_css()}</style>\n", f"{views_js()}\n"
    if style not in full or script not in full:
        raise RuntimeError("View._repr_html_ no longer inlines views.css and views.js as embed.fragment expects; "
                           "update interp/show/embed.py to match interp/show/view.py")
    return full.replace(style, "", 1).replace(script, "", 1)


def page(views: Sequence[View], title: str, caption: str = "") -> str:
    """A standalone page (no network, as ``View.to_html``) showing ``views`` one under the other, ``caption`` above."""
    views = list(views)
    if not views or not all(isinstance(view, View) for view in views):
        raise ValueError("page takes one or more interp.show View objects")
    note = f"<p class=\"caption\">{html.escape(caption)}</p>\n" if caption else ""
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{html.escape(title)}</title>\n"
        "<style>body { margin: 16px; background: #fff; font: 14px/1.4 system-ui, sans-serif; }"
        " .caption { color: #444; max-width: 60rem; } .iv-root { margin: 0 0 12px; }</style>\n"
        f"</head>\n<body>\n{note}{assets()}" + "\n".join(fragment(view) for view in views) + "\n</body>\n</html>\n"
    )
