"""``report.md``: a report as Markdown, every caption, cell and heading of plain text shown literally."""

import base64
import re
from typing import TYPE_CHECKING, Any

from interp.markup import literal
from interp.report import views as report_views
from interp.report.items import Figure, Table

if TYPE_CHECKING:
    from interp.report import Report


def to_markdown(report: "Report", inline_figures: bool = False) -> str:
    """The report as Markdown; with ``inline_figures`` the PNGs are data URLs (for ``report.html``)."""
    lines = [f"# {report.title}", ""]
    if report.summary:
        lines += [report.summary, ""]
    if report.headlines:
        lines += ["| headline | value | meaning |", "| --- | --- | --- |"]
        for key, h in report.headlines.items():
            lines.append(f"| {_cell(key)} | {_cell(format_value(h['value']))} | {_cell(h['description'])} |")
        lines.append("")
    if report.timing_note():
        lines += [f"*{_inline(report.timing_note())}*", ""]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for item in section.items:
            if isinstance(item, str):
                lines += [_separate_lists(item), ""]
            elif isinstance(item, Table):
                shown = item.df.head(item.max_rows).rename(columns=lambda c: _cell(str(c)))
                shown = shown.map(lambda v: _cell(v) if isinstance(v, str) else v)
                shown.columns = [_cell(str(c)) for c in item.df.columns]
                lines += [shown.to_markdown(index=False, floatfmt=".4g", intfmt=","), ""]
                more = len(item.df) - len(shown)
                note = f" ({more} more rows in `{item.name}.csv`)" if more > 0 else ""
                if item.caption or note:
                    lines += [f"*Table {_inline(item.name)}: {_inline(item.caption)}{note}*", ""]
            elif isinstance(item, Figure):
                if inline_figures:
                    src = "data:image/png;base64," + base64.b64encode(item.png).decode()
                else:
                    src = f"figures/{item.name}.png"
                lines += [f"![{_alt(item.caption or item.name)}]({src})", ""]
                if item.views:
                    lines += [report_views.placeholder(item.name) if inline_figures
                              else report_views.markdown_link(item.name), ""]
                if item.caption:
                    lines += [f"*Figure {_inline(item.name)}: {_inline(item.caption)}*", ""]
    return "\n".join(lines)


def format_value(value: Any) -> str:
    """A headline value as the report and the index show it: thousands separated, four significant digits."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.4g}"
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.1f}"
    return str(value)


_LIST_AFTER_PROSE = re.compile(r"^((?![-*] |\d+\. ).+)\n([-*] |\d+\. )", re.MULTILINE)


def _separate_lists(text: str) -> str:
    """Put a blank line before a list that follows a paragraph: Markdown needs it, or the
    items run on inside the paragraph."""
    return _LIST_AFTER_PROSE.sub(r"\1\n\n\2", text)


def _inline(text: str) -> str:
    """A caption's text shown literally (``interp.markup.literal``): "D*" keeps its asterisk."""
    return literal(text)


def _cell(text: str) -> str:
    """A table cell's text shown literally, ``|`` included, so "|cos|" does not split the row."""
    return literal(text, cell=True)


def _alt(text: str) -> str:
    """Image alt text showing the caption literally: ``*``, ``_``, ``|``, ``<`` and brackets kept.

    The caption is escaped as in the text under the figure (``interp.markup.literal``), so
    an escaped ``]`` cannot end the alt text early and ``D*`` keeps its asterisk; a code span
    shows its text without the backticks, as the caption does. Line breaks become spaces,
    since a blank line would end the image's paragraph.
    """
    return literal(re.sub(r"\s*\n\s*", " ", text))
