"""Interleaved timing: every contender once a round, in a shuffled order; paired speed-ups."""

import pytest

from interp import timing


def test_every_contender_runs_once_a_round_in_orders_that_vary():
    calls: list[str] = []
    times = timing.interleaved_times({name: (lambda name=name: calls.append(name)) for name in "abc"},
                                     repeats=20, warmup=2)
    assert [len(seconds) for seconds in times.values()] == [20, 20, 20]
    assert calls[:6] == ["a", "a", "b", "b", "c", "c"]  # the warm-ups, in the given order
    rounds = [tuple(calls[6 + 3 * i: 9 + 3 * i]) for i in range(20)]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)
    assert len(set(rounds)) > 1  # shuffled, not a fixed rotation


def test_paired_speedup_is_the_median_of_per_round_ratios():
    ours = [1.0, 2.0, 1.0, 1.0, 2.0, 1.0, 1.0]
    theirs = [2.0, 2.0, 3.0, 2.0, 4.0, 1.5, 2.0]  # ratios 2, 1, 3, 2, 2, 1.5, 2
    assert timing.paired_speedup(ours, theirs) == (2.0, 1.0, 3.0)
    with pytest.raises(ValueError, match="as many rounds"):
        timing.paired_speedup(ours, theirs[:-1])
