"""The dense engine's tiles of eight positions for small sparse convolutions
(evsim.simulate.dense_tiles): the kernel against a naive loop over the GEMM order it
follows (no BLAS involved), and against the GEMM path bit for bit where the probe passes;
what it takes; the occupancy its rule reads; a bundled model's dense run the same with and
without it."""

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import evsim
from evsim import ann_ops
from evsim import layers as L
from evsim.data import load_bundled_sample
from evsim.models import load_model
from evsim.simulate import blas_order as bo
from evsim.simulate import dense
from evsim.simulate import dense_gather as dg
from evsim.simulate import dense_tiles as dt
from evsim.threads import one_blas_thread

from blas_reference import naive_conv

# -0.0 is a zero the masks must skip, as the GEMM adds it without a trace
VALUES = np.array([-2.0, -0.5, -0.0, 0.75, 1.0, 3.5], np.float32)

tile_geometries = st.fixed_dictionaries({
    "frames": st.integers(1, 12), "cin": st.integers(1, 24), "cout": st.integers(2, 40),
    "kh": st.integers(1, 8), "kw": st.integers(1, 8), "ph": st.integers(0, 2),
    "pw": st.integers(0, 2), "tiles_across": st.integers(1, 5), "rows": st.integers(1, 20),
    "whole_rows": st.booleans(), "bias": st.booleans(),
    "density": st.sampled_from([0.0, 0.03, 0.1, 0.5, 1.0]), "seed": st.integers(0, 2**16),
    # a small im2col budget: a few images a product, the last product shorter
    "product_floats": st.sampled_from([None, 2048])})


def _tile_case(g):
    """A layer and frames the kernel takes: stride 1, one K block, and either padded rows
    of a multiple of 8 columns or a multiple of 8 output rows; None where the window or
    the K block does not fit."""
    kh, kw, ph, pw = g["kh"], g["kw"], g["ph"], g["pw"]
    if g["cin"] * kh * kw > 320:
        return None
    if g["whole_rows"]:  # padded width 8, 16, ... 40
        w, h = 8 * g["tiles_across"] - 2 * pw, g["rows"]
    else:  # 8 or 16 output rows, any width
        h, w = 8 * (1 + g["tiles_across"] % 2) + kh - 1 - 2 * ph, g["rows"]
    if h < 1 or w < 1 or h + 2 * ph < kh or w + 2 * pw < kw:
        return None
    rng = np.random.default_rng(g["seed"])
    weight = rng.standard_normal((g["cout"], g["cin"], kh, kw)).astype(np.float32)
    layer = L.Conv2d(weight=weight,
                     bias=rng.standard_normal(g["cout"]).astype(np.float32) if g["bias"] else None,
                     padding=(ph, pw))
    shape = (g["frames"], g["cin"], h, w)
    x = np.where(rng.random(shape) < g["density"], rng.choice(VALUES, shape), np.float32(0))
    x = np.ascontiguousarray(x, np.float32)
    assert dt.fits_shape(layer, x.shape[1:], x.dtype)
    return layer, x


def _blas_or_skip():
    if not dt.matches_blas_tiles():
        pytest.skip("this machine's BLAS sums a GEMM in another order than OpenBLAS's "
                    "Haswell and SkylakeX kernels (or is not held to one thread); the dense "
                    "engine keeps the GEMM path here")


@settings(max_examples=40, deadline=None, derandomize=True)
@given(g=tile_geometries)
def test_tiles_equal_the_naive_loop(g):
    """Any geometry the kernel takes, any density, every product and thread share, each
    modelled order: its result is the naive loop's over the same order, bit for bit (no
    BLAS involved)."""
    made = _tile_case(g)
    if made is None:
        return
    layer, x = made
    with mock.patch.object(ann_ops, "IM2COL_FLOATS",
                           g["product_floats"] or ann_ops.IM2COL_FLOATS):
        for order in bo.ORDERS:
            expected = naive_conv(layer, x, order)
            got = dt.tile_conv(layer, x, 2, np.full_like(expected, np.nan), order)
            np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_sums_that_underflow_to_minus_zero_are_stored_as_the_gemm_stores_them():
    """Products of 1e-30 and 1e-20 underflow to ±0, so many sums end as an exact zero of
    either sign; the GEMM adds each sum to its zeroed output (+0), and so do the tiles:
    the naive loop's bits, and the GEMM path's where the probe passes."""
    rng = np.random.default_rng(5)
    weight = (rng.choice([-1.0, 1.0], (16, 16, 3, 3)) * 1e-30).astype(np.float32)
    layer = L.Conv2d(weight=weight, padding=(1, 1))
    x = ((rng.random((6, 16, 14, 14)) < 0.1) * 1e-20).astype(np.float32)
    for order in bo.ORDERS:
        expected = naive_conv(layer, x, order)
        assert (expected.view(np.uint32) == 0).all()  # every sum +0
        got = dt.tile_conv(layer, x, 1, np.full_like(expected, np.nan), order)
        np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
    if dt.matches_blas_tiles() and dg.products_modelled(layer, x, dg.gemm_order()):
        got = dt.tile_conv(layer, x, 1, np.full_like(expected, np.nan))
        with one_blas_thread():
            gemm = ann_ops.conv2d(layer, x, lay_out=dense._lay_out_compiled)
        np.testing.assert_array_equal(got.view(np.uint32), gemm.view(np.uint32))


@pytest.mark.parametrize("cin,cout,size,window,frames", [
    (16, 16, 28, 3, 18),   # 4 images a product, the last one of 2: two sets of tables
    (32, 16, 32, 3, 5),    # K = 288, halved row blocks
    (35, 20, 14, 3, 9),    # K = 315: the last 3 products after the block's last 8
    (3, 47, 30, 3, 4),     # 12-column panels' last tiles on both sides; 8-, 2-, 1-wide
    (8, 16, 64, 5, 3),     # 5 × 5 window, padded rows wider than 64
    (5, 16, 16, 8, 7),     # 8 × 8 window: K = 320, the most one block takes
])
def test_tiles_equal_the_gemm_path_bit_for_bit(cin, cout, size, window, frames):
    """Where the probe passes, the kernel gives ann_ops.conv2d's result (with the dense
    engine's lay-out) on layers larger than the probe's, at one and two threads."""
    _blas_or_skip()
    rng = np.random.default_rng(cin + cout)
    pad = window // 2
    layer = L.Conv2d(weight=rng.standard_normal((cout, cin, window, window)).astype(np.float32),
                     bias=rng.standard_normal(cout).astype(np.float32), padding=(pad, pad))
    x = ((rng.random((frames, cin, size, size)) < 0.08)
         * rng.choice([0.5, 1.0, 2.0], (frames, cin, size, size))).astype(np.float32)
    assert dt.fits_shape(layer, x.shape[1:], x.dtype)
    if not dg.products_modelled(layer, x, dg.gemm_order()):
        pytest.skip("products of at most 100³ multiply-adds: OpenBLAS's small-matrix "
                    "kernels, whose order is not modelled")
    with one_blas_thread():
        expected = ann_ops.conv2d(layer, x, lay_out=dense._lay_out_compiled)
        for threads in (1, 2):
            got = dt.tile_conv(layer, x, threads, np.empty_like(expected))
            np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_what_the_tiles_take():
    """float32, one group, stride 1, no dilation, two or more output channels, one K block
    (at most 320 products), at most 8 window columns, whole tiles; the rule takes layers
    of 1,024 to 9,215 products per output with 4 or more taps, on frames at most half of
    whose runs of 8 inputs hold a non-zero one."""
    rng = np.random.default_rng(0)

    def conv(cout, cin, kh=3, kw=3, **options):
        return L.Conv2d(weight=rng.standard_normal((cout, cin, kh, kw)), **options)

    shape = (16, 28, 28)  # padded 30 wide, 28 output rows: 840 columns, 105 tiles
    layer = conv(16, 16, padding=(1, 1))
    assert dt.fits_shape(layer, shape, np.float32)
    assert not dt.fits_shape(layer, shape, np.float64)
    assert not dt.fits_shape(conv(16, 8, groups=2, padding=(1, 1)), shape, np.float32)
    assert not dt.fits_shape(conv(16, 16, stride=(2, 2), padding=(1, 1)), shape, np.float32)
    assert not dt.fits_shape(conv(16, 16, dilation=(2, 2), padding=(2, 2)), shape, np.float32)
    assert not dt.fits_shape(conv(1, 16, padding=(1, 1)), shape, np.float32)
    assert dt.fits_shape(conv(16, 35, padding=(1, 1)), (35, 28, 28), np.float32)  # K = 315
    assert not dt.fits_shape(conv(16, 36, padding=(1, 1)), (36, 28, 28), np.float32)  # 324
    assert not dt.fits_shape(conv(4, 2, 1, 9, padding=(0, 4)), (2, 28, 28), np.float32)
    assert dt.fits_shape(conv(4, 2, 1, 8, padding=(0, 4)), (2, 28, 28), np.float32)
    assert not dt.fits_shape(layer, (16, 7, 7), np.float32)  # 7 rows of 9: 63 columns
    assert dt.fits_shape(layer, (16, 8, 7), np.float32)  # 8 rows of 9
    assert dt.may_tile(layer, shape, np.float32)
    assert not dt.may_tile(conv(8, 8, padding=(1, 1)), (8, 28, 28), np.float32)  # 576
    assert dt.may_tile(conv(16, 8, padding=(1, 1)), (8, 28, 28), np.float32)  # 1,152
    assert not dt.may_tile(conv(32, 32, padding=(1, 1)), (32, 28, 28), np.float32)  # 9,216
    assert not dt.may_tile(conv(64, 64, 1, 1), (64, 28, 28), np.float32)  # 1 × 1
    x = np.zeros((2,) + shape, np.float32)
    if dt.matches_blas_tiles():
        assert dt.tiles(layer, x, 0.5)
    assert not dt.tiles(layer, x, 0.51)


def test_occupancy_counts_values_and_runs_of_eight():
    """Worked by hand on a frame of 20 values (runs 0-7, 8-15 and the short 16-19):
    non-zero values at 0, 1 and 17, a -0.0 (zero) at 9, a NaN (non-zero) nowhere or at
    12; then frames sampled every 4th (0 and 4 of 6 read, the others' spikes not seen)."""
    x = np.zeros((1, 1, 2, 10), np.float32)
    x.reshape(-1)[[0, 1, 17]] = [1.0, -2.0, 0.5]
    x.reshape(-1)[9] = -0.0
    assert dt.occupancy(x) == (3 / 20, 2 / 3)
    x.reshape(-1)[12] = np.nan
    assert dt.occupancy(x) == (4 / 20, 1.0)
    assert dt.occupancy(np.zeros((0, 3, 4, 4), np.float32)) == (0.0, 0.0)
    frames = np.zeros((6, 2, 3, 3), np.float32)  # 18 values a frame: runs of 8, 8, 2
    frames[4, 1, 2, 2] = 1.0  # value 17: the last, short run
    frames[[1, 2, 3, 5]] = 1.0
    assert dt.occupancy(frames, every=4) == (1 / 36, 1 / 6)
    assert dt.occupancy(frames, every=1) == (73 / 108, 13 / 18)


def test_without_threadpoolctl_the_tiles_are_not_taken(monkeypatch):
    """A BLAS that may run threads splits the rows among them: no tiles then."""
    monkeypatch.setattr(dg, "_threadpool_limits", lambda: None)  # the probes' shared check
    dg.gemm_order.cache_clear()  # else found here without threadpoolctl, and kept: None
    dt.matches_blas_tiles.cache_clear()
    try:
        assert not dt.matches_blas_tiles()
    finally:
        dg.gemm_order.cache_clear()
        dt.matches_blas_tiles.cache_clear()


@pytest.mark.slow
def test_bundled_dense_run_is_the_same_with_and_without_the_tiles(monkeypatch):
    """The bundled resnet's dense run at two threads with the tiles against one thread
    without them: outputs, spikes, SOPs and pooling operations the same."""
    _blas_or_skip()
    images, _ = load_bundled_sample("test")
    calibration, _ = load_bundled_sample("train")
    snn = evsim.convert(load_model("resnet"), calibration[:64])
    x = images[:6]
    calls = []
    kernel = dt.tile_conv
    monkeypatch.setattr(dense, "tile_conv", lambda *a: calls.append(1) or kernel(*a))
    fast = evsim.simulate(snn, x, T=16, engine="dense", threads=2)
    assert calls, "no convolution took the tiles"
    monkeypatch.setattr(dense, "tiles", lambda *a: False)
    slow = evsim.simulate(snn, x, T=16, engine="dense", threads=1)
    assert evsim.results_equal(fast, slow), evsim.difference(fast, slow)
