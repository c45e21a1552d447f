"""Slowdown of ``interp run`` beside other CPU-bound processes, with torch's threads forced or chosen.

    python benchmarks/bench_load.py                        # interp run backprop --quick, 3 repeats
    python benchmarks/bench_load.py --all                  # interp run all --quick
    python benchmarks/bench_load.py --name params --repeats 1   # a smoke run (about a minute)
    python benchmarks/bench_load.py --all --hogs 2 --modes automatic --bound   # quiet, two hogs, and the bound
    python benchmarks/bench_load.py --bound-only --repeats 3     # the reference workloads alone

Times ``interp run NAME --quick --out TMP`` (wall clock, a fresh output folder each time) quiet,
beside one and beside two *hogs* (each a Python process running torch matmuls on 2 threads,
started before the run and killed after it), with ``--threads 2`` (torch's default on two
cores: what a run did before interp/threads.py) and with the automatic choice (no
``--threads``, no ``INTERP_THREADS``: the CPUs less the other runnable threads). Prints the
median of ``--repeats`` runs per cell, its ratio to the quiet run of the same column, and the
threads each run took (from its run log); with ``--all``, the same for each analysis, from the
seconds its run log gives it. An untimed run first fills the zoo cache, so no cell
pays for training a subject. Goal (issue 18): at most 2.5x the quiet time beside two hogs, for
the quick run and each analysis. ``--bound`` also times two reference workloads beside the same hogs
(fixed single-threaded matmuls in one process, and split between two): what fair shares of the CPU allow
serial work and work that uses both cores. Run it on an otherwise quiet machine: the other load counts.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOAL = 2.5  # slowdown beside two hogs, against quiet
HOG = """
import sys, torch
torch.set_num_threads(2)
a = torch.randn(512, 512)
a @ a
print("ready", flush=True)
while True:
    a = torch.tanh(a @ a)
"""
MODES = {"--threads 2": ["--threads", "2"], "automatic": []}
# --bound: the scheduler's own limit, timed beside the same hogs. A fixed amount of matmuls on one thread in
# one process (serial work), and the same amount split between two such processes (work that uses both cores
# when quiet): with the hogs' four threads on two cores, fair shares predict 1 / (2/5) = 2.5x and
# 2 / (4/6) = 3x, which no thread choice of ours beats without more runnable threads than cores.
REFERENCE = """
import sys, time, torch
torch.set_num_threads(1)
a = torch.randn(256, 256)
for _ in range(int(sys.argv[1])):
    a = torch.tanh(a @ a)
"""
REFERENCE_STEPS = 24000  # about 19 s quiet in one process, 11 s split between two, on the machines here


def start_hogs(n: int) -> list[subprocess.Popen]:
    """``n`` CPU-bound processes, returned once each has done its first matmul."""
    hogs = [subprocess.Popen([sys.executable, "-c", HOG], stdout=subprocess.PIPE, text=True) for _ in range(n)]
    for hog in hogs:
        if hog.stdout.readline().strip() != "ready":
            stop(hogs)
            sys.exit("a hog process failed to start")
    return hogs


def stop(hogs: list[subprocess.Popen]) -> None:
    for hog in hogs:
        hog.kill()
        hog.wait()


STEP = re.compile(r"\[\d+/\d+\] (\w+): \S+ \((\d+(?:\.\d+)?) s")  # "[2/10] digits: out/report.html (14.1 s"


def timed_run(names: list[str], extra: list[str]) -> tuple[float, str, dict[str, float]]:
    """Seconds for one ``interp run NAMES --quick`` into a fresh folder, the threads its log names, and
    each analysis's seconds as the log gives them."""
    env = {k: v for k, v in os.environ.items() if k != "INTERP_THREADS"}
    out = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "analyses.cli", "run", *names, "--quick", "--out", str(out),
                               *extra], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"interp run {' '.join(names)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
        log = (out / "run.log").read_text()
        found = re.search(r"; (\d+) torch thread\(s\)", log)
        return seconds, found.group(1) if found else "?", {m[1]: float(m[2]) for m in STEP.finditer(log)}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def timed_reference(processes: int, steps: int = REFERENCE_STEPS) -> float:
    """Seconds for ``steps`` single-threaded matmul steps split between ``processes`` processes."""
    started = time.perf_counter()
    jobs = [subprocess.Popen([sys.executable, "-c", REFERENCE, str(steps // processes)]) for _ in range(processes)]
    if any(job.wait() != 0 for job in jobs):
        sys.exit("a reference process failed")
    return time.perf_counter() - started


def print_bound(loads: dict[str, int], repeats: int) -> None:
    """The reference workloads' slowdown beside the same hogs: the bound a run is measured against."""
    print(f"\nreference: {REFERENCE_STEPS} matmul steps of 256 x 256 on one thread per process, median of {repeats}")
    cells = {(load, p): [] for load in loads for p in (1, 2)}
    for _ in range(repeats):
        for load, n in loads.items():
            hogs = start_hogs(n)
            try:
                for p in (1, 2):
                    cells[load, p].append(timed_reference(p))
            finally:
                stop(hogs)
    print(f"{'load':<15}{'1 process (serial work)':>28}{'2 processes (both cores)':>28}")
    for load in loads:
        row = ""
        for p in (1, 2):
            median, quiet = statistics.median(cells[load, p]), statistics.median(cells["quiet", p])
            row += f"{f'{median:.1f} s {median / quiet:.2f}x':>28}"
        print(f"{load:<15}{row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="backprop", help="analysis to run (default backprop)")
    parser.add_argument("--all", action="store_true", help="interp run all --quick instead of one analysis")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hogs", type=int, nargs="+", default=[0, 1, 2], choices=[0, 1, 2],
                        help="the loads to time, as hog counts (0, quiet, is always timed: the ratios need it)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--bound", action="store_true", help="also time the reference workloads (the scheduler's "
                                                            "fair-share bound) beside the same hogs")
    parser.add_argument("--bound-only", action="store_true", help="only the reference workloads (about 2 min)")
    args = parser.parse_args()
    names = ["all"] if args.all else [args.name]
    loads = {label: n for label, n in {"quiet": 0, "beside 1 hog": 1, "beside 2 hogs": 2}.items()
             if n in {0, *args.hogs}}
    modes = {mode: MODES[mode] for mode in args.modes}
    if args.bound_only:
        print_bound(loads, args.repeats)
        return
    print(f"interp run {' '.join(names)} --quick on {len(os.sched_getaffinity(0))} CPU(s); hogs run torch matmuls "
          f"on 2 threads; median of {args.repeats}", flush=True)
    timed_run(names, [])  # untimed: trains whatever zoo subject the run needs
    seconds = {(load, mode): [] for load in loads for mode in modes}
    threads = {key: set() for key in seconds}
    steps = {key: [] for key in seconds}  # per run: {analysis: seconds}
    for repeat in range(args.repeats):  # loads interleaved, so that drift spreads over every cell
        for load, n in loads.items():
            hogs = start_hogs(n)
            try:
                for mode, extra in modes.items():
                    took, used, each = timed_run(names, extra)
                    seconds[load, mode].append(took)
                    steps[load, mode].append(each)
                    threads[load, mode].add(used)
                    print(f"  repeat {repeat + 1}, {load}, {mode}: {took:.1f} s on {used} thread(s)", flush=True)
            finally:
                stop(hogs)
    print(f"\n{'load':<15}" + "".join(f"{mode:>28}" for mode in modes))
    verdicts = []
    for load in loads:
        cells = []
        for mode in modes:
            median, quiet = statistics.median(seconds[load, mode]), statistics.median(seconds["quiet", mode])
            ratio = median / quiet
            cells.append(f"{median:7.1f} s {ratio:5.2f}x ({'/'.join(sorted(threads[load, mode]))} thr)")
            if loads[load] == 2:
                verdicts.append(f"{mode}: {ratio:.2f}x {'met' if ratio <= GOAL else 'MISSED'}")
        print(f"{load:<15}" + "".join(f"{cell:>28}" for cell in cells))
    if verdicts:
        print(f"goal: at most {GOAL}x the quiet time beside two hogs; " + "; ".join(verdicts))
    if len(next(iter(steps.values()))[0]) > 1:
        print_steps(steps, loads, list(modes))
    if args.bound:
        print_bound(loads, args.repeats)


def print_steps(steps: dict, loads: dict[str, int], modes: list[str]) -> None:
    """Each analysis's median seconds per cell, and its ratio to quiet in the same column."""
    names = list(steps["quiet", modes[0]][0])
    print(f"\neach analysis (seconds from the run log; ratio to quiet in the same column)")
    print(f"{'analysis':<15}" + "".join(f"{load + ', ' + mode:>30}" for load in loads for mode in modes))
    worst = {mode: (0.0, "") for mode in modes}
    for name in names:
        cells = []
        for load in loads:
            for mode in modes:
                median = statistics.median(run[name] for run in steps[load, mode])
                quiet = statistics.median(run[name] for run in steps["quiet", mode])
                cells.append(f"{median:8.1f} s {median / quiet:5.2f}x")
                if loads[load] == 2 and median / quiet > worst[mode][0]:
                    worst[mode] = (median / quiet, name)
        print(f"{name:<15}" + "".join(f"{cell:>30}" for cell in cells))
    if 2 in loads.values():
        print("largest ratio beside two hogs: " + "; ".join(f"{mode}: {ratio:.2f}x ({name}, "
              f"{'met' if ratio <= GOAL else 'MISSED'})" for mode, (ratio, name) in worst.items()))


if __name__ == "__main__":
    main()
