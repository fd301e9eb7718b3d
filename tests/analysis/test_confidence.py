"""The Wilson score interval against published values (Newcombe 1998, Table I) and by hand."""

import math

import pytest

from evsim.analysis import accuracy_interval, wilson_interval
from evsim.errors import EvsimValueError


@pytest.mark.parametrize("correct, n, low, high", [
    # R. G. Newcombe, "Two-sided confidence intervals for the single proportion: comparison
    # of seven methods", Statistics in Medicine 17 (1998) 857-872, Table I, method 3 (score)
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718)])
def test_the_interval_equals_newcombes_published_values(correct, n, low, high):
    got = wilson_interval(correct, n)
    assert got[0] == pytest.approx(low, abs=5e-5) and got[1] == pytest.approx(high, abs=5e-5)


def test_the_interval_by_hand_at_zero_and_one_half():
    z2 = 1.959963984540054 ** 2
    # k = 0: (0, z²/(n + z²)); k = n/2: 1/2 ± z·sqrt(1/4n + z²/4n²)/(1 + z²/n)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(z2 / (10 + z2)))
    half = 1.959963984540054 * math.sqrt(1 / 40 + z2 / 400) / (1 + z2 / 10)
    assert wilson_interval(5, 10) == (pytest.approx(0.5 - half), pytest.approx(0.5 + half))
    assert wilson_interval(10, 10) == (pytest.approx(1 - z2 / (10 + z2)), 1.0)


def test_an_accuracy_and_a_count_give_the_same_interval():
    assert accuracy_interval(0.943, 1000) == wilson_interval(943, 1000)
    low, high = accuracy_interval(0.5, 100, confidence=0.99)
    assert high - low > 2 * (accuracy_interval(0.5, 100)[1] - 0.5)


@pytest.mark.parametrize("args", [(3, 0), (11, 10), (-1, 10), (1, 2.5), (1, True)])
def test_bad_counts_are_refused(args):
    with pytest.raises(EvsimValueError):
        wilson_interval(*args)


def test_pareto_optimal_points_by_hand():
    from evsim.analysis import pareto_optimal

    # (cost, accuracy): (1, .5) optimal; (2, .4) dominated by it; (2, .7) optimal;
    # (3, .7) dominated (same accuracy, dearer); (4, .9) optimal
    got = pareto_optimal([1, 2, 2, 3, 4], [0.5, 0.4, 0.7, 0.7, 0.9])
    assert got.tolist() == [True, False, True, False, True]
    assert pareto_optimal([1, 1], [0.5, 0.5]).tolist() == [True, True]
    with pytest.raises(EvsimValueError):
        pareto_optimal([1, 2], [0.5])
