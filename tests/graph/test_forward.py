"""evsim's ANN forward against direct loop definitions (PyTorch/ONNX semantics).

Every reference below is written independently of :mod:`evsim.ann_ops`: explicit
Python loops over output positions, window bounds taken from the PyTorch
definitions. Output-shape rules are checked against the loops, and a few
corner cases against ``torch.nn.functional`` as a third opinion.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import evsim
from evsim import layers as L
from evsim import ann_ops
from evsim.kinds import apply
from evsim.network import Network, NetworkBuilder
from evsim.simulate import dense
from evsim.simulate.dense import _convolution
from evsim.simulate.dense_conv import lay_out_conv
from evsim.simulate.kernels import ALIASING_BYTES, average_pool, concat_frames
from evsim.threads import one_blas_thread

FAST = settings(max_examples=30, deadline=None, derandomize=True)
TINY = settings(max_examples=12, deadline=None, derandomize=True)
RTOL = 1e-10
ATOL = 1e-12


# ----------------------------------------------------------------------------
# Reference definitions (loops over output positions)
# ----------------------------------------------------------------------------

def conv_out_len(size, kernel, stride, pad, dilation):
    """Number of kernel placements lying entirely inside the zero-padded input."""
    n = 0
    while n * stride + dilation * (kernel - 1) <= size + 2 * pad - 1:
        n += 1
    return n


def pool_out_len(size, kernel, stride, pad, ceil_mode):
    """Number of pooling windows along one axis (PyTorch rule), by enumeration.

    Floor mode: windows that fit in the padded input. Ceil mode: window ``n``
    exists while the previous window has not reached the end of the padded
    input, and only if it starts inside the input or the left padding.
    """
    if kernel > size + 2 * pad:
        return 0
    n = 0
    while True:
        start = n * stride  # in padded coordinates
        if ceil_mode:
            ok = (n == 0 or (n - 1) * stride + kernel < size + 2 * pad) and start < size + pad
        else:
            ok = start + kernel <= size + 2 * pad
        if not ok:
            return n
        n += 1


def ref_conv2d(x, weight, bias, stride, padding, dilation, groups):
    b, cin, h, w = x.shape
    cout, cin_g, kh, kw = weight.shape
    ho = conv_out_len(h, kh, stride[0], padding[0], dilation[0])
    wo = conv_out_len(w, kw, stride[1], padding[1], dilation[1])
    cout_g = cout // groups
    out = np.zeros((b, cout, ho, wo))
    for co in range(cout):
        g = co // cout_g
        for oy in range(ho):
            for ox in range(wo):
                acc = np.zeros(b) if bias is None else np.full(b, float(bias[co]))
                for ci in range(cin_g):
                    for ky in range(kh):
                        iy = oy * stride[0] - padding[0] + ky * dilation[0]
                        if not 0 <= iy < h:
                            continue
                        for kx in range(kw):
                            ix = ox * stride[1] - padding[1] + kx * dilation[1]
                            if not 0 <= ix < w:
                                continue
                            acc = acc + weight[co, ci, ky, kx] * x[:, g * cin_g + ci, iy, ix]
                out[:, co, oy, ox] = acc
    return out


def ref_dense(x, weight, bias):
    b = x.shape[0]
    out_f, in_f = weight.shape
    out = np.zeros((b, out_f))
    for n in range(b):
        for o in range(out_f):
            acc = 0.0 if bias is None else float(bias[o])
            for i in range(in_f):
                acc += weight[o, i] * x[n, i]
            out[n, o] = acc
    return out


def ref_avgpool(x, kernel, stride, padding, ceil_mode, count_include_pad):
    b, c, h, w = x.shape
    ho = pool_out_len(h, kernel[0], stride[0], padding[0], ceil_mode)
    wo = pool_out_len(w, kernel[1], stride[1], padding[1], ceil_mode)
    out = np.zeros((b, c, ho, wo))
    for oy in range(ho):
        hs = oy * stride[0] - padding[0]
        he = min(hs + kernel[0], h + padding[0])  # ceil_mode overhang is not counted
        for ox in range(wo):
            ws = ox * stride[1] - padding[1]
            we = min(ws + kernel[1], w + padding[1])
            total = np.zeros((b, c))
            real = 0
            for iy in range(max(hs, 0), min(he, h)):
                for ix in range(max(ws, 0), min(we, w)):
                    total = total + x[:, :, iy, ix]
                    real += 1
            divisor = (he - hs) * (we - ws) if count_include_pad else real
            out[:, :, oy, ox] = total / divisor
    return out


def ref_maxpool(x, kernel, stride, padding, ceil_mode):
    b, c, h, w = x.shape
    ho = pool_out_len(h, kernel[0], stride[0], padding[0], ceil_mode)
    wo = pool_out_len(w, kernel[1], stride[1], padding[1], ceil_mode)
    out = np.zeros((b, c, ho, wo))
    for oy in range(ho):
        hs = oy * stride[0] - padding[0]
        for ox in range(wo):
            ws = ox * stride[1] - padding[1]
            best = np.full((b, c), -np.inf)
            for iy in range(max(hs, 0), min(hs + kernel[0], h)):
                for ix in range(max(ws, 0), min(ws + kernel[1], w)):
                    best = np.maximum(best, x[:, :, iy, ix])
            assert np.all(np.isfinite(best)), "a window without real pixels"
            out[:, :, oy, ox] = best
    return out


def ref_global_avgpool(x):
    b, c, h, w = x.shape
    out = np.zeros((b, c, 1, 1))
    for iy in range(h):
        for ix in range(w):
            out[:, :, 0, 0] += x[:, :, iy, ix]
    return out / (h * w)


def ref_flatten(x):
    b = x.shape[0]
    rest = x.shape[1:]
    out = np.zeros((b, math.prod(rest)))
    for n in range(b):
        k = 0
        for idx in np.ndindex(*rest):  # C order: last axis fastest
            out[n, k] = x[(n,) + idx]
            k += 1
    return out


def ref_batchnorm(x, gamma, beta, mean, var, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return ((x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * gamma.reshape(shape)
            + beta.reshape(shape))


def _elementwise(f, x):
    out = np.empty(x.shape)
    for idx in np.ndindex(*x.shape):
        out[idx] = f(float(x[idx]))
    return out


def ref_relu(x):
    return _elementwise(lambda v: v if v > 0 else 0.0, x)


def ref_clip(x, top):
    return _elementwise(lambda v: min(max(v, 0.0), top), x)


def ref_qcfs(x, lam, levels, shift):
    return _elementwise(
        lambda v: lam * min(max(math.floor(v * levels / lam + shift) / levels, 0.0), 1.0), x)


# ----------------------------------------------------------------------------
# Strategies
# ----------------------------------------------------------------------------

@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    cin_g = draw(st.integers(1, 2))
    cout_g = draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    h = draw(st.integers(max(1, span[0] - 2 * padding[0]), 7))
    w = draw(st.integers(max(1, span[1] - 2 * padding[1]), 7))
    use_bias = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((groups * cout_g, cin_g, kh, kw))
    bias = rng.standard_normal(groups * cout_g) if use_bias else None
    x = rng.standard_normal((2, groups * cin_g, h, w))
    return dict(weight=weight, bias=bias, stride=stride, padding=padding, dilation=dilation,
                groups=groups), x


@st.composite
def pool_cases(draw):
    kernel = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    h = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 8))
    w = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 8))
    ceil_mode = draw(st.booleans())
    count_include_pad = draw(st.booleans())
    c = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    x = np.random.default_rng(seed).standard_normal((2, c, h, w))
    return dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode), \
        count_include_pad, x


# ----------------------------------------------------------------------------
# Output-shape formulas
# ----------------------------------------------------------------------------

def test_pool_out_len_reference_on_hand_examples():
    # The reference itself, on cases worked out by hand.
    assert pool_out_len(5, 2, 2, 0, False) == 2      # last row dropped
    assert pool_out_len(5, 2, 2, 0, True) == 3       # ceil keeps a 1-pixel window
    assert pool_out_len(5, 3, 3, 1, True) == 2       # 3rd window would start in right padding
    assert pool_out_len(4, 2, 3, 1, True) == 2       # same rule with stride > kernel
    assert pool_out_len(6, 3, 2, 1, True) == 4
    assert pool_out_len(6, 3, 2, 1, False) == 3
    assert conv_out_len(4, 3, 1, 1, 1) == 4
    assert conv_out_len(7, 3, 2, 0, 2) == 2


@FAST
@given(pool_cases())
def test_pool_output_shape_matches_enumeration(case):
    params, cip, x = case
    c, h, w = x.shape[1:]
    for cls, kw in ((L.AvgPool2d, dict(count_include_pad=cip)), (L.MaxPool2d, {})):
        layer = cls(**params, **kw)
        expected = (c,
                    pool_out_len(h, params["kernel_size"][0], params["stride"][0],
                                 params["padding"][0], params["ceil_mode"]),
                    pool_out_len(w, params["kernel_size"][1], params["stride"][1],
                                 params["padding"][1], params["ceil_mode"]))
        assert layer.output_shape([(c, h, w)]) == expected


@FAST
@given(conv_cases())
def test_conv_output_shape_matches_enumeration(case):
    params, x = case
    layer = L.Conv2d(**params)
    _, c, h, w = x.shape
    kh, kw = params["weight"].shape[2:]
    expected = (params["weight"].shape[0],
                conv_out_len(h, kh, params["stride"][0], params["padding"][0],
                             params["dilation"][0]),
                conv_out_len(w, kw, params["stride"][1], params["padding"][1],
                             params["dilation"][1]))
    assert layer.output_shape([(c, h, w)]) == expected


@pytest.mark.parametrize("size,kernel,stride,pad,expected", [
    (5, 3, 3, 1, 2),   # ceil would give 3; the 3rd window starts at padded index 6 = H + pad
    (4, 2, 3, 1, 2),   # ceil would give 3; the 3rd window starts at padded index 6 > H + pad
    (6, 3, 2, 1, 4),   # the last window starts on the last real pixel: kept
    (5, 2, 2, 0, 3),
])
def test_ceil_mode_last_window_rule(size, kernel, stride, pad, expected):
    layer = L.MaxPool2d(kernel, stride, pad, ceil_mode=True)
    assert layer.output_shape([(1, size, size)]) == (1, expected, expected)
    assert pool_out_len(size, kernel, stride, pad, True) == expected


def test_shape_errors_when_window_does_not_fit():
    with pytest.raises(L.ShapeError):
        L.Conv2d(np.ones((1, 1, 5, 5))).output_shape([(1, 3, 3)])
    with pytest.raises(L.ShapeError):
        L.AvgPool2d(4).output_shape([(1, 3, 3)])
    with pytest.raises(ValueError, match="half"):
        L.MaxPool2d(2, padding=2)


# ----------------------------------------------------------------------------
# Per-layer forward vs references
# ----------------------------------------------------------------------------

@FAST
@given(conv_cases(), st.booleans())
def test_conv2d_matches_loops(case, per_image):
    params, x = case
    layer = L.Conv2d(**params)
    got = apply(layer, [x], per_image=per_image)
    want = ref_conv2d(x, **params)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@TINY
@given(st.integers(1, 6), st.integers(1, 6), st.booleans(), st.integers(0, 2**31 - 1),
       st.booleans())
def test_dense_matches_loops(n_in, n_out, use_bias, seed, per_image):
    rng = np.random.default_rng(seed)
    weight = rng.standard_normal((n_out, n_in))
    bias = rng.standard_normal(n_out) if use_bias else None
    x = rng.standard_normal((3, n_in))
    got = apply(L.Dense(weight, bias), [x], per_image=per_image)
    np.testing.assert_allclose(got, ref_dense(x, weight, bias), rtol=RTOL, atol=ATOL)


@FAST
@given(pool_cases())
def test_avgpool2d_matches_loops(case):
    params, cip, x = case
    layer = L.AvgPool2d(**params, count_include_pad=cip)
    got = apply(layer, [x])
    want = ref_avgpool(x, params["kernel_size"], params["stride"], params["padding"],
                       params["ceil_mode"], cip)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@FAST
@given(pool_cases(), st.sampled_from([np.float32, np.float64]))
@example(({"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0), "ceil_mode": False},
          True, np.random.default_rng(3).standard_normal((2, 3, 6, 7))), np.float32)
def test_dense_engine_average_pool_is_ops_avgpool2d_bit_for_bit(case, dtype):
    """The dense engine's compiled average pooling gives ann_ops.avgpool2d's bits (signed zeros
    included), over frames split into two ranges (the example: its 2×2 / stride 2 path)."""
    params, cip, x = case
    layer = L.AvgPool2d(**params, count_include_pad=cip)
    x = x.astype(dtype)
    x[0, 0, 0, 0] = -0.0
    want = ann_ops.avgpool2d(layer, x)
    got = np.full_like(want, np.nan)
    divisor = ann_ops.avgpool_divisor(layer, x.shape[2], x.shape[3]).astype(dtype)
    for lo, hi in ((0, 1), (1, 2)):
        average_pool(x, layer.kernel_size, layer.stride, layer.padding, divisor, got, lo, hi)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    np.testing.assert_array_equal(got.view(bits), want.view(bits))

@FAST
@given(sizes=st.lists(st.integers(1, 70), min_size=1, max_size=4),
       frames=st.integers(1, 3), shift=st.integers(0, 15),
       dtype=st.sampled_from([np.float32, np.float64]),
       ahead=st.sampled_from([0, 16, 64, ALIASING_BYTES - 16, ALIASING_BYTES, 2048, 4080]))
def test_a_streamed_concat_writes_the_concatenation(sizes, frames, shift, dtype, ahead):
    """concat_frames with non-temporal stores (whole 64-byte lines, the elements before and
    after them one by one) writes exactly np.concatenate's bits, on an output starting
    anywhere within a cache line and parts of any length, over frames in two ranges, each
    part's first frame ``ahead`` bytes below its place in the output modulo 4 KiB (below
    ALIASING_BYTES its lines are copied downwards, from there on upwards)."""
    rng = np.random.default_rng(sum(sizes) + frames)
    itemsize = np.dtype(dtype).itemsize
    raw = np.full(frames * sum(sizes) + shift, np.nan, dtype)
    out = raw[shift:].reshape(frames, sum(sizes))
    parts, offset = [], 0
    for n in sizes:
        memory = np.empty(frames * n + 4096 // itemsize, dtype)
        start = (out[0, offset:].ctypes.data - ahead - memory.ctypes.data) % 4096 // itemsize
        part = memory[start:start + frames * n].reshape(frames, n)
        part[...] = rng.standard_normal((frames, n))
        assert (out[0, offset:].ctypes.data - part.ctypes.data) % 4096 == ahead
        part.flags.writeable = False  # one Numba type for the tuple
        parts.append(part)
        offset += n
    parts = tuple(parts)
    for lo, hi in ((0, frames // 2), (frames // 2, frames)):
        concat_frames(parts, out, lo, hi, True)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    np.testing.assert_array_equal(out.view(bits), np.concatenate(parts, axis=1).view(bits))
    assert np.isnan(raw[:shift]).all()


def test_the_dense_engine_streams_a_large_concat_and_not_a_small_one(monkeypatch):
    """A Concat output of at least STREAM_BYTES with long parts is written by the streamed
    copy, others by the ordinary one; both are the concatenation."""
    calls = []
    monkeypatch.setattr(dense, "concat_frames",
                        lambda parts, out, lo, hi, stream: calls.append(stream)
                        or concat_frames(parts, out, lo, hi, stream))
    rng = np.random.default_rng(0)
    for shape, expected in (((64, 8, 32, 32), True), ((2, 8, 4, 4), False),
                            ((1 << 17, 1, 2, 2), False)):  # 4 MiB, but 16-byte parts
        inputs = [rng.standard_normal(shape).astype(np.float32) for _ in range(2)]
        want = np.concatenate(inputs, axis=1)
        out = np.empty_like(want)
        calls.clear()
        dense._concat(L.Concat(), inputs, 1, out)
        assert calls == [expected] and (want.nbytes >= dense.STREAM_BYTES) == (shape[0] != 2)
        np.testing.assert_array_equal(out, want)


@FAST
@given(conv_cases(), st.sampled_from([np.float32, np.float64]), st.integers(1, 2))
def test_dense_engine_convolution_is_ops_conv2d_bit_for_bit(case, dtype, threads):
    """The dense engine's convolution (compiled lay-out of each GEMM's result) gives
    ann_ops.conv2d's bits, groups, strides and a missing bias included, on 1 or 2 threads."""
    params, x = case
    layer = L.Conv2d(**params)
    x = np.concatenate([x] * 3).astype(dtype)  # 6 frames: several shares on 2 threads
    want = ann_ops.conv2d(layer, x)
    got = np.full_like(want, np.nan)
    assert _convolution(layer, [x], threads, got) is got
    bits = np.uint32 if dtype == np.float32 else np.uint64
    np.testing.assert_array_equal(got.view(bits), want.view(bits))


@pytest.mark.parametrize("use_bias", [True, False])
def test_compiled_lay_out_is_numpys_on_special_values(use_bias):
    """lay_out_conv reads a strided GEMM result (channels first, padded columns dropped) and
    adds the bias as NumPy's add: signed zeros, infinities and NaN as ann_ops._lay_out."""
    rng = np.random.default_rng(0)
    product = rng.standard_normal((4, 3, 5, 7)).astype(np.float32)  # (C, N, H, W + 2)
    product[2, 0, 0, :4] = [-0.0, np.inf, -np.inf, np.nan]  # channel 2: in the group tested
    result = product.transpose(1, 0, 2, 3)[..., :5]
    bias = np.array([0.0, -0.0, 1.5, -2.0], np.float32)[:, None, None] if use_bias else None
    want, got = (np.full((3, 2, 5, 5), 7.0, np.float32) for _ in range(2))
    ann_ops._lay_out(result[:, 2:], bias, 1, want)  # the second group of two channels
    lay_out_conv(result[:, 2:], np.empty(0, np.float32) if bias is None
                 else bias[2:4].reshape(2), got)
    np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))


@FAST
@given(pool_cases())
def test_maxpool2d_matches_loops(case):
    params, _, x = case
    x = x - 10.0  # all inputs negative: a zero from the padding would win if it counted
    got = apply(L.MaxPool2d(**params), [x])
    want = ref_maxpool(x, params["kernel_size"], params["stride"], params["padding"],
                       params["ceil_mode"])
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_avgpool_divisor_hand_example():
    # 1x5 row of ones, kernel 3 stride 2 pad 1 ceil: windows [-1,2), [1,4), [3,6) (5 = right pad)
    x = np.ones((1, 1, 1, 5))
    with_pad = apply(L.AvgPool2d((1, 3), (1, 2), (0, 1), ceil_mode=True), [x])
    np.testing.assert_allclose(with_pad[0, 0, 0], [2 / 3, 1.0, 2 / 3])
    without = apply(L.AvgPool2d((1, 3), (1, 2), (0, 1), ceil_mode=True,
                                    count_include_pad=False), [x])
    np.testing.assert_allclose(without[0, 0, 0], [1.0, 1.0, 1.0])
    # ceil overhang is not counted even with count_include_pad: 1x5, kernel 2 stride 2
    over = apply(L.AvgPool2d((1, 2), (1, 2), ceil_mode=True), [x])
    np.testing.assert_allclose(over[0, 0, 0], [1.0, 1.0, 1.0])


@TINY
@given(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_global_avgpool_and_flatten(c, h, w, seed):
    x = np.random.default_rng(seed).standard_normal((2, c, h, w))
    got = apply(L.GlobalAvgPool(), [x])
    assert got.shape == (2, c, 1, 1)
    np.testing.assert_allclose(got, ref_global_avgpool(x), rtol=RTOL, atol=ATOL)
    assert L.GlobalAvgPool().output_shape([(c, h, w)]) == (c, 1, 1)
    flat = apply(L.Flatten(), [x])
    np.testing.assert_array_equal(flat, ref_flatten(x))
    assert L.Flatten().output_shape([(c, h, w)]) == (c * h * w,)


def test_flatten_is_channel_first_c_order():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    flat = apply(L.Flatten(), [x])
    # element (c, h, w) of image n lands at c*4 + h*2 + w
    assert flat[1, 1 * 4 + 0 * 2 + 1] == x[1, 1, 0, 1]
    np.testing.assert_array_equal(flat[0], np.arange(12))


@pytest.mark.parametrize("layer, shapes", [
    (L.Conv2d(np.arange(24.0).reshape(2, 3, 2, 2) / 7, np.array([0.5, -1.0]), padding=1),
     [(4, 3, 5, 5)]),
    (L.Dense(np.arange(12.0).reshape(4, 3) / 7, np.ones(4)), [(5, 3)]),
    (L.Add(), [(2, 3, 4, 4)] * 3)])
def test_apply_writes_into_a_given_out_with_the_same_bits(layer, shapes):
    rng = np.random.default_rng(1)
    inputs = [rng.standard_normal(shape).astype(np.float32) for shape in shapes]
    want = apply(layer, inputs)
    out = np.full_like(want, np.nan)
    assert apply(layer, inputs, out=out) is out
    np.testing.assert_array_equal(out.view(np.uint32), want.view(np.uint32))
    with pytest.raises(evsim.EvsimValueError, match=r"out must be a C-contiguous float32 array"):
        apply(layer, inputs, out=np.empty(want.shape[:-1] + (want.shape[-1] + 1,),
                                              np.float32))
    with pytest.raises(evsim.EvsimValueError, match="float32"):
        apply(layer, inputs, out=np.empty(want.shape))


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.sampled_from(["conv", "dense"]), st.integers(2, 40), st.data())
def test_per_image_gemms_give_an_image_the_same_bits_in_any_batch(kind, batch, data):
    """BLAS rounds a GEMM by its shape: in one GEMM with others, an image's float32 result
    changes with the batch around it; with ``per_image`` it does not."""
    rng = np.random.default_rng(batch)
    if kind == "conv":
        cin, cout = data.draw(st.integers(1, 16)), data.draw(st.integers(4, 32))
        size = data.draw(st.integers(5, 28))
        layer = L.Conv2d(rng.standard_normal((cout, cin, 3, 3)), rng.standard_normal(cout),
                         padding=1)
        x = rng.standard_normal((batch, cin, size, size)).astype(np.float32)
    else:
        n_in, n_out = data.draw(st.integers(1, 600)), data.draw(st.integers(1, 300))
        layer = L.Dense(rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out))
        x = rng.standard_normal((batch, n_in)).astype(np.float32)
    lo = data.draw(st.integers(0, batch - 1))
    hi = data.draw(st.integers(lo + 1, batch))
    with one_blas_thread():
        whole = apply(layer, [x], per_image=True)
        part = apply(layer, [x[lo:hi]], 2, per_image=True)
    np.testing.assert_array_equal(whole[lo:hi].view(np.uint32), part.view(np.uint32))


def test_apply_refuses_out_for_a_layer_that_cannot_write_into_it():
    x = np.ones((2, 1, 4, 4), np.float32)
    with pytest.raises(evsim.EvsimTypeError, match="AvgPool2d cannot write into a given out"):
        apply(L.AvgPool2d(2), [x], out=np.empty((2, 1, 2, 2), np.float32))

def test_add_and_batchnorm():
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal((2, 3, 4, 4)) for _ in range(3))
    got = apply(L.Add(), [a, b, c])
    want = np.empty_like(a)
    for idx in np.ndindex(*a.shape):
        want[idx] = a[idx] + b[idx] + c[idx]
    np.testing.assert_allclose(got, want, rtol=RTOL)
    # inputs are not modified in place
    assert not np.shares_memory(got, a)
    a_copy = a.copy()
    apply(L.Add(), [a, b])
    np.testing.assert_array_equal(a, a_copy)

    gamma, beta, mean = (rng.standard_normal(3) for _ in range(3))
    var = rng.uniform(0.1, 2.0, 3)
    bn = L.BatchNorm(gamma, beta, mean, var, eps=1e-3)
    np.testing.assert_allclose(apply(bn, [a]), ref_batchnorm(a, gamma, beta, mean, var, 1e-3),
                               rtol=RTOL, atol=ATOL)
    x1 = rng.standard_normal((5, 3))
    np.testing.assert_allclose(apply(bn, [x1]),
                               ref_batchnorm(x1, gamma, beta, mean, var, 1e-3),
                               rtol=RTOL, atol=ATOL)


@FAST
@given(st.integers(0, 2**31 - 1), st.floats(0.25, 8.0), st.integers(1, 8),
       st.sampled_from([0.0, 0.5, 0.25]))
def test_activations_match_definitions(seed, bound, levels, shift):
    x = np.random.default_rng(seed).normal(0, bound, size=(3, 2, 3, 3))
    np.testing.assert_array_equal(apply(L.ReLU(), [x]), ref_relu(x))
    np.testing.assert_array_equal(apply(L.Clip(bound), [x]), ref_clip(x, bound))
    got = apply(L.QCFS(lam=bound, levels=levels, shift=shift), [x])
    np.testing.assert_allclose(got, ref_qcfs(x, bound, levels, shift), rtol=1e-12, atol=1e-12)
    # QCFS values lie on the grid lam * k / L, 0 <= k <= L
    k = got * levels / bound
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    assert k.min() >= -1e-9 and k.max() <= levels + 1e-9


@FAST
@given(st.integers(0, 2**31 - 1), st.sampled_from([0.01, 0.1, 0.25, 1.0]),
       st.sampled_from([np.float32, np.float64]))
def test_leaky_relu_and_identity_match_definitions(seed, alpha, dtype):
    x = np.random.default_rng(seed).normal(0, 2, size=(3, 2, 3, 3)).astype(dtype)
    got = apply(L.LeakyReLU(alpha), [x])
    want = np.array([v if v >= 0 else dtype(alpha) * v for v in x.ravel()], dtype)
    assert got.dtype == dtype and got.tobytes() == want.reshape(x.shape).tobytes()
    same = apply(L.Identity(), [x])
    assert same is not x and same.tobytes() == x.tobytes()
    assert L.LeakyReLU(alpha).negative_slope == alpha and L.Identity().negative_slope == 1
    assert L.ReLU().negative_slope == 0
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(evsim.EvsimValueError, match="LeakyReLU alpha"):
            L.LeakyReLU(bad)


def test_qcfs_hand_values():
    layer = L.QCFS(lam=2.0, levels=4, shift=0.5)
    x = np.array([[-1.0, 0.0, 0.24, 0.26, 1.0, 1.9, 5.0]])
    # floor(2 x + 0.5) / 4 clipped to [0, 1], times 2
    np.testing.assert_allclose(apply(layer, [x]), [[0.0, 0.0, 0.0, 0.5, 1.0, 2.0, 2.0]])


def test_float32_inputs_looser_tolerance():
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((4, 2, 3, 3))
    bias = rng.standard_normal(4)
    x = rng.standard_normal((2, 2, 7, 6))
    layer = L.Conv2d(weight.astype(np.float32), bias.astype(np.float32), stride=(2, 1),
                     padding=1)
    got = apply(layer, [x.astype(np.float32)])
    assert got.dtype == np.float32
    want = ref_conv2d(x.astype(np.float32).astype(np.float64),
                      weight.astype(np.float32).astype(np.float64),
                      bias.astype(np.float32).astype(np.float64), (2, 1), (1, 1), (1, 1), 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    pool = L.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
    got = apply(pool, [x.astype(np.float32)])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref_avgpool(x.astype(np.float32).astype(np.float64),
                                                (3, 3), (2, 2), (1, 1), True, False),
                               rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------
# Against torch.nn.functional (third opinion for the corner cases)
# ----------------------------------------------------------------------------

def _torch():
    return pytest.importorskip("torch")


@TINY
@given(conv_cases())
def test_conv2d_matches_torch(case):
    torch = _torch()
    params, x = case
    got = apply(L.Conv2d(**params), [x])
    bias = None if params["bias"] is None else torch.from_numpy(params["bias"])
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(params["weight"]),
                                      bias, stride=params["stride"], padding=params["padding"],
                                      dilation=params["dilation"],
                                      groups=params["groups"]).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


POOL_CORNERS = [
    # (H, W, kernel, stride, padding)
    (5, 5, 2, 2, 0),         # ceil keeps a 1-pixel window; floor drops the last row/col
    (5, 5, 3, 3, 1),         # ceil rule removes a window starting in the right padding
    (4, 4, 2, 3, 1),         # stride > kernel with padding
    (6, 6, 3, 2, 1),         # ceil window overhangs the padding by one
    (7, 5, (3, 2), (2, 3), (1, 1)),
    (3, 3, 3, 1, 1),
    (1, 4, (1, 4), (1, 3), (0, 2)),
]


@pytest.mark.parametrize("h,w,kernel,stride,padding", POOL_CORNERS)
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("count_include_pad", [False, True])
def test_avgpool_corner_cases_match_torch(h, w, kernel, stride, padding, ceil_mode,
                                          count_include_pad):
    torch = _torch()
    x = np.random.default_rng(h * 10 + w).standard_normal((2, 2, h, w))
    layer = L.AvgPool2d(kernel, stride, padding, ceil_mode=ceil_mode,
                        count_include_pad=count_include_pad)
    got = apply(layer, [x])
    want = torch.nn.functional.avg_pool2d(torch.from_numpy(x), kernel, stride, padding,
                                          ceil_mode=ceil_mode,
                                          count_include_pad=count_include_pad).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("h,w,kernel,stride,padding", POOL_CORNERS)
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_maxpool_corner_cases_match_torch(h, w, kernel, stride, padding, ceil_mode):
    torch = _torch()
    x = np.random.default_rng(h * 10 + w).standard_normal((2, 2, h, w)) - 5.0
    layer = L.MaxPool2d(kernel, stride, padding, ceil_mode=ceil_mode)
    got = apply(layer, [x])
    want = torch.nn.functional.max_pool2d(torch.from_numpy(x), kernel, stride, padding,
                                          ceil_mode=ceil_mode).numpy()
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@TINY
@given(pool_cases())
def test_pools_match_torch_random(case):
    torch = _torch()
    params, cip, x = case
    k, s, p, ceil = (params[key] for key in ("kernel_size", "stride", "padding", "ceil_mode"))
    tx = torch.from_numpy(x)
    avg = apply(L.AvgPool2d(**params, count_include_pad=cip), [x])
    want = torch.nn.functional.avg_pool2d(tx, k, s, p, ceil_mode=ceil,
                                          count_include_pad=cip).numpy()
    assert avg.shape == want.shape
    np.testing.assert_allclose(avg, want, rtol=RTOL, atol=ATOL)
    mx = apply(L.MaxPool2d(**params), [x])
    want = torch.nn.functional.max_pool2d(tx, k, s, p, ceil_mode=ceil).numpy()
    np.testing.assert_array_equal(mx, want)


# ----------------------------------------------------------------------------
# evsim.forward on small graphs
# ----------------------------------------------------------------------------

def _small_graph(rng):
    """input (2,7,7) -> conv(pad 1) -> bn -> relu -> [conv(pad 1) + skip] -> clip ->
    avgpool(ceil) -> maxpool(pad) -> qcfs -> gap -> flatten -> dense."""
    w1, b1 = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    w2 = rng.standard_normal((4, 2, 3, 3))  # groups=2
    bn = (rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(4),
          rng.uniform(0.5, 2, 4))
    wd, bd = rng.standard_normal((3, 4)), rng.standard_normal(3)
    b = NetworkBuilder((2, 7, 7))
    b.add_layer(L.Conv2d(w1, b1, padding=1), name="conv1")
    b.add_layer(L.BatchNorm(*bn), name="bn1")
    b.add_layer(L.ReLU(), name="relu1")
    b.add_layer(L.Conv2d(w2, None, padding=1, groups=2), name="conv2")
    b.add_layer(L.Add(), "conv2", "relu1", name="res")
    b.add_layer(L.Clip(1.5), name="clip")
    b.add_layer(L.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False), name="avg")
    b.add_layer(L.MaxPool2d(3, 1, 1), name="max")
    b.add_layer(L.QCFS(lam=1.5, levels=8), name="qcfs")
    b.add_layer(L.GlobalAvgPool(), name="gap")
    b.add_layer(L.Flatten(), name="flat")
    b.add_layer(L.Dense(wd, bd), name="fc")
    net = b.build()

    def reference(x):
        out = {"input": x}
        out["conv1"] = ref_conv2d(x, w1, b1, (1, 1), (1, 1), (1, 1), 1)
        out["bn1"] = ref_batchnorm(out["conv1"], *bn, 1e-5)
        out["relu1"] = ref_relu(out["bn1"])
        out["conv2"] = ref_conv2d(out["relu1"], w2, None, (1, 1), (1, 1), (1, 1), 2)
        out["res"] = out["conv2"] + out["relu1"]
        out["clip"] = ref_clip(out["res"], 1.5)
        out["avg"] = ref_avgpool(out["clip"], (2, 2), (2, 2), (0, 0), True, False)
        out["max"] = ref_maxpool(out["avg"], (3, 3), (1, 1), (1, 1), False)
        out["qcfs"] = ref_qcfs(out["max"], 1.5, 8, 0.5)
        out["gap"] = ref_global_avgpool(out["qcfs"])
        out["flat"] = ref_flatten(out["gap"])
        out["fc"] = ref_dense(out["flat"], wd, bd)
        return out

    return net, reference


def test_forward_small_graph_and_all_activations():
    rng = np.random.default_rng(11)
    net, reference = _small_graph(rng)
    x = rng.standard_normal((5, 2, 7, 7))
    want = reference(x)
    out, acts = evsim.forward(net, x, activations=True, dtype=np.float64)
    assert set(acts) == {n.name for n in net}
    for name, value in acts.items():
        assert value.shape == (5,) + net.shape(name), name
        assert value.dtype == np.float64
        # QCFS floors: a value within rounding of a step could flip; none here at this seed
        np.testing.assert_allclose(value, want[name], rtol=1e-9, atol=1e-9, err_msg=name)
    np.testing.assert_array_equal(out, acts["fc"])
    only = evsim.forward(net, x, activations=["relu1", "gap"], dtype=np.float64)[1]
    assert set(only) == {"relu1", "gap"}
    np.testing.assert_array_equal(only["gap"], acts["gap"])
    with pytest.raises(KeyError, match="nope"):
        evsim.forward(net, x, activations=["nope"])


def test_forward_batch_chunking_gives_same_result():
    rng = np.random.default_rng(12)
    net, _ = _small_graph(rng)
    x = rng.standard_normal((7, 2, 7, 7))
    whole, acts = evsim.forward(net, x, activations=True, dtype=np.float64)
    for bs in (1, 3, 6):
        part, part_acts = evsim.forward(net, x, activations=True, batch_size=bs,
                                        dtype=np.float64)
        assert part.shape == whole.shape
        np.testing.assert_allclose(part, whole, rtol=1e-12, atol=1e-12)
        for name in acts:
            np.testing.assert_allclose(part_acts[name], acts[name], rtol=1e-12, atol=1e-12)


def test_forward_default_dtype_float32_close_to_float64():
    rng = np.random.default_rng(13)
    w = rng.standard_normal((3, 2, 3, 3))
    net = Network.sequential((2, 6, 6), [L.Conv2d(w, padding=1), L.ReLU(),
                                         L.AvgPool2d(2), L.Flatten(),
                                         L.Dense(rng.standard_normal((4, 27)))])
    x = rng.standard_normal((3, 2, 6, 6))
    out32 = evsim.forward(net, x)
    out64 = evsim.forward(net, x, dtype=np.float64)
    assert out32.dtype == np.float32 and out64.dtype == np.float64
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-4)


def test_forward_bad_input_shape_mentions_expected_shape():
    net = Network.sequential((1, 5, 5), [L.Flatten(), L.Dense(np.ones((2, 25)))])
    with pytest.raises(ValueError, match=r"\(batch, 1, 5, 5\)"):
        evsim.forward(net, np.zeros((3, 1, 5, 4)))
    with pytest.raises(ValueError, match=r"\(batch, 1, 5, 5\)"):
        evsim.forward(net, np.zeros((3, 25)))
    with pytest.raises(ValueError, match=r"batch axis"):
        evsim.forward(net, np.zeros((1, 5, 5)))
