"""Lowering a time scheme: what the engines simulate for a run of T steps.

The synchronous scheme simulates T steps of the network as converted. The
windowed schemes (:mod:`evsim.timescheme`) simulate one window as one step of
a transformed network: ``"temporal"`` with every bias (and the analog input)
scaled by the window W = T; ``"ilif"`` with thresholds scaled to the unit of a
K-bit code (K = T), events being codes up to 2^K − 1, and the decoded readout
reported as a sum over T steps. A windowed run has one checkpoint, T, and
records no traces. :func:`time_plan` is the one place these rules live; the
engines read its :class:`TimePlan`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import EvsimValueError
from .spiking import WINDOWED, SpikingNetwork
from .timescheme import binary_network, latency, window_network
from .result import default_checkpoints


@dataclass(frozen=True)
class TimePlan:
    """How a run of ``T`` steps is simulated.

    ``snn``: the network the engines run (lowered to the scheme). ``checkpoints``:
    ``(K,)`` int64 steps of the result at which the output is kept. ``steps_simulated``:
    steps the engines simulate (T, or 1: a window as one step). ``window``: 0 in the
    synchronous scheme, else the largest spike multiplicity of a window (W, or 2^K − 1
    for ilif). ``binary``: events are K-bit codes whose set bits are the spikes and SOPs
    (ilif). ``input_scale``: analog inputs are multiplied by it (a window's worth).
    """

    snn: SpikingNetwork
    T: int
    checkpoints: np.ndarray
    steps_simulated: int
    window: int = 0
    binary: bool = False
    input_scale: int = 1

    @property
    def engine_checkpoints(self) -> np.ndarray:
        """The steps (of ``steps_simulated``) at which the engines keep the output."""
        return np.array([1]) if self.window else self.checkpoints

    @property
    def latency(self) -> int:
        """Steps until the output is complete: T, or (D + 1) W in the windowed schemes."""
        return latency(self.snn.network, self.T) if self.window else self.T

    def scale_inputs(self, x: np.ndarray) -> np.ndarray:
        """The images ``x`` as the engines take them (scaled to a window's worth)."""
        return x if self.input_scale == 1 else x * x.dtype.type(self.input_scale)

    def scale_outputs(self, outputs: np.ndarray) -> np.ndarray:
        """The engines' outputs as the result reports them: ilif's decoded readout as a sum
        over the T steps."""
        return outputs * outputs.dtype.type(self.T) if self.binary else outputs


def time_plan(snn: SpikingNetwork, T: int, encoding: str,
              checkpoints: tuple[int, ...] | None = None, recording: bool = False) -> TimePlan:
    """The :class:`TimePlan` of simulating ``snn`` for ``T`` steps with ``encoding``;
    ``checkpoints`` as asked (None: 1, 2, 4, ..., T); ``recording``: traces are asked for.

    Raises :class:`~evsim.errors.EvsimValueError` for checkpoints beyond T, and for what
    a windowed scheme cannot do (checkpoints, traces; ilif with rate input or over
    :data:`~evsim.timescheme.MAX_BITS` bits).
    """
    steps = default_checkpoints(T) if checkpoints is None else np.asarray(checkpoints,
                                                                          dtype=np.int64)
    if steps.size == 0 or steps[0] < 1 or steps[-1] > T:
        raise EvsimValueError(f"checkpoints must be steps in [1, {T}], got {steps.tolist()}")
    if snn.time_scheme not in WINDOWED:
        return TimePlan(snn, T, steps, T)
    if checkpoints is not None or recording:
        raise EvsimValueError(f"the {snn.time_scheme} scheme simulates whole windows: it has "
                              "one checkpoint (T, the window) and records no traces")
    if snn.time_scheme == "ilif":
        if encoding != "analog":
            raise EvsimValueError("the ilif scheme sends binary codes of analog values; use "
                                  "encoding='analog'")
        return TimePlan(binary_network(snn, T), T, np.array([T]), 1, window=2 ** T - 1,
                        binary=True)
    return TimePlan(window_network(snn, T), T, np.array([T]), 1, window=T,
                    input_scale=T if encoding == "analog" else 1)


__all__ = ["TimePlan", "time_plan"]
