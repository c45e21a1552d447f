"""``report.html``: the report's Markdown made one self-contained HTML page (figures inlined), and the page frame
the index shares."""

import html
import re
from typing import TYPE_CHECKING

import markdown as md_lib

from interp.markup import CODE_SPAN
from interp.report import views as report_views

if TYPE_CHECKING:
    from interp.report import Report


def to_html(report: "Report") -> str:
    """``report.html``: Markdown with figures inlined, converted; wide tables set smaller; the views embedded."""
    markdown = _escape_angle_brackets(report.to_markdown(inline_figures=True))
    body = md_lib.markdown(markdown, extensions=["tables", "fenced_code"])
    # long snake_case column names may break after an underscore, so wide tables fit the page
    body = re.sub(r"(<th[^>]*>)(.*?)(</th>)", lambda m: m[1] + m[2].replace("_", "_<wbr>") + m[3], body)
    body = _WIDE_TABLE.sub(_shrink_wide_table, body)
    if report.headlines:  # the first table is the headline table: its values must not wrap mid-number
        body = body.replace("<table>", '<table class="headline">', 1)
    body = report_views.embed(body, report.figures())  # after Markdown, which would escape the views' HTML
    return html_page(report.title, body)


_CODE = CODE_SPAN


def _escape_angle_brackets(markdown: str) -> str:
    """Escape ``<`` outside code so words like ``<bos>`` show instead of vanishing as HTML tags.

    Reports never embed raw HTML in their prose, tables or captions; Markdown passes tags
    through untouched, so a token name such as ``<first>`` would otherwise disappear.
    """
    parts = _CODE.split(markdown)
    return "".join(part if i % 2 else part.replace("\\<", "&lt;").replace("<", "&lt;")
                   for i, part in enumerate(parts))


_WIDE_TABLE = re.compile(r"<table>(.*?)</table>", re.DOTALL)
WIDE_COLUMNS = 10  # a table with more columns than this is set smaller, so it fits the page


def _shrink_wide_table(match: re.Match) -> str:
    header = match[1].split("</tr>", 1)[0]
    if len(re.findall(r"<th[ >]", header)) <= WIDE_COLUMNS:  # <th> cells, not <thead>
        return match[0]
    return f'<table class="wide">{match[1]}</table>'


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:60rem;
margin:2rem auto;padding:0 1rem;line-height:1.5;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem;display:block;overflow-x:auto;max-width:100%}
th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
table.headline td:nth-child(2),table.index td.num{white-space:nowrap}
table.headline td:nth-child(3),table.headline th:nth-child(3),table.index td,table.index th{text-align:left}
td{overflow-wrap:normal;max-width:36rem}
img{max-width:100%;height:auto;display:block;margin:1rem 0}
table.index{display:table;width:100%} table.index td{vertical-align:top} table.index td:nth-child(2){max-width:none}
b.num{white-space:nowrap} table.wide{font-size:.75rem} table.wide th,table.wide td{padding:.2rem .35rem} ul.headlines{margin:0;padding-left:1rem} ul.headlines code{font-size:.75rem;color:#777}
.note{background:#fff8e1;border-left:4px solid #f0c040;padding:.4rem .8rem}
em{color:#555} code{background:#f4f4f4;padding:0 .2rem}
h1{border-bottom:2px solid #ddd} h2{margin-top:2.5rem;border-bottom:1px solid #eee}
"""


def html_page(title: str, body: str, css: str = "") -> str:
    """A whole HTML page: the reports' style sheet (plus ``css``) and ``body``."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}{css}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )
