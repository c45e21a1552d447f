"""Activation collection in RAM against spilling to disk under a budget: peak memory and time.

    OMP_NUM_THREADS=1 python benchmarks/bench_activations.py [--examples 20000] [--budget-mb 8]

Collects the two 512-wide hidden layers of a 64-512-512-10 digit network over random
inputs, once without a budget (arrays in RAM) and once with ``budget_bytes`` below the
data size (spilled to memory-mapped files). Each mode runs in a fresh subprocess so its
peak resident memory (``ru_maxrss``) is its own; the peer is a subprocess that only
builds the model and inputs (the baseline memory). Also reports the tracemalloc peak of
the collection itself, checks the arrays are identical, and prints the ratios.
"""

import argparse
import json
import subprocess
import sys


def worker(mode: str, examples: int, budget: int) -> dict:
    import resource
    import time
    import tracemalloc

    import numpy as np
    import torch

    from interp.activations import collect_activations
    from models.mlp import Network

    torch.set_num_threads(1)
    net = Network([64, 512, 512, 10], activation="relu", cost="cross_entropy", seed=0)
    x = torch.rand(examples, 64, generator=torch.Generator().manual_seed(0))
    hooks = ["layers.0.hook_post", "layers.1.hook_post"]
    result = {"mode": mode, "data_bytes": examples * 1024 * 4}
    if mode != "baseline":
        tracemalloc.start()
        start = time.perf_counter()
        arrays = collect_activations(net, x, hooks, batch_size=500, budget_bytes=budget if mode == "spill" else None)
        result["seconds"] = time.perf_counter() - start
        result["tracemalloc_peak"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        result["max_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # before reading the arrays back
        result["checksum"] = float(sum(np.asarray(a, dtype=np.float64).sum() for a in arrays.values()))
        result["memmap"] = all(isinstance(a, np.memmap) for a in arrays.values())
    result.setdefault("max_rss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=20000)
    parser.add_argument("--budget-mb", type=float, default=8.0)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    budget = int(args.budget_mb * 1e6)
    if args.worker:
        print(json.dumps(worker(args.worker, args.examples, budget)))
        return
    runs = {}
    for mode in ("baseline", "ram", "spill"):
        out = subprocess.run([sys.executable, __file__, "--worker", mode, "--examples", str(args.examples),
                              "--budget-mb", str(args.budget_mb)], capture_output=True, text=True, check=True)
        runs[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    data = runs["ram"]["data_bytes"]
    mb = 1e6
    print(f"activations: {data / mb:.1f} MB, budget {budget / mb:.1f} MB")
    for mode in ("ram", "spill"):
        r = runs[mode]
        extra = (r["max_rss"] - runs["baseline"]["max_rss"]) / mb
        print(f"{mode:5s}: {r['seconds']:.2f} s, tracemalloc peak {r['tracemalloc_peak'] / mb:.2f} MB, "
              f"peak RSS above baseline {extra:.1f} MB, memmap={r['memmap']}")
    print(f"same arrays (checksum): {runs['ram']['checksum'] == runs['spill']['checksum']}")
    print(f"spill within budget (tracemalloc): {runs['spill']['tracemalloc_peak'] <= budget}")
    print(f"ratios spill / ram: time {runs['spill']['seconds'] / runs['ram']['seconds']:.2f}, "
          f"tracemalloc peak {runs['spill']['tracemalloc_peak'] / runs['ram']['tracemalloc_peak']:.3f}")


if __name__ == "__main__":
    main()
