"""Headline figures over several training seeds: how far a figure moves when its subject is trained anew.

A report's figures come from models trained on this machine. Elsewhere (another CPU whose kernels
torch chooses differently, where :mod:`models.kernels` cannot hold them to AVX2, or another
seed) the training takes another path and ends in another model; ``facts`` and ``diffusion``
train theirs in the run, so their figures move with it (issue 18). ``interp spread`` measures
how far: it runs an analysis's preset for seeds 0, 1, ... and keeps each run's headline figures
in ``analyses/seed_spreads/NAME-PRESET.json`` (committed). An analysis that calls
:func:`spread_section` then gives, beside each of its headline figures, the spread over those
seeds and whether this run lies inside it, and counts how many seeds its verdict held on.

    interp spread facts diffusion --seeds 5        # the full presets, seeds 0-4 (about 30 min)
    interp spread diffusion --quick --seeds 3 --into /tmp/spreads

    >>> summary = summarise([0.90, 0.95, 0.93, 0.97, 0.91])     # a continuous figure
    >>> summary["kind"], summary["median"], round(summary["low"], 3), round(summary["high"], 3)
    ('continuous', 0.93, 0.845, 1.019)
    >>> summarise([1, 1, 0, 1, 1])["counts"]                     # a discrete one: values and their seeds
    {1: 4, 0: 1}
    >>> inside(summarise([1, 1, 0, 1, 1]), 2), inside(summarise([0.90, 0.95, 0.93, 0.97, 0.91]), 0.99)
    (False, True)

A continuous figure's interval is where one more seed's value lands with 95% probability if the
seeds' values are normal (:func:`interp.intervals.prediction_interval`; with 5 seeds about the
mean -+ 3 standard deviations); an integer or true/false figure (a layer, a count of checks that
held) lists the values the seeds gave, and a run is inside when its value is among them.
"""

import json
import math
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

SPREADS = Path(__file__).resolve().parent / "seed_spreads"  # the committed spreads
ENV = "INTERP_SPREADS"  # another folder to read them from (and ``interp spread`` to write into)
VERDICT = "verdict_checks_passed"  # the headline an analysis's verdict counts its checks in, where it has one


def folder() -> Path:
    """Where the spreads are read from: ``$INTERP_SPREADS``, else the committed ones."""
    return Path(os.environ[ENV]) if os.environ.get(ENV) else SPREADS


@dataclass(frozen=True)
class Spread:
    """One analysis's headline figures for several seeds of one config."""

    analysis: str
    preset: str
    config: dict[str, Any]  # the config as JSON, without its seed
    headlines: dict[int, dict[str, Any]]  # seed -> that run's headline figures
    date: str
    machine: dict[str, Any]  # where it was measured (CPU, torch's kernels, threads)

    @property
    def seeds(self) -> list[int]:
        return sorted(self.headlines)

    def values(self, figure: str) -> list[Any]:
        return [self.headlines[s][figure] for s in self.seeds if figure in self.headlines[s]]

    def to_json(self) -> dict[str, Any]:
        return {"analysis": self.analysis, "preset": self.preset, "config": self.config,
                "headlines": {str(s): h for s, h in sorted(self.headlines.items())}, "date": self.date,
                "machine": self.machine}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Spread":
        return cls(data["analysis"], data["preset"], data["config"],
                   {int(s): h for s, h in data["headlines"].items()}, data["date"], data["machine"])


def seedless(config: Any) -> dict[str, Any]:
    """``config`` as plain JSON (tuples as lists), without its ``seed``: what two runs of a spread share."""
    from interp.report.provenance import to_jsonable

    plain = json.loads(json.dumps(to_jsonable(config)))
    plain.pop("seed", None)
    return plain


def path_for(analysis: str, preset: str, where: Optional[Path] = None) -> Path:
    return (where or folder()) / f"{analysis}-{preset}.json"


def save(spread: Spread, where: Optional[Path] = None) -> Path:
    """Write ``spread`` as ``NAME-PRESET.json`` (replacing the file in one step) and return its path."""
    path = path_for(spread.analysis, spread.preset, where)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(spread.to_json(), indent=1) + "\n")
    os.replace(staging, path)
    return path


def find(analysis: str, config: Any, where: Optional[Path] = None) -> Optional[Spread]:
    """The spread measured for ``analysis`` with ``config`` (its seed aside), or None when there is none."""
    wanted = seedless(config)
    for path in sorted((where or folder()).glob(f"{analysis}-*.json")):
        spread = Spread.from_json(json.loads(path.read_text()))
        if spread.analysis == analysis and spread.config == wanted:
            return spread
    return None


def summarise(values: list[Any]) -> dict[str, Any]:
    """A figure over the seeds: for integer or true/false values the ``counts`` of each value; for the
    rest the ``median``, ``min``, ``max`` and the 95% prediction interval ``low`` to ``high``."""
    from interp.intervals import prediction_interval

    numbers = [v for v in values if isinstance(v, (bool, int, float)) and not isinstance(v, str)]
    if len(numbers) < 2 or len(numbers) < len(values):
        return {"kind": "other", "n": len(values)}
    if all(isinstance(v, (bool, int)) for v in numbers):
        counts: dict[Any, int] = {}
        for v in numbers:
            counts[v] = counts.get(v, 0) + 1
        return {"kind": "discrete", "n": len(numbers), "counts": dict(sorted(counts.items(), key=lambda kv: -kv[1]))}
    ordered = sorted(float(v) for v in numbers)
    mean, low, high = prediction_interval(ordered)
    return {"kind": "continuous", "n": len(ordered), "mean": mean, "median": statistics.median(ordered), "min": ordered[0],
            "max": ordered[-1], "low": low, "high": high}


def inside(summary: dict[str, Any], value: Any) -> Optional[bool]:
    """Whether ``value`` lies in the figure's spread (None where the spread says nothing about it)."""
    if summary["kind"] == "discrete":
        return value in summary["counts"]
    if summary["kind"] == "continuous" and isinstance(value, (int, float)) and math.isfinite(value):
        return summary["low"] <= float(value) <= summary["high"]
    return None


def measure(analysis: str, preset: str, configs: dict[int, Any], run_one) -> Spread:
    """Run ``run_one(config) -> headline`` for each seed's config (``{seed: config}``, equal but for
    the seed) and gather the headlines into a :class:`Spread`."""
    from interp.progress import note
    from interp.report.provenance import machine

    shared = {json.dumps(seedless(c), sort_keys=True) for c in configs.values()}
    if len(shared) != 1:
        raise ValueError("a spread's configs must be equal but for their seed")
    headlines, started = {}, time.perf_counter()
    for k, (seed, config) in enumerate(sorted(configs.items()), 1):
        headlines[seed] = run_one(config)
        done = time.perf_counter() - started
        note(f"spread of {analysis}: seed {seed} done ({k} of {len(configs)}; {done:.0f} s so far, about "
             f"{done / k * (len(configs) - k):.0f} s left)")
    return Spread(analysis, preset, seedless(next(iter(configs.values()))), headlines,
                  time.strftime("%Y-%m-%d", time.gmtime()), machine())


def spread_rows(report, spread: Spread) -> list[dict[str, Any]]:
    """One row per headline figure of ``report``: this run's value, the seeds' spread, and whether it lies inside."""
    rows = []
    for figure, entry in report.headlines.items():
        values = spread.values(figure)
        if not values:
            continue
        summary, value = summarise(values), entry["value"]
        if summary["kind"] == "continuous" and summary["min"] == summary["max"]:
            spread_text = f"{summary['min']:.4g} in every seed"
        elif summary["kind"] == "continuous":
            spread_text = (f"median {summary['median']:.4g}, range {summary['min']:.4g} to {summary['max']:.4g}; "
                           f"95% prediction {summary['low']:.4g} to {summary['high']:.4g}")
        elif summary["kind"] == "discrete":
            spread_text = ", ".join(f"{v} ({c} seed{'s' if c > 1 else ''})" for v, c in summary["counts"].items())
        else:
            spread_text = "not a number"
        rows.append({"figure": figure, "this run": value, "over seeds": spread_text, "seeds": summary["n"],
                     "inside": inside(summary, value), "summary": summary})
    return rows


def spread_section(report, config) -> Optional[dict[str, Any]]:
    """Add the section "Spread over training seeds" to ``report`` when a spread was measured for its
    analysis and ``config`` (its seed aside); returns what it found (None, and no section, without one).

    Call it last, once every headline figure is in the report.
    """
    import pandas as pd

    from interp.report.provenance import to_jsonable

    spread = find(report.name, config)
    if spread is None:
        return None
    rows = spread_rows(report, spread)
    if not rows:
        return None
    seed = json.loads(json.dumps(to_jsonable(config))).get("seed")
    judged = [r for r in rows if r["inside"] is not None]
    outside = [r["figure"] for r in judged if not r["inside"]]
    same = None
    if seed in spread.headlines:
        own = spread.headlines[seed]
        differ = [r["figure"] for r in rows if own.get(r["figure"]) != r["this run"]]
        if differ:
            listed = ", ".join(differ[:6]) + (", ..." if len(differ) > 6 else "")
            match = f"{len(differ)} of its {len(rows)} figures differ from that seed's ({listed})"
        else:
            match = "every figure equals that seed's"
        same = (f"This run's seed ({seed}) is one of them: {match} (the same code and seed train the same model "
                f"only where torch runs the same kernels).")
    verdict = next((r for r in rows if r["figure"] == VERDICT), None)
    verdict_text = ""
    if verdict is not None and verdict["summary"]["kind"] == "discrete":
        counts = verdict["summary"]["counts"]
        verdict_text = (" The verdict's count of checks that hold was " + ", ".join(
            f"{v} in {c} of {verdict['seeds']} seeds" for v, c in counts.items()) + ".")
    text = (f"The subjects of this report are trained in the run, and another CPU's kernels, another thread "
            f"count's reduction order or another seed train a different model. To show how far each figure moves "
            f"with that, this preset was run for {len(spread.seeds)} training seeds ({spread.seeds[0]} to "
            f"{spread.seeds[-1]}) on {spread.date} (`interp spread {report.name}"
            f"{' --quick' if spread.preset == 'quick' else ''} --seeds {len(spread.seeds)}`; "
            f"{spread.machine.get('cpu', '?')}, torch's {spread.machine.get('torch_cpu_capability', '?')} kernels). "
            f"For a continuous figure the interval is where one more seed should land with 95% probability "
            f"(mean -+ Student's t x standard deviation x sqrt(1 + 1/n)); for an integer or true/false one, the "
            f"values the seeds gave. **{len(judged) - len(outside)} of {len(judged)}** of this run's figures lie "
            f"inside" + (f"; outside: {', '.join(outside)}." if outside else ".") + verdict_text
            + (f" {same}" if same else ""))
    section = report.section("Spread over training seeds", text)
    table = pd.DataFrame([{**{k: v for k, v in r.items() if k not in ("summary", "inside")},
                           "inside": {True: "yes", False: "no", None: ""}[r["inside"]]} for r in rows])
    section.table(table, "seed_spread", f"Each headline figure in this run and over {len(spread.seeds)} seeds.",
                  max_rows=60)
    figure = plot_spread(rows, spread)
    if figure is not None:
        section.figure(figure, "seed_spread", "Each continuous headline figure over the seeds (grey), scaled to its "
                       "seeds' mean and standard deviation, with the 95% prediction interval (bar) and this run "
                       "(red).")
    return {"seeds": spread.seeds, "inside": len(judged) - len(outside), "judged": len(judged), "outside": outside}


def plot_spread(rows: list[dict[str, Any]], spread: Spread):
    """A strip per continuous figure: the seeds' values, the interval and this run, in standard deviations
    from the seeds' mean (figures of different units side by side); None when no figure varies."""
    import matplotlib.pyplot as plt
    import numpy as np

    shown = [r for r in rows if r["summary"]["kind"] == "continuous"
             and np.std(spread.values(r["figure"]), ddof=1) > 0 and isinstance(r["this run"], (int, float))]
    if not shown:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 0.32 * len(shown) + 1.1))
    for y, row in enumerate(shown):
        values, s = np.asarray(spread.values(row["figure"]), float), row["summary"]
        sd = values.std(ddof=1)
        scale = lambda v: (v - s["mean"]) / sd  # noqa: E731
        ax.plot([scale(s["low"]), scale(s["high"])], [y, y], color="#9bb7d4", lw=5, solid_capstyle="butt")
        ax.scatter(scale(values), np.full(len(values), y), color="0.35", s=14, zorder=3)
        ax.scatter([scale(float(row["this run"]))], [y], color="#d62728", marker="D", s=30, zorder=4)
    ax.set_yticks(range(len(shown)), [r["figure"] for r in shown], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel("standard deviations from the seeds' mean")
    ax.set_title(f"{spread.analysis}: headline figures over {len(spread.seeds)} training seeds", fontsize=9)
    fig.tight_layout()
    return fig
