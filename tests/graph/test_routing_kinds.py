"""Concat, Pad and Upsample: forward against loop definitions, SOP fan-outs through them
against a brute-force recount of distinct targets, and their construction errors."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import evsim
from evsim import ann_ops
from evsim import Conv2d, NetworkBuilder, NeuronSpec, ReLU, SpikingNetwork
from evsim.errors import EvsimValueError
from evsim.kinds import apply
from evsim.layers import Concat, Pad, ShapeError, Upsample
from evsim.simulate.kernels import upsample_nearest, upsample_separable
from evsim.signals import plan


def _bilinear_loop(x, s, align):
    c, h = x.shape
    out = np.zeros((c, h * s))
    for o in range(h * s):
        src = (o * (h - 1) / (h * s - 1) if h * s > 1 else 0.0) if align else \
            max((o + 0.5) / s - 0.5, 0.0)
        i0 = min(int(np.floor(src)), h - 1)
        i1 = min(i0 + 1, h - 1)
        out[:, o] = (1 - (src - i0)) * x[:, i0] + (src - i0) * x[:, i1]
    return out


@settings(max_examples=30, deadline=None, derandomize=True)
@given(h=st.integers(1, 5), w=st.integers(1, 5), sh=st.integers(1, 4), sw=st.integers(1, 4),
       mode=st.sampled_from(["nearest", "bilinear"]), align=st.booleans(),
       pad=st.tuples(*[st.integers(0, 3)] * 4))
def test_forward_matches_loops(h, w, sh, sw, mode, align, pad):
    x = np.random.default_rng(h * 7 + w).normal(size=(2, 3, h, w))
    up = Upsample((sh, sw), mode, align and mode == "bilinear")
    got = apply(up, [x])
    for b in range(2):
        for c in range(3):
            if mode == "nearest":
                want = np.array([[x[b, c, i // sh, j // sw] for j in range(w * sw)]
                                 for i in range(h * sh)])
            else:
                rows = _bilinear_loop(x[b, c].T, sh, up.align_corners).T  # along H
                want = _bilinear_loop(rows, sw, up.align_corners)        # along W
            np.testing.assert_allclose(got[b, c], want, rtol=1e-12, atol=1e-12)
    top, bottom, left, right = pad
    padded = apply(Pad(pad), [x])
    assert padded.shape == (2, 3, h + top + bottom, w + left + right)
    np.testing.assert_array_equal(padded[:, :, top:top + h, left:left + w], x)
    assert np.count_nonzero(padded) == np.count_nonzero(x)
    y = x[:, :1] * 2
    np.testing.assert_array_equal(apply(Concat(), [x, y]), np.concatenate([x, y], 1))


@settings(max_examples=30, deadline=None, derandomize=True)
@given(h=st.integers(1, 6), w=st.integers(1, 6), sh=st.integers(1, 4), sw=st.integers(1, 4),
       mode=st.sampled_from(["nearest", "bilinear"]), align=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_dense_engine_upsampling_is_the_forward_bit_for_bit(h, w, sh, sw, mode, align, dtype):
    """The dense engine's compiled upsampling gives ann_ops.upsample's bits (signed zeros
    and an infinity included), over frames split into two ranges."""
    from evsim.simulate.dense import _upsample
    x = np.random.default_rng(h * 7 + w).normal(size=(2, 3, h, w)).astype(dtype)
    x[0, 0, 0, 0], x[1, 2, h - 1, w - 1] = -0.0, np.inf
    up = Upsample((sh, sw), mode, align and mode == "bilinear")
    want = apply(up, [x])
    got = np.full_like(want, np.nan)
    _upsample(up, [x], 2, got)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    np.testing.assert_array_equal(got.view(bits), want.view(bits))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("h, w", [(3, 9), (4, 10), (1, 12), (2, 17), (5, 28), (1, 33)])
@pytest.mark.parametrize("align", [False, True])
def test_wide_upsampled_rows_are_the_forward_bit_for_bit(h, w, align, dtype):
    """Rows wide enough for the dense engine's vector paths (bilinear: whole vectors of 8
    or of 16, a last one overlapping the one before, the border samples gathered;
    nearest: its vectorised loops) give ann_ops.upsample's bits, with signed zeros,
    infinities and NaNs among the inputs."""
    from evsim.simulate.dense import _upsample
    x = np.random.default_rng(w).normal(size=(2, 3, h, w)).astype(dtype)
    x[0, 0, 0, :3], x[1, 2, h - 1, w - 1], x[1, 1, 0, w // 2] = -0.0, np.inf, np.nan
    x[0, 2, h // 2, 1] = -np.inf
    bits = np.uint32 if dtype == np.float32 else np.uint64
    for scale, mode in itertools.product(((2, 2), (1, 2), (2, 3), (3, 1)),
                                         ("bilinear", "nearest")):
        up = Upsample(scale, mode, align and mode == "bilinear")
        want = apply(up, [x])
        got = np.full_like(want, 7.0)
        _upsample(up, [x], 1, got)
        np.testing.assert_array_equal(got.view(bits), want.view(bits))
        # streamed: planes starting anywhere in a cache line
        got = np.full_like(want, 7.0)
        taps = [ann_ops.upsample_taps(n, s, mode, up.align_corners) for n, s in zip((h, w), scale)]
        for lo, hi in ((0, 1), (1, 2)):
            if mode == "nearest":
                upsample_nearest(x, *scale, got, lo, hi, True)
            else:
                (rows, row_weights), (cols, col_weights) = taps
                upsample_separable(x, rows, row_weights.astype(dtype), cols,
                                   col_weights.astype(dtype), got, lo, hi, True)
        np.testing.assert_array_equal(got.view(bits), want.view(bits))


@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
def test_the_dense_engine_streams_a_large_upsampling_and_not_a_small_one(mode, monkeypatch):
    """An upsampling output of at least STREAM_BYTES is written by non-temporal stores, a
    smaller one by ordinary stores; both are the upsampling."""
    from evsim.simulate import dense
    calls = []
    kernel = upsample_nearest if mode == "nearest" else upsample_separable
    monkeypatch.setattr(dense, kernel.__name__,
                        lambda *args: calls.append(args[-1]) or kernel(*args))
    rng = np.random.default_rng(0)
    up = Upsample(2, mode)
    for shape, expected in (((16, 16, 32, 32), True), ((2, 8, 5, 7), False)):
        x = rng.standard_normal(shape).astype(np.float32)
        want = apply(up, [x])
        assert (want.nbytes >= dense.STREAM_BYTES) == expected
        got = np.empty_like(want)
        calls.clear()
        dense._upsample(up, [x], 2, got)
        assert calls and set(calls) == {expected}
        np.testing.assert_array_equal(got, want)


def test_dense_engine_concat_copies_every_input_into_its_channels():
    """The dense engine's compiled Concat: each input (one step broadcast over a block's
    steps included) in its channels, bit for bit."""
    from evsim.arena import Arena
    from evsim.simulate.dense import _apply_to_block
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(4, 2, 3, 5, 6)), rng.normal(size=(1, 2, 1, 5, 6))
    a[0, 0, 0, 0, 0] = -0.0
    got = _apply_to_block(Concat(), [a, b, a], 2, Arena(), "cat")
    want = np.concatenate([a, np.broadcast_to(b, (4,) + b.shape[1:]), a], axis=2)
    np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64))


def _brute_sops(net, source, consumer) -> np.ndarray:
    """Per source neuron: the consumer's outputs that change when that neuron alone carries
    a unit value (the distinct synaptic targets), by running the ANN layers."""
    names = [n.name for n in net]
    start = names.index(source)
    shape = net.shape(source)
    counts = np.zeros(int(np.prod(shape)), np.int64)
    for i in range(counts.size):
        values = {n: np.zeros((1,) + net.shape(n)) for n in names[:start + 1]}
        values[source].reshape(-1)[i] = 1.0
        for node in net.nodes[start + 1:names.index(consumer) + 1]:
            layer = node.layer
            if isinstance(layer, (Conv2d, evsim.Dense)):
                layer = layer.replace(weight=np.ones_like(layer.weight), bias=None)
            if isinstance(layer, ReLU):
                values[node.name] = np.zeros((1,) + net.shape(node.name))
                continue
            values[node.name] = apply(layer, [values[s] for s in node.inputs])
        counts[i] = int(np.count_nonzero(values[consumer]))
    return counts.reshape(shape)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(h=st.integers(2, 5), w=st.integers(2, 5), sh=st.integers(1, 3), sw=st.integers(1, 3),
       mode=st.sampled_from(["nearest", "bilinear"]), align=st.booleans(),
       pad=st.tuples(*[st.integers(0, 2)] * 4), k=st.integers(1, 3), stride=st.integers(1, 2))
def test_fanout_through_concat_pad_upsample_equals_a_recount(h, w, sh, sw, mode, align, pad,
                                                           k, stride):
    b = NetworkBuilder((1, h, w))
    b.add_layer(Conv2d(np.ones((2, 1, 1, 1))))
    a = b.add_layer(ReLU())
    b.add_layer(Conv2d(np.ones((1, 2, 1, 1))), a)
    c = b.add_layer(ReLU())
    b.add_layer(Pad(pad), c)
    b.add_layer(Upsample((sh, sw), mode, align and mode == "bilinear"))
    up = b.last
    b.add_layer(Pad(pad), a)
    b.add_layer(Upsample((sh, sw), mode, align and mode == "bilinear"))
    joined = b.add_layer(Concat(), b.last, up)
    b.add_layer(Conv2d(np.ones((3, 3, k, k)), stride=stride, padding=k // 2), joined)
    conv = b.last
    b.add_layer(ReLU())
    net = b.build()
    paths = {p.source: p.fanout for p in plan(net).paths if p.layer == conv}
    assert set(paths) == {a, c}
    for source in (a, c):
        np.testing.assert_array_equal(paths[source], _brute_sops(net, source, conv))


def test_concat_engines_agree_and_costs_nothing():
    """A Concat of two spiking layers read by a neuron layer: SOPs only at the neuron layer
    (one per target per event), the same in both engines."""
    b = NetworkBuilder((1, 3, 3))
    b.add_layer(Conv2d(np.ones((2, 1, 1, 1))))
    a = b.add_layer(ReLU())
    b.add_layer(Conv2d(np.full((1, 2, 1, 1), 0.5)), a)
    c = b.add_layer(ReLU())
    b.add_layer(Concat(), a, c)
    b.add_layer(ReLU())
    net = b.build()
    snn = SpikingNetwork(net, {n: NeuronSpec(np.full((), 0.5)) for n in net.activations})
    x = np.full((1, 1, 3, 3), 0.75)
    results = [evsim.simulate(snn, x, T=4, engine=e) for e in ("event", "dense")]
    for r in results:
        assert set(r.sops) == {b.last, "conv2d2"}
    np.testing.assert_array_equal(results[0].sops[b.last], results[1].sops[b.last])
    np.testing.assert_array_equal(results[0].outputs, results[1].outputs)


def test_bad_configurations_are_errors():
    with pytest.raises(ShapeError, match="equal H and W"):
        Concat().output_shape([(1, 2, 2), (1, 3, 2)])
    with pytest.raises(EvsimValueError, match="Pad padding"):
        Pad((1, -1, 0, 0))
    with pytest.raises(EvsimValueError, match="integers >= 1"):
        Upsample((0, 2))
    with pytest.raises(EvsimValueError, match="'nearest' or 'bilinear'"):
        Upsample(2, "bicubic")
    b = NetworkBuilder((1, 3, 3))
    conv = b.add_layer(Conv2d(np.ones((1, 1, 1, 1))))
    b.add_layer(ReLU())
    b.add_layer(Concat(), conv, b.last, name="joined")
    b.add_layer(ReLU())
    with pytest.raises(evsim.errors.ConversionError,
                       match=r"'joined' \(Concat\) joins the analog values"):
        plan(b.build())


@pytest.mark.parametrize("after,match", [
    ("currents", r"'joined' \(Concat\) reads 'conv2d2', which carries currents"),
    ("maxpool", r"'pool' \(MaxPool2d\) reads .*concatenated spikes from 'joined'"),
])
def test_concat_of_currents_and_max_pooling_of_a_concat_are_errors(after, match):
    b = NetworkBuilder((1, 4, 4))
    b.add_layer(Conv2d(np.ones((1, 1, 1, 1))))
    spikes = b.add_layer(ReLU())
    conv = b.add_layer(Conv2d(np.ones((1, 1, 1, 1))))
    if after == "currents":
        b.add_layer(Concat(), spikes, conv, name="joined")
    else:
        b.add_layer(ReLU())
        b.add_layer(Concat(), spikes, b.last, name="joined")
        b.add_layer(evsim.MaxPool2d(2), name="pool")
    b.add_layer(ReLU())
    with pytest.raises(evsim.errors.ConversionError, match=match):
        plan(b.build())
