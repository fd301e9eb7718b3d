"""Compiling a spiking network into an event program for the event engine.

The program is a list of operations over flat, preallocated buffers, so the
Numba kernels (:mod:`evsim.simulate.kernels`) run without allocating in the
time loop:

- every current-carrying layer has a float buffer in channels-last layout
  (``[H, W, C]`` flattened; 1-D layers as they are);
- every spiking layer (activation, spiking MaxPool, rate-coded input) has an
  event list: int32 indices (channels-last) and int32 multiplicities, bounded
  by the layer's neuron count;
- every synaptic path (:mod:`evsim.signals`) becomes one scatter operation
  with a precomputed fan-out table: for each source position, the distinct
  target positions, and for each target the (kernel tap, factor) pairs that
  reach it. Average pooling and Flatten between a spiking layer and a
  Dense/Conv2d are folded into that table (a composite kernel), so an event
  goes straight to its composite targets;
- weights are channels-last: conv ``[KH*KW, C_in/groups, C_out]``, dense
  ``[N_in, N_out]``, so each event adds contiguous runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import layers as L
from . import ops as ann_ops
from .fanout import spatial_map
from .network import Network
from .signals import ANALOG, CURRENT, plan, trace_source
# The operation codes live beside the kernels: Numba's cache freezes them into
# the compiled code and only notices changes to the kernels' own file.
from .simulate.kernels import (MODE_CONV, MODE_DENSE, MODE_IDENTITY, OP_ADDBUF, OP_COPYPERM,
                               OP_FILL, OP_MAXPOOL, OP_NEURON, OP_RATE, OP_READOUT, OP_SYN,
                               OP_WIDTH)
from .spiking import SpikingNetwork


@dataclass(frozen=True, eq=False)
class EventProgram:
    """A spiking network compiled for the event engine (all arrays read-only, shared by threads).

    ``ops`` (n_ops, OP_WIDTH) int64 rows ``[code, parameters...]``;
    ``iparams`` int64 fan-out and window tables; ``fparams`` weights,
    biases, thresholds, initial potentials, amplitudes and pooling factors in
    the simulation dtype; ``f64params`` float64 scalars (SpiCalib
    allowances). Per-image workspaces: ``float_size`` floats, ``int_size``
    int64s, ``event_capacity`` event entries in lists starting at
    ``event_offsets``. ``binary``: events are K-bit codes (the ilif scheme)
    whose set bits are the spikes and SOPs counted.
    """

    ops: np.ndarray
    iparams: np.ndarray
    fparams: np.ndarray
    f64params: np.ndarray
    float_size: int
    int_size: int
    event_offsets: np.ndarray
    event_capacity: int
    analog: tuple  # (layer name, float offset, per-image size) filled from the analog head
    readout_offset: int
    readout_size: int
    neuron_layers: tuple  # (layer name, count offset, neurons, shape)
    n_counts: int
    sop_layers: tuple
    pool_layers: tuple
    encoding: str
    dtype: np.dtype
    binary: bool = False


def channels_last(array: np.ndarray) -> np.ndarray:
    """(B, C, H, W) -> (B, H*W*C) channels-last; (B, N) unchanged (contiguous copy)."""
    if array.ndim == 4:
        array = array.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(array.reshape(len(array), -1))


def _cl(values: np.ndarray, shape) -> np.ndarray:
    """A per-image array broadcast to ``shape`` and flattened channels-last."""
    full = np.broadcast_to(values, shape)
    return channels_last(full[None])[0]


class _Builder:
    def __init__(self, dtype):
        self.dtype = dtype
        self.ops: list[list[int]] = []
        self.ip: list[np.ndarray] = []
        self.ip_size = 0
        self.fp: list[np.ndarray] = []
        self.fp_size = 0
        self.f64: list[np.ndarray] = []
        self.f64_size = 0
        self.float_size = 0
        self.int_size = 0
        self.event_offsets: list[int] = []
        self.event_size = 0
        self.scratch_offset = 0
        self.scratch_size = 0

    def ints(self, array) -> int:
        array = np.asarray(array, dtype=np.int64).ravel()
        self.ip.append(array)
        self.ip_size += array.size
        return self.ip_size - array.size

    def floats(self, array) -> int:
        array = np.asarray(array, dtype=self.dtype).ravel()
        self.fp.append(array)
        self.fp_size += array.size
        return self.fp_size - array.size

    def float64s(self, array) -> int:
        array = np.asarray(array, dtype=np.float64).ravel()
        self.f64.append(array)
        self.f64_size += array.size
        return self.f64_size - array.size

    def float_buffer(self, size: int) -> int:
        self.float_size += size
        return self.float_size - size

    def int_buffer(self, size: int) -> int:
        self.int_size += size
        return self.int_size - size

    def scratch(self, size: int) -> int:
        """A float region for composite weights, shared by all scatter operations."""
        if size > self.scratch_size:
            self.scratch_offset = self.float_buffer(size)
            self.scratch_size = size
        return self.scratch_offset

    def events(self, capacity: int) -> int:
        self.event_offsets.append(self.event_size)
        self.event_size += capacity
        return len(self.event_offsets) - 1

    def op(self, *values: int) -> None:
        row = [int(v) for v in values]
        self.ops.append(row + [0] * (OP_WIDTH - len(row)))


def _pooled_map(chain, source_shape) -> tuple[sp.csr_matrix, int, bool]:
    """Weighted map (Q, S) from source positions to positions after the pooling chain.

    Returns (map, Q, flattened) where ``flattened`` says a Flatten was crossed.
    """
    size = source_shape[1] * source_shape[2] if len(source_shape) == 3 else source_shape[0]
    matrix = sp.identity(size, dtype=np.float64, format="csr")
    flattened = len(source_shape) == 1
    for layer, in_shape in chain:
        if isinstance(layer, L.Flatten):
            flattened = True
            continue
        step = spatial_map(layer, in_shape).astype(np.float64)
        if isinstance(layer, L.AvgPool2d):
            divisor = ann_ops.avgpool_divisor(layer, in_shape[1], in_shape[2]).ravel()
            step = sp.diags(1.0 / divisor) @ step
        else:  # GlobalAvgPool
            step = step / float(in_shape[1] * in_shape[2])
        matrix = sp.csr_matrix(step @ matrix)
    return matrix, matrix.shape[0], flattened


def _fanout_table(b: _Builder, entries, n_sources: int) -> tuple[int, int, int, int, int]:
    """Store (source, target, tap, factor) entries grouped by source then target."""
    src, tgt, tap, fac = (np.asarray(e) for e in entries)
    order = np.lexsort((tap, tgt, src))
    src, tgt, tap, fac = src[order], tgt[order], tap[order], fac[order]
    new_group = np.ones(src.size, dtype=bool)
    new_group[1:] = (src[1:] != src[:-1]) | (tgt[1:] != tgt[:-1])
    group_start = np.flatnonzero(new_group)
    group_src = src[group_start]
    grp_ptr = np.searchsorted(group_src, np.arange(n_sources + 1))
    ent_ptr = np.append(group_start, src.size)
    return (b.ints(grp_ptr), b.ints(tgt[group_start]), b.ints(ent_ptr), b.ints(tap),
            b.floats(fac))


def _synapse(b: _Builder, net: Network, source: str, chain, consumer: L.Layer | None,
             consumer_in_shape, amp_off: int, slot: int, dst: int, sop_slot: int) -> None:
    """Append the OP_SYN scattering ``source``'s events through ``chain`` into ``dst``."""
    shape = net.shape(source)
    channels = shape[0] if len(shape) == 3 else 1
    pooled, q_size, flattened = _pooled_map(chain, shape)
    coo = pooled.tocoo()
    q, s, factor = coo.row, coo.col, coo.data
    n_sources = pooled.shape[1]
    if isinstance(consumer, L.Conv2d):
        _, hq, wq = consumer_in_shape
        _, ho, wo = consumer.output_shape([consumer_in_shape])
        kh, kw = consumer.kernel_size
        parts = []
        for ky in range(kh):
            for kx in range(kw):
                # target (oy, ox) reads pooled position (oy*s - p + ky*d, ox*s - p + kx*d)
                qy, qx = np.divmod(q, wq)
                ny = qy + consumer.padding[0] - ky * consumer.dilation[0]
                nx = qx + consumer.padding[1] - kx * consumer.dilation[1]
                oy, ox = ny // consumer.stride[0], nx // consumer.stride[1]
                ok = ((ny >= 0) & (nx >= 0) & (ny % consumer.stride[0] == 0)
                      & (nx % consumer.stride[1] == 0) & (oy < ho) & (ox < wo))
                parts.append((s[ok], oy[ok] * wo + ox[ok], np.full(ok.sum(), ky * kw + kx),
                              factor[ok]))
        entries = [np.concatenate([p[i] for p in parts]) for i in range(4)]
        weight = consumer.weight.transpose(2, 3, 1, 0)  # [KH, KW, Cin_g, Cout]
        cin_g, cout = consumer.weight.shape[1], consumer.out_channels
        mode, w_off = MODE_CONV, b.floats(weight)
        cout_g = cout // consumer.groups
    elif isinstance(consumer, L.Dense):
        entries = [s, np.zeros_like(s), q, factor]
        mode, w_off = MODE_DENSE, b.floats(consumer.weight.T)
        cin_g, cout_g, cout = channels, consumer.out_features, consumer.out_features
    else:
        entries = [s, q, np.zeros_like(s), factor]
        mode, w_off, cin_g, cout_g, cout = MODE_IDENTITY, 0, channels, 1, 1
    table = _fanout_table(b, entries, n_sources)
    layout = 1 if (flattened and len(shape) == 3) else 0
    b.op(OP_SYN, slot, channels, *table, mode, w_off, cin_g, cout_g, cout, q_size, amp_off, dst,
         sop_slot, layout, b.scratch(cout_g))


def compile_program(snn: SpikingNetwork, encoding: str = "analog", dtype=np.float32,
                    window: int = 0, binary: bool = False) -> EventProgram:
    """Compile ``snn`` for the event engine with the given input ``encoding`` and ``dtype``.

    ``window`` > 0 compiles one window of the temporal scheme as one step
    (``snn`` already scaled by :func:`evsim.timescheme.window_network`);
    ``binary`` makes events K-bit codes whose set bits count as spikes and
    SOPs (the ilif scheme, ``snn`` from :func:`evsim.timescheme.binary_network`).
    """
    net, dtype = snn.network, np.dtype(dtype)
    signal_plan = plan(net, encoding)
    classes = signal_plan.classes
    b = _Builder(dtype)
    buffers: dict[str, int] = {}
    slots: dict[str, int] = {}
    amps: dict[str, int] = {}  # fparams offset of each spiking layer's per-neuron amplitude
    amplitude: dict[str, np.ndarray] = {}  # the amplitude itself, broadcastable to the layer
    analog = []
    sop_layers = tuple(dict.fromkeys(p.layer for p in signal_plan.paths if p.counts == "sops"))
    pool_layers = tuple(p.layer for p in signal_plan.paths if p.counts == "pool_ops")
    neuron_layers, n_counts = [], 0

    def size(name):
        return int(np.prod(net.shape(name)))

    def needed_analog(name):
        return any(classes[c] != ANALOG for c in net.consumers(name)) or name == net.output_name

    def scatter(src, consumer, consumer_in_shape, dst, sop_slot):
        source, chain = trace_source(net, classes, src)
        _synapse(b, net, source, chain, consumer, consumer_in_shape, amps[source], slots[source],
                 dst, sop_slot)

    for node in net:
        name, layer, cls = node.name, node.layer, classes[node.name]
        if cls == ANALOG:
            if needed_analog(name):
                buffers[name] = b.float_buffer(size(name))
                analog.append((name, buffers[name], size(name)))
            continue
        if isinstance(layer, L.Input):
            slots[name] = b.events(size(name))
            amplitude[name] = np.ones(())
            amps[name] = b.floats(np.ones(size(name)))
            channels = net.input_shape[0] if len(net.input_shape) == 3 else 1
            b.op(OP_RATE, slots[name], channels, size(name) // channels, window)
        elif isinstance(layer, (L.Dense, L.Conv2d)):
            buffers[name] = b.float_buffer(size(name))
            bias_off = -1 if layer.bias is None else b.floats(layer.bias)
            period = layer.out_channels if isinstance(layer, L.Conv2d) else size(name)
            b.op(OP_FILL, buffers[name], size(name), bias_off, period)
            scatter(node.inputs[0], layer, net.shape(node.inputs[0]), buffers[name],
                    sop_layers.index(name))
        elif isinstance(layer, L.Add):
            buffers[name] = b.float_buffer(size(name))
            b.op(OP_FILL, buffers[name], size(name), -1, 1)
            for src in node.inputs:
                if classes[src] in (CURRENT, ANALOG):
                    b.op(OP_ADDBUF, buffers[name], buffers[src], size(name))
                else:
                    scatter(src, None, None, buffers[name], sop_layers.index(name))
        elif isinstance(layer, L.Flatten) and cls == CURRENT:
            buffers[name] = b.float_buffer(size(name))
            c, h, w = net.shape(node.inputs[0])
            b.op(OP_COPYPERM, buffers[name], buffers[node.inputs[0]], c, h * w)
        elif isinstance(layer, L.Activation):
            src = node.inputs[0]
            if classes[src] in (CURRENT, ANALOG):
                current = buffers[src]
            else:
                current = b.float_buffer(size(name))
                b.op(OP_FILL, current, size(name), -1, 1)
                scatter(src, None, None, current, sop_layers.index(name))
            spec = snn.neurons[name]
            shape = net.shape(name)
            slots[name] = b.events(size(name))
            amplitude[name] = spec.threshold
            amps[name] = b.floats(_cl(spec.threshold, shape))
            v0 = b.floats(_cl(spec.v_init, shape))
            neuron_layers.append((name, n_counts, size(name), shape))
            calibrated = spec.allowance > 0
            b.op(OP_NEURON, current, size(name), b.float_buffer(size(name)), amps[name], v0,
                 spec.reset == "zero", spec.burst, slots[name], n_counts,
                 b.float64s([spec.allowance]) if calibrated else -1,
                 b.int_buffer(3 * size(name)) if calibrated else -1, window)
            n_counts += size(name)
        elif isinstance(layer, L.MaxPool2d):
            src = node.inputs[0]
            c, h, w = net.shape(src)
            windows = spatial_map(layer, net.shape(src)).tocsr()
            windows.sort_indices()
            per_source = windows.T.tocsr()
            per_source.sort_indices()
            n_win = windows.shape[0]
            slots[name] = b.events(n_win * c)
            amplitude[name] = np.broadcast_to(amplitude[src], net.shape(src))[:, :1, :1]
            amps[name] = b.floats(_cl(amplitude[name], net.shape(name)))
            b.op(OP_MAXPOOL, slots[src], slots[name], c, b.ints(per_source.indptr),
                 b.ints(per_source.indices), b.ints(windows.indptr), b.ints(windows.indices),
                 b.int_buffer(h * w * c), b.int_buffer(n_win * c), b.int_buffer(n_win * c),
                 b.int_buffer(n_win * c), b.int_buffer(h * w * c),
                 snn.max_pool == "gate", pool_layers.index(name))
        # AvgPool/GlobalAvgPool/Flatten of events are folded into their readers' tables.

    out = net.output_name
    if classes[out] in (CURRENT, ANALOG):
        source_buffer = buffers[out]
    else:
        source_buffer = b.float_buffer(size(out))
        b.op(OP_FILL, source_buffer, size(out), -1, 1)
        scatter(out, None, None, source_buffer, -1)
    readout = b.float_buffer(size(out))
    b.op(OP_READOUT, readout, source_buffer, size(out))

    return EventProgram(
        ops=np.array(b.ops, dtype=np.int64).reshape(-1, OP_WIDTH),
        iparams=np.concatenate(b.ip) if b.ip else np.zeros(0, np.int64),
        fparams=np.concatenate(b.fp) if b.fp else np.zeros(0, dtype),
        f64params=np.concatenate(b.f64) if b.f64 else np.zeros(1, np.float64),
        float_size=b.float_size, int_size=max(b.int_size, 1),
        event_offsets=np.array(b.event_offsets + [b.event_size], dtype=np.int64),
        event_capacity=max(b.event_size, 1), analog=tuple(analog), readout_offset=readout,
        readout_size=size(out), neuron_layers=tuple(neuron_layers), n_counts=n_counts,
        sop_layers=sop_layers, pool_layers=pool_layers, encoding=encoding, dtype=dtype,
        binary=binary)


__all__ = ["EventProgram", "compile_program", "channels_last"]
