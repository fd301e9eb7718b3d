"""The integrate-and-fire neuron as a pure step function (state and parameters as named tuples).

Both engines implement exactly this arithmetic, element by element, so
that they agree bit for bit given the same input currents.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class IFParameters(NamedTuple):
    """Parameters of one layer of IF neurons.

    ``threshold`` θ (broadcastable to the layer), ``reset_to_zero`` (else
    reset by subtraction), ``burst`` Γ ≥ 1 (most spikes per step).
    """

    threshold: np.ndarray
    reset_to_zero: bool = False
    burst: int = 1


class IFState(NamedTuple):
    """Membrane potential ``v`` of every neuron, ``(B, *layer_shape)``."""

    v: np.ndarray


def if_step(current: np.ndarray, state: IFState, params: IFParameters
            ) -> tuple[np.ndarray, IFState]:
    """One time step: integrate ``current``, fire, reset.

    ``m = v + I``; spikes ``s = #{k = 1..Γ : m ≥ k θ}`` (int32); then
    ``v = m − s θ`` (subtraction, formed in float64 and rounded once) or
    ``v = 0`` where ``s > 0`` (zero reset).
    Returns ``(s, new_state)``.
    """
    m = state.v + current
    theta = params.threshold
    spikes = (m >= theta).astype(np.int32)
    for k in range(2, params.burst + 1):
        spikes += m >= np.asarray(theta, np.float64) * k  # k θ is exact in float64
    if params.reset_to_zero:
        v = np.where(spikes > 0, m.dtype.type(0), m)
    else:
        v = m - spikes * theta
    return spikes, IFState(v.astype(m.dtype, copy=False))


__all__ = ["IFParameters", "IFState", "if_step"]
