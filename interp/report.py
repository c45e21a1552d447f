"""Research reports: titled sections of prose, tables, figures and headline numbers.

An analysis builds a :class:`Report` and returns it; the command line saves it. Saving
writes, under ``<out>/<name>/``:

- ``report.md``: the whole report as Markdown (figures linked from ``figures/``);
- ``report.html``: the same, self-contained (figures inlined), opens offline;
- ``results.json``: headline figures, config, seed, package versions, elapsed seconds;
- one CSV per table and ``figures/*.png``; a figure with an interactive version (an
  ``interp.show`` view) also ``figures/<name>.html``, shown inline in ``report.html``
  (``interp/report_views.py``).

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
"""

import base64
import dataclasses
import html
import io
import json
import math
import os
import platform
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # reports render off-screen; never open windows
import markdown as md_lib  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from interp import report_views  # noqa: E402
from interp.atomic_dir import replace_dir  # noqa: E402
from interp.markup import CODE_SPAN, literal  # noqa: E402

_VERSIONED_PACKAGES = (
    "torch", "transformer_lens", "transformers", "numpy", "scikit-learn", "pandas",
    "einops", "gensim",
)


def package_versions() -> dict[str, str]:
    """Versions of the packages results depend on, for ``results.json``."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("interp",) + _VERSIONED_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return versions


def machine() -> dict[str, Any]:
    """What the numbers were computed on, for ``results.json``: trained subjects and float32 reductions can
    differ between CPUs whose kernels torch chooses differently (its ``cpu_capability``: AVX2, AVX512, ...)."""
    import torch

    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    return {"cpu": model or platform.machine(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def _subjects(runs: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    """Zoo records grouped by subject and preset: name, "full, seed 0" (or "quick, seeds 0, 1; 4 models"), seconds."""
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["name"], bool(run["quick"])), []).append(run)
    out = []
    for (name, quick), group in groups.items():
        seeds = list(dict.fromkeys(run["seed"] for run in group))
        which = f"{'quick' if quick else 'full'}, seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
        if len(group) > len(seeds):
            which += f"; {len(group)} models"
        out.append((name, which, sum(run.get("seconds", 0) for run in group)))
    return out


def _not_trained(cached: list[dict[str, Any]], trained: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cache reads that the run's own trainings do not explain (a subject a sweep trained is read back after)."""
    left = [(t["name"], t["quick"], t["seed"]) for t in trained]
    out = []
    for read in cached:
        key = (read["name"], read["quick"], read["seed"])
        if key in left:
            left.remove(key)
        else:
            out.append(read)
    return out


def to_jsonable(value: Any) -> Any:
    """Turn configs, numpy scalars, tensors and paths into plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars, torch tensors
        return to_jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


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
        _check_name(name)
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
        _check_name(name)
        views = report_views.as_views(interactive)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        self.items.append(Figure(name, buffer.getvalue(), caption, views))
        return self


def _check_name(name: str) -> None:
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"report item name {name!r} must be letters, digits, '-' or '_' (it becomes a file name)")


class Report:
    """A report under construction; see the module docstring."""

    def __init__(self, name: str, title: str, config: Any = None, summary: str = ""):
        _check_name(name)
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
                                    for name, which, seconds in _subjects(self.subject_training))
                parts[-1] += f", including {trained} on first use of the cache"
        cached = _not_trained(self.subject_cached, self.subject_training)
        if cached:
            parts.append("zoo subjects read from the cache, not trained: " + ", ".join(
                f"`{name}` ({which})" for name, which, _ in _subjects(cached)))
        for label, value in (("preset", self.preset), ("seed", self.seed), ("date", self.date)):
            if value is not None:
                parts.append(f"{label} {value}")
        return "; ".join(parts) + "." if parts else ""

    def tables(self) -> list[Table]:
        return [item for s in self.sections for item in s.items if isinstance(item, Table)]

    def figures(self) -> list[Figure]:
        return [item for s in self.sections for item in s.items if isinstance(item, Figure)]

    def to_markdown(self, inline_figures: bool = False) -> str:
        lines = [f"# {self.title}", ""]
        if self.summary:
            lines += [self.summary, ""]
        if self.headlines:
            lines += ["| headline | value | meaning |", "| --- | --- | --- |"]
            for key, h in self.headlines.items():
                lines.append(f"| {_cell(key)} | {_cell(format_value(h['value']))} | {_cell(h['description'])} |")
            lines.append("")
        if self.timing_note():
            lines += [f"*{_inline(self.timing_note())}*", ""]
        for section in self.sections:
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

    def to_html(self) -> str:
        markdown = _escape_angle_brackets(self.to_markdown(inline_figures=True))
        body = md_lib.markdown(markdown, extensions=["tables", "fenced_code"])
        # long snake_case column names may break after an underscore, so wide tables fit the page
        body = re.sub(r"(<th[^>]*>)(.*?)(</th>)", lambda m: m[1] + m[2].replace("_", "_<wbr>") + m[3], body)
        body = _WIDE_TABLE.sub(_shrink_wide_table, body)
        if self.headlines:  # the first table is the headline table: its values must not wrap mid-number
            body = body.replace("<table>", '<table class="headline">', 1)
        body = report_views.embed(body, self.figures())  # after Markdown, which would escape the views' HTML
        return _html_page(self.title, body)

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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.4g}"
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.1f}"
    return str(value)


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


def _html_page(title: str, body: str, css: str = "") -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}{css}</style></head>"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_index(out: str | os.PathLike, order: list[str] | None = None) -> Path:
    """Write ``<out>/index.html`` linking every report found under ``out``.

    Reads each ``<out>/*/results.json``, so reports from earlier runs are listed too, each
    with its preset, seed and date (and a note when they come from different runs); every
    headline figure is shown with its description. Names in ``order`` come first, in that
    order, the rest alphabetically. ``interp run`` rewrites it after every run.
    """
    out = Path(out)
    rank = {name: i for i, name in enumerate(order or [])}
    found = sorted(out.glob("*/results.json"), key=lambda p: (rank.get(p.parent.name, len(rank)), p.parent.name))
    rows, runs = [], set()
    for results_file in found:
        results = json.loads(results_file.read_text())
        name = results_file.parent.name
        descriptions = results.get("headline_descriptions", {})
        headline = "".join(
            f"<li>{html.escape(descriptions.get(k) or k)}: <b class=\"num\">{html.escape(format_value(v))}</b> "
            f"<code>{html.escape(k)}</code></li>"
            for k, v in results.get("headline", {}).items()
        )
        preset = results.get("preset") or _guess_preset(results)
        date = results.get("date") or _file_date(results_file)
        runs.add((preset, results.get("seed"), date))
        elapsed, training = results.get("elapsed_seconds"), results.get("subject_training_seconds") or 0
        time_text = "" if elapsed is None else f"{elapsed:,.0f} s"
        if training:
            time_text += f"<br><small>incl. {training:,.0f} s training its subject</small>"
        rows.append(
            f"<tr><td><a href=\"{name}/report.html\">{html.escape(results.get('title', name))}</a>"
            f"<br><code>{name}</code></td><td style=\"text-align:left\"><ul class=\"headlines\">{headline}</ul></td>"
            f"<td>{html.escape(str(preset))}</td><td>{html.escape(str(results.get('seed')))}</td>"
            f"<td class=\"num\">{html.escape(str(date))}</td><td class=\"num\">{time_text}</td></tr>"
        )
    mixed = (f"<p class=\"note\">These reports come from {len(runs)} different runs (preset, seed, date): "
             + "; ".join(html.escape(f"{p}, seed {s}, {d}") for p, s, d in sorted(runs, key=str))
             + ". Compare numbers across reports with care.</p>") if len(runs) > 1 else ""
    body = (
        "<h1>interp reports</h1><p>Each report answers one question; click through for the "
        "method, tables and figures. Time includes training a zoo subject when the run had to.</p>" + mixed +
        "<table class=\"index\"><tr><th>report</th><th>headline figures</th><th>preset</th><th>seed</th>"
        "<th>date</th><th>time</th></tr>" + "".join(rows) + "</table>"
    )
    path = out / "index.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(_html_page("interp reports", body, css="body{max-width:80rem}"))
    os.replace(tmp, path)
    return path


def _guess_preset(results: dict) -> str:
    """Reports written before results.json stored the preset: the config says whether it was quick."""
    config = results.get("config") or {}
    return "quick" if config.get("quick_subject") or config.get("quick") else "unknown"


def _file_date(path: Path) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(path.stat().st_mtime))
