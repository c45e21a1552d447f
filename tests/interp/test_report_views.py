"""A report figure's interactive version (interp/report/views.py): figures/<name>.html, the Markdown link,
the views inline in report.html (script and style once, nothing fetched), and the page in Debian's chromium
with every non-file request refused."""

import re

import matplotlib.pyplot as plt
import numpy as np
import pytest

from interp import show
from interp.report import Report
from interp.show.embed import fragment
from tests.interp.test_show import PROMPT, check_grid, model, page  # noqa: F401 (pytest fixtures)

EXTERNAL = re.compile(r"https?://|//cdn", re.IGNORECASE)


def _figure():
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([1, 2, 3])
    return fig


def _views(model):
    lens = show.logit_lens(model, PROMPT, k=3)
    heat = show.heatmap(np.arange(6.0).reshape(2, 3) - 2, ["a", "<b>"], list("xyz"), title="a heatmap")
    return lens, heat


def _report(model):
    lens, heat = _views(model)
    report = Report("demo", "Interactive figures", config={"seed": 0})
    section = report.section("Lens", "The lens of a <bos>-less prompt.")
    section.figure(_figure(), "lens", "the lens, top token probability", interactive=lens)
    section.figure(_figure(), "plain", "a figure without an interactive version")
    report.section("Two views").figure(_figure(), "pair", "two heatmaps", interactive=[heat, heat])
    return report, lens, heat


@pytest.fixture
def saved(model, tmp_path):
    report, lens, heat = _report(model)
    return report.save(tmp_path), lens, heat


def test_the_saved_report_has_each_interactive_figure(saved):
    folder, lens, heat = saved
    assert sorted(p.name for p in (folder / "figures").iterdir()) == \
        ["lens.html", "lens.png", "pair.html", "pair.png", "plain.png"], "one HTML file per figure with views"
    standalone = (folder / "figures" / "lens.html").read_text(encoding="utf-8")
    assert standalone.startswith("<!doctype html>") and "Content-Security-Policy" in standalone
    assert lens.to_json() in standalone and standalone.count("window.interpViews = {") == 1
    pair = (folder / "figures" / "pair.html").read_text(encoding="utf-8")
    assert pair.count(heat.to_json()) == 2 and pair.count("window.interpViews = {") == 1


def test_report_html_embeds_the_views_with_one_copy_of_the_script(saved):
    folder, lens, heat = saved
    text = (folder / "report.html").read_text(encoding="utf-8")
    assert text.count(lens.to_json()) == 1 and text.count(heat.to_json()) == 2, "each view's data inline once"
    assert text.count(show.views_js()) == 1, "views.js must be inlined once per page, not once per view"
    assert text.count(show.views_css()) == 1, "views.css must be inlined once per page, not once per view"
    assert text.count('class="iv-root"') == 3
    assert not EXTERNAL.search(text), f"report.html names an external URL: {EXTERNAL.findall(text)}"
    assert "src=\"figures/" not in text, "the PNGs stay inlined"
    assert "interp-interactive-figure" not in text, "a placeholder was left in the page"
    assert "&lt;bos&gt;-less" in text, "prose still shows <bos> literally"
    # below its own PNG, before its caption; a figure without views has no interactive block
    lens_png, lens_caption = text.index("alt=\"the lens, top token probability\""), text.index("Figure lens:")
    assert lens_png < text.index('class="interactive"') < lens_caption
    plain = text[text.index("alt=\"a figure without"):text.index("Figure plain:")]
    assert 'class="interactive"' not in plain


def test_markdown_does_not_mangle_the_fragment(model):
    lens, _ = _views(model)
    report = Report("demo", "x")
    report.section("s").figure(_figure(), "lens", "c", interactive=lens)
    body = report.to_html()
    match = re.search(r'<div id="(iv-[0-9a-f]+)" class="iv-root">', body)
    assert match, "the view's element is missing from report.html"
    # the same fragment as embed.fragment makes, apart from the element's random id
    expected = re.sub(r"iv-[0-9a-f]{32}", match[1], fragment(lens))
    assert expected in body, "Markdown changed the view's HTML"


def test_report_md_links_the_html_file_next_to_the_png(saved):
    folder, _, _ = saved
    lines = (folder / "report.md").read_text().splitlines()
    png = lines.index("![the lens, top token probability](figures/lens.png)")
    assert lines[png + 2] == "[interactive](figures/lens.html)", "the link belongs right under the PNG"
    assert "[interactive](figures/pair.html)" in lines and "figures/plain.html" not in "\n".join(lines)
    assert "iv-root" not in "\n".join(lines), "report.md links the views; it does not embed them"


def test_bad_interactive_arguments_say_what_to_give(model):
    section = Report("demo", "x").section("s")
    for bad in ("a view", [], [show.heatmap(np.eye(2)), "b"]):
        with pytest.raises(ValueError, match="interp.show View"):
            section.figure(_figure(), "f", interactive=bad)
    twice = Report("demo", "x")
    twice.section("s").figure(_figure(), "f", interactive=show.heatmap(np.eye(2)))
    twice.section("t").figure(_figure(), "f", interactive=show.heatmap(np.eye(2)))
    with pytest.raises(RuntimeError, match="its own name"):
        twice.to_html()


def test_a_report_without_views_has_no_script():
    report = Report("demo", "x")
    report.section("s").figure(_figure(), "f", "c")
    text = report.to_html()
    assert "<script" not in text and "iv-root" not in text


# ----------------------------------------------------------------------------- in a browser


def test_report_html_in_a_browser(saved, page, tmp_path):
    folder, lens, _ = saved
    p = page.open(folder / "report.html")
    roots = p.locator(".iv-root")
    assert roots.count() == 3
    lens_cells = len(lens.data["layer_labels"]) * len(lens.data["tokens"])
    assert len(page.cells()) == lens_cells + 2 * 6, "every view drew one cell per site"
    check_grid(roots.nth(0).evaluate(
        "r => [...r.querySelectorAll('.iv-cell')].map(e => [+e.dataset.row, +e.dataset.col, e.dataset.value])"),
        lens.data["probs"])
    second = roots.nth(1)  # hovering a cell shows its value in its own view's tooltip
    second.locator(".iv-cell[data-row='1'][data-col='2']").hover()
    assert second.locator(".iv-tooltip").inner_text() == "<b>, z: 3"
    # under its PNG, inside the page's width
    png = p.locator("img >> nth=0").bounding_box()
    block = p.locator("div.interactive >> nth=0").bounding_box()
    assert block["y"] >= png["y"] + png["height"] - 1, "the interactive view belongs under its PNG"
    assert p.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page overflows sideways"
    p.screenshot(path=tmp_path / "report.png", full_page=True)
    page.open(folder / "figures" / "pair.html")
    assert len(page.cells()) == 2 * 6
