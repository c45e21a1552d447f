"""Sweeps as lists of independent, seeded tasks, run serially, on local worker processes or
on a Ray cluster, with the same results bit for bit.

Every sweep of the toolkit (causal tracing over facts, the toy models' grids, packing
capacity, probes over layers, the digit network's seeds) hands its tasks to
:func:`map_tasks`. A task is a small record (a dict or dataclass of numbers and strings)
with its own ``seed``; the function it is given is a module-level function
``fn(task, shared)``, where ``shared`` holds the large inputs every task reads (a model, a
set of activations), sent to each worker once. Each task runs with torch, numpy and
Python's generators seeded from its seed and on ``threads`` torch threads (default one),
so where it runs cannot change its result.

    >>> from interp.parallel import map_tasks
    >>> from interp.parallel.demo import noisy_sum
    >>> tasks = [{"n": n, "seed": n} for n in range(4)]
    >>> serial = map_tasks(noisy_sum, tasks, shared=2.0)
    >>> serial == map_tasks(noisy_sum, tasks, shared=2.0, backend="processes", workers=2)
    True

What the backends share: results come back in task order; a progress bar counts tasks;
with a ``store`` folder every finished task is written at once and a rerun skips it
(:mod:`interp.parallel.store`); a task that raises does not stop the others, and at the
end a :class:`SweepError` lists each failed task with its inputs and traceback (the
finished ones stay stored); a worker process that dies has its task run again, up to
``retries`` times. Inside ``interp run`` the command line's ``--backend``, ``--workers``
and ``--address`` choose the backend for every sweep (:func:`sweep_settings`), and each
analysis's sweeps are stored under ``OUT/.sweeps/NAME/`` until its report is written.
"""

import contextlib
import dataclasses
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Optional

from tqdm.auto import tqdm

from interp.parallel.store import TaskStore, fingerprint, task_json, task_key
from interp.progress import note
from interp.parallel.tasks import seed_of

BACKENDS = ("serial", "processes", "ray")


class SweepError(RuntimeError):
    """Tasks of a sweep failed; ``failures`` maps each one's index to ``(task, why)``."""

    def __init__(self, name: str, failures: dict[int, tuple[Any, str]], total: int):
        self.failures = failures
        lines = [f"{len(failures)} of {total} task(s) of sweep {name!r} failed (the others' results are kept):"]
        for index, (task, why) in sorted(failures.items()):
            last = why.strip().splitlines()[-1] if why.strip() else why
            lines.append(f"  task {index} {task_json(task)}: {last}")
        first = next(iter(sorted(failures.items())))[1][1]
        super().__init__("\n".join(lines) + f"\nfirst failure in full:\n{first}")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where sweeps run when :func:`map_tasks` is not told: set by :func:`sweep_settings`."""

    backend: str = "serial"
    workers: Optional[int] = None  # None: every CPU this process may use
    address: Optional[str] = None  # a Ray cluster; None starts a local one
    store: Optional[Path] = None  # folder that keeps finished tasks; None keeps nothing
    threads: int = 1  # torch threads per task


_CURRENT = [Settings()]


@contextlib.contextmanager
def sweep_settings(**changes: Any) -> Iterator[Settings]:
    """Within the block, :func:`map_tasks` calls that do not say otherwise use these settings
    (``backend``, ``workers``, ``address``, ``store``, ``threads``)."""
    settings = dataclasses.replace(_CURRENT[-1], **changes)
    check_backend(settings.backend, settings.address)
    _CURRENT.append(settings)
    try:
        yield settings
    finally:
        _CURRENT.pop()


def current_settings() -> Settings:
    """The settings :func:`map_tasks` uses now."""
    return _CURRENT[-1]


def check_backend(backend: str, address: Optional[str] = None) -> None:
    """A ValueError, one line, for a backend that does not exist, Ray missing when asked for, or an
    ``address`` where no cluster listens."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise ValueError(f"--address names a Ray cluster; it needs --backend ray (not {backend})")
    if backend == "ray":
        from interp.parallel.on_ray import check_address, import_ray

        import_ray()
        if address is not None:
            check_address(address)


GIB_PER_WORKER = 1.0  # what a worker may need beside the shared inputs (a SmolLM2 trace: about 0.5 GiB)


def default_workers(cpus: Optional[int] = None) -> int:
    """``cpus`` workers (default: every CPU this process may use), but no more than the memory available now
    holds at :data:`GIB_PER_WORKER` each, and at least one."""
    from interp.threads import usable_cpus

    cpus = usable_cpus() if cpus is None else cpus
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    except (ValueError, OSError, AttributeError):  # not POSIX: no cap
        return max(1, cpus)
    return max(1, min(cpus, int(available / GIB_PER_WORKER)))


def map_tasks(fn: Callable, tasks: Sequence[Any], *, shared: Any = None, name: str = "sweep",
              backend: Optional[str] = None, workers: Optional[int] = None, address: Optional[str] = None,
              store: Optional[str | Path] = None, threads: Optional[int] = None, retries: int = 2,
              progress: bool = True) -> list[Any]:
    """``[fn(task, shared) for task in tasks]`` (``fn(task)`` when ``shared`` is None), on ``backend``.

    ``name`` labels the progress bar and the sweep's folder under ``store``. Arguments left None come
    from :func:`sweep_settings` (serial, one thread per task, nothing stored, by default).
    """
    settings = current_settings()
    backend = settings.backend if backend is None else backend
    address = settings.address if address is None else address
    check_backend(backend, address)
    workers = workers or settings.workers or default_workers()
    threads = settings.threads if threads is None else threads
    store = settings.store if store is None else store
    if workers < 1 or threads < 1 or retries < 0:
        raise ValueError(f"workers and threads must be >= 1 and retries >= 0; got {workers}, {threads}, {retries}")
    tasks = list(tasks)
    keys = [task_key(task) for task in tasks]
    for task in tasks:
        seed_of(task)  # every task carries its seed
    if len(set(keys)) < len(keys):
        raise ValueError(f"sweep {name!r} has tasks with the same inputs; give each its own seed or label")
    kept = None
    if store is not None:  # a result is filed under its task and what it was computed from
        kept = TaskStore(store, name)
        inputs = fingerprint([fn, shared])
        keys = [task_key([key, inputs]) for key in keys]
    results: dict[int, Any] = {}
    stored = kept.keys() if kept else set()
    for index, key in enumerate(keys):
        if key in stored:
            results[index] = kept.get(key)
    pending = [(index, task) for index, task in enumerate(tasks) if index not in results]
    if results:
        note(f"sweep {name!r}: {len(results)} of {len(tasks)} task(s) already done, read from {kept.folder}")
    failures: dict[int, tuple[Any, str]] = {}
    bar = tqdm(total=len(tasks), initial=len(results), desc=name, leave=False, disable=not progress)

    def done(index: int, result: Any) -> None:
        results[index] = result
        if kept is not None:
            kept.put(keys[index], result)
        bar.update()

    def failed(index: int, why: str) -> None:
        failures[index] = (tasks[index], why)
        bar.update()

    try:
        _run(backend, fn, pending, shared, workers=workers, threads=threads, retries=retries, address=address,
             done=done, failed=failed)
    finally:
        bar.close()
    if failures:
        raise SweepError(name, failures, len(tasks))
    return [results[index] for index in range(len(tasks))]


def _run(backend: str, fn: Callable, pending: list, shared: Any, *, workers: int, threads: int, retries: int,
         address: Optional[str], done: Callable, failed: Callable) -> None:
    if not pending:
        return
    if backend == "ray":
        from interp.parallel.on_ray import run_on_ray

        run_on_ray(fn, pending, shared, workers=workers, threads=threads, retries=retries, address=address,
                   done=done, failed=failed)
    elif backend == "processes" and workers > 1 and len(pending) > 1:
        from interp.parallel.pool import run_on_processes, shared_memory_room

        fits, why = shared_memory_room(shared)
        if fits:
            return run_on_processes(fn, pending, shared, workers=workers, threads=threads, retries=retries,
                                    done=done, failed=failed)
        note(f"running this sweep serially: {why}; the results are the same")
        _run_here(fn, pending, shared, threads=threads, done=done, failed=failed)
    else:  # serial, or processes with one worker: in this process, on the same threads as a worker
        _run_here(fn, pending, shared, threads=threads, done=done, failed=failed)


def _run_here(fn: Callable, pending: list, shared: Any, *, threads: int, done: Callable, failed: Callable) -> None:
    import traceback

    import torch

    from interp.parallel.tasks import run_task
    from interp.threads import apply_threads

    before = torch.get_num_threads()
    try:
        for index, task in pending:
            try:
                result = run_task(fn, task, shared, threads)
            except Exception:
                failed(index, traceback.format_exc())
            else:
                done(index, result)
    finally:
        if torch.get_num_threads() != before:
            apply_threads(before)
