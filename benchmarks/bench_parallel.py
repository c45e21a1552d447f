"""What each sweep backend costs, and what two workers buy, on this machine.

Measured in one run, on a quiet machine:

- **start-up and per-task overhead** of each backend (``serial``, ``processes`` on 2
  workers, ``ray`` on a local 2-CPU cluster): a sweep of ``N`` empty tasks and one of a
  single task; the overhead per task is ``(wall(N) - wall(1)) / (N - 1)``, the start-up
  ``wall(1)``. Ray's cluster start (``ray.init``) is timed on its own.
- **speed-up of 2 workers over 1** on two CPU-bound sweeps: a synthetic one
  (``interp.parallel.demo.matmul_chain``, tasks of ~0.3 s) and two real ones, causal
  tracing over the toy facts model's prompts (tasks of ~0.1 s) and over SmolLM2's known
  facts at the facts_lm analysis's resolution (tasks of ~10 s). One worker is the serial
  backend on one thread, the threads every task gets in every backend; the workers are
  started before (their start-up is the first measurement). Each result is checked equal
  to the serial one before its time counts.
- **SmolLM2 facts at ROME's resolution** (10 noise samples, window 10) on one thread: the
  task times the cluster model in ``docs/cluster.md`` starts from.

Run: ``python benchmarks/bench_parallel.py`` (``--json`` for the numbers, ``--no-smollm2``
to skip the real model). Goal: at least 1.7x for 2 workers over 1.
"""

import argparse
import json
import time

import pandas as pd
import torch

from interp.parallel import map_tasks
from interp.parallel.demo import empty, matmul_chain


def wall(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def overheads(n_tasks: int) -> dict:
    """Start-up and per-task overhead of each backend, in milliseconds: the start-up is a first sweep of two
    empty tasks (processes: spawning the workers; Ray: its worker processes, after ``ray.init``), the overhead
    per task ``(wall(N) - wall(2)) / (N - 2)`` on the started workers."""
    import ray

    from interp.parallel.pool import stop_workers

    stop_workers()
    out = {"ray_init_s": wall(lambda: ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                                                 configure_logging=False))}
    tasks = [{"seed": i} for i in range(n_tasks)]
    for backend in ("serial", "processes", "ray"):
        run = lambda tasks: map_tasks(empty, tasks, backend=backend, workers=2, progress=False)  # noqa: E731
        start = wall(lambda: run(tasks[:2]))
        two, many = wall(lambda: run(tasks[:2])), wall(lambda: run(tasks))
        out[backend] = {"startup_ms": 1e3 * start, "per_task_ms": 1e3 * (many - two) / (n_tasks - 2)}
    return out


def speedup(label: str, fn, tasks: list, shared, check) -> dict:
    """Wall time of a sweep on 1 worker (serial) and on 2 (processes, Ray), each checked equal to serial. Each
    backend first runs the sweep's first two tasks (timed apart as ``*_warm_s``): the workers import the task's
    module and a traced model runs its one-off checks there, as the first sweep of an ``interp run`` does."""
    timings, results = {}, {}
    for backend in ("serial", "processes", "ray"):
        timings[f"{backend}_warm_s"] = wall(lambda: map_tasks(fn, tasks[:2], shared=shared, backend=backend,
                                                                workers=2, progress=False))
        start = time.perf_counter()
        results[backend] = map_tasks(fn, tasks, shared=shared, backend=backend, workers=2, progress=False)
        timings[backend] = time.perf_counter() - start
        if not check(results["serial"], results[backend]):
            raise AssertionError(f"{label}: {backend} differs from serial")
    return {"tasks": len(tasks), "serial_s": timings["serial"], "processes_s": timings["processes"],
            "ray_s": timings["ray"], "processes_speedup": timings["serial"] / timings["processes"],
            "ray_speedup": timings["serial"] / timings["ray"],
            **{k: v for k, v in timings.items() if k.endswith("_warm_s")}}


def synthetic(n_tasks: int) -> dict:
    shared = torch.randn(128, 128) / 12
    tasks = [{"steps": 2000, "seed": i} for i in range(n_tasks)]
    return speedup("matmul_chain", matmul_chain, tasks, shared,
                   lambda a, b: all(torch.equal(x, y) for x, y in zip(a, b)))


def toy_tracing(n_prompts: int) -> dict:
    from analyses.facts.measures import prompt_tasks, subject_noise_std, trace_prompt
    from models import zoo
    from models.facts_subject import corpus_of

    model = zoo.load("facts")
    prompts = corpus_of(model).prompts("train", "sport")[:n_prompts]
    tasks = prompt_tasks(model, prompts, samples=10, window=3, seed=0, noise_std=3.0 * subject_noise_std(model))
    return speedup("toy tracing", trace_prompt, tasks, model, _frames_equal)


def smollm2_tracing(n_facts: int) -> dict:
    """The facts_lm sweep at its default resolution (3 noise samples, window 10) over ``n_facts`` known facts."""
    from analyses.facts_lm.trace import fact_tasks, trace_fact

    model, known, std = _smollm2()
    tasks = fact_tasks(known.head(n_facts), samples=3, window=10, noise_std=std, seed=0)
    return speedup("SmolLM2 tracing", trace_fact, tasks, model, _frames_equal)


def _frames_equal(a: list, b: list) -> bool:
    return all(x.equals(y) for x, y in zip(a, b))


def _smollm2():
    from analyses.facts_lm.known import known_facts
    from analyses.facts_lm.trace import choose, noise_std
    from models import zoo
    from models.data.known_facts import FACTS

    model = zoo.load("smollm2")
    known = known_facts(model, FACTS)
    known = known[known.known].reset_index(drop=True)
    return model, choose(known, None, seed=0), noise_std(model, known)


def smollm2_fact(n_facts: int) -> dict:
    """Seconds for a known fact's full trace at ROME's resolution (10 noise samples), one thread, over the first
    ``n_facts`` facts of the balanced order the analysis traces in (their mean is what the cluster model uses)."""
    from analyses.facts_lm.trace import fact_tasks, trace_fact
    from interp.parallel.tasks import run_task

    model, known, std = _smollm2()
    run_task(trace_fact, fact_tasks(known.head(1), samples=1, window=10, noise_std=std, seed=0)[0], model, threads=1)
    seconds = [wall(lambda: run_task(trace_fact, task, model, threads=1))  # warm above, then ROME's 10 samples
               for task in fact_tasks(known.head(n_facts), samples=10, window=10, noise_std=std, seed=0)]
    tokens = [int(model.to_tokens(prompt).shape[1]) for prompt in known.head(n_facts).prompt]
    return {"facts_known": int(len(known)), "seconds": seconds, "prompt_tokens": tokens,
            "mean_s": sum(seconds) / len(seconds), "max_s": max(seconds),
            "known_prompt_tokens_mean": float(known.prompt.map(lambda p: model.to_tokens(p).shape[1]).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200, help="empty tasks for the overhead")
    parser.add_argument("--no-smollm2", action="store_true", help="skip the SmolLM2 task time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = {"overhead": overheads(args.tasks), "synthetic": synthetic(12), "toy_tracing": toy_tracing(48)}
    if not args.no_smollm2:
        out["smollm2_tracing"] = smollm2_tracing(4)
        out["smollm2_fact"] = smollm2_fact(6)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    o = out["overhead"]
    print(f"ray.init (local cluster, 2 CPUs): {o['ray_init_s']:.2f} s")
    print(pd.DataFrame({b: o[b] for b in ("serial", "processes", "ray")}).T.round(3).to_string())
    for name in ("synthetic", "toy_tracing", "smollm2_tracing"):
        if name not in out:
            continue
        r = out[name]
        print(f"{name}: {r['tasks']} tasks; serial {r['serial_s']:.2f} s, processes(2) {r['processes_s']:.2f} s "
              f"({r['processes_speedup']:.2f}x), ray(2) {r['ray_s']:.2f} s ({r['ray_speedup']:.2f}x); first two "
              f"tasks before (warming): serial {r['serial_warm_s']:.2f} s, processes {r['processes_warm_s']:.2f} s, "
              f"ray {r['ray_warm_s']:.2f} s")
    if "smollm2_fact" in out:
        f = out["smollm2_fact"]
        print(f"SmolLM2, a fact at ROME's resolution, one thread: mean {f['mean_s']:.1f} s, max {f['max_s']:.1f} s "
              f"over {len(f['seconds'])} facts ({', '.join(f'{s:.1f}' for s in f['seconds'])} s; prompt tokens "
              f"{f['prompt_tokens']}); {f['facts_known']} known facts, {f['known_prompt_tokens_mean']:.1f} tokens "
              f"on average")


if __name__ == "__main__":
    main()
