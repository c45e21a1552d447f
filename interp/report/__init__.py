"""Research reports: titled sections of prose, tables, figures and headline numbers.

An analysis builds a :class:`Report` and returns it; the command line saves it. Saving
writes, under ``<out>/<name>/``:

- ``report.md``: the whole report as Markdown (figures linked from ``figures/``);
- ``report.html``: the same, self-contained (figures inlined), opens offline;
- ``results.json``: headline figures, config, seed, package versions, elapsed seconds;
- one CSV per table and ``figures/*.png``; a figure with an interactive version (an
  ``interp.show`` view) also ``figures/<name>.html``, shown inline in ``report.html``
  (``interp/report/views.py``).

Example::

    import pandas as pd, matplotlib.pyplot as plt
    from interp.report import Report

    report = Report("demo", "A demonstration", config={"seed": 0})
    section = report.section("Numbers", "Two numbers and their sum.")
    section.table(pd.DataFrame({"a": [1], "b": [2]}), "numbers")
    fig, ax = plt.subplots(); ax.plot([1, 2, 3])
    section.figure(fig, "line", "A rising line.")
    report.headline("sum", 3, "a + b")
    path = report.save("out")          # out/demo/report.html, results.json, ...

Writes are atomic: the report is assembled in a temporary folder beside the target and
swapped into place only when complete, so an interrupted run leaves the previous report.

The package, by concept: :class:`Report` and its atomic :meth:`Report.save` here; ``items``
(:class:`Section`, :class:`Table`, :class:`Figure`), ``provenance`` (versions, machine, zoo
subjects, JSON values), ``markdown`` (``report.md``), ``page`` (``report.html``), ``views``
(interactive figures), ``index`` (``index.html``).
"""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from interp.atomic_dir import replace_dir
from interp.report import views as report_views
from interp.report.index import write_index
from interp.report.items import Figure, Section, Table, check_name
from interp.report.markdown import format_value, to_markdown
from interp.report.page import WIDE_COLUMNS, to_html
from interp.report.provenance import machine, not_trained, package_versions, subjects, to_jsonable

__all__ = ["Report", "Section", "Table", "Figure", "write_index", "format_value", "to_jsonable",
           "package_versions", "machine", "WIDE_COLUMNS"]


class Report:
    """A report under construction; see the module docstring."""

    def __init__(self, name: str, title: str, config: Any = None, summary: str = ""):
        check_name(name)
        self.name = name
        self.title = title
        self.config = config
        self.summary = summary.strip()
        self.sections: list[Section] = []
        self.headlines: dict[str, dict[str, Any]] = {}
        self.started = time.perf_counter()
        self.elapsed_seconds: float | None = None
        self.preset: str | None = None  # "quick" or "full"; set by whoever chose the config (``interp run``)
        # zoo subjects trained during this report's run: {"name", "quick", "seed", "seconds"};
        # their seconds are part of elapsed_seconds (``interp run`` times the whole run)
        self.subject_training: list[dict[str, Any]] = []
        # zoo subjects this run read from the cache instead (same keys but "seconds"); said in the timing note
        self.subject_cached: list[dict[str, Any]] = []
        self.date: str | None = None  # UTC date the report was saved

    def section(self, title: str, text: str = "") -> Section:
        section = Section(title)
        if text:
            section.text(text)
        self.sections.append(section)
        return section

    def headline(self, key: str, value: Any, description: str = "") -> None:
        """A headline figure: shown on the index page and stored in ``results.json``."""
        self.headlines[key] = {"value": to_jsonable(value), "description": description}

    # -- what gets written ---------------------------------------------------------
    @property
    def seed(self) -> Any:
        config = to_jsonable(self.config) if self.config is not None else {}
        return config.get("seed") if isinstance(config, dict) else None

    def results(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "headline": {k: v["value"] for k, v in self.headlines.items()},
            "headline_descriptions": {k: v["description"] for k, v in self.headlines.items()},
            "config": to_jsonable(self.config),
            "seed": self.seed,
            "preset": self.preset,
            "date": self.date,
            "versions": package_versions(),
            "machine": machine(),
            "elapsed_seconds": self.elapsed_seconds,
            "subject_training_seconds": round(sum(t["seconds"] for t in self.subject_training), 1),
            "subject_training": self.subject_training,
        }

    def timing_note(self) -> str:
        """One sentence: how long the run took, what of it was training zoo subjects, preset, seed and date."""
        parts = []
        if self.elapsed_seconds is not None:
            parts.append(f"Ran in {self.elapsed_seconds:,.0f} s")
            if self.subject_training:
                trained = ", ".join(f"{seconds:,.0f} s training the zoo subject `{name}` ({which})"
                                    for name, which, seconds in subjects(self.subject_training))
                parts[-1] += f", including {trained} on first use of the cache"
        cached = not_trained(self.subject_cached, self.subject_training)
        if cached:
            parts.append("zoo subjects read from the cache, not trained: " + ", ".join(
                f"`{name}` ({which})" for name, which, _ in subjects(cached)))
        for label, value in (("preset", self.preset), ("seed", self.seed), ("date", self.date)):
            if value is not None:
                parts.append(f"{label} {value}")
        return "; ".join(parts) + "." if parts else ""

    def tables(self) -> list[Table]:
        return [item for s in self.sections for item in s.items if isinstance(item, Table)]

    def figures(self) -> list[Figure]:
        return [item for s in self.sections for item in s.items if isinstance(item, Figure)]

    def to_markdown(self, inline_figures: bool = False) -> str:
        return to_markdown(self, inline_figures)

    def to_html(self) -> str:
        return to_html(self)

    def save(self, out: str | os.PathLike) -> Path:
        """Write the report to ``<out>/<name>/`` atomically and return that folder."""
        if self.elapsed_seconds is None:
            self.elapsed_seconds = round(time.perf_counter() - self.started, 2)
        if self.date is None:
            self.date = time.strftime("%Y-%m-%d", time.gmtime())
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        target = out / self.name
        staging = Path(tempfile.mkdtemp(prefix=f".{self.name}.", dir=out))
        try:
            os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it 0700; a report reads like any folder
            (staging / "figures").mkdir()
            for figure in self.figures():
                (staging / "figures" / f"{figure.name}.png").write_bytes(figure.png)
                if figure.views:
                    page = report_views.page(figure.name, figure.views, figure.caption)
                    (staging / "figures" / f"{figure.name}.html").write_text(page, encoding="utf-8")
            for table in self.tables():
                table.df.to_csv(staging / f"{table.name}.csv", index=False)
            (staging / "report.md").write_text(self.to_markdown())
            (staging / "report.html").write_text(self.to_html(), encoding="utf-8")
            (staging / "results.json").write_text(json.dumps(self.results(), indent=2) + "\n")
            replace_dir(staging, target)  # one step: a kill -9 leaves the old report or the new one
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
