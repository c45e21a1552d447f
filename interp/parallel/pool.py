"""Local worker processes for :func:`interp.parallel.map_tasks`: each worker receives the
sweep's shared inputs once, then runs one task at a time; a worker that dies (killed, out
of memory) is replaced and its task run again.

Workers are started with ``spawn`` (a fresh interpreter: no threads or locks inherited
from a parent that already ran torch) through :mod:`torch.multiprocessing`, whose pickler
moves the tensors of the shared inputs into shared memory: model weights are not copied
once per worker, let alone once per task. The task function must be importable by name
(a module-level function), as with any ``spawn`` pool.
"""

import traceback
from collections import deque
from collections.abc import Callable, Iterable
from multiprocessing.connection import wait
from typing import Any

import torch.multiprocessing as mp

from interp.parallel.tasks import run_task


def run_on_processes(fn: Callable, pending: Iterable[tuple[int, Any]], shared: Any, *, workers: int, threads: int,
                     retries: int, done: Callable[[int, Any], None], failed: Callable[[int, str], None]) -> None:
    """Run ``fn`` on each ``(index, task)`` of ``pending`` on ``workers`` processes; calls ``done(index, result)``
    as results arrive and ``failed(index, why)`` for a task that raised or whose worker died ``retries + 1``
    times."""
    queue = deque(pending)
    attempts = {index: 0 for index, _ in queue}
    context = mp.get_context("spawn")
    busy: dict[Any, tuple[Any, tuple[int, Any] | None]] = {}  # connection -> (process, task it runs)

    def start() -> None:
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, fn, threads), daemon=True)
        process.start()
        child.close()
        try:
            parent.send(shared)  # once per worker: tensors travel as shared memory
            parent.recv()  # the worker has them
        except (EOFError, OSError):
            process.join()
            raise RuntimeError(f"a worker process failed to start (exit code {process.exitcode}; its traceback is "
                               f"above). A script that runs a sweep on processes must start it under "
                               f"`if __name__ == '__main__':`, and the task function must be importable by name"
                               ) from None
        busy[parent] = (process, None)

    def feed(connection) -> None:
        process, _ = busy[connection]
        if queue:
            item = queue.popleft()
            connection.send(item)
            busy[connection] = (process, item)
        else:
            connection.send(None)
            busy.pop(connection)
            process.join()
            connection.close()

    try:
        for _ in range(min(workers, len(queue))):
            start()
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
                        failed(index, f"its worker died {attempts[index]} time{'s' if attempts[index] > 1 else ''} "
                               f"(last exit code {process.exitcode})")
                    else:
                        queue.appendleft(item)
                    if queue and len(busy) < workers:
                        start()
                        feed(list(busy)[-1])
                    continue
                (done if status == "ok" else failed)(index, value)
                feed(connection)
    finally:
        for connection, (process, _) in busy.items():
            process.kill()
            process.join()
            connection.close()


def _serve(connection, fn: Callable, threads: int) -> None:
    """A worker: the shared inputs first, then ``(index, task)`` pairs until ``None``."""
    shared = connection.recv()
    connection.send("ready")
    while (item := connection.recv()) is not None:
        index, task = item
        try:
            connection.send((index, "ok", run_task(fn, task, shared, threads)))
        except Exception:
            connection.send((index, "error", traceback.format_exc()))
