"""Networks on the dyadic grid (methods.md §0): every sum is exact in float32 and float64."""

from __future__ import annotations

import numpy as np


def dyadic(rng: np.random.Generator, shape, bits: int = 3, kmax: int = 8,
           low: int | None = None) -> np.ndarray:
    """Values k / 2**bits with integer k in [low, kmax] (low defaults to -kmax)."""
    low = -kmax if low is None else low
    return rng.integers(low, kmax + 1, size=shape).astype(np.float64) / 2.0 ** bits


def dyadic_threshold(rng: np.random.Generator, shape=()) -> np.ndarray:
    """Positive thresholds k / 4 with k in 1..8."""
    return rng.integers(1, 9, size=shape).astype(np.float64) / 4.0
