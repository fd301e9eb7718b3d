"""ConvTranspose2d and depthwise convolutions with a channel multiplier: the record, its
forward against PyTorch and a loop definition, its fan-outs (SOPs and NeuroBench's non-zero
ones) against brute force, BatchNorm folding, save/load and the NIR refusal.

The brute-force fan-out takes a unit impulse at every source neuron through the chain
(average pooling, PyTorch's own transposed convolution with strictly positive weights, so
no sum cancels) and counts the non-zero outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import evsim
from evsim import kinds
from evsim import layers as L
from evsim.analysis.neurobench import nonzero_fanout
from evsim.errors import EvsimValueError
from evsim.fanout import path_fanout
from evsim.io.nir import to_nir
from evsim.passes import fold_batchnorm

FAST = settings(max_examples=60, deadline=None, derandomize=True)


@st.composite
def transposed(draw, positive: bool = False):
    """(layer, input shape) of a random transposed convolution that torch accepts."""
    groups = draw(st.integers(1, 3))
    cin, cout_g = groups * draw(st.integers(1, 2)), draw(st.integers(1, 3))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    weight = (rng.uniform(0.5, 1.5, (cin, cout_g) + kernel) if positive
              else rng.standard_normal((cin, cout_g) + kernel))
    bias = None if positive or draw(st.booleans()) else rng.standard_normal(cout_g * groups)
    shape = (cin, draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    layer = L.ConvTranspose2d(weight, bias, stride=stride, padding=padding,
                              output_padding=output_padding, dilation=dilation, groups=groups)
    try:
        layer.output_shape([shape])
    except L.ShapeError:
        layer = L.ConvTranspose2d(weight, bias, stride=stride, output_padding=output_padding,
                                  dilation=dilation, groups=groups)
    return layer, shape


def _torch(layer: L.ConvTranspose2d, x: np.ndarray, weight=None) -> np.ndarray:
    return torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.tensor(np.asarray(
            layer.weight if weight is None else weight, x.dtype)),
        None if layer.bias is None else torch.from_numpy(layer.bias.astype(x.dtype)),
        layer.stride, layer.padding, layer.output_padding, layer.groups,
        layer.dilation).numpy()


def _loop_forward(layer: L.ConvTranspose2d, x: np.ndarray) -> np.ndarray:
    """The definition, one synapse at a time: input (ci, y, x) adds w[ci, k, i, j] to output
    (group·C_out/g + k, y·s − p + i·d, x·s − p + j·d)."""
    cin, h, w = x.shape
    cout, ho, wo = layer.output_shape([x.shape])
    _, cout_g, kh, kw = layer.weight.shape
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    out = np.zeros((cout, ho, wo)) + (0 if layer.bias is None else layer.bias[:, None, None])
    for ci in range(cin):
        group = ci // (cin // layer.groups)
        for y in range(h):
            for xx in range(w):
                for k in range(cout_g):
                    for i in range(kh):
                        for j in range(kw):
                            oy, ox = y * sh - ph + i * dh, xx * sw - pw + j * dw
                            if 0 <= oy < ho and 0 <= ox < wo:
                                out[group * cout_g + k, oy, ox] += (layer.weight[ci, k, i, j]
                                                                    * x[ci, y, xx])
    return out


@FAST
@given(transposed(), st.integers(1, 3), st.integers(1, 3))
def test_forward_matches_torch_and_the_loop_definition(case, batch, threads):
    layer, shape = case
    x = np.random.default_rng(batch).standard_normal((batch,) + shape)
    ours = kinds.apply(layer, [x], threads)
    np.testing.assert_allclose(ours, _torch(layer, x), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours[0], _loop_forward(layer, x[0]), rtol=1e-10, atol=1e-10)
    # one GEMM per image: an image's result does not depend on the batch
    np.testing.assert_array_equal(kinds.apply(layer, [x[:1]]), ours[:1])


def _brute_fanout(source_shape, pool: L.AvgPool2d | None, layer: L.ConvTranspose2d,
                  weight=None) -> np.ndarray:
    n = int(np.prod(source_shape))
    impulses = np.eye(n).reshape((n,) + tuple(source_shape))
    if pool is not None:
        impulses = kinds.apply(pool, [impulses])
    response = _torch(layer, impulses, weight)
    return np.count_nonzero(response.reshape(n, -1), axis=1).reshape(source_shape)


@FAST
@given(transposed(positive=True), st.booleans())
def test_sop_fanout_matches_brute_force(case, pooled):
    """Every existing target of a source neuron once, border by border (with an average
    pooling folded in front: its composite targets)."""
    layer, shape = case
    source, chain, pool = shape, [], None
    if pooled:
        source = (shape[0], shape[1] + 1, shape[2] + 1)
        pool = L.AvgPool2d(2, 1)
        chain = [(pool, source)]
    got = path_fanout(source, chain, layer, shape)
    np.testing.assert_array_equal(got, _brute_fanout(source, pool, layer))


@FAST
@given(transposed(positive=True), st.integers(0, 2**31))
def test_nonzero_fanout_matches_brute_force(case, seed):
    """NeuroBench's count: targets over the non-zero weights only."""
    layer, shape = case
    rng = np.random.default_rng(seed)
    sparse = layer.weight * (rng.random(layer.weight.shape) < 0.5)
    layer = layer.replace(weight=sparse)
    got = nonzero_fanout(shape, [], layer, shape)
    np.testing.assert_array_equal(got, _brute_fanout(shape, None, layer))


@FAST
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2),
       st.integers(0, 1), st.integers(2, 6), st.integers(0, 2**31))
def test_depthwise_with_a_multiplier_fanout_matches_brute_force(channels, multiplier, kernel,
                                                                stride, padding, size, seed):
    """groups = C_in, C_out = k·C_in: each input channel reaches its own k output channels."""
    rng = np.random.default_rng(seed)
    weight = rng.uniform(0.5, 1.5, (multiplier * channels, 1, kernel, kernel))
    layer = L.Conv2d(weight, stride=stride, padding=padding, groups=channels)
    shape = (channels, size + kernel, size + kernel - 1)
    n = int(np.prod(shape))
    response = torch.nn.functional.conv2d(torch.eye(n, dtype=torch.float64).reshape((n,) + shape),
                                          torch.from_numpy(weight), None, stride, padding, 1,
                                          channels).numpy()
    brute = np.count_nonzero(response.reshape(n, -1), axis=1).reshape(shape)
    np.testing.assert_array_equal(path_fanout(shape, [], layer, shape), brute)
    sparse = layer.replace(weight=weight * (rng.random(weight.shape) < 0.5))
    response = torch.nn.functional.conv2d(torch.eye(n, dtype=torch.float64).reshape((n,) + shape),
                                          torch.tensor(sparse.weight), None, stride,
                                          padding, 1, channels).numpy()
    np.testing.assert_array_equal(nonzero_fanout(shape, [], sparse, shape),
                                  np.count_nonzero(response.reshape(n, -1), axis=1)
                                  .reshape(shape))


def test_the_output_shape_follows_pytorch():
    layer = L.ConvTranspose2d(np.ones((2, 3, 2, 2)), stride=2)
    assert layer.output_shape([(2, 4, 5)]) == (3, 8, 10)
    layer = L.ConvTranspose2d(np.ones((4, 1, 3, 3)), stride=(2, 3), padding=1,
                              output_padding=(1, 2), dilation=(1, 2), groups=4)
    assert layer.output_shape([(4, 5, 5)]) == (4, 10, 17)  # (5 − 1)·3 − 2 + 2·2 + 2 + 1
    assert (layer.in_channels, layer.out_channels, layer.kernel_size) == (4, 4, (3, 3))


@pytest.mark.parametrize("kwargs, message", [
    ({"stride": 0}, "stride must be >= 1"),
    ({"padding": -1}, "padding must be >= 0"),
    ({"dilation": (1, 0)}, "dilation must be >= 1"),
    ({"stride": 2, "output_padding": 2}, "output_padding"),
    ({"groups": 3}, "groups=3 must divide the 4 input channels"),
    ({"bias": np.ones(3)}, "bias has 3 entries but the layer has 2 output channels"),
])
def test_bad_records_are_refused_naming_the_parameter(kwargs, message):
    with pytest.raises((EvsimValueError, L.ShapeError), match=message):
        L.ConvTranspose2d(np.ones((4, 2, 3, 3)), **{"bias": None, **kwargs})


def test_an_input_of_the_wrong_shape_is_refused_naming_the_layer():
    b = evsim.NetworkBuilder((3, 4, 4))
    with pytest.raises(L.ShapeError, match=r"expects input of shape \(2, H, W\)"):
        b.add_layer(L.ConvTranspose2d(np.ones((2, 1, 2, 2))), name="up")
    with pytest.raises(L.ShapeError, match="padding .* leaves no output"):
        L.ConvTranspose2d(np.ones((3, 1, 1, 1)), padding=1).output_shape([(3, 1, 1)])


def _up_network(rng, bn_after: bool):
    b = evsim.NetworkBuilder((2, 3, 3))
    b.add_layer(L.ConvTranspose2d(rng.standard_normal((2, 2, 3, 3)), rng.standard_normal(4),
                                  stride=2, padding=1, output_padding=1, groups=2), name="up")
    if bn_after:
        b.add_layer(L.BatchNorm(rng.uniform(0.5, 2, 4), rng.standard_normal(4),
                                rng.standard_normal(4), rng.uniform(0.5, 2, 4)), name="bn")
    b.add_layer(L.ReLU())
    return b.build()


def test_batchnorm_after_it_folds_into_its_weights():
    rng = np.random.default_rng(1)
    net = _up_network(rng, bn_after=True)
    folded = fold_batchnorm(net)
    assert [type(n.layer).__name__ for n in folded] == ["Input", "ConvTranspose2d", "ReLU"]
    x = rng.standard_normal((3, 2, 3, 3))
    np.testing.assert_allclose(evsim.forward(folded, x), evsim.forward(net, x), rtol=1e-5,
                               atol=1e-5)  # the forward pass computes in float32


def test_batchnorm_before_it_is_refused_naming_the_node():
    rng = np.random.default_rng(2)
    b = evsim.NetworkBuilder((2, 3, 3))
    b.add_layer(L.BatchNorm(np.ones(2), np.ones(2), np.zeros(2), np.ones(2)), name="bn0")
    b.add_layer(L.ConvTranspose2d(rng.standard_normal((2, 2, 2, 2)), stride=2), name="up")
    with pytest.raises(EvsimValueError, match="BatchNorm 'bn0' cannot be folded.*ConvTranspose2d"):
        fold_batchnorm(b.build())


def test_save_and_load_keep_it(tmp_path):
    rng = np.random.default_rng(3)
    net = _up_network(rng, bn_after=False)
    evsim.save(net, tmp_path / "up.npz")
    loaded = evsim.load(tmp_path / "up.npz")
    layer, again = net["up"].layer, loaded["up"].layer
    assert type(again) is L.ConvTranspose2d
    for field in ("stride", "padding", "output_padding", "dilation", "groups"):
        assert getattr(again, field) == getattr(layer, field)
    np.testing.assert_array_equal(again.weight, layer.weight)


def test_nir_export_refuses_it_naming_the_layer():
    pytest.importorskip("nir")
    net = _up_network(np.random.default_rng(4), bn_after=False)
    snn = evsim.SpikingNetwork(net, {"relu1": evsim.NeuronSpec(1.0)})
    with pytest.raises(evsim.errors.EvsimError,
                       match="layer 'up' \\(ConvTranspose2d\\): NIR 1.0 has no transposed"):
        to_nir(snn)
