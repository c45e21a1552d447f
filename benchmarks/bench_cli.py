"""Start-up time of the light commands, as a new user runs them: one subprocess per call.

    python benchmarks/bench_cli.py [--repeats 5]

Times ``interp list``, ``interp --help`` and ``interp params gpt3`` (wall clock, best and
median of ``repeats`` runs, each a fresh interpreter) against the peer every command
pays anyway, ``python -c pass``, and prints the ratio. Goal: each under 1.5 s on a quiet
machine; they import neither torch nor any analysis module (``tests/interp/test_cli.py``
checks that), so they should sit within a few tenths of a second of the bare interpreter.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "interp list": ["interp", "list"],
    "interp --help": ["interp", "--help"],
    "interp params gpt3": ["interp", "params", "gpt3"],
}


def wall_seconds(command: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("interp") is None:
        sys.exit("interp is not on PATH: activate the virtual environment (pip install -e .)")
    base = None
    print(f"{'command':<20} {'best s':>8} {'median s':>9} {'x python':>9}  goal < 1.5 s")
    for name, command in COMMANDS.items():
        times = wall_seconds(command, args.repeats)
        best, median = min(times), statistics.median(times)
        base = best if base is None else base
        verdict = "" if name.startswith("python") else "met" if median < 1.5 else "MISSED"
        print(f"{name:<20} {best:>8.3f} {median:>9.3f} {best / base:>8.1f}x  {verdict}")


if __name__ == "__main__":
    main()
