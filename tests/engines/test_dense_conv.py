"""The dense engine's compiled convolution parts (evsim.simulate.dense_conv): the
depthwise kernel's column orders against a transcription of OpenBLAS's matrix-vector
driver, the kernel against a naive loop over those orders and, where this machine's BLAS
is the one it reproduces, against the GEMM path bit for bit (on the bundled MobileNet too);
the compiled GEMM columns against NumPy's."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import evsim
from evsim import ann_ops
from evsim import layers as L
from evsim.data import load_bundled_sample
from evsim.models import load_model
from evsim.simulate import dense
from evsim.simulate import dense_conv as dd
from evsim.threads import one_blas_thread

NBMAX = 4096


def _driver_orders(n_lanes: int) -> list[int]:
    """The order of every column of a product with ``n_lanes`` columns, following
    OpenBLAS's sgemv_n driver and its AVX2 kernel step by step: blocks of NBMAX columns
    (the last of ``(N & (NBMAX-1)) − N mod 4``), each block's first 4 and then 8 columns
    (if its size has those bits) by two accumulators, the rest 16 at a time by one, and
    the last N mod 4 columns by the plain loop."""
    orders = []
    m3 = n_lanes & 3
    m1 = n_lanes & -4
    m2 = (n_lanes & (NBMAX - 1)) - m3
    nb = NBMAX
    while nb == NBMAX:
        m1 -= nb
        if m1 < 0:
            if m2 == 0:
                break
            nb = m2
        n = nb
        if n & 4:
            orders += [dd.TWO_ACCUMULATORS] * 4
            n -= 4
        if n & 8:
            orders += [dd.TWO_ACCUMULATORS] * 8
            n -= 8
        orders += [dd.ONE_ACCUMULATOR] * n
    orders += [dd.PLAIN] * m3
    assert len(orders) == n_lanes
    return orders


@pytest.mark.parametrize("n_lanes", [4, 5, 7, 12, 15, 16, 31, 100, 4095, 4096, 4097, 4111,
                                     4108, 8192, 8207, 12300, 20000])
def test_lane_orders_follow_the_blas_driver(n_lanes):
    expected = _driver_orders(n_lanes)
    assert [dd.lane_path(p, n_lanes) for p in range(n_lanes)] == expected


def _naive(x, weights, bias, layer, step, width):
    """Every output by dd.lane_value at its column's order, chunk by chunk, in plain
    Python loops."""
    frames, channels, h, w = x.shape
    kh, kw = layer.kernel_size
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    _, ho, wo = layer.output_shape([x.shape[1:]])
    padded = np.zeros((frames, channels, h + 2 * ph, w + 2 * pw), x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    out = np.empty((frames, channels, ho, wo), x.dtype)
    for start in range(0, frames, step):
        n_lanes = min(step, frames - start) * ho * width
        for f in range(start, min(start + step, frames)):
            for c in range(channels):
                for oy in range(ho):
                    for ox in range(wo):
                        values = np.array([padded[f, c, oy * sh + i * dh, ox * sw + j * dw]
                                           for i in range(kh) for j in range(kw)], x.dtype)
                        lane = ((f - start) * ho + oy) * width + ox
                        value = dd.lane_value(values, weights[c], dd.lane_path(lane, n_lanes))
                        out[f, c, oy, ox] = value if bias is None else value + bias[c]
    return out


def _layer(channels, kh, kw, stride, padding, dilation, with_bias, rng):
    weight = rng.standard_normal((channels, 1, kh, kw))
    bias = rng.standard_normal(channels) if with_bias else None
    return L.Conv2d(weight=weight, bias=bias, stride=stride, padding=padding,
                    dilation=dilation, groups=channels)


geometries = st.fixed_dictionaries({
    "frames": st.integers(1, 40), "channels": st.integers(1, 4),
    "h": st.integers(3, 15), "w": st.integers(3, 15),
    "kh": st.integers(1, 4), "kw": st.integers(1, 4),
    "stride": st.tuples(st.integers(1, 3), st.integers(1, 3)),
    "padding": st.tuples(st.integers(0, 2), st.integers(0, 2)),
    "dilation": st.tuples(st.integers(1, 2), st.integers(1, 2)),
    "bias": st.booleans(), "step": st.integers(1, 17), "seed": st.integers(0, 2**16)})


def _case(g, dtype):
    rng = np.random.default_rng(g["seed"])
    layer = _layer(g["channels"], g["kh"], g["kw"], g["stride"], g["padding"],
                   g["dilation"], g["bias"], rng)
    shape = (g["channels"], g["h"], g["w"])
    try:
        layer.output_shape([shape])
    except L.ShapeError:  # the window does not fit
        return None
    x = rng.standard_normal((g["frames"],) + shape).astype(dtype)
    return layer, x


@settings(max_examples=40, deadline=None, derandomize=True)
@given(g=geometries, dtype=st.sampled_from([np.float32, np.float64]))
def test_kernel_equals_the_naive_loop(g, dtype):
    """Any geometry, any number of images per product: the vector kernel and its scalar
    twin per output agree bit for bit (no BLAS involved)."""
    case = _case(g, dtype)
    if case is None:
        return
    layer, x = case
    kh, kw = layer.kernel_size
    _, ho, wo = layer.output_shape([x.shape[1:]])
    weights = layer.weight.reshape(len(layer.weight), -1).astype(dtype)
    bias = None if layer.bias is None else layer.bias.astype(dtype)
    width = ann_ops.product_row_width(layer, x.shape[1:])
    out = np.empty((len(x), x.shape[1], ho, wo), dtype)
    bias_or_empty = np.empty(0, dtype) if bias is None else bias
    cut = g["seed"] % (len(x) + 1)  # two ranges of images, as two threads would take them
    for lo, hi in ((0, cut), (cut, len(x))):
        dd.depthwise_frames(x, weights, bias_or_empty, out, kh, kw, *layer.stride,
                            *layer.padding, *layer.dilation, g["step"], width, lo, hi)
    expected = _naive(x, weights, bias, layer, g["step"], width)
    np.testing.assert_array_equal(out.view(np.uint8), expected.view(np.uint8))


def _blas_or_skip(kh, kw):
    if not dd.matches_blas(np.dtype(np.float32), kh, kw):
        pytest.skip("this machine's BLAS sums a 1-row product in another order (or is not "
                    "held to one thread); the dense engine keeps the GEMM path here")


@settings(max_examples=40, deadline=None, derandomize=True)
@given(g=geometries)
def test_kernel_equals_the_gemm_path_bit_for_bit(g):
    """Where the probe passes, the kernel's result is the GEMM path's for every geometry,
    products of many chunks and of more than one 4,096-column block included."""
    case = _case(g, np.float32)
    if case is None:
        return
    layer, x = case
    _blas_or_skip(*layer.kernel_size)
    x = np.concatenate([x] * 8)  # more columns: several products, partial blocks
    with one_blas_thread():
        expected = ann_ops.conv2d(layer, x, lay_out=dense._lay_out_compiled)
        got = dd.depthwise(layer, x, 2, np.empty_like(expected))
    np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))


def test_bundled_mobilenet_dense_run_is_the_same_with_and_without_the_kernel(monkeypatch):
    """The kernel at two threads (shares of any size) against the GEMM path at one."""
    _blas_or_skip(3, 3)
    images, _ = load_bundled_sample("test")
    calibration, _ = load_bundled_sample("train")
    snn = evsim.convert(load_model("mobilenet"), calibration[:64])
    x = images[:6]
    calls = []
    kernel = dd.depthwise
    monkeypatch.setattr(dense, "depthwise", lambda *a: calls.append(1) or kernel(*a))
    fast = evsim.simulate(snn, x, T=8, engine="dense", threads=2)  # split anywhere
    assert calls, "the depthwise layers did not take the kernel"
    monkeypatch.setattr(dense, "matches_blas", lambda *a: False)
    slow = evsim.simulate(snn, x, T=8, engine="dense", threads=1)
    np.testing.assert_array_equal(fast.outputs, slow.outputs)
    for name, counts in slow.spike_counts.items():
        np.testing.assert_array_equal(fast.spike_counts[name], counts, err_msg=name)


def test_without_threadpoolctl_the_gemm_path_stays(monkeypatch):
    """A BLAS that may run threads splits the columns among them: no kernel then."""
    monkeypatch.setattr(dd, "_threadpool_limits", lambda: None)
    dd.matches_blas.cache_clear()
    try:
        assert not dd.matches_blas(np.dtype(np.float32), 3, 3)
    finally:
        dd.matches_blas.cache_clear()


@settings(max_examples=40, deadline=None, derandomize=True)
@given(frames=st.integers(1, 30), groups=st.integers(1, 3), group_in=st.integers(1, 4),
       group_out=st.integers(1, 3), h=st.integers(1, 12), w=st.integers(1, 12),
       kh=st.integers(1, 4), kw=st.integers(1, 4), ph=st.integers(0, 2), pw=st.integers(0, 2),
       with_bias=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_compiled_columns_give_the_numpy_columns_result(frames, groups, group_in, group_out,
                                                        h, w, kh, kw, ph, pw, with_bias,
                                                        dtype, seed):
    """ann_ops.conv2d with dd.columns (each plane padded in L1, every tap's run copied by
    vectors) and with NumPy's padded copy and strided copies: the same GEMMs on the same
    columns, so the same bits, for any stride-1 geometry, groups and images per product."""
    rng = np.random.default_rng(seed)
    layer = L.Conv2d(weight=rng.standard_normal((groups * group_out, group_in, kh, kw)),
                     bias=rng.standard_normal(groups * group_out) if with_bias else None,
                     padding=(ph, pw), groups=groups)
    shape = (groups * group_in, h, w)
    try:
        layer.output_shape([shape])
    except L.ShapeError:  # the window does not fit
        return
    x = rng.standard_normal((frames,) + shape).astype(dtype)
    with one_blas_thread():
        expected = ann_ops.conv2d(layer, x, lay_out=dense._lay_out_compiled)
        got = ann_ops.conv2d(layer, x, 2, lay_out=dense._lay_out_compiled, columns=dd.columns)
    np.testing.assert_array_equal(got.view(np.uint8), expected.view(np.uint8))
