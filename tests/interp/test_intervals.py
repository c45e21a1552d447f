"""The distribution-free interval of a median, against scipy's binomial law and by its coverage; the
prediction interval by its coverage of a new draw and against a printed t table."""

import numpy as np
import pytest
from scipy import stats

from interp.intervals import median_interval, prediction_interval


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


def test_prediction_interval_uses_the_printed_t_quantile():
    # five values 1..5: mean 3, s = sqrt(2.5); t(0.975, 4 df) = 2.776 in any printed table
    mean, low, high = prediction_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == 3.0
    assert high - mean == pytest.approx(2.776445 * np.sqrt(2.5) * np.sqrt(1.2), rel=1e-6)
    assert mean - low == pytest.approx(high - mean)


@pytest.mark.parametrize("n", [3, 5, 9])
def test_prediction_interval_covers_a_new_draw_as_often_as_promised(n):
    rng = np.random.default_rng(n)
    draws = rng.normal(2.0, 3.0, size=(4000, n + 1))  # n to build the interval from, one new
    inside = np.mean([low <= row[-1] <= high for row in draws for _, low, high in [prediction_interval(row[:-1])]])
    assert abs(inside - 0.95) < 4 * np.sqrt(0.95 * 0.05 / len(draws))


def test_prediction_interval_refuses_one_value():
    with pytest.raises(ValueError, match="at least two values"):
        prediction_interval([1.0])
