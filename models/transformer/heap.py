"""Keep the memory a cached forward freed for the next one, instead of handing it back to the system.

``run_with_cache`` of every hook keeps each activation alive until the cache is dropped: on
SmolLM2 (8 x 64 tokens) about 660 MB of tensors of a few MB each. glibc's malloc gives the top
of its heap back to the system once more than its trim threshold (by default twice its dynamic
mmap threshold, at most 64 MiB) lies free there, so every cached run page-faulted its 660 MB in
afresh, zeroed by the kernel: a cached forward took 1.3-1.5x a plain one. With the mmap
threshold fixed at glibc's largest (32 MiB on 64-bit) and the trim threshold at 1 GiB, freed
memory stays in the heap for the next run (24,600 page faults a run instead of 220,000; 1.1-1.2x,
``benchmarks/bench_lm.py``), at the price of a process that keeps up to 1 GiB it no longer uses
until it exits. ``INTERP_KEEP_HEAP=0`` leaves malloc as it was; other C libraries are left alone.
"""

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
TRIM_BYTES = 1 << 30
MMAP_BYTES = 32 << 20  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit; larger values are refused
ENV = "INTERP_KEEP_HEAP"
_applied: list[bool] = []  # once per process: [whether glibc took both settings]


def keep_freed_heap() -> bool:
    """Set glibc's trim and mmap thresholds as above, once per process; True where glibc took them
    (False on other systems, with ``INTERP_KEEP_HEAP=0``, or where ``mallopt`` refuses)."""
    if not _applied:
        _applied.append(os.environ.get(ENV, "1").strip() != "0" and sys.platform.startswith("linux") and _mallopt())
    return _applied[0]


def _mallopt() -> bool:
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no mallopt in this C library
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_BYTES))
