"""``<out>/index.html``: one page linking every report under a folder, with its headline figures."""

import html
import json
import os
import time
from pathlib import Path

from interp.report.markdown import format_value
from interp.report.page import html_page



def training_text(elapsed: float, training: float) -> str:
    """What a run's time included of training its zoo subjects. Trainings that ran side by side on a
    sweep's workers can add up to more than the run's wall-clock time; the text says so then."""
    if training <= elapsed:
        return f"incl. {training:,.0f} s training its subjects"
    return f"incl. its subjects' training: {training:,.0f} s of worker time, side by side"

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
            time_text += f"<br><small>{html.escape(training_text(elapsed or 0.0, training))}</small>"
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
    tmp.write_text(html_page("interp reports", body, css="body{max-width:80rem}"))
    os.replace(tmp, path)
    return path


def _guess_preset(results: dict) -> str:
    """Reports written before results.json stored the preset: the config says whether it was quick."""
    config = results.get("config") or {}
    return "quick" if config.get("quick_subject") or config.get("quick") else "unknown"


def _file_date(path: Path) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(path.stat().st_mtime))
