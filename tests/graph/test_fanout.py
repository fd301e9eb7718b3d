"""Fan-out maps against brute-force counting, and the signal plan of small networks.

The brute force builds each layer's linear map as a dense matrix over the
whole tensor (channels included) with explicit loops over output positions,
every existing connection set to a strictly positive random weight, so that
no sum can cancel. The column of a source neuron is the response to a unit
impulse there; its nonzero count is the number of accumulates it causes.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evsim import layers as L
from evsim.fanout import path_fanout
from evsim.network import NetworkBuilder
from evsim.signals import ANALOG, CURRENT, EVENTS, POOLED, ConversionError, plan

FAST = settings(max_examples=60, deadline=None, derandomize=True)


# ----------------------------------------------------------------------------
# Brute-force linear maps
# ----------------------------------------------------------------------------

def _n_out(size, kernel, stride, pad, dilation, ceil_mode):
    """Window count along an axis, by enumeration (PyTorch rules)."""
    span = dilation * (kernel - 1) + 1
    if span > size + 2 * pad:
        return 0
    n = 0
    while True:
        if ceil_mode:
            ok = (n == 0 or (n - 1) * stride + span < size + 2 * pad) and n * stride < size + pad
        else:
            ok = n * stride + span <= size + 2 * pad
        if not ok:
            return n
        n += 1


def _window(o, kernel, stride, pad, dilation, size):
    """Input indices a window/kernel placement ``o`` touches (padding and overhang dropped)."""
    return [o * stride - pad + t * dilation for t in range(kernel)
            if 0 <= o * stride - pad + t * dilation < size]


def brute_map(layer, in_shape, rng):
    """(matrix (out_size, in_size) with positive entries where connected, out_shape)."""
    if isinstance(layer, L.Flatten):
        n = int(np.prod(in_shape))
        return np.diag(rng.uniform(0.5, 1.5, n)), (n,)
    if isinstance(layer, L.Dense):
        assert len(in_shape) == 1
        return rng.uniform(0.5, 1.5, (layer.out_features, in_shape[0])), (layer.out_features,)
    c, h, w = in_shape
    index_in = np.arange(c * h * w).reshape(c, h, w)
    if isinstance(layer, L.GlobalAvgPool):
        m = np.zeros((c, c * h * w))
        for ch in range(c):
            m[ch, index_in[ch].ravel()] = rng.uniform(0.5, 1.5, h * w)
        return m, (c, 1, 1)
    if isinstance(layer, L.Conv2d):
        kernel, stride, pad, dil = layer.kernel_size, layer.stride, layer.padding, layer.dilation
        cout, groups = layer.out_channels, layer.groups
        cin_g, cout_g = c // groups, cout // groups
    else:  # AvgPool2d / MaxPool2d (structure only: each window member connects)
        kernel, stride, pad, dil = layer.kernel_size, layer.stride, layer.padding, (1, 1)
        cout, groups, cin_g, cout_g = c, c, 1, 1
    ceil = getattr(layer, "ceil_mode", False)
    ho = _n_out(h, kernel[0], stride[0], pad[0], dil[0], ceil)
    wo = _n_out(w, kernel[1], stride[1], pad[1], dil[1], ceil)
    m = np.zeros((cout * ho * wo, c * h * w))
    index_out = np.arange(cout * ho * wo).reshape(cout, ho, wo)
    for co in range(cout):
        g = co // cout_g
        for oy in range(ho):
            rows_in = _window(oy, kernel[0], stride[0], pad[0], dil[0], h)
            for ox in range(wo):
                cols_in = _window(ox, kernel[1], stride[1], pad[1], dil[1], w)
                for ci in range(g * cin_g, (g + 1) * cin_g):
                    for iy in rows_in:
                        for ix in cols_in:
                            m[index_out[co, oy, ox], index_in[ci, iy, ix]] = rng.uniform(0.5, 1.5)
    return m, (cout, ho, wo)


def brute_fanout(source_shape, layers, seed=0):
    """Nonzero outputs of the composed map for a unit impulse at every source neuron."""
    rng = np.random.default_rng(seed)
    shape = tuple(source_shape)
    n = int(np.prod(shape))
    total = np.eye(n)
    for layer in layers:
        m, out_shape = brute_map(layer, shape, rng)
        assert tuple(layer.output_shape([shape])) == out_shape, (layer, shape)
        total = m @ total
        shape = out_shape
    assert np.all(total >= 0)
    counts = np.empty(n, dtype=np.int64)
    for j in range(n):
        impulse = np.zeros(n)
        impulse[j] = 1.0
        counts[j] = np.count_nonzero(total @ impulse)
    return counts.reshape(source_shape)


def evsim_fanout(source_shape, chain_layers, consumer):
    chain, shape = [], tuple(source_shape)
    for layer in chain_layers:
        chain.append((layer, shape))
        shape = tuple(layer.output_shape([shape]))
    return path_fanout(tuple(source_shape), chain, consumer,
                       None if consumer is None else shape)


def check(source_shape, chain_layers, consumer):
    got = evsim_fanout(source_shape, chain_layers, consumer)
    layers = list(chain_layers) + ([] if consumer is None else [consumer])
    want = brute_fanout(source_shape, layers)
    assert got.shape == tuple(source_shape)
    assert np.issubdtype(got.dtype, np.integer)
    np.testing.assert_array_equal(got, want)
    return got


# ----------------------------------------------------------------------------
# Hypothesis: random linear paths
# ----------------------------------------------------------------------------

@st.composite
def pool_layer(draw, shape):
    _, h, w = shape
    kernel = (draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w))))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    ceil_mode = draw(st.booleans())
    if draw(st.booleans()):
        return L.AvgPool2d(kernel, stride, padding, ceil_mode=ceil_mode,
                           count_include_pad=draw(st.booleans()))
    return L.MaxPool2d(kernel, stride, padding, ceil_mode=ceil_mode)


@st.composite
def conv_layer(draw, shape, rng):
    c, h, w = shape
    divisors = [g for g in range(1, c + 1) if c % g == 0]
    groups = draw(st.sampled_from(divisors))
    cout = groups * draw(st.integers(1, 2))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    kh = draw(st.integers(1, min(3, (h + 2 * padding[0] - 1) // dilation[0] + 1)))
    kw = draw(st.integers(1, min(3, (w + 2 * padding[1] - 1) // dilation[1] + 1)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    weight = rng.uniform(0.5, 1.5, (cout, c // groups, kh, kw))
    return L.Conv2d(weight, stride=stride, padding=padding, dilation=dilation, groups=groups)


@st.composite
def paths(draw):
    c = draw(st.integers(1, 4))
    shape = (c, draw(st.integers(1, 7)), draw(st.integers(1, 7)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    source = shape
    chain = []
    for _ in range(draw(st.integers(0, 2))):
        layer = draw(pool_layer(shape))
        try:
            out = tuple(layer.output_shape([shape]))
        except L.ShapeError:
            break
        chain.append(layer)
        shape = out
    if draw(st.integers(0, 4)) == 0:
        chain.append(L.GlobalAvgPool())
        shape = (shape[0], 1, 1)
    end = draw(st.sampled_from(["conv", "conv", "conv", "dense", "none", "flatten-none"]))
    consumer = None
    if end == "conv":
        try:
            consumer = draw(conv_layer(shape, rng))
            consumer.output_shape([shape])
        except L.ShapeError:
            consumer = None
    elif end == "dense":
        chain.append(L.Flatten())
        n = int(np.prod(shape))
        consumer = L.Dense(rng.uniform(0.5, 1.5, (draw(st.integers(1, 4)), n)))
    elif end == "flatten-none":
        chain.append(L.Flatten())
    return source, chain, consumer


@FAST
@given(paths())
def test_path_fanout_matches_brute_force(path):
    source, chain, consumer = path
    check(source, chain, consumer)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.integers(1, 12), st.integers(1, 5), st.booleans())
def test_one_dimensional_sources(n, out, flatten):
    rng = np.random.default_rng(n)
    dense = L.Dense(rng.uniform(0.5, 1.5, (out, n)))
    chain = [L.Flatten()] if flatten else []
    got = check((n,), chain, dense)
    assert np.all(got == out)
    assert np.all(check((n,), chain, None) == 1)


# ----------------------------------------------------------------------------
# Hand-picked cases
# ----------------------------------------------------------------------------

def test_same_conv_on_4x4_has_100_over_144_of_nominal_targets():
    cout = 5
    conv = L.Conv2d(np.ones((cout, 1, 3, 3)), padding=1)
    got = check((1, 4, 4), [], conv)
    # per axis the 4 inputs reach 2, 3, 3, 2 output rows
    per_axis = np.array([2, 3, 3, 2])
    np.testing.assert_array_equal(got[0], np.outer(per_axis, per_axis) * cout)
    ratio = Fraction(int(got.sum()), 16 * 9 * cout)
    assert ratio == Fraction(100, 144)
    assert round(float(ratio), 2) == 0.69


def test_pool_that_drops_last_row_and_column():
    # 5x5, kernel 2 stride 2: row 4 and column 4 belong to no window
    got = check((2, 5, 5), [L.AvgPool2d(2)], None)
    assert np.all(got[:, 4, :] == 0) and np.all(got[:, :, 4] == 0)
    assert np.all(got[:, :4, :4] == 1)
    # the same with a following conv: still zero there
    got = check((2, 5, 5), [L.MaxPool2d(2)], L.Conv2d(np.ones((3, 2, 1, 1))))
    assert np.all(got[:, 4, :] == 0) and got[0, 0, 0] == 3
    # ceil_mode covers them again
    got = check((1, 5, 5), [L.AvgPool2d(2, ceil_mode=True)], None)
    assert np.all(got == 1)


def test_overlapping_pool_windows_then_conv():
    # kernel 3 stride 1 pool on 5x5 -> 3x3; centre pixel is in all 9 windows
    got = check((1, 5, 5), [L.AvgPool2d(3, 1)], None)
    assert got[0, 2, 2] == 9 and got[0, 0, 0] == 1
    # folded into a 2x2 conv: distinct targets are counted once
    got = check((1, 5, 5), [L.AvgPool2d(3, 1)], L.Conv2d(np.ones((2, 1, 2, 2))))
    assert got[0, 2, 2] == 2 * 4


@pytest.mark.parametrize("conv", [
    L.Conv2d(np.ones((4, 1, 3, 3)), stride=2, padding=1, groups=2),
    L.Conv2d(np.ones((6, 1, 3, 2)), stride=(1, 2), padding=(2, 0), dilation=(2, 1), groups=2),
    L.Conv2d(np.ones((3, 2, 2, 2)), dilation=2),
])
def test_conv_border_cases(conv):
    check((2, 6, 5), [], conv)
    check((2, 6, 5), [L.AvgPool2d(2, 1, 1, ceil_mode=True)], conv)


def test_global_avgpool_then_dense_and_conv():
    got = check((3, 4, 4), [L.GlobalAvgPool(), L.Flatten()], L.Dense(np.ones((7, 3))))
    assert np.all(got == 7)
    got = check((4, 4, 4), [L.GlobalAvgPool()], L.Conv2d(np.ones((6, 2, 1, 1)), groups=2))
    assert np.all(got == 3)


# ----------------------------------------------------------------------------
# evsim.signals.plan
# ----------------------------------------------------------------------------

def _net(rng, with_pools=True):
    b = NetworkBuilder((2, 6, 6))
    b.add_layer(L.Conv2d(rng.uniform(0.5, 1.5, (3, 2, 3, 3)), padding=1, stride=(1, 2)),
                name="conv1")
    b.add_layer(L.ReLU(), name="relu1")
    b.add_layer(L.Conv2d(rng.uniform(0.5, 1.5, (4, 3, 3, 3)), padding=1), name="conv2")
    b.add_layer(L.ReLU(), name="relu2")
    if with_pools:
        b.add_layer(L.MaxPool2d(2, ceil_mode=True), name="pool")
        b.add_layer(L.AvgPool2d(2, 1), name="avg")
        b.add_layer(L.Conv2d(rng.uniform(0.5, 1.5, (2, 4, 2, 2)), padding=1), name="conv3")
        b.add_layer(L.ReLU(), name="relu3")
    b.add_layer(L.Flatten(), name="flat")
    b.add_layer(L.Dense(rng.uniform(0.5, 1.5, (5, int(np.prod(b.shape(b.last)))))), name="fc")
    return b.build()


def _paths_by_layer(p):
    return {(q.layer, q.source): q for q in p.paths}


def test_plan_analog_head_counts_macs_as_weight_connections():
    net = _net(np.random.default_rng(0))
    p = plan(net, "analog")
    assert p.classes["input"] == ANALOG and p.classes["conv1"] == ANALOG
    assert p.classes["relu1"] == EVENTS and p.classes["conv2"] == CURRENT
    assert p.classes["pool"] == EVENTS and p.classes["avg"] == POOLED
    assert p.classes["flat"] == EVENTS and p.classes["fc"] == CURRENT
    conv1 = net["conv1"].layer
    m, _ = brute_map(conv1, net.shape("input"), np.random.default_rng(1))
    assert p.macs == {"conv1": int(np.count_nonzero(m))}
    # conv1 is not a synaptic path with analog input
    assert all(q.layer != "conv1" for q in p.paths)

    paths = _paths_by_layer(p)
    assert set(paths) == {("conv2", "relu1"), ("pool", "relu2"), ("conv3", "pool"),
                          ("fc", "relu3")}
    np.testing.assert_array_equal(paths[("conv2", "relu1")].fanout,
                                  brute_fanout(net.shape("relu1"), [net["conv2"].layer]))
    pool_path = paths[("pool", "relu2")]
    assert pool_path.counts == "pool_ops"
    np.testing.assert_array_equal(pool_path.fanout,
                                  brute_fanout(net.shape("relu2"), [net["pool"].layer]))
    conv3 = paths[("conv3", "pool")]
    assert conv3.counts == "sops"
    np.testing.assert_array_equal(conv3.fanout, brute_fanout(
        net.shape("pool"), [net["avg"].layer, net["conv3"].layer]))
    np.testing.assert_array_equal(paths[("fc", "relu3")].fanout, brute_fanout(
        net.shape("relu3"), [net["flat"].layer, net["fc"].layer]))


def test_plan_rate_encoding_turns_head_into_synaptic_path():
    net = _net(np.random.default_rng(0), with_pools=False)
    p = plan(net, "rate")
    assert p.classes["input"] == EVENTS and p.classes["conv1"] == CURRENT
    assert p.macs == {}
    paths = _paths_by_layer(p)
    head = paths[("conv1", "input")]
    want = brute_fanout(net.shape("input"), [net["conv1"].layer])
    np.testing.assert_array_equal(head.fanout, want)
    # the same count the analog plan charges as MACs
    assert int(head.fanout.sum()) == plan(net, "analog").macs["conv1"]
    with pytest.raises(ValueError, match="encoding"):
        plan(net, "poisson")


def test_plan_add_and_activation_paths_count_one_per_target():
    rng = np.random.default_rng(2)
    b = NetworkBuilder((2, 4, 4))
    b.add_layer(L.ReLU(), name="relu0")
    b.add_layer(L.Conv2d(rng.uniform(0.5, 1.5, (2, 2, 3, 3)), padding=1), name="conv")
    b.add_layer(L.AvgPool2d(3, 1, 1, ceil_mode=True), "relu0", name="avg")
    b.add_layer(L.Add(), "conv", "avg", name="add")
    b.add_layer(L.ReLU(), name="relu1")
    net = b.build()
    p = plan(net, "analog")
    paths = _paths_by_layer(p)
    assert set(paths) == {("conv", "relu0"), ("add", "relu0")}
    np.testing.assert_array_equal(paths[("add", "relu0")].fanout,
                                  brute_fanout((2, 4, 4), [net["avg"].layer]))
    # relu1 reads add (currents), not events: no path
    assert all(q.layer != "relu1" for q in p.paths)


def test_plan_conv_reading_currents_raises_naming_layer():
    rng = np.random.default_rng(3)
    b = NetworkBuilder((1, 5, 5))
    b.add_layer(L.Conv2d(rng.standard_normal((2, 1, 3, 3)), padding=1), name="head")
    b.add_layer(L.ReLU(), name="act")
    b.add_layer(L.Conv2d(rng.standard_normal((2, 2, 3, 3)), padding=1), name="convA")
    b.add_layer(L.Conv2d(rng.standard_normal((2, 2, 3, 3)), padding=1), name="convB")
    net = b.build()
    with pytest.raises(ConversionError, match="'convB'") as err:
        plan(net)
    assert "convA" in str(err.value) and "activation" in str(err.value)


def test_plan_maxpool_reading_currents_hints_at_commuting():
    rng = np.random.default_rng(4)
    b = NetworkBuilder((1, 6, 6))
    b.add_layer(L.ReLU(), name="act0")
    b.add_layer(L.Conv2d(rng.standard_normal((2, 1, 3, 3)), padding=1), name="conv")
    b.add_layer(L.MaxPool2d(2), name="mp")
    b.add_layer(L.ReLU(), name="act1")
    net = b.build()
    with pytest.raises(ConversionError, match="'mp'") as err:
        plan(net)
    assert "activation before the max pooling" in str(err.value)


def test_plan_rejects_unfolded_batchnorm():
    b = NetworkBuilder((3,))
    b.add_layer(L.BatchNorm(np.ones(3), np.zeros(3), np.zeros(3), np.ones(3)), name="bn")
    with pytest.raises(ConversionError, match="'bn'"):
        plan(b.build())
