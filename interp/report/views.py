"""The interactive version of a report figure: ``interp.show`` views beside the PNG, in all three outputs.

    section.figure(plots.plot_logit_lens(lens), "logit_lens", "p(answer) per layer.",
                   interactive=show.logit_lens(model, prompt, k=3))

A figure given ``interactive=`` (one view, or several drawn one under the other) is written
a second time as ``figures/<name>.html``, a standalone page that fetches nothing;
``report.md`` links that page under the PNG (``[interactive](figures/<name>.html)``), and
``report.html`` shows the views inline under the PNG, so it stays one self-contained file:
``views.css`` and ``views.js`` once at the top of the page, then each view's element and call.

``report.html`` is made from Markdown, and the report escapes ``<`` in its Markdown so that
tokens such as ``<bos>`` show; a view's HTML therefore never passes through Markdown. The
Markdown holds a placeholder paragraph (letters, digits and ``-`` only, which Markdown leaves
alone), replaced by the views after conversion.

``interp.show`` imports torch; this module imports it only when a figure has a view (whose
maker has imported it already), so reading or indexing reports stays light.
"""

import html
from collections.abc import Sequence
from typing import Any

CSS = """
div.interactive{margin:-.5rem 0 1rem;padding:.4rem .5rem;border:1px solid #e3e3e3;border-radius:4px;max-width:100%;
overflow-x:auto} div.interactive .iv-root{padding:4px 0} p.interactive-note{margin:0 0 .2rem;font-size:.85rem;color:#666}
"""


def as_views(interactive: Any) -> tuple:
    """``interactive`` (``None``, a View or a sequence of Views) as a tuple of Views; a ``ValueError`` otherwise."""
    if interactive is None:
        return ()
    from interp.show.view import View

    views = (interactive,) if isinstance(interactive, View) else tuple(interactive)
    if not views or not all(isinstance(view, View) for view in views):
        raise ValueError("interactive= takes an interp.show View (e.g. show.logit_lens(model, prompt)) or a list of "
                         f"them, got {interactive!r}")
    return views


def markdown_link(name: str) -> str:
    """The line ``report.md`` puts under the figure's PNG."""
    return f"[interactive](figures/{name}.html)"


def placeholder(name: str) -> str:
    """A paragraph Markdown leaves as it is (the name hex-encoded: no ``_`` to read as emphasis)."""
    return f"interp-interactive-figure-{name.encode().hex()}"


def page(name: str, views: Sequence[Any], caption: str) -> str:
    """``figures/<name>.html``: the views on a page of their own."""
    from interp.show.embed import page as views_page

    return views_page(views, title=caption or name, caption=caption)


def embed(body: str, figures: Sequence[Any]) -> str:
    """``body`` (Markdown made HTML) with each figure's placeholder replaced by its views, and the assets once."""
    with_views = [figure for figure in figures if figure.views]
    if not with_views:
        return body
    from interp.show.embed import assets, fragment

    for figure in with_views:
        marker = f"<p>{placeholder(figure.name)}</p>"
        if body.count(marker) != 1:
            raise RuntimeError(f"the interactive figure {figure.name!r} has {body.count(marker)} places in the page; "
                               "give each figure its own name")
        views = "\n".join(fragment(view) for view in figure.views)
        block = (f'<div class="interactive"><p class="interactive-note">Interactive version: hover a cell for its '
                 f'value (also on its own page: <a href="figures/{html.escape(figure.name)}.html">'
                 f"figures/{html.escape(figure.name)}.html</a>).</p>\n{views}\n</div>")
        body = body.replace(marker, block)
    return f"<style>{CSS}</style>\n{assets()}{body}"
