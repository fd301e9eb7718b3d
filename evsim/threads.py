"""Sharing one computation's independent items among threads.

The dense engine, the analog head and the ANN forward pass (calibration
included) share their work among threads, with BLAS held to one thread: a
convolution's groups of images, a per-image layer's images and the compiled
neuron scans' images go in contiguous shares (a dense layer stays one GEMM);
NumPy's BLAS and the compiled scans release the GIL, so the shares run at once.
Each item's arithmetic is the same whatever the share it falls in, so results
do not depend on the thread count (BLAS's own threads would make them depend
on the machine's core count).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

from .errors import EvsimValueError

R = TypeVar("R")


#: Values a share should at least touch: below this, handing work to a thread costs more
#: than it saves.
MIN_SHARE = 1 << 15


def shares(n_items: int, threads: int, unit: int = 1,
           item_size: int = MIN_SHARE) -> list[tuple[int, int]]:
    """Contiguous ranges ``(lo, hi)`` covering ``0..n_items``, at most ``threads`` of them
    (pass a multiple of the thread count to balance cores of unequal speed with
    :func:`on_threads`) and none much below :data:`MIN_SHARE` values (items of
    ``item_size`` values each),
    each boundary a multiple of ``unit`` (so that groups of ``unit`` items stay whole);
    ``[(0, 0)]`` when there are no items."""
    if n_items == 0:
        return [(0, 0)]
    groups = -(-n_items // unit)
    n = max(1, min(threads, groups, n_items * item_size // MIN_SHARE))
    edges = [min(n_items, unit * (groups * k // n)) for k in range(n + 1)]
    return [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _submit(n: int, task: Callable[[], None]) -> list:
    """``task`` submitted ``n`` times to a process-wide pool of at least n threads, kept
    between calls (starting threads for every layer of every step would cost more than
    small layers take). Under the lock, so that no caller submits to a pool that another
    caller's larger call has just replaced and shut down."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < n:
            old, _pool, _pool_size = _pool, ThreadPoolExecutor(n, thread_name_prefix="evsim"), n
            if old is not None:
                old.shutdown(wait=False)  # what was submitted to it still runs
        return [_pool.submit(task) for _ in range(n)]


def _drainer(work: Callable[[int, int], R], ranges: list[tuple[int, int]],
             results: list) -> Callable[[], None]:
    """A task that runs ``work`` on the next range not yet taken, until none is left, each
    result to its place in ``results``: started on several threads, a faster core does
    more of the ranges."""
    todo = iter(range(len(ranges)))
    lock = threading.Lock()

    def drain() -> None:
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            results[i] = work(*ranges[i])

    return drain


def on_pool(work: Callable[[int, int], None], ranges: list[tuple[int, int]],
            threads: int) -> list:
    """Start ``work(lo, hi)`` for every range on ``threads`` threads of the process-wide
    pool (none of them the caller's), each taking the next range not yet taken; returns
    their futures. The caller waits on them, free to take a KeyboardInterrupt meanwhile
    (the event engine's kernels then stop at their next step)."""
    return _submit(min(threads, len(ranges)), _drainer(work, ranges, [None] * len(ranges)))


def on_threads(work: Callable[[int, int], R], ranges: list[tuple[int, int]],
               threads: int | None = None) -> list[R]:
    """``work(lo, hi)`` for every range on up to ``threads`` threads (default: one per
    range), the calling thread among them; each thread takes the next range not yet taken,
    so a faster core does more of them. Results in the order of ``ranges``; the first error
    is raised once all have ended. ``work`` must not call on_threads itself."""
    n = min(len(ranges), threads or len(ranges))
    if n == 1:
        return [work(lo, hi) for lo, hi in ranges]
    results: list = [None] * len(ranges)
    drain = _drainer(work, ranges, results)
    futures = _submit(n - 1, drain)
    try:
        drain()
    finally:
        wait(futures)
    for future in futures:
        future.result()
    return results


def thread_count(threads: int | None) -> int:
    """``threads`` checked, or (None) every core this process may use."""
    if threads is None:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    if isinstance(threads, bool) or int(threads) != threads or threads < 1:
        raise EvsimValueError(f"threads must be a positive integer, got {threads!r}")
    return int(threads)


def sharing_threads(threads: int | None) -> int:
    """Threads on which evsim shares BLAS work of its own (the ANN forward pass):
    ``threads``, or by default every core when BLAS can be held to one thread
    (``threadpoolctl`` installed), else 1 — BLAS then uses the cores itself, and both at
    once would oversubscribe them."""
    if threads is None and _threadpool_limits() is None:
        return 1
    return thread_count(threads)


_blas_lock = threading.Lock()
_blas_holders = 0
_blas_limit = None  # threadpoolctl's limiter while any caller holds BLAS to one thread


@contextlib.contextmanager
def one_blas_thread():
    """A context holding BLAS to one thread (with ``threadpoolctl``, else a no-op), so that
    evsim's own threads do not contend with BLAS threads for the cores, and GEMM results
    do not depend on BLAS's thread count. The limit is process-wide, so it is kept while
    any thread is inside such a context: concurrent callers (Optuna trials on threads, say)
    leave it in any order, and the first to leave does not lift it under the others."""
    global _blas_holders, _blas_limit
    if _threadpool_limits() is None:
        yield
        return
    with _blas_lock:
        if _blas_holders == 0:
            _blas_limit = _blas_controller().limit(limits=1, user_api="blas")
        _blas_holders += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_holders -= 1
            if _blas_holders == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None


_controller = None  # threadpoolctl's controller, and how many modules were loaded when made
_controller_modules = -1


def _blas_controller():
    """threadpoolctl's controller of the thread pools loaded in this process, made again
    only when modules have been imported since (a new one scans every loaded library, about
    1.3 ms, and each simulation holds BLAS to one thread; an import may load another BLAS,
    as ``scipy.linalg`` loads its own OpenBLAS). Called under ``_blas_lock``."""
    global _controller, _controller_modules
    if _controller is None or len(sys.modules) != _controller_modules:
        from threadpoolctl import ThreadpoolController
        _controller, _controller_modules = ThreadpoolController(), len(sys.modules)
    return _controller


@functools.cache
def _threadpool_limits():
    """threadpoolctl's ``threadpool_limits``, or None without the optional extra (looked up
    once, outside any exception handler: an error inside the context would otherwise be
    reported as raised while handling the ImportError)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits


__all__ = ["shares", "on_threads", "on_pool", "thread_count", "sharing_threads",
           "one_blas_thread"]
