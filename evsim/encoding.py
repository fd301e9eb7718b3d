"""Rate (Bernoulli) input encoding from a counter-based random generator.

Each input spike is decided by a hash of (seed, image index, step, pixel),
so any engine, chunking or thread count draws the same spikes. The hash is
SplitMix64's finaliser applied after each key is mixed in; the top 53 bits
give a uniform float64 ``u`` in [0, 1), and the pixel spikes when ``u < x``.
"""

from __future__ import annotations

import numpy as np
from .errors import EvsimValueError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    z = z ^ (z >> np.uint64(30))
    z = z * _M1
    z = z ^ (z >> np.uint64(27))
    z = z * _M2
    return z ^ (z >> np.uint64(31))


def uniform(seed: int, images: np.ndarray, step: int, pixels: int) -> np.ndarray:
    """Uniform floats ``(len(images), pixels)`` in [0, 1) for one time step (1-based)."""
    with np.errstate(over="ignore"):
        h = _mix(np.asarray([seed], dtype=np.uint64) + _GOLDEN)
        h = _mix((h ^ np.asarray(images, dtype=np.uint64)) + _GOLDEN)[:, None]
        h = _mix((h ^ np.uint64(step)) + _GOLDEN)
        h = _mix((h ^ np.arange(pixels, dtype=np.uint64)[None, :]) + _GOLDEN)
    return (h >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def rate_spikes(x: np.ndarray, seed: int, images: np.ndarray, step: int) -> np.ndarray:
    """Input spikes (int32, 0/1) of shape ``x.shape`` for step ``step``; ``x`` in [0, 1]."""
    u = uniform(seed, images, step, int(np.prod(x.shape[1:])))
    return (u < x.reshape(len(x), -1).astype(np.float64)).astype(np.int32).reshape(x.shape)


def check_rate_inputs(x: np.ndarray) -> None:
    """Raise ValueError unless every input value is a probability."""
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo < 0 or hi > 1:
        raise EvsimValueError(
            f"rate encoding needs inputs in [0, 1] (spike probabilities per step); "
            f"got values in [{lo:.4g}, {hi:.4g}]. Rescale them or use "
            "encoding='analog'")


__all__ = ["uniform", "rate_spikes", "check_rate_inputs"]
