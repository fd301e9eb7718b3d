"""Memory reused from one computation to the next of the same shapes.

Large arrays allocated afresh for every block of steps come back from the
operating system as new pages (the allocator returns freed large blocks to
it), and every 4 KB page costs a fault on first touch: a third of the dense
engine's time on ``resnet`` before its arrays were kept.
"""

from __future__ import annotations

import math

import numpy as np


class Arena:
    """Arrays by key, each in the memory of the last array taken under that key."""

    def __init__(self):
        self._buffers: dict = {}

    def take(self, key, shape: tuple, dtype) -> np.ndarray:
        """An uninitialised C-contiguous array of ``shape`` and ``dtype`` in the memory of
        the last array taken under ``key`` (grown when too small), which must no longer
        be in use."""
        dtype, size = np.dtype(dtype), math.prod(shape)
        flat = self._buffers.get(key)
        if flat is None or flat.dtype != dtype or flat.size < size:
            flat = self._buffers[key] = np.empty(size, dtype)
        return flat[:size].reshape(shape)


__all__ = ["Arena"]
