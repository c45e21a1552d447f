"""Confidence intervals: Wilson's for a share, Newcombe's for the difference of two shares, the
normal approximation for a mean, the distribution-free one for a median, and Student's t for where
one more draw will land (a prediction interval).

The one home of these formulas; every analysis that reports a share of successes (prompts a
diffusion model follows, neurons whose output promotes the right answer, edits that work) or a
mean over units (facts, classes) with the normal approximation takes its interval from here.
(Student's t over edits stays with the edit scores, ``analyses.facts_lm.edit_scores``; the
traces' grouped version with ``interp.patching.tracing.average_indirect_effect``.)

    >>> low, high = wilson_interval(0.5, 20)
    >>> round(low, 4), round(high, 4)        # inside [0, 1], unlike the share +- 1.96 standard errors
    (0.2993, 0.7007)
    >>> share, low, high = share_interval([True, True, True, False])
    >>> share, round(low, 3), round(high, 3)
    (0.75, 0.301, 0.954)
    >>> low, high = difference_interval(45, 50, 20, 50)
    >>> 0 < low < 0.5 < high
    True
    >>> normal_interval([1.0, 2.0, 3.0])     # mean, mean -+ 1.96 standard errors
    (2.0, 0.868..., 3.131...)
    >>> median_interval(range(1, 16))        # 15 values: the 4th and the 12th smallest
    (8.0, 4.0, 12.0)
    >>> mean, low, high = prediction_interval([1.0, 2.0, 3.0, 4.0, 5.0])   # a sixth value: 3 -+ 4.81
    >>> mean, round(low, 2), round(high, 2)
    (3.0, -1.81, 7.81)
"""

import math
import statistics
from typing import Iterable

import numpy as np

Z_95 = 1.96


def wilson_interval(share: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson's (1927) score interval ``(low, high)`` for a share of ``n`` 0/1 trials; ``z`` sets the
    coverage (1.96: 95%)."""
    if n <= 0:
        raise ValueError(f"a share needs at least one trial, got n={n}")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"a share lies in [0, 1], got {share}")
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def share_interval(values: Iterable[float], z: float = Z_95) -> tuple[float, float, float]:
    """The share of true (1) values and its Wilson interval, as ``(share, low, high)``."""
    values = np.asarray(list(values), dtype=float)
    share = float(values.mean()) if len(values) else float("nan")
    low, high = wilson_interval(share, len(values), z)
    return share, float(low), float(high)


def normal_interval(values: Iterable[float], z: float = Z_95) -> tuple[float, float, float]:
    """The mean and ``mean -+ z`` standard errors (sample standard deviation), as ``(mean, low, high)``;
    the interval is NaN for fewer than two values."""
    values = np.asarray(list(values), dtype=float)
    mean = float(values.mean()) if len(values) else float("nan")
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = z * float(values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def difference_interval(k1: int, n1: int, k2: int, n2: int, z: float = Z_95) -> tuple[float, float]:
    """Newcombe's (1998, method 10) interval for ``k1 / n1 - k2 / n2``, from the two Wilson intervals."""
    p1, p2 = k1 / n1, k2 / n2
    (l1, u1), (l2, u2) = wilson_interval(p1, n1, z), wilson_interval(p2, n2, z)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def median_interval(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """The median and a distribution-free interval for it, as ``(median, low, high)``: the ``k``-th
    smallest and ``k``-th largest values, ``k`` the largest with ``P(Binomial(n, 1/2) < k) <= (1 -
    confidence) / 2``, so the interval covers the true median with at least ``confidence`` for any
    continuous distribution (Conover, *Practical Nonparametric Statistics*, 3rd ed., section 3.2).
    Refuses samples too small for that (fewer than 6 values at 95%)."""
    ordered = sorted(float(v) for v in values)
    n = len(ordered)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence lies in (0, 1), got {confidence}")
    tail, k = 0.0, 0
    while k < n // 2 and tail + math.comb(n, k) / 2 ** n <= (1 - confidence) / 2:
        tail += math.comb(n, k) / 2 ** n
        k += 1
    if k == 0:
        raise ValueError(f"{n} values are too few for a {confidence:.0%} interval of their median: even the "
                         f"smallest to the largest covers it with only {1 - 2 / 2 ** n if n else 0:.1%}")
    return statistics.median(ordered), ordered[k - 1], ordered[n - k]


def prediction_interval(values: Iterable[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """The mean and where one more value from the same normal distribution lands with ``confidence``,
    as ``(mean, low, high)``: ``mean -+ t s sqrt(1 + 1/n)``, ``s`` the sample standard deviation and
    ``t`` Student's quantile with ``n - 1`` degrees of freedom (the interval for a new draw, wider
    than the one for the mean by the draw's own spread). Needs at least two values."""
    from scipy.stats import t as student_t

    values = np.asarray(list(values), dtype=float)
    if len(values) < 2:
        raise ValueError(f"a prediction interval needs at least two values, got {len(values)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence lies in (0, 1), got {confidence}")
    n, mean = len(values), float(values.mean())
    half = float(student_t.ppf((1 + confidence) / 2, n - 1)) * float(values.std(ddof=1)) * math.sqrt(1 + 1 / n)
    return mean, mean - half, mean + half
