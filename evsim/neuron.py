"""The integrate-and-fire neuron as pure functions over arrays (state and parameters as named
tuples).

The vocabulary — :func:`fire`, :func:`reset`, :func:`window_fire`,
:func:`signed_window_fire`, :func:`spicalib_step` — is mirrored by scalar functions of the
same names in :mod:`evsim.simulate.kernels`; both engines implement exactly this arithmetic,
element by element, so that they agree bit for bit given the same input
currents.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class IFParameters(NamedTuple):
    """Parameters of one layer of IF neurons, as the step arithmetic reads them.

    ``threshold`` θ (broadcastable to the layer, in the simulation's dtype),
    ``reset_to_zero`` (else reset by subtraction), ``burst`` Γ ≥ 1 (most spikes per step),
    ``negative_threshold`` θ⁻ of signed neurons (like θ), or None.

    Not :class:`evsim.spiking.NeuronSpec`, the per-layer record that conversion makes and
    :func:`evsim.save` stores (θ in float32/float64, v(0), the reset's name, SpiCalib's
    allowance; validated once): the dense engine derives these per run from a NeuronSpec,
    casting θ to the dtype it simulates in; v(0) becomes the initial :class:`IFState`.
    """

    threshold: np.ndarray
    reset_to_zero: bool = False
    burst: int = 1
    negative_threshold: np.ndarray | None = None


class IFState(NamedTuple):
    """Membrane potential ``v`` of every neuron, ``(B, *layer_shape)``."""

    v: np.ndarray


def fire(m: np.ndarray, theta: np.ndarray, burst: int = 1) -> np.ndarray:
    """Spikes at membrane ``m``: ``#{k = 1..Γ : m ≥ k θ}`` (int32), k θ formed in float64."""
    spikes = (m >= theta).astype(np.int32)
    for k in range(2, burst + 1):
        spikes += m >= np.asarray(theta, np.float64) * k  # k θ is exact in float64
    return spikes


def reset(m: np.ndarray, spikes: np.ndarray, theta: np.ndarray, to_zero: bool,
          burst: int = 1) -> np.ndarray:
    """Membrane after the spikes, in ``m``'s dtype: 0 where a neuron fired (zero reset), else
    ``m − s θ`` formed in float64 and rounded once. With Γ = ``burst`` = 1 (s is 0 or 1)
    that is one subtraction in ``m``'s dtype, which rounds identically (rounding the float64
    difference of two float32 values to float32 equals the float32 difference)."""
    if to_zero:
        return np.where(spikes > 0, m.dtype.type(0), m)
    if burst == 1:
        return np.where(spikes > 0, m - np.asarray(theta, m.dtype), m)
    return (m - spikes * np.asarray(theta, np.float64)).astype(m.dtype)


def signed_fire(m: np.ndarray, theta: np.ndarray, negative_theta: np.ndarray,
                burst: int = 1) -> np.ndarray:
    """Spikes of signed neurons (int32): :func:`fire` at ``m`` with θ, minus :func:`fire`
    at ``−m`` with θ⁻ (at most one of the two is not zero, since θ, θ⁻ > 0)."""
    return fire(m, theta, burst) - fire(-m, negative_theta, burst)


def signed_reset(m: np.ndarray, spikes: np.ndarray, theta: np.ndarray,
                 negative_theta: np.ndarray, to_zero: bool, burst: int = 1) -> np.ndarray:
    """Membrane of signed neurons after the spikes: :func:`reset` by θ where s > 0 and by θ⁻
    where s < 0 (``m − s θ⁻ = m + |s| θ⁻``), with the same rounding."""
    step = np.where(spikes < 0, np.asarray(negative_theta, m.dtype), np.asarray(theta, m.dtype))
    if to_zero:
        return np.where(spikes != 0, m.dtype.type(0), m)
    if burst == 1:
        return np.where(spikes != 0, m - spikes.astype(m.dtype) * step, m)
    return (m - spikes * step.astype(np.float64)).astype(m.dtype)


def window_fire(m: np.ndarray, theta: np.ndarray, window: int) -> np.ndarray:
    """The temporal scheme's window rule: ``clip(floor(m / θ), 0, W)`` (int32), decided by
    exact float64 comparisons ``m ≥ k θ``."""
    v = np.asarray(m, np.float64)
    theta = np.asarray(theta, np.float64)
    q = np.floor(v / theta)
    q = np.where((q + 1) * theta <= v, q + 1, np.where(q * theta > v, q - 1, q))
    return np.clip(q, 0, window).astype(np.int32)


def signed_window_fire(m: np.ndarray, theta: np.ndarray, negative_theta: np.ndarray,
                       window: int) -> np.ndarray:
    """The window rule of signed neurons (int32): :func:`window_fire` at ``m`` with θ, minus
    :func:`window_fire` at ``−m`` with θ⁻, i.e. ``−clip(floor(−m / θ⁻), 0, W)`` below 0."""
    return window_fire(m, theta, window) - window_fire(-np.asarray(m), negative_theta, window)


def if_step(current: np.ndarray, state: IFState, params: IFParameters
            ) -> tuple[np.ndarray, IFState]:
    """One time step: integrate ``current``, :func:`fire`, :func:`reset`.

    Returns ``(spikes (int32), new_state)``.
    """
    m = state.v + current
    negative = params.negative_threshold
    if negative is not None:
        spikes = signed_fire(m, params.threshold, negative, params.burst)
        return spikes, IFState(signed_reset(m, spikes, params.threshold, negative,
                                            params.reset_to_zero, params.burst))
    spikes = fire(m, params.threshold, params.burst)
    return spikes, IFState(reset(m, spikes, params.threshold, params.reset_to_zero,
                                 params.burst))


class SpiCalibState(NamedTuple):
    """Per-neuron SpiCalib state, each ``(B, *layer_shape)`` int64.

    ``t_last``: step of the last positive output (0 before any); ``n``:
    number of steps with positive output; ``net``: net emitted count S.
    """

    t_last: np.ndarray
    n: np.ndarray
    net: np.ndarray


def spicalib_state(shape: tuple[int, ...]) -> SpiCalibState:
    """The initial SpiCalib state for a batch of layers of ``shape`` (B, ...)."""
    return SpiCalibState(*(np.zeros(shape, np.int64) for _ in range(3)))


def spicalib_step(x: np.ndarray, t: int, state: SpiCalibState, allowance: float
                  ) -> tuple[np.ndarray, SpiCalibState]:
    """Spike calibration (SpiCalib, methods.md §3) of a layer's output ``x`` at step ``t``.

    A neuron that has been silent for longer than its mean inter-spike
    interval plus the allowance A emits a negative spike, but its net output
    never drops below zero. Times count from the first step, as the published
    code does (BrainCog's ``SpiCalib``: its clock starts at 0 with the last
    spike at 0): a neuron that never fired has been silent ``t − 1`` steps,
    and the first interval is measured from step 1. The mean interval of the
    recursion then telescopes to ``(t_last − 1) / n``, which is what is
    compared, as ``n (t − t_last) > (t_last − 1) + n A`` in float64.
    Returns the calibrated output (int32, may be −1) and the new state.
    """
    fired = x > 0
    n = state.n + fired
    t_last = np.where(fired, t, state.t_last)
    since = (t - np.maximum(t_last, 1)).astype(np.float64)
    late = np.where(n > 0, n * since > (t_last - 1) + n * np.float64(allowance),
                    since > allowance)
    out = x - late.astype(x.dtype)
    out = np.where(state.net + out < 0, -state.net, out).astype(np.int32)
    return out, SpiCalibState(t_last, n, state.net + out)


__all__ = ["IFParameters", "IFState", "fire", "reset", "signed_fire", "signed_reset",
           "window_fire", "signed_window_fire", "if_step",
           "SpiCalibState", "spicalib_state", "spicalib_step"]
