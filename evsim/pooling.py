"""Spiking max pooling: its readable definition, one step at a time, in NumPy.

Both engines implement it in compiled form and are tested against this definition
(the dense engine's block pass :func:`evsim.simulate.kernels.pool_scan`, the event
engine's per-event LIPooling and gate kernels); the NeuroBench metrics replay it
(:mod:`evsim.analysis.neurobench`).
"""

from __future__ import annotations

import numpy as np

from . import ann_ops
from . import layers as L


def spiking_maxpool(mode: str, layer: L.MaxPool2d, incoming: np.ndarray,
                    cumulative_in: np.ndarray, cumulative_out: np.ndarray) -> np.ndarray:
    """One step of spiking max pooling on spike multiplicities ``incoming`` (B, C, H, W);
    updates the state (cumulative counts, int64, (B, C, H, W) in and (B, C, H', W') out)
    in place and returns the step's output spikes (B, C, H', W') int32.

    LIPooling (``mode="lipooling"``): emit ``maxpool(C_in) − C_out`` so the cumulative
    output equals the max-pool of the cumulative inputs. Gate (any other ``mode``): pass
    the current spikes of each window's member with the largest cumulative count (first
    on ties).
    """
    cumulative_in += incoming
    if mode == "lipooling":
        peak = ann_ops.maxpool2d(layer, cumulative_in)
        out = peak - cumulative_out
        cumulative_out[...] = peak
    else:
        winner = ann_ops.maxpool2d_argmax(layer, cumulative_in)
        out = ann_ops.gather_windows(layer, incoming, winner)
    return out.astype(np.int32)


__all__ = ["spiking_maxpool"]
