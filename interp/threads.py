"""How many threads torch should use: the CPUs this process can have now, not the cores the machine has.

    >>> from interp.threads import apply_threads, choose_threads
    >>> choose_threads(3)                   # an explicit request wins
    3
    >>> n = choose_threads()                # else $INTERP_THREADS, else the CPUs free for this process
    >>> before = apply_threads(n)           # torch's intra-op count (and BLAS pools) set; the old count back
    >>> import torch; torch.get_num_threads() == n
    True
    >>> _ = apply_threads(before)           # as it was

Why: torch starts one intra-op thread per core and splits each operation between them, every
thread waiting for the slowest. Beside other CPU-bound processes the cores are oversubscribed,
a thread that the scheduler parks stalls the rest, and the run slows far more than its share of
the machine would say (issue 18: ``backprop`` 12 times slower beside two torch jobs on two
cores, ``interp run all --quick`` 6 times). So, unless told (``interp run --threads N`` or
``INTERP_THREADS``), the count is the CPUs this process may run on (``os.sched_getaffinity``)
minus the other threads ready to run (``/proc/loadavg``'s running count, without this one; the
one-minute load average where that file is missing), at least 1 and at most torch's default.

The running count is the machine's (a container sees its host's), so on a busy shared host the
choice errs towards fewer threads; ``benchmarks/bench_load.py`` measures what that buys.
"""

import os
import statistics
import time
from typing import Optional

ENV = "INTERP_THREADS"
LOADAVG = "/proc/loadavg"
_TORCH_DEFAULT: list[int] = []  # torch's own thread count, read before this module changes it


def choose_threads(requested: Optional[int] = None) -> int:
    """The torch thread count for this process: ``requested``, else ``$INTERP_THREADS``, else the free CPUs."""
    return thread_choice(requested)[0]


def thread_choice(requested: Optional[int] = None) -> tuple[int, str]:
    """``(threads, why)``: :func:`choose_threads`'s count and a few words on where it came from (for a log)."""
    if requested is not None:
        return _count(requested, "--threads"), "--threads"
    value = os.environ.get(ENV, "").strip()
    if value:
        return _count(value, ENV), f"${ENV}"
    cpus, others, default = usable_cpus(), other_runnable(), torch_default_threads()
    free = max(1, min(cpus - others, default))
    return free, f"{cpus} CPU(s) for this process, {others} other runnable thread(s), torch's default {default}"


def apply_threads(n: int) -> int:
    """Give torch ``n`` intra-op threads, and ``n`` inter-op threads where torch still allows it
    (only before its first parallel work and only once per process); returns the intra-op count before.

    The BLAS libraries numpy, scipy and scikit-learn call (OpenBLAS, MKL: their own thread pools,
    which torch's count does not reach) get ``n`` threads too, through ``threadpoolctl``: a
    two-thread OpenBLAS team beside two busy processes made the ``context`` analysis's probes
    11 times slower while torch ran on one thread (``benchmarks/bench_load.py``).
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch_default_threads()  # remember torch's own count before changing it
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # "cannot set number of interop threads after parallel work has started"
        pass
    threadpool_limits(limits=n, user_api="blas")  # applied for the process, not only inside a with-block
    return before


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def other_runnable(samples: int = 3, interval: float = 0.01) -> int:
    """Threads ready to run besides this one: the median of a few reads of ``/proc/loadavg``'s running
    count (an instant's count, so read more than once), minus this reader; the one-minute load average
    where that file cannot be read."""
    counts = []
    for k in range(samples):
        try:
            with open(LOADAVG) as f:
                running = f.read().split()[3].split("/")[0]  # "0.52 0.40 0.31 3/98 5232": 3 runnable
            counts.append(int(running) - 1)
        except (OSError, IndexError, ValueError):
            break
        if k + 1 < samples:
            time.sleep(interval)
    if counts:
        return max(0, round(statistics.median(counts)))
    try:
        return max(0, round(os.getloadavg()[0]))
    except (AttributeError, OSError):
        return 0


def torch_default_threads() -> int:
    """torch's intra-op thread count as this process started with it (``OMP_NUM_THREADS`` or the cores)."""
    if not _TORCH_DEFAULT:
        import torch

        _TORCH_DEFAULT.append(torch.get_num_threads())
    return _TORCH_DEFAULT[0]


def _count(value: object, name: str) -> int:
    """``value`` as a thread count >= 1, or a ValueError naming ``name``."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.lstrip("+").isdigit() or int(text) < 1:
        raise ValueError(f"{name}={value!r} is not a thread count; use a whole number >= 1 (or leave it unset to "
                         "fit the threads to the free CPUs)")
    return int(text)
