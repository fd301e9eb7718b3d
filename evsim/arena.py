"""Memory reused from one computation to the next of the same shapes.

Large arrays allocated afresh for every block of steps come back from the
operating system as new pages (the allocator returns freed large blocks to
it), and every 4 KB page costs a fault on first touch: a third of the dense
engine's time on ``resnet`` before its arrays were kept. Between runs, whether
freed memory comes back mapped depends on the allocator's history; a runner
borrows the memory of the run before instead (:func:`borrow`), so that a run
does not depend on it: event-engine runs of 64 images on fresh memory took
1,400–3,100 page faults on three bundled models and 1.06–1.18× the time of runs on
kept memory at one thread (BENCHMARKS.md).
"""

from __future__ import annotations

import math
import threading
import weakref

import numpy as np

#: The most memory (bytes) that a finished run's arena may hold and still be kept for
#: the next run (:func:`borrow`); a larger one is given back to the operating system.
KEEP_BYTES = 1 << 30


class Arena:
    """Arrays by key, each in the memory of the last array taken under that key."""

    def __init__(self):
        self._buffers: dict = {}
        self._taken: set = set()  # the keys taken since the arena was last given back

    def take(self, key, shape: tuple, dtype, align: int = 0) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape`` and ``dtype`` in the memory of
        the last array taken under ``key`` (grown when too small), which must no longer
        be in use; with ``align`` (bytes, a multiple of the item size), its data starts on
        an ``align``-byte boundary."""
        dtype, size = np.dtype(dtype), math.prod(shape)
        spare = align // dtype.itemsize
        self._taken.add(key)
        flat = self._buffers.get(key)
        if flat is None or flat.dtype != dtype or flat.size < size + spare:
            flat = self._buffers[key] = np.empty(size + spare, dtype)
        start = (-flat.ctypes.data % align) // dtype.itemsize if align else 0
        return flat[start:start + size].reshape(shape)

    @property
    def nbytes(self) -> int:
        """The memory its arrays hold, bytes."""
        return sum(flat.nbytes for flat in self._buffers.values())

    def keep_taken(self) -> None:
        """Drop the arrays of the keys not taken since the last call (a finished run's
        arena keeps what that run used, not what the runs before it left)."""
        self._buffers = {k: v for k, v in self._buffers.items() if k in self._taken}
        self._taken = set()


_kept: dict[str, Arena] = {}
_kept_lock = threading.Lock()


def borrow(owner: object, kind: str) -> Arena:
    """An arena for ``owner``'s run (an engine's runner; ``kind``: the engine): the one
    that the last finished run of that kind gave back, whose memory is already mapped,
    else a new one. It is given back when ``owner`` is garbage-collected (when its run
    has ended, unless something else still holds the runner), and kept for the next run
    of its kind with the arrays that run took, if they hold at most :data:`KEEP_BYTES`
    (one arena per kind is kept: runs of one process follow each other, and runs that
    alternate engines keep theirs; two runs at once each get their own). :func:`release`
    drops the kept ones."""
    with _kept_lock:
        arena = _kept.pop(kind, None)
    arena = Arena() if arena is None else arena
    weakref.finalize(owner, _give_back, arena, kind)
    return arena


def _give_back(arena: Arena, kind: str) -> None:
    """Keep ``arena`` for the next run of ``kind``. Called by a finalizer, so possibly by a
    garbage collection that starts while this thread holds the lock: it does not wait for
    the lock (the arena is then simply not kept)."""
    arena.keep_taken()
    if arena.nbytes > KEEP_BYTES or not _kept_lock.acquire(blocking=False):
        return
    try:
        _kept[kind] = arena
    finally:
        _kept_lock.release()


def release() -> int:
    """Drop the arenas kept between runs, so that their memory can go back to the operating
    system once nothing else holds it; returns the bytes they held."""
    with _kept_lock:
        dropped = list(_kept.values())
        _kept.clear()
    return sum(arena.nbytes for arena in dropped)


__all__ = ["Arena", "KEEP_BYTES", "borrow", "release"]
