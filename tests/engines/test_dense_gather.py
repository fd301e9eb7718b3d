"""The dense engine's gather of sparse frames (evsim.simulate.dense_gather) and the GEMM
order it follows (evsim.simulate.blas_order): the order against NumPy's product where
this machine's BLAS is the one it describes; the kernel against a naive loop over that
order (no BLAS involved), and against the GEMM path bit for bit where the probe passes;
a bundled model's dense run the same with and without it."""

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
from evsim.threads import one_blas_thread

from blas_reference import case, model_product, naive_conv


def _blas_or_skip():
    if not dg.matches_blas_gemm():
        pytest.skip("this machine's BLAS sums a GEMM in another order than OpenBLAS's "
                    "Haswell and SkylakeX kernels (or is not held to one thread); the dense "
                    "engine keeps the GEMM path here")
    return dg.gemm_order()


def test_k_and_row_blocks_follow_the_driver():
    """The driver's rule, worked by hand: Q at a time while 2Q are left, a remainder
    between Q and 2Q halved and rounded up to 8."""
    assert bo.k_blocks(288) == [(0, 288)]
    assert bo.k_blocks(320) == [(0, 320)]
    assert bo.k_blocks(576) == [(0, 288), (288, 288)]
    assert bo.k_blocks(600) == [(0, 304), (304, 296)]
    assert bo.k_blocks(1152) == [(0, 320), (320, 320), (640, 256), (896, 256)]
    assert bo.row_blocks(2000) == [(0, 320), (320, 320), (640, 320), (960, 320),
                                   (1280, 320), (1600, 200), (1800, 200)]


def test_skylakex_blocks_follow_the_driver():
    """Worked by hand: Q = 448, a remainder between Q and 2Q halved and rounded up to 16;
    no output sums with two accumulators; products of at most 100³ multiply-adds (the
    small-matrix kernels') not modelled."""
    sk = bo.SKYLAKEX
    assert bo.k_blocks(448, sk) == [(0, 448)]
    assert bo.k_blocks(558, sk) == [(0, 288), (288, 270)]  # 279 rounded up to 16
    assert bo.k_blocks(558) == [(0, 280), (280, 278)]  # the Haswell driver's 8
    assert bo.k_blocks(1000, sk) == [(0, 448), (448, 288), (736, 264)]
    assert bo.k_blocks(1152, sk) == [(0, 448), (448, 352), (800, 352)]
    assert not bo.paired(32, 2000, sk).any()
    assert bo.modelled(100, 100, 101, sk) and not bo.modelled(100, 100, 100, sk)
    assert bo.modelled(1, 1, 1)  # the Haswell kernels have no small-matrix path


def test_pairs_follow_the_kernel_panels():
    """Worked by hand for 32 channels over 2,000 rows (blocks as above): the first block's
    last 8 channels come as two 4-column panels (all its rows paired), the 12-column
    panels pair their left six channels on each block's first 8 rows, and their last 8
    rows on the left (even tile count) or right (odd) side."""
    pairs = bo.paired(32, 2000)
    assert pairs[24:32, :320].all() and not pairs[24:32, 320:].any()
    for first in (0, 12):
        left, right = pairs[first:first + 6], pairs[first + 6:first + 12]
        expected_left = np.zeros(2000, bool)
        for start in (0, 320, 640, 960, 1280, 1600, 1800):
            expected_left[start:start + 8] = True
        for end in (320, 640, 960, 1280, 1600):  # 40 tiles: even
            expected_left[end - 8:end] = True
        expected_right = np.zeros(2000, bool)
        expected_right[1792:1800] = expected_right[1992:2000] = True  # 25 tiles: odd
        assert (left == expected_left).all() and (right == expected_right).all()


#: OpenBLAS's cores (as threadpoolctl names them) whose kernels each model describes.
CORES = {"haswell": bo.HASWELL, "zen": bo.HASWELL, "skylakex": bo.SKYLAKEX,
         "cooperlake": bo.SKYLAKEX, "sapphirerapids": bo.SKYLAKEX}


def test_this_machines_openblas_core_takes_its_model():
    """On a core whose kernels a model describes, the probes pick that model: a model
    gone wrong fails here instead of quietly leaving the dense engine on the GEMM path."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    cores = {info.get("architecture", "").lower() for info in threadpoolctl.threadpool_info()
             if info.get("internal_api") == "openblas"}
    known = cores & set(CORES)
    if len(cores) != 1 or not known:
        pytest.skip(f"OpenBLAS cores here: {sorted(cores) or 'none'}; no single modelled one")
    assert dg.gemm_order() == CORES[known.pop()]


@settings(max_examples=25, deadline=None, derandomize=True)
@given(channels=st.integers(2, 70), k=st.integers(1, 1400), n=st.integers(2, 1500),
       seed=st.integers(0, 2**16))
def test_the_order_is_numpys_product(channels, k, n, seed):
    """Dense random values: any other order would round some outputs differently."""
    order = _blas_or_skip()
    if not bo.modelled(channels, n, k, order):
        return  # a small-matrix kernel's product
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((channels, k)).astype(np.float32)
    x = rng.standard_normal((k, n)).astype(np.float32)
    with one_blas_thread():
        expected = w @ x
    np.testing.assert_array_equal(model_product(w, x, order).view(np.uint32),
                                  expected.view(np.uint32))


geometries = st.fixed_dictionaries({
    "frames": st.integers(1, 12), "cin": st.integers(1, 40), "cout": st.integers(2, 40),
    "h": st.integers(3, 20), "w": st.integers(3, 30), "kh": st.integers(1, 3),
    "kw": st.integers(1, 3), "stride": st.tuples(st.integers(1, 2), st.integers(1, 2)),
    "padding": st.tuples(st.integers(0, 1), st.integers(0, 1)), "bias": st.booleans(),
    "density": st.sampled_from([0.02, 0.1, 0.5, 1.0]), "seed": st.integers(0, 2**16)})


@settings(max_examples=30, deadline=None, derandomize=True)
@given(g=geometries)
def test_kernel_equals_the_naive_loop(g):
    """Any geometry and density, every image group and thread share, each modelled
    order: the kernel's result is the naive loop's over the same order, bit for bit (no
    BLAS involved)."""
    made = case(g)
    if made is None:
        return
    layer, x = made
    for order in bo.ORDERS:
        expected = naive_conv(layer, x, order)
        got = dg.gather_conv(layer, x, 2, np.full_like(expected, np.nan), order)
        np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


@pytest.mark.parametrize("cin,frames", [
    (62, 5),   # K = 558: halved into 280 + 278 (Haswell), 288 + 270 (SkylakeX)
    (128, 3),  # K = 1,152: four blocks (Haswell), 448 + 352 + 352 (SkylakeX)
])
def test_kernel_equals_the_naive_loop_over_several_k_blocks(cin, frames):
    """The naive-loop property on K long enough for several blocks, and halved ones, in
    each modelled order (the random geometries above stay within one or two)."""
    rng = np.random.default_rng(cin)
    layer = L.Conv2d(weight=rng.standard_normal((24, cin, 3, 3)).astype(np.float32),
                     bias=rng.standard_normal(24).astype(np.float32), padding=(1, 1))
    x = ((rng.random((frames, cin, 10, 10)) < 0.1)
         * rng.choice([-1.5, 0.25, 1.0, 3.0], (frames, cin, 10, 10))).astype(np.float32)
    for order in bo.ORDERS:
        expected = naive_conv(layer, x, order)
        got = dg.gather_conv(layer, x, 2, np.full_like(expected, np.nan), order)
        np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


@pytest.mark.parametrize("cin,cout,size,stride,frames", [
    (128, 20, 9, 1, 7),    # four K blocks, halved, ending inside a window; 4-column panels
    (64, 64, 14, 1, 5),    # two K blocks, a 4-column panel on every row block
    (32, 47, 28, 1, 4),    # halved row blocks, 12-column panels' last tiles on both sides
    (48, 96, 15, 2, 11),   # stride 2: output-width columns
])
def test_kernel_equals_the_gemm_path_bit_for_bit(cin, cout, size, stride, frames):
    """Where the probe passes, the kernel gives ann_ops.conv2d's result (with the dense
    engine's lay-out) on layers larger than the probe's, at one and two threads."""
    order = _blas_or_skip()
    rng = np.random.default_rng(cin + cout)
    layer = L.Conv2d(weight=rng.standard_normal((cout, cin, 3, 3)).astype(np.float32),
                     bias=rng.standard_normal(cout).astype(np.float32),
                     stride=(stride, stride), padding=(1, 1))
    x = ((rng.random((frames, cin, size, size)) < 0.08)
         * rng.choice([0.5, 1.0, 2.0], (frames, cin, size, size))).astype(np.float32)
    assert dg.products_modelled(layer, x, order)
    with one_blas_thread():
        expected = ann_ops.conv2d(layer, x, lay_out=dense._lay_out_compiled)
        for threads in (1, 2):
            got = dg.gather_conv(layer, x, threads, np.empty_like(expected))
            np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


def test_what_the_kernel_takes():
    """float32, one group, no dilation, two or more output channels, rows of at most 64
    padded columns; the rule takes sparse frames of large enough layers only, denser ones
    from 9,216 products per output."""
    rng = np.random.default_rng(0)
    layer = L.Conv2d(weight=rng.standard_normal((32, 16, 3, 3)), padding=(1, 1))
    x = np.zeros((2, 16, 10, 10), np.float32)
    assert dg.fits(layer, x)
    assert not dg.fits(layer, x.astype(np.float64))
    assert not dg.fits(layer, np.zeros((2, 16, 10, 63), np.float32))  # 65 padded columns
    assert not dg.fits(L.Conv2d(weight=rng.standard_normal((32, 8, 3, 3)), groups=2), x)
    assert not dg.fits(L.Conv2d(weight=rng.standard_normal((32, 16, 3, 3)), dilation=(2, 2)),
                       x)
    assert not dg.fits(L.Conv2d(weight=rng.standard_normal((1, 16, 3, 3))), x)
    assert dg.worth_gathering(layer, 0.10)
    assert dg.worth_gathering(layer, 0.15)
    # 20 %: too many for 4,608 products per output, not for 9,216
    assert not dg.worth_gathering(layer, 0.20)
    assert dg.worth_gathering(L.Conv2d(weight=rng.standard_normal((64, 16, 3, 3))), 0.20)
    assert not dg.worth_gathering(L.Conv2d(weight=rng.standard_normal((64, 16, 3, 3))), 0.26)
    assert not dg.worth_gathering(layer, 1.0)
    small = L.Conv2d(weight=rng.standard_normal((16, 16, 3, 3)), padding=(1, 1))  # 2,304
    pointwise = L.Conv2d(weight=rng.standard_normal((64, 128, 1, 1)))
    assert not dg.worth_gathering(small, 0.10)
    assert not dg.worth_gathering(pointwise, 0.0)


def test_without_threadpoolctl_the_gemm_path_stays(monkeypatch):
    """A BLAS that may run threads splits the rows among them: no gather then."""
    from evsim.simulate import dense_tiles

    monkeypatch.setattr(dg, "_threadpool_limits", lambda: None)
    dg.gemm_order.cache_clear()
    dense_tiles.matches_blas_tiles.cache_clear()  # it reads gemm_order
    try:
        assert not dg.matches_blas_gemm()
    finally:
        dg.gemm_order.cache_clear()
        dense_tiles.matches_blas_tiles.cache_clear()


@pytest.mark.slow
def test_bundled_dense_run_is_the_same_with_and_without_the_gather(monkeypatch):
    """The bundled fashion_cnn's dense run at two threads with the gather against one
    thread without it: outputs, spikes, SOPs and pooling operations the same."""
    _blas_or_skip()
    images, _ = load_bundled_sample("test")
    calibration, _ = load_bundled_sample("train")
    snn = evsim.convert(load_model("fashion_cnn"), calibration[:64])
    x = images[:8]
    calls = []
    kernel = dg.gather_conv
    monkeypatch.setattr(dense, "gather_conv", lambda *a: calls.append(1) or kernel(*a))
    fast = evsim.simulate(snn, x, T=16, engine="dense", threads=2)
    assert calls, "no convolution took the gather"
    monkeypatch.setattr(dense, "gathers", lambda *a: False)
    slow = evsim.simulate(snn, x, T=16, engine="dense", threads=1)
    assert evsim.results_equal(fast, slow), evsim.difference(fast, slow)
