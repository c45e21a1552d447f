"""One task of a sweep, run the same way wherever it runs: global random generators seeded
from the task's own seed and torch pinned to a fixed number of threads, so that its result
does not depend on the process, the worker or what ran there before.

    >>> import torch
    >>> def draw(task, shared):
    ...     return torch.rand(2) * shared
    >>> a = run_task(draw, {"seed": 3}, 10.0, threads=1)
    >>> b = run_task(draw, {"seed": 3}, 10.0, threads=1)
    >>> torch.equal(a, b)
    True
"""

import random
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from interp.threads import apply_threads


def seed_of(task: Any) -> int:
    """The seed a task carries: its ``seed`` attribute or ``"seed"`` key, a whole number >= 0."""
    seed = task.get("seed") if isinstance(task, dict) else getattr(task, "seed", None)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"every task must carry its seed (a whole number in [0, 2**63)) as .seed or ['seed']; "
                         f"got {seed!r} in {task!r:.120}")
    return int(seed)


def run_task(fn: Callable, task: Any, shared: Any, threads: int) -> Any:
    """``fn(task, shared)`` (``fn(task)`` when ``shared`` is None) on ``threads`` torch threads, with torch's,
    numpy's and Python's global generators seeded from the task's seed."""
    seed = seed_of(task)
    if torch.get_num_threads() != threads:
        apply_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    return fn(task) if shared is None else fn(task, shared)
