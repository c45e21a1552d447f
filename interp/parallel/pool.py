"""Local worker processes for :func:`interp.parallel.map_tasks`: each worker receives a
sweep's shared inputs once, then runs one task at a time; a worker that dies (killed, out
of memory) is replaced and its task run again.

Workers are started with ``spawn`` (a fresh interpreter: no threads or locks inherited
from a parent that already ran torch) through :mod:`torch.multiprocessing`, whose pickler
moves the tensors of the shared inputs into shared memory: model weights are not copied
once per worker, let alone once per task. Starting a worker costs seconds (a fresh
interpreter imports torch), so the workers stay up between sweeps of one process (one
``interp run``, one notebook) and serve the next sweep; they are stopped at exit, or at
once when a sweep is interrupted. The task function must be importable by name (a
module-level function), and a script that starts a sweep must do so under
``if __name__ == "__main__":``, as with any ``spawn`` pool.
"""

import atexit
import signal
import sys
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from multiprocessing.connection import wait
from typing import Any

import torch.multiprocessing as mp

from interp.parallel.tasks import run_task

# the idle workers between sweeps: connection -> process, for one thread count
_IDLE: dict[Any, Any] = {}
_IDLE_THREADS = [0]


def run_on_processes(fn: Callable, pending: Iterable[tuple[int, Any]], shared: Any, *, workers: int, threads: int,
                     retries: int, done: Callable[[int, Any], None], failed: Callable[[int, str], None]) -> None:
    """Run ``fn`` on each ``(index, task)`` of ``pending`` on ``workers`` processes; calls ``done(index, result)``
    as results arrive and ``failed(index, why)`` for a task that raised or whose worker died ``retries + 1``
    times."""
    queue = deque(pending)
    attempts = {index: 0 for index, _ in queue}
    busy: dict[Any, tuple[Any, tuple[int, Any] | None]] = {}  # connection -> (process, task it runs)
    if _IDLE_THREADS[0] != threads:
        stop_workers()
        _IDLE_THREADS[0] = threads

    def enlist(connection, process) -> None:
        try:
            connection.send(("path", list(sys.path)))  # the parent's, as now: an analysis file's folder may be new
            connection.send(("shared", fn, shared))  # once per worker and sweep: tensors travel as shared memory
            connection.recv()  # the worker has them
        except (EOFError, OSError):
            process.join()
            connection.close()
            raise RuntimeError(f"a worker process failed to start (exit code {process.exitcode}; its traceback is "
                               f"above). A script that runs a sweep on processes must start it under "
                               f"`if __name__ == '__main__':`, and the task function must be importable by name"
                               ) from None
        busy[connection] = (process, None)

    def spawn() -> tuple[Any, Any]:
        while _IDLE:  # a worker left by an earlier sweep
            connection, process = _IDLE.popitem()
            if process.is_alive():
                return connection, process
            connection.close()
        parent, child = mp.get_context("spawn").Pipe()
        process = mp.get_context("spawn").Process(target=_serve, args=(child, threads), daemon=True)
        process.start()
        child.close()
        return parent, process

    def start(n: int) -> None:
        for connection, process in [spawn() for _ in range(n)]:  # the new ones boot side by side
            enlist(connection, process)

    def feed(connection) -> None:
        process, _ = busy[connection]
        if queue:
            item = queue.popleft()
            connection.send(("task", *item))
            busy[connection] = (process, item)
        else:  # this sweep is done for this worker: it drops the shared inputs and waits for the next
            busy.pop(connection)
            connection.send(("idle",))
            _IDLE[connection] = process

    finished = False
    try:
        start(min(workers, len(queue)))
        for connection in list(busy):
            feed(connection)
        while busy:
            for connection in wait(list(busy)):
                process, item = busy[connection]
                try:
                    index, status, value = connection.recv()
                except (EOFError, OSError):  # the worker died with ``item`` in hand
                    busy.pop(connection)
                    connection.close()
                    process.join()
                    index = item[0]
                    attempts[index] += 1
                    if attempts[index] > retries:
                        times = "once" if attempts[index] == 1 else f"{attempts[index]} times"
                        failed(index, f"its worker died {times} (last exit code {process.exitcode})")
                    else:
                        queue.appendleft(item)
                    if queue and len(busy) < workers:
                        start(1)
                        feed(list(busy)[-1])
                    continue
                (done if status == "ok" else failed)(index, value)
                feed(connection)
        finished = True
    finally:
        if not finished:  # interrupted, or the parent failed: no worker is left running a task
            for connection, (process, _) in busy.items():
                process.kill()
                process.join()
                connection.close()
            stop_workers()


SHM = "/dev/shm"  # where torch's file_descriptor strategy puts shared tensors on Linux


def tensor_bytes(value: Any, depth: int = 0) -> int:
    """Bytes of the tensors in ``value`` (through modules, dicts, lists and tuples): what sharing it with the
    workers puts in shared memory."""
    import torch

    if depth > 20:
        return 0
    if isinstance(value, torch.nn.Module):
        return sum(t.numel() * t.element_size() for t in value.state_dict().values())
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(v, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v, depth + 1) for v in value)
    return 0


def shared_memory_room(shared: Any) -> tuple[bool, str]:
    """Whether ``shared``'s tensors fit in what is free of /dev/shm (a container's default is 64 MB, a model's
    weights are hundreds), and why not."""
    import shutil

    needed = tensor_bytes(shared)
    try:
        free = shutil.disk_usage(SHM).free
    except OSError:  # no /dev/shm (not Linux): torch shares through the file system's temporary files
        return True, ""
    if needed <= 0.9 * free:
        return True, ""
    return False, (f"the shared inputs need {needed / 2**20:,.1f} MiB of shared memory and {SHM} has "
                   f"{free / 2**20:,.1f} MiB free (a container's default; docker run --shm-size=2g gives more)")


def stop_workers() -> None:
    """Stop the idle workers (at exit, or before workers with another thread count are needed)."""
    while _IDLE:
        connection, process = _IDLE.popitem()
        try:
            connection.send(None)
        except OSError:
            pass
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
        connection.close()


atexit.register(stop_workers)


def _serve(connection, threads: int) -> None:
    """A worker: for each sweep, its function and shared inputs, then ``(index, task)`` pairs; ``None`` ends it.
    Ctrl-C reaches the parent, which stops the workers: a worker ignores it rather than print a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fn = shared = None
    while (message := connection.recv()) is not None:
        if message[0] == "shared":
            _, fn, shared = message
            connection.send("ready")
            continue
        if message[0] == "path":
            sys.path[:] = message[1]
            continue
        if message[0] == "idle":
            fn = shared = None
            continue
        _, index, task = message
        try:
            connection.send((index, "ok", run_task(fn, task, shared, threads)))
        except Exception:
            connection.send((index, "error", traceback.format_exc()))
