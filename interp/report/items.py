"""What a report section holds: prose, :class:`Table` and :class:`Figure`, in the order added."""

import io
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")  # reports render off-screen; never open windows
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from interp.report import views as report_views  # noqa: E402


@dataclass
class Table:
    name: str
    df: pd.DataFrame
    caption: str = ""
    max_rows: int = 40  # rows shown in the page; the CSV always holds all of them


@dataclass
class Figure:
    name: str
    png: bytes
    caption: str = ""
    views: tuple = ()  # interp.show Views: the interactive version, drawn under the PNG


@dataclass
class Section:
    """One titled part of a report: prose, then tables and figures in the order added."""

    title: str
    items: list[Any] = field(default_factory=list)

    def text(self, markdown: str) -> "Section":
        self.items.append(markdown.strip())
        return self

    def table(self, df: pd.DataFrame, name: str, caption: str = "", max_rows: int = 40) -> "Section":
        check_name(name)
        self.items.append(Table(name, df.reset_index(drop=True), caption, max_rows))
        return self

    def figure(self, fig: "plt.Figure", name: str, caption: str = "", dpi: int = 110,
               interactive: Any = None) -> "Section":
        """Render ``fig`` to PNG now and close it, so long reports do not hold figures.

        ``interactive`` (an ``interp.show`` View or a list of them) is its interactive version, saved
        as ``figures/<name>.html``, linked from report.md, inline under the PNG in report.html. An
        argument, not a ``Section.interactive`` call after the figure: it is the same picture, so it
        shares the figure's name and caption and cannot be attached to the wrong figure.
        """
        check_name(name)
        views = report_views.as_views(interactive)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        self.items.append(Figure(name, buffer.getvalue(), caption, views))
        return self


def check_name(name: str) -> None:
    """Refuse a report, table or figure name that cannot be a file name."""
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"report item name {name!r} must be letters, digits, '-' or '_' (it becomes a file name)")
