"""Same inputs, same numbers? Each analysis's preset run in fresh processes, its headline figures compared.

    python -m benchmarks.reproducibility digits superposition --quick              # default threads twice, 1 vs 2
    python -m benchmarks.reproducibility facts --quick --threads 1 2 --json out.json
    python -m benchmarks.reproducibility jl --quick --skip-threads                    # only the two default runs
    python -m benchmarks.reproducibility facts context --quick --backends --skip-default --skip-threads

Every run is ``interp run NAME [--quick] --out TMP [--threads N]`` in its own process with its own empty zoo
cache (``INTERP_CACHE`` a fresh temporary folder), so every subject is trained anew. Converted pretrained
models (``smollm2``: a conversion, not a training) are converted once into a shared folder and linked into
each run's fresh cache, unless ``--no-share-converted``.

Two comparisons per analysis (issue 18, "Same inputs, same numbers"):

- ``default`` against ``default``: two runs with the thread count the CLI chooses itself;
- ``--threads A`` against ``--threads B`` (``--threads 1 2`` by default);
- with ``--backends``: the serial run against ``--workers 2`` and against ``--backend ray --workers 2``.

It compares the ``headline`` of each ``results.json`` (the figures a report stands on; elapsed times, the
date and package versions are not in it; a figure or CSV column whose name says ``seconds``, ``elapsed`` or
``speed`` is a wall-clock time, or a ratio of two, and is skipped: ``lm``'s ``forward_speed_vs_hf``) and prints, per analysis, each figure that differs with both
values and the absolute and relative difference, or that all agree. ``--all-numbers`` also compares every
number of every CSV table the reports wrote (counted, the largest difference shown).

Exit code 0 whatever the outcome (it measures; ``tests/test_reproducibility.py`` asserts).
"""

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

CONVERTED = ("smollm2",)  # zoo subjects that are converted, not trained: one folder for every preset and seed
NEEDS_CONVERTED = {"lm", "facts_lm"}
# --backends: the sweep backends, each run against the serial one (a default run is serial)
BACKEND_RUNS = {"serial": (), "processes": ("--workers", "2"), "ray": ("--backend", "ray", "--workers", "2")}
TIMING_WORDS = ("seconds", "elapsed", "speed")  # a figure or CSV column naming one of these is a time (or a ratio of times), not a result


def is_timing(name: str) -> bool:
    """A wall-clock figure (``pack_seconds``, a ``seconds`` column): it differs every run and is not compared."""
    return any(word in name.lower() for word in TIMING_WORDS)


def run_once(name: str, *, quick: bool, threads: Optional[int], share: Optional[Path], timeout: float,
             extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """One ``interp run`` of ``name`` in a fresh process and fresh zoo cache: its results.json, CSVs and seconds."""
    work = Path(tempfile.mkdtemp(prefix=f"repro-{name}-"))
    cache, out = work / "zoo", work / "out"
    cache.mkdir()
    if share is not None and name in NEEDS_CONVERTED:
        for subject in CONVERTED:
            if (share / subject).is_dir():
                (cache / subject).symlink_to(share / subject, target_is_directory=True)
    env = dict(os.environ, INTERP_CACHE=str(cache), MPLBACKEND="Agg")
    command = [sys.executable, "-m", "analyses.cli", "run", name, "--out", str(out), *extra]
    if quick:
        command.append("--quick")
    if threads is not None:
        command += ["--threads", str(threads)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=Path(__file__).resolve().parents[1])
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    results = json.loads((out / name / "results.json").read_text())
    tables = {p.name: _read_csv(p) for p in sorted((out / name).glob("*.csv"))}
    if share is not None and name in NEEDS_CONVERTED:
        for subject in CONVERTED:  # keep a conversion this run made for the next runs
            if (cache / subject).is_dir() and not (cache / subject).is_symlink() and not (share / subject).exists():
                shutil.copytree(cache / subject, share / subject)
    shutil.rmtree(work, ignore_errors=True)
    log_first = done.stderr.splitlines()[0] if done.stderr else ""
    return {"headline": results["headline"], "tables": tables, "seconds": round(seconds, 1),
            "threads": threads, "log": log_first}


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    """Headline figures that differ between two runs: key, both values, absolute and relative difference."""
    rows = []
    for key in sorted(set(a) | set(b)):
        if is_timing(key):
            continue
        x, y = a.get(key), b.get(key)
        if x == y or (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)):
            continue
        nx, ny = _number(x), _number(y)
        if nx is not None and ny is not None:
            absolute = abs(nx - ny)
            scale = max(abs(nx), abs(ny))
            rows.append({"figure": key, "a": x, "b": y, "abs": absolute, "rel": absolute / scale if scale else math.inf})
        else:
            rows.append({"figure": key, "a": x, "b": y, "abs": None, "rel": None})
    return rows


def table_differences(a: dict[str, list[list[str]]], b: dict[str, list[list[str]]]) -> dict[str, Any]:
    """Every CSV cell compared: how many numbers, how many differ, the largest absolute difference and where."""
    cells = differ = 0
    largest: tuple[float, str] = (0.0, "")
    for name in sorted(set(a) | set(b)):
        ra, rb = a.get(name, []), b.get(name, [])
        for i, (row_a, row_b) in enumerate(zip(ra, rb)):
            for j, (x, y) in enumerate(zip(row_a, row_b)):
                if ra and j < len(ra[0]) and is_timing(ra[0][j]):
                    continue
                cells += 1
                if x != y:
                    differ += 1
                    nx, ny = _number(x), _number(y)
                    size = abs(nx - ny) if nx is not None and ny is not None else math.inf
                    if size > largest[0]:
                        largest = (size, f"{name} row {i} column {ra[0][j] if ra else j}: {x} vs {y}")
        if len(ra) != len(rb):
            differ += abs(len(ra) - len(rb))
    return {"cells": cells, "differ": differ, "largest": largest[0], "where": largest[1]}


def compare(name: str, first: dict, second: dict, label: str, all_numbers: bool) -> dict[str, Any]:
    rows = differences(first["headline"], second["headline"])
    figures = [k for k in first["headline"] if not is_timing(k)]
    out = {"analysis": name, "comparison": label, "figures": len(figures), "differ": rows,
           "seconds": [first["seconds"], second["seconds"]]}
    if all_numbers:
        out["tables"] = table_differences(first["tables"], second["tables"])
    return out


def _show(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def report(result: dict[str, Any]) -> str:
    head = (f"{result['analysis']}: {result['comparison']}: {len(result['differ'])} of {result['figures']} headline "
            f"figure(s) differ (runs took {result['seconds'][0]} s and {result['seconds'][1]} s)")
    lines = [head]
    for row in result["differ"]:
        size = "" if row["abs"] is None else f"  abs {row['abs']:.3g}  rel {row['rel']:.3g}"
        lines.append(f"    {row['figure']}: {_show(row['a'])} vs {_show(row['b'])}{size}")
    if "tables" in result:
        t = result["tables"]
        lines.append(f"    tables: {t['differ']} of {t['cells']} CSV cells differ"
                     + (f"; largest {t['largest']:.3g} ({t['where']})" if t["differ"] else ""))
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="+", help="analyses (interp list)")
    parser.add_argument("--quick", action="store_true", help="the quick presets")
    parser.add_argument("--threads", type=int, nargs=2, default=[1, 2], metavar=("A", "B"),
                        help="the two thread counts to compare (default: 1 2)")
    parser.add_argument("--skip-default", action="store_true", help="skip the two runs with the default threads")
    parser.add_argument("--skip-threads", action="store_true", help="skip the --threads A against B runs")
    parser.add_argument("--all-numbers", action="store_true", help="also compare every CSV table's numbers")
    parser.add_argument("--no-share-converted", action="store_true",
                        help="convert SmolLM2 afresh in every run instead of once")
    parser.add_argument("--backends", action="store_true",
                        help="also run with --workers 2 and with --backend ray --workers 2, each against the serial run")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--json", type=Path, help="also write every comparison and every run's headline here")
    args = parser.parse_args(argv)

    share = None if args.no_share_converted else Path(tempfile.mkdtemp(prefix="repro-converted-"))
    everything = []
    try:
        for name in args.names:
            runs: dict[str, dict] = {}
            plan = [] if args.skip_default else [("default 1", None), ("default 2", None)]
            if not args.skip_threads:
                plan += [(f"threads {n}", n) for n in args.threads]
            extras = {label: () for label, _ in plan}
            if args.backends:
                for label, extra in BACKEND_RUNS.items():
                    plan.append((label, None))
                    extras[label] = extra
            for label, threads in plan:
                runs[label] = run_once(name, quick=args.quick, threads=threads, share=share, timeout=args.timeout,
                                       extra=extras[label])
                print(f"  {name} {label}: {runs[label]['seconds']} s; {runs[label]['log']}", file=sys.stderr, flush=True)
            results = []
            if not args.skip_default:
                results.append(compare(name, runs["default 1"], runs["default 2"], "default vs default", args.all_numbers))
            if not args.skip_threads:
                a, b = args.threads
                results.append(compare(name, runs[f"threads {a}"], runs[f"threads {b}"],
                                       f"--threads {a} vs --threads {b}", args.all_numbers))
            if args.backends:
                serial = runs["default 1"] if "default 1" in runs else runs["serial"]
                for label in BACKEND_RUNS:
                    if label != "serial":
                        results.append(compare(name, serial, runs[label], f"serial vs {label}", args.all_numbers))
            for result in results:
                print(report(result), flush=True)
            everything.append({"analysis": name, "comparisons": results,
                               "runs": {k: {"headline": v["headline"], "seconds": v["seconds"]} for k, v in runs.items()}})
            if args.json:
                args.json.write_text(json.dumps(everything, indent=1, default=str))
    finally:
        if share is not None:
            shutil.rmtree(share, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
