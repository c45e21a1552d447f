"""The distribution-free interval of a median, against scipy's binomial law and by its coverage."""

import numpy as np
import pytest
from scipy import stats

from interp.intervals import median_interval


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_median_interval_takes_the_order_statistics_the_binomial_law_gives(confidence):
    for n in range(6 if confidence < 0.99 else 8, 61):
        # k: the largest rank with P(Binomial(n, 1/2) <= k - 1) <= (1 - confidence) / 2, from scipy
        k = max(j for j in range(1, n // 2 + 1) if stats.binom.cdf(j - 1, n, 0.5) <= (1 - confidence) / 2)
        values = np.random.default_rng(n).permutation(np.arange(1.0, n + 1))  # the i-th smallest is i
        median, low, high = median_interval(values, confidence)
        assert (median, low, high) == (float(np.median(values)), float(k), float(n + 1 - k)), n


def test_median_interval_covers_the_true_median_as_often_as_promised():
    rng = np.random.default_rng(0)
    samples = rng.exponential(size=(4000, 15))  # the true median is ln 2
    covered = np.mean([low <= np.log(2) <= high for _, low, high in map(median_interval, samples)])
    exact = 1 - 2 * stats.binom.cdf(3, 15, 0.5)  # ranks 4 and 12 of 15: 0.965
    assert abs(covered - exact) < 4 * np.sqrt(exact * (1 - exact) / len(samples))


def test_median_interval_refuses_samples_too_small_for_the_confidence():
    with pytest.raises(ValueError, match="5 values are too few for a 95% interval"):
        median_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="confidence"):
        median_interval(range(10), confidence=1.0)
