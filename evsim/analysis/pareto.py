"""Which of several (cost, accuracy) points are Pareto-optimal: no other point is as cheap and
as accurate and better in one of the two."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import EvsimValueError


def pareto_optimal(cost: Sequence[float], accuracy: Sequence[float]) -> np.ndarray:
    """``(P,)`` bool: whether each point ``(cost[i], accuracy[i])`` is Pareto-optimal, that is
    no other point has cost ≤ and accuracy ≥ with one of them strictly (lower cost and higher
    accuracy are better). Equal points are all optimal, or none."""
    cost, accuracy = np.asarray(cost, np.float64), np.asarray(accuracy, np.float64)
    if cost.shape != accuracy.shape or cost.ndim != 1:
        raise EvsimValueError(f"cost and accuracy must be 1-D and of one length, got shapes "
                              f"{cost.shape} and {accuracy.shape}")
    if not (np.isfinite(cost).all() and np.isfinite(accuracy).all()):
        raise EvsimValueError("cost and accuracy must be finite")
    no_worse = (cost[None, :] <= cost[:, None]) & (accuracy[None, :] >= accuracy[:, None])
    better = (cost[None, :] < cost[:, None]) | (accuracy[None, :] > accuracy[:, None])
    return ~(no_worse & better).any(axis=1)


__all__ = ["pareto_optimal"]
