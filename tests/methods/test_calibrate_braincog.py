"""λ by BrainCog's rule (methods.md §3), against a computation by hand.

The network: x (4,) -> identity Dense -> ReLU 'a1' -> Dense of weights 1/4
(the mean) -> ReLU 'a2' -> Dense 'out'. With clip Γ = 2, p = 0.75 and
batches of two images, per batch N = 8 values of a1 (index int(8·0.75) − 1
= 5 of the sorted values) and N = 2 of a2 (index int(2·0.75) − 1 = 0).

batch 1: x = [-1, 0, 1, 3], [0.5, 0, 0, 4]
  a1 clipped: [0, 0, 1, 2, 0.5, 0, 0, 2] -> sorted [0, 0, 0, 0, 0.5, 1, 2, 2] -> 1
  a2 = mean of the clipped a1: 3/4, 2.5/4 -> sorted [0.625, 0.75] -> 0.625
batch 2: x = [3, 6, 5, 0], [0, 0, 0, 1]
  a1 clipped: [2, 2, 2, 0, 0, 0, 0, 1] -> sorted [0, 0, 0, 0, 1, 2, 2, 2] -> 2
  a2: 6/4, 1/4 -> sorted [0.25, 1.5] -> 0.25
λ = max over batches: a1 = 2 (from batch 2), a2 = 0.625 (from batch 1).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evsim import layers as L
from evsim.calibrate import _kth_smallest, activation_scales, braincog_scales
from evsim.network import Network, Node

IMAGES = np.array([[-1, 0, 1, 3], [0.5, 0, 0, 4], [3, 6, 5, 0], [0, 0, 0, 1]], np.float32)


def _network():
    return Network([
        Node("x", L.Input((4,))),
        Node("fc1", L.Dense(np.eye(4, dtype=np.float32)), ("x",)),
        Node("a1", L.ReLU(), ("fc1",)),
        Node("fc2", L.Dense(np.full((1, 4), 0.25, np.float32)), ("a1",)),
        Node("a2", L.ReLU(), ("fc2",)),
        Node("out", L.Dense(np.ones((1, 1), np.float32)), ("a2",)),
    ])


def test_hand_computation():
    scales = braincog_scales(_network(), IMAGES, p=0.75, clip=2.0, batch_size=2)
    assert scales == {"a1": 2.0, "a2": 0.625}
    assert all(type(v) is np.float64 for v in scales.values())


def test_the_clip_changes_lambda_and_propagates_downstream():
    # No clip: a1 batch 2 sorts to [0, 0, 0, 0, 1, 3, 5, 6] -> 3; a2 sees the unclipped
    # a1: batch 1 means 4/4, 4.5/4 -> 1; batch 2: 14/4, 1/4 -> 0.25; so λ = 3 and 1.
    assert braincog_scales(_network(), IMAGES, p=0.75, clip=None, batch_size=2) == {
        "a1": 3.0, "a2": 1.0}
    # With the clip only recorded, not passed on, a2 would be 1 as above; it is 0.625.
    assert braincog_scales(_network(), IMAGES, p=0.75, clip=2.0, batch_size=2)["a2"] == 0.625


def test_batches_are_separate_statistics_not_one_pooled_sort():
    # One batch of all four images: a2 values 0.75, 0.625, 1.5, 0.25 sort to
    # [0.25, 0.625, 0.75, 1.5]; index int(4·0.75) − 1 = 2 -> 0.75 (per batch: 0.625).
    # a1: the 16 clipped values hold eight zeros, then 0.5, 1, 1, 2 ×5; index 11 -> 2.
    assert braincog_scales(_network(), IMAGES, p=0.75, clip=2.0, batch_size=4) == {
        "a1": 2.0, "a2": 0.75}


def test_p_one_is_the_clipped_maximum_and_differs_from_the_positive_percentile():
    # p = 1: index N − 1, the largest clipped value: a1 2; a2 max(0.75, 1.5) = 1.5.
    assert braincog_scales(_network(), IMAGES, p=1.0, clip=2.0, batch_size=2) == {
        "a1": 2.0, "a2": 1.5}
    # The earlier rule (a percentile of the positive values, no clip) is another number.
    assert activation_scales(_network(), IMAGES, statistic="percentile",
                             percentile=75)["a1"] != 2.0


def test_a_zero_p_point_falls_back_to_the_largest_value_with_a_warning():
    # p = 0.5: index 3 of the sorted a1 values is 0 in both batches.
    with pytest.warns(UserWarning, match="layer 'a1'.*largest"):
        scales = braincog_scales(_network(), IMAGES, p=0.5, clip=2.0, batch_size=2)
    assert scales["a1"] == 2.0


@pytest.mark.parametrize("kwargs, match", [
    ({"p": 99.0}, "fraction in \\(0, 1\\]"),
    ({"p": 0.0}, "fraction in \\(0, 1\\]"),
    ({"clip": 0.0}, "clip must be positive"),
    ({"batch_size": 0}, "batch_size"),
    ({"p": 0.3, "batch_size": 1}, "layer 'a2'.*raise p or batch_size"),
])
def test_bad_arguments_say_what_to_do(kwargs, match):
    with pytest.raises(ValueError, match=match):
        braincog_scales(_network(), IMAGES, **kwargs)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(size=st.integers(1, 40_000), zeros=st.floats(0, 1), clipped=st.floats(0, 0.5),
       p=st.floats(0.5, 1.0), seed=st.integers(0, 2**32 - 1))
def test_the_p_point_selection_is_the_sorted_value(size, zeros, clipped, p, seed):
    """The shortcut selection equals sort(values)[k] on arrays like calibration's: many
    zeros, many values clipped to one bound, negatives, any rank."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=size).astype(np.float32)
    values[rng.random(size) < zeros] = 0
    values[rng.random(size) < clipped] = np.float32(0.75)
    k = min(int(size * p), size - 1)
    assert _kth_smallest(values, k) == np.sort(values)[k]


def test_the_p_point_selection_with_nans_is_numpys():
    values = np.linspace(0, 1, 100_000, dtype=np.float32)
    values[::7] = np.nan
    for k in (0, 50_000, 85_000, 99_999):
        assert np.array_equal(_kth_smallest(values, k), np.partition(values, k)[k],
                              equal_nan=True)
