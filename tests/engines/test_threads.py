"""Sharing work among threads: the shares, and convolutions and calibration that do not
depend on them."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evsim import Conv2d, ann_ops, signals, threads
from evsim.calibrate import activation_scales, braincog_scales
from evsim.convert import prepare
from evsim.data import load_bundled_sample
from evsim.errors import EvsimValueError
from evsim.forward import forward
from evsim.models import load_model
from evsim.threads import (MIN_SHARE, on_threads, one_blas_thread, shares, sharing_threads,
                           thread_count)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.integers(0, 500), st.integers(1, 9), st.integers(1, 40))
def test_shares_cover_the_items_in_order_with_whole_groups(n_items, threads, unit):
    ranges = shares(n_items, threads, unit, item_size=MIN_SHARE)
    assert 1 <= len(ranges) <= min(threads, max(1, -(-n_items // unit)))
    assert [i for lo, hi in ranges for i in range(lo, hi)] == list(range(n_items))
    for lo, hi in ranges:
        assert lo % unit == 0 and (hi % unit == 0 or hi == n_items)
        assert hi > lo or ranges == [(0, 0)]


def test_small_work_is_not_shared():
    assert shares(100, 8, item_size=10) == [(0, 100)]
    assert len(shares(100, 8, item_size=MIN_SHARE // 2)) == 8
    assert len(shares(4, 8, item_size=MIN_SHARE)) == 4


@pytest.mark.parametrize("n_threads", [None, 1, 2])
def test_on_threads_does_every_range_once_and_returns_in_order(n_threads):
    ranges = [(k, k + 1) for k in range(9)]
    seen = []
    out = on_threads(lambda lo, hi: seen.append(lo) or (lo, hi), ranges, n_threads)
    assert out == ranges and sorted(seen) == list(range(9))


def test_on_threads_raises_the_error():

    def fail(lo, hi):
        if lo == 2:
            raise KeyError("share 2")
        return lo

    with pytest.raises(KeyError, match="share 2"):
        on_threads(fail, [(0, 2), (2, 5)])


@pytest.mark.parametrize("stride,padding,groups", [((1, 1), (1, 1), 1), ((2, 1), (0, 2), 2)])
def test_convolution_on_threads_is_bit_identical(stride, padding, groups, monkeypatch):
    """Non-dyadic float32 values, several GEMM groups per call: 1, 2, 3 threads agree bit
    for bit (BLAS rounds a GEMM by its shape, and the groups keep their shapes)."""
    pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(ann_ops, "IM2COL_FLOATS", 20000)  # groups of 4 and of 15 images
    monkeypatch.setattr(threads, "MIN_SHARE", 1)  # share even this small work
    rng = np.random.default_rng(1)
    layer = Conv2d(rng.normal(size=(8, 6 // groups, 3, 3)), rng.normal(size=8), stride=stride,
                   padding=padding, groups=groups)
    x = rng.normal(size=(23, 6, 9, 10)).astype(np.float32)
    with one_blas_thread():
        results = [ann_ops.conv2d(layer, x, n) for n in (1, 2, 3)]
    assert results[0].dtype == np.float32
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


@pytest.mark.parametrize("rule", ["percentile", "braincog"])
def test_calibration_does_not_depend_on_the_cores(rule):
    """A real model's λ (and the ANN forward under it) are the same bits whatever BLAS's
    own thread count (the machine's cores, by default) and evsim's: BLAS rounds
    differently with more threads, so calibration holds it to one and shares the images
    itself."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    network = prepare(load_model("fashion_cnn"))
    images = load_bundled_sample("train")[0][:300]
    scales = braincog_scales if rule == "braincog" else activation_scales
    found = []
    for blas in (1, 2):
        with threadpoolctl.threadpool_limits(blas, user_api="blas"):
            found.append(scales(network, images))
    assert found[0] == found[1]
    _, one = forward(network, images, activations=True, threads=1)
    _, three = forward(network, images, activations=True, threads=3)
    for name in one:
        np.testing.assert_array_equal(one[name], three[name])


def test_thread_count_checks_its_argument():
    assert thread_count(3) == 3
    assert thread_count(None) >= 1
    for bad in (0, -1, 1.5, True):
        with pytest.raises(EvsimValueError, match="threads must be a positive integer"):
            thread_count(bad)


def test_forward_shares_images_by_default_only_where_blas_can_be_held(monkeypatch):
    """Without threadpoolctl BLAS keeps its own threads, so evsim's would oversubscribe the
    cores: the default is then 1 (a given count is kept)."""
    assert sharing_threads(3) == 3
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    threads._threadpool_limits.cache_clear()
    try:
        assert sharing_threads(None) == 1
        assert sharing_threads(3) == 3
    finally:
        threads._threadpool_limits.cache_clear()


def test_blas_limit_holds_until_the_last_caller_leaves():
    """Two callers (threads, in use) leave in the order they entered, not nested: BLAS
    stays at one thread until both have left, then gets its own count back."""
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return {pool["num_threads"] for pool in threadpoolctl.threadpool_info()
                if pool["user_api"] == "blas"}

    if not blas_threads():
        pytest.skip("threadpoolctl finds no BLAS library to limit")
    with threadpoolctl.threadpool_limits(2, user_api="blas"):
        first, second = one_blas_thread(), one_blas_thread()
        first.__enter__()
        try:
            second.__enter__()
            try:
                assert blas_threads() == {1}
            finally:
                first.__exit__(None, None, None)
            assert blas_threads() == {1}
        finally:
            second.__exit__(None, None, None)
        assert blas_threads() == {2}


def test_a_blas_loaded_after_the_first_hold_is_held_too():
    """The controller is kept between calls, but an import since may have loaded another
    BLAS (scipy.linalg loads its own OpenBLAS): that one is held to one thread too. In a
    fresh process, so that scipy.linalg is not loaded before the first hold."""
    pytest.importorskip("threadpoolctl")
    script = """
import threadpoolctl
from evsim.threads import one_blas_thread
with one_blas_thread():
    pass
import scipy.linalg
with threadpoolctl.threadpool_limits(2, user_api="blas"):
    with one_blas_thread():
        held = {p["filepath"]: p["num_threads"] for p in threadpoolctl.threadpool_info()
                if p["user_api"] == "blas"}
print(len(held), sorted(set(held.values())))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    count, values = done.stdout.split(maxsplit=1)
    if int(count) < 2:
        pytest.skip("scipy.linalg shares NumPy's BLAS here: no second library to hold")
    assert values.strip() == "[1]", done.stdout


def test_an_error_inside_one_blas_thread_is_not_chained_to_an_import_error(monkeypatch):
    """Without threadpoolctl, an error raised inside the context carries no ImportError as
    its context (it would read as raised while handling a missing optional extra)."""
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails
    threads._threadpool_limits.cache_clear()
    try:
        with pytest.raises(KeyError) as raised:
            with one_blas_thread():
                raise KeyError("inside")
    finally:
        threads._threadpool_limits.cache_clear()
    assert raised.value.__context__ is None


def test_an_images_analog_head_does_not_depend_on_its_chunk():
    """A real model's first layer (computed once per image for the event engine) gives an
    image the same bits in a chunk of 40, in a chunk of 2 and on 1 or 2 threads, so a
    simulation does not depend on batch_size."""
    network = prepare(load_model("fashion_cnn"))
    classes = signals.plan(network, "analog").classes
    images = load_bundled_sample("test")[0][:40].astype(np.float32)
    with one_blas_thread():
        whole = signals.analog_head(network, classes, images, 2)
        part = signals.analog_head(network, classes, images[7:9], 1)
    assert "conv1" in part
    for name, values in part.items():
        np.testing.assert_array_equal(whole[name][7:9].view(np.uint32), values.view(np.uint32))


def test_on_pool_runs_every_range_once_and_never_on_the_caller():
    """The event engine's groups of images: each range once, on the pool's threads (the
    caller stays free to take Ctrl-C), a slow range not holding up the others."""
    import threading
    import time
    from concurrent.futures import wait

    ranges = [(lo, lo + 3) for lo in range(0, 30, 3)]
    seen, lock = [], threading.Lock()

    def work(lo: int, hi: int) -> None:
        if lo == 0:
            time.sleep(0.5)  # one slow range: the other thread takes the rest meanwhile
        with lock:
            seen.append((lo, hi, threading.get_ident()))

    futures = threads.on_pool(work, ranges, 2)
    assert len(futures) == 2
    wait(futures)
    for future in futures:
        future.result()
    assert sorted((lo, hi) for lo, hi, _ in seen) == ranges
    assert threading.get_ident() not in {ident for _, _, ident in seen}
    slow = next(ident for lo, _, ident in seen if lo == 0)
    assert sum(ident != slow for *_, ident in seen) >= len(ranges) - 2
