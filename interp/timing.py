"""Timing two implementations against each other on a machine whose speed drifts.

Each contender runs once per round, in an order shuffled every round, so a machine that slows
down or speeds up mid-run weighs on every contender alike, and no contender always follows
another (on SmolLM2 a fixed order made Hugging Face's model, timed twice, look 7% faster than
itself in its second slot). A speed-up is the median over rounds of the two contenders' times
in the same round, with the distribution-free interval of ``interp.intervals.median_interval``.

    >>> times = interleaved_times({"fast": lambda: sum(range(10)), "slow": lambda: sum(range(10_000))}, repeats=7)
    >>> [len(seconds) for seconds in times.values()]
    [7, 7]
    >>> ratio, low, high = paired_speedup(times["fast"], times["slow"])
    >>> 1 < low <= ratio <= high
    True
"""

import random
import time
from typing import Callable

from interp.intervals import median_interval


def interleaved_times(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                      seed: int = 0) -> dict[str, list[float]]:
    """Seconds per call of each of ``fns`` over ``repeats`` rounds (each once a round, in a shuffled
    order), after ``warmup`` untimed calls of each."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    rng = random.Random(seed)
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        order = list(fns)
        rng.shuffle(order)
        for name in order:
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return times


def paired_speedup(ours: list[float], theirs: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """``(median, low, high)`` of ``theirs / ours`` over rounds (> 1: ours is faster), the interval
    distribution-free (at least 6 rounds at 95%)."""
    if len(ours) != len(theirs):
        raise ValueError(f"paired times need as many rounds of each, got {len(ours)} and {len(theirs)}")
    return median_interval([t / o for o, t in zip(ours, theirs)], confidence)
