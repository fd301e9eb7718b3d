"""The event-driven engine: compiled program, Numba kernels, one image per thread."""

from __future__ import annotations

import numpy as np

from ..compile import EventProgram, channels_last
from ..signals import analog_head, plan
from ..spiking import SpikingNetwork
from .kernels import run_batch


def _analog_head(snn: SpikingNetwork, program: EventProgram, x: np.ndarray):
    """The analog layers' values (computed once, by the same NumPy code as the dense engine),
    channels-last, and where each goes in an image's float workspace."""
    net = snn.network
    if program.encoding != "analog":
        return np.zeros((len(x), 1), x.dtype), np.zeros((0, 3), np.int64)
    values = analog_head(net, plan(net, "analog").classes, x)
    parts, layout, offset = [], [], 0
    for name, start, size in program.analog:
        parts.append(channels_last(values[name]))
        layout.append((start, size, offset))
        offset += size
    analog = np.concatenate(parts, axis=1) if parts else np.zeros((len(x), 1), x.dtype)
    return np.ascontiguousarray(analog), np.array(layout, dtype=np.int64).reshape(-1, 3)


def run_chunk(snn: SpikingNetwork, program: EventProgram, x: np.ndarray, first_image: int, *,
              T: int, checkpoints: np.ndarray, seed: int):
    """Simulate ``x`` (B, *input_shape); returns per-image outputs (B, K, readout size),
    spike counts (B, neurons), SOPs (B, layers, T) and pooling operations (B, layers, T)."""
    batch, dtype = len(x), program.dtype
    analog, layout = _analog_head(snn, program, x)
    rate_input = (x.reshape(batch, -1).astype(np.float64) if program.encoding == "rate"
                  else np.zeros((batch, 1)))
    out = np.zeros((batch, len(checkpoints), program.readout_size), dtype)
    counts = np.zeros((batch, max(program.n_counts, 1)), np.int64)
    sops = np.zeros((batch, max(len(program.sop_layers), 1), T), np.int64)
    pool_ops = np.zeros((batch, max(len(program.pool_layers), 1), T), np.int64)
    workspaces = (np.zeros((batch, max(program.float_size, 1)), dtype),
                  np.zeros((batch, program.int_size), np.int64),
                  np.zeros((batch, program.event_capacity), np.int32),
                  np.zeros((batch, program.event_capacity), dtype))
    run_batch(program.ops, program.iparams, program.fparams, program.f64params, rate_input,
              analog, layout, T, checkpoints, program.event_offsets, seed, first_image,
              program.readout_offset, program.readout_size, program.binary, *workspaces, out,
              counts, sops, pool_ops)
    return out, counts, sops, pool_ops


__all__ = ["run_chunk"]
