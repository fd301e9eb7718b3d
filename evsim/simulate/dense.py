"""The dense reference engine: every neuron, every step, in plain batched NumPy.

This is the readable specification of the spiking semantics: per step, the
layers update in topological order with no synaptic delay; the analog head
is computed once per image; spikes carry amplitude θ; synaptic operations
are Σ |multiplicity| × exact fan-out along every synaptic path
(:mod:`evsim.signals`). The event engine must reproduce it exactly.

Time is batched: a chunk of images runs in blocks of steps, layer by layer.
A synapse or pooling layer is applied to every step of the block in one call
(one GEMM per convolution), then a neuron layer scans the block's steps in
order. With no synaptic delay, layer l at step t needs only layer l − 1 at
step t, so this order gives exactly the step-by-step results. Blocks are
short enough that the largest layer's values over one block stay within
:data:`BLOCK_FLOATS`. With several threads, the convolutions share their
groups of images among them, and pooling and the neuron scans their images
(:mod:`evsim.threads`): the same arithmetic, so the same results.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .. import ann_ops, kinds, pooling
from .. import layers as L
from ..arena import Arena, borrow
from ..encoding import rate_spikes
from ..neuron import IFParameters, IFState, if_step, spicalib_state, spicalib_step
from ..kinds import role_of
from ..signals import ANALOG, EVENTS, SignalPlan, analog_head
from ..spiking import SpikingNetwork
from ..threads import on_threads, shares
from ..timescheme import popcount
from ..engines import ChunkResult, EngineSetup, zero_counters
from .dense_conv import (columns, depthwise, depthwise_frames, fill_columns, is_depthwise,
                         lay_out_conv, matches_blas)
from .dense_gather import gather_conv, gather_frames, gathers, may_gather
from .dense_tiles import may_tile, occupancy, tile_conv, tile_frames, tiles
from .kernels import (average_pool, concat_frames, neuron_scan, pool_scan,
                      upsample_nearest, upsample_separable)
from .notice import announce, ready
from .result import SpikeTrain

if TYPE_CHECKING:
    from ..timeplan import TimePlan

#: Values of the largest layer over one block of steps (× images), at most.
BLOCK_FLOATS = 1 << 22

#: A first compile of the dense engine's kernels on this machine (neuron scan, max and
#: average pooling), about this many seconds (2.9-4.2 s measured on the bundled models),
#: and this many more for the sparse convolution gather (5.0 s alone) and the tiles (8.8 s
#: alone; a first dense run of ``fashion_cnn``, which needs all three, took 25 s).
COMPILE_SECONDS, GATHER_COMPILE_SECONDS, TILES_COMPILE_SECONDS = 4, 6, 10


@dataclass
class _Recorder:
    """Accumulates the spike trains and membrane traces (after and before the reset) of
    requested neurons for one chunk."""

    selection: dict[str, np.ndarray]
    trains: dict[str, list]
    traces: dict[str, list]
    before_reset: dict[str, list]


def amplitudes(snn: SpikingNetwork, plan: SignalPlan, dtype) -> dict[str, np.ndarray]:
    """The value one spike carries, per events layer, broadcastable to its per-image shape."""
    net, amp = snn.network, {}
    for node in net:
        if plan.classes[node.name] != EVENTS:
            continue
        role = role_of(node.layer)
        if role == kinds.INPUT:
            amp[node.name] = np.ones((), dtype)
        elif role == kinds.NEURON:
            amp[node.name] = snn.neurons[node.name].threshold.astype(dtype)
        elif role == kinds.RESHAPE:
            src = node.inputs[0]
            amp[node.name] = np.broadcast_to(amp[src], net.shape(src)).reshape(-1)
        else:  # MaxPool: one amplitude per channel, checked by check_spiking_graph
            src = node.inputs[0]
            a = np.broadcast_to(amp[src], net.shape(src))
            amp[node.name] = np.ascontiguousarray(a[:, :1, :1])
    return amp


def announce_compile(snn: SpikingNetwork, plan: SignalPlan, dtype) -> None:
    """Say so on stderr before the compiled scans that ``snn`` needs are first compiled on
    this machine (a silent pause of a few seconds otherwise); a kernel already compiled in
    this process or found in Numba's cache is quiet. A convolution that may take the gather
    or the tiles (:func:`~evsim.simulate.dense_gather.may_gather`,
    :func:`~evsim.simulate.dense_tiles.may_tile`) is announced for them alone: should its
    frames be too dense, the GEMM path's parts compile then, in about a second."""
    nodes = [n for n in snn.network if plan.classes[n.name] != ANALOG]
    layers = [n.layer for n in nodes]
    roles = {role_of(layer) for layer in layers}
    needed = [(kernel, what) for kernel, role, what in (
        (neuron_scan, kinds.NEURON, "neuron scan"), (pool_scan, kinds.MAX_POOL,
                                                     "max pooling scan")) if role in roles]
    convolutions = [(n.layer, snn.network.shape(n.inputs[0])) for n in nodes
                    if isinstance(n.layer, L.Conv2d)]
    gather = [may_gather(layer, shape, dtype) for layer, shape in convolutions]
    tile = [may_tile(layer, shape, dtype) for layer, shape in convolutions]
    if any(gather) or any(tile):  # the tiles' probe runs on the order the gather's finds
        needed.append((gather_frames, "sparse convolution gather"))
    if any(tile):
        needed.append((tile_frames, "sparse convolution tiles"))
    if not all(g or t for g, t in zip(gather, tile)):
        needed += [(lay_out_conv, "convolution layout"), (fill_columns, "convolution columns")]
    kinds_present = {type(layer) for layer in layers}
    modes = {layer.mode for layer in layers if isinstance(layer, L.Upsample)}
    needed += [(kernel, what) for present, kernel, what in (
        (L.AvgPool2d in kinds_present, average_pool, "average pooling"),
        (L.Concat in kinds_present, concat_frames, "concatenation"),
        ("nearest" in modes, upsample_nearest, "nearest upsampling"),
        ("bilinear" in modes, upsample_separable, "bilinear upsampling")) if present]
    if any(isinstance(layer, L.Conv2d) and is_depthwise(layer, layer.weight.shape[0])
           for layer in layers):
        needed.append((depthwise_frames, "depthwise convolution"))
    missing = [(kernel, what) for kernel, what in needed if not ready(kernel)]
    if missing:
        extra = {gather_frames: GATHER_COMPILE_SECONDS, tile_frames: TILES_COMPILE_SECONDS}
        seconds = COMPILE_SECONDS + sum(extra.get(kernel, 0) for kernel, _ in missing)
        announce("the dense engine's kernels", seconds, [what for _, what in missing])


class DenseRunner:
    """The dense engine as a runner (:mod:`evsim.engines`): its block arrays are
    kept from chunk to chunk in one :class:`~evsim.arena.Arena`, borrowed from the last
    finished run (:func:`evsim.arena.borrow`: its memory is already mapped)."""

    def __init__(self, setup: EngineSetup):
        self.setup = setup
        self.arena = borrow(self, "dense")
        announce_compile(setup.time.snn, setup.signals, setup.options.dtype)

    def run_chunk(self, x: np.ndarray, first_image: int, on_steps=None) -> ChunkResult:
        """Simulate ``x`` (B, *input_shape), ``x[0]`` being image ``first_image``."""
        return run_chunk(self.setup, x, first_image, tick=on_steps, arena=self.arena)


def run_chunk(setup: EngineSetup, x: np.ndarray, first_image: int, *, tick=None,
              arena: Arena | None = None) -> ChunkResult:
    """Simulate one chunk ``x`` (B, *input_shape) as ``setup`` says: its outputs, spike
    counts, negative spike totals (SpiCalib's), SOPs and recorded neurons.

    ``setup.time.window`` > 0 simulates one window of the temporal scheme as one step
    (:mod:`evsim.timescheme`; ``setup.time.snn`` and ``x`` already scaled to a window);
    with ``setup.time.binary`` the spikes are K-bit codes (the ilif scheme) whose set bits
    are the spikes and SOPs counted. ``tick(n)`` is called as n more steps are done.
    ``setup.threads`` share the convolutions and the compiled neuron scans. The block
    arrays come from ``arena`` (a new one if None; pass the same one to every chunk of a
    run, so that their memory is kept: :mod:`evsim.arena`).
    """
    chunk = _Chunk(setup, x, first_image, Arena() if arena is None else arena)
    for steps in chunk.blocks():
        block = chunk.step_layers(steps)
        chunk.count_operations(block)
        chunk.keep_outputs(block)
        if tick is not None:
            tick(len(steps))
    return chunk.result()


@dataclass
class _Block:
    """The layers over one block of n steps (``steps``, 1-based): ``values`` (n or 1, B,
    *shape) per layer (1: the same at every step, as analog values are), ``spikes``
    (n, B, *shape) per events layer, ``sent`` (n, neurons) spikes sent per step, summed over
    images, per spiking layer as far as counted."""

    steps: np.ndarray
    values: dict[str, np.ndarray]
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    sent: dict[str, np.ndarray] = field(default_factory=dict)


class _Chunk:
    """The simulation of one chunk of images: the state of every layer, carried from block to
    block, and the counters and outputs so far."""

    def __init__(self, setup: EngineSetup, x: np.ndarray, first_image: int, arena: Arena):
        snn, plan, options = setup.time.snn, setup.signals, setup.options
        net, dtype, batch = snn.network, x.dtype, len(x)
        self.snn, self.net, self.plan, self.time, self.options = snn, net, plan, setup.time, options
        self.x, self.dtype, self.batch, self.threads, self.arena = (x, dtype, batch,
                                                                     setup.threads, arena)
        self.sops, self.pool_ops = zero_counters(plan, self.time.steps_simulated)
        per_image = options.per_image_counts
        self.counts = {name: np.zeros(((batch,) if per_image else ()) + net.shape(name),
                                      np.int64) for name in snn.neurons}
        self.negative = dict.fromkeys(snn.neurons, 0)
        self.amp = amplitudes(snn, plan, dtype)
        self.params = {name: IFParameters(
            spec.threshold.astype(dtype), spec.reset == "zero", spec.burst,
            spec.negative_threshold.astype(dtype) if spec.signed else None)
            for name, spec in snn.neurons.items()}
        self.states = {name: IFState(np.broadcast_to(spec.v_init.astype(dtype),
                                                     (batch,) + net.shape(name)).copy())
                       for name, spec in snn.neurons.items()}
        self.calibration = {name: spicalib_state((batch,) + net.shape(name))
                            for name, spec in snn.neurons.items() if spec.allowance > 0}
        self.pool_in = {n.name: np.zeros((batch,) + net.shape(n.inputs[0]), np.int64)
                        for n in net
                        if role_of(n.layer) == kinds.MAX_POOL and plan.classes[n.name] == EVENTS}
        self.pool_out = {name: np.zeros((batch,) + net.shape(name), np.int64)
                         for name in self.pool_in}
        self.pool_counts = ({} if self.time.binary else
                            {name: np.zeros(((batch,) if per_image else ()) + net.shape(name),
                                            np.int64) for name in self.pool_in})
        # analog values are the same at every step: one (1, B, ...) array each
        self.analog = ({name: v[None] for name, v in
                        analog_head(net, plan.classes, x, self.threads).items()}
                       if options.encoding == "analog" else {})
        self.dynamic = [n for n in net if plan.classes[n.name] != ANALOG]
        # layers whose spikes (not values) a later layer reads; the others' need not be kept
        self.spikes_read = {n.inputs[0] for n in self.dynamic
                            if role_of(n.layer) in (kinds.MAX_POOL, kinds.RESHAPE)}
        # and those whose values a later layer or the readout reads (a max pooling reads
        # spikes only): a neuron layer read by max poolings alone need not write its values
        self.values_read = {s for n in self.dynamic if role_of(n.layer) != kinds.MAX_POOL
                            for s in n.inputs} | {net.output_name}
        self.images = np.arange(first_image, first_image + batch)
        self.fanouts = [(p, p.fanout.reshape(-1)) for p in plan.paths]
        record = setup.selection
        self.rec = _Recorder(record, *({k: [] for k in record} for _ in range(3)))
        self.total = np.zeros((batch,) + net.output_shape, dtype)
        self.checkpoints = self.time.engine_checkpoints
        self.outputs = np.zeros((len(self.checkpoints), batch) + net.output_shape, dtype)
        self.kept = 0  # checkpoints passed

    def blocks(self):
        """The steps of each block, (n,) arrays: the largest layer's values over one block
        stay within :data:`BLOCK_FLOATS`."""
        T, net = self.time.steps_simulated, self.net
        largest = max(int(np.prod(net.shape(n.name))) for n in net)
        block = int(max(1, min(T, BLOCK_FLOATS // (self.batch * largest))))
        for first in range(1, T + 1, block):
            yield np.arange(first, min(T, first + block - 1) + 1)

    def step_layers(self, steps: np.ndarray) -> _Block:
        """Every dynamic layer, in topological order, over the block of ``steps``."""
        block = _Block(steps, dict(self.analog))
        for node in self.dynamic:
            self.step_layer(node, block)
        return block

    def step_layer(self, node, block: _Block) -> None:
        """One dynamic layer over the block's steps: its values (and spikes) into ``block``."""
        layer, name, role = node.layer, node.name, role_of(node.layer)
        values, spikes = block.values, block.spikes
        if role == kinds.INPUT:
            spikes[name] = self.input_spikes(block.steps)
            values[name] = spikes[name].astype(self.dtype)
        elif role == kinds.NEURON:
            self.step_neurons(name, values[node.inputs[0]], block)
        elif role == kinds.MAX_POOL:
            spikes[name], values[name], sent, net = _spiking_maxpool_block(
                self.snn.max_pool, layer, spikes[node.inputs[0]], self.pool_in[name],
                self.pool_out[name], self.amp[name], self.dtype, self.threads, self.arena, name)
            if not self.time.binary:  # K-bit codes: their set bits are the spikes sent
                block.sent[name] = sent
            if name in self.pool_counts and self.options.per_image_counts:
                self.pool_counts[name] += spikes[name].sum(axis=0, dtype=np.int64)
            elif name in self.pool_counts:
                self.pool_counts[name] += net.reshape(self.net.shape(name))
        elif role == kinds.RESHAPE and self.plan.classes[name] == EVENTS:
            shape = (len(block.steps), self.batch, -1)
            spikes[name] = spikes[node.inputs[0]].reshape(shape)
            values[name] = values[node.inputs[0]].reshape(shape)
        else:
            values[name] = _apply_to_block(layer, [values[s] for s in node.inputs],
                                           self.threads, self.arena, name)

    def input_spikes(self, steps: np.ndarray) -> np.ndarray:
        """The rate-coded input's spikes (steps, B, *input_shape); a window's sum per step."""
        x, seed, window, images = self.x, self.options.seed, self.time.window, self.images
        return np.stack([sum(rate_spikes(x, seed, images, u) for u in range(1, window + 1))
                         if window else rate_spikes(x, seed, images, t) for t in steps])

    def step_neurons(self, name: str, current: np.ndarray, block: _Block) -> None:
        """A neuron layer's scan over the block, driven by ``current``, and its spike counts."""
        spikes, values, sent, steps = block.spikes, block.values, block.sent, block.steps
        if name in self.calibration or name in self.rec.selection:
            spikes[name] = _neuron_scan(self.snn, name, self.params[name], self.states,
                                        self.calibration, self.rec, current, steps)
            values[name] = spikes[name].astype(self.dtype) * self.amp[name]
        else:
            keep = name in self.spikes_read or self.options.per_image_counts
            spikes[name], values[name], sent[name], net = _fast_neuron_scan(
                self.params[name], self.states[name], current, len(steps), self.time,
                self.threads, self.arena, name, keep, name in self.values_read)
            if values[name] is None:
                del values[name]
            if spikes[name] is None:  # counted by the scan: sent (|s|) and, if signed, net
                del spikes[name]
                if net is None:  # unsigned: net = sent
                    net = sent[name].sum(axis=0)
                else:  # each −1 spike is |s| − s = 2 of the difference
                    self.negative[name] += (int(sent[name].sum()) - int(net.sum())) // 2
                self.counts[name] += net.reshape(self.net.shape(name))
                return
        counted = popcount(spikes[name]) if self.time.binary else spikes[name]
        if name in self.calibration or self.snn.neurons[name].signed:
            self.negative[name] -= int(np.minimum(counted, 0).sum())
        if self.options.per_image_counts:
            self.counts[name] += counted.sum(axis=0)
        elif name in sent and not self.snn.neurons[name].signed:  # sent: |s|; counts: net
            self.counts[name] += sent[name].sum(axis=0).reshape(self.net.shape(name))
        else:
            self.counts[name] += counted.sum(axis=(0, 1))

    def count_operations(self, block: _Block) -> None:
        """The block's SOPs and pooling operations, per step, along every synaptic path."""
        steps, sent = block.steps, block.sent
        for path, fan in self.fanouts:
            if path.source not in sent:
                multiplicity = np.abs(block.spikes[path.source]).reshape(len(steps),
                                                                          self.batch, -1)
                if self.time.binary:
                    multiplicity = popcount(multiplicity)
                sent[path.source] = multiplicity.sum(axis=1, dtype=np.int64)
            target = self.sops if path.counts == "sops" else self.pool_ops
            target[path.layer][steps - 1] += sent[path.source] @ fan

    def keep_outputs(self, block: _Block) -> None:
        """The readout summed over the block's steps, kept at the checkpoints it passes."""
        readout, checkpoints = block.values[self.net.output_name], self.checkpoints
        for i, t in enumerate(block.steps):
            self.total += readout[i if len(readout) > 1 else 0]
            if self.kept < len(checkpoints) and t == checkpoints[self.kept]:
                self.outputs[self.kept] = self.total
                self.kept += 1

    def result(self) -> ChunkResult:
        record = self.rec.selection
        trains = {name: _concat_train(self.rec.trains[name]) for name in record}
        traces = {name: np.stack(self.rec.traces[name]) for name in record}
        before = {name: np.stack(self.rec.before_reset[name]) for name in record}
        return ChunkResult(self.outputs, self.counts, self.negative, self.sops, self.pool_ops,
                           trains, traces, before, self.pool_counts)


def _neuron_scan(snn: SpikingNetwork, name: str, params: IFParameters, states: dict,
                 calibration: dict, rec: _Recorder, current: np.ndarray,
                 steps: np.ndarray) -> np.ndarray:
    """Spikes (steps, B, *shape) of one neuron layer over a block, updating its state, with
    SpiCalib and recording (which the windowed schemes do not have).

    ``current`` is (steps, B, *shape), or (1, B, *shape) when it is the same every step.
    """
    out = []
    for i, t in enumerate(steps):
        step_current = current[i if len(current) > 1 else 0]
        before = states[name].v
        s, states[name] = if_step(step_current, states[name], params)
        if name in calibration:
            s, calibration[name] = spicalib_step(s, t, calibration[name],
                                                 snn.neurons[name].allowance)
        if name in rec.selection:
            # the sum if_step compared with θ, formed again (the same arithmetic)
            _record(rec, name, t, s, states[name].v, before + step_current)
        out.append(s)
    return np.stack(out)


def _fast_neuron_scan(params: IFParameters, state: IFState, current: np.ndarray, n: int,
                      time: TimePlan, threads: int, arena: Arena, name: str, keep: bool = True,
                      write_values: bool = True):
    """:func:`_neuron_scan` without SpiCalib or recording, in one compiled pass
    (:func:`evsim.simulate.kernels.neuron_scan`, the same neuron rules written for scalars),
    the images shared among ``threads``, its arrays taken from ``arena`` under ``name``;
    ``time`` gives the windowed schemes' window and K-bit codes.

    Returns spikes (n, B, *shape), values s θ (n, B, *shape), the spikes sent per step
    and neuron summed over images (n, neurons), and for signed neurons their spikes' sum
    per neuron over steps and images (neurons,) when the spikes are not kept (else None);
    ``state`` is updated in place. Without ``keep``, under the plain rule (Γ = 1, no
    window) the spikes are not kept (None; ``sent``, and for signed neurons that sum,
    count them), which saves writing them and reading them back; without
    ``write_values``, under that rule, the values are not written (None; ``vgg_relu``'s
    three ReLUs before max poolings had written values that no one read: its dense run
    1.05x faster at one and at two threads without them).
    """
    batch, shape = state.v.shape[0], state.v.shape[1:]
    size = int(np.prod(shape))
    v = state.v.reshape(batch, size)
    theta = np.ascontiguousarray(np.broadcast_to(params.threshold, shape).reshape(size))
    negative = (np.empty(0, v.dtype) if params.negative_threshold is None else
                np.ascontiguousarray(np.broadcast_to(params.negative_threshold, shape)
                                     .reshape(size)))
    plain = params.burst == 1 and time.window == 0 and not time.binary
    keep, write_values = keep or not plain, write_values or not plain
    count_net = params.negative_threshold is not None and not keep  # signed, spikes not kept
    spikes = (arena.take((name, "spikes"), (n, batch, size), np.int32) if keep
              else np.empty((0, batch, size), np.int32))
    values = (arena.take((name, "values"), (n, batch, size), v.dtype) if write_values
              else np.empty((0, batch, size), v.dtype))
    current = np.ascontiguousarray(current.reshape(len(current), batch, size))

    def scan(first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        sent = np.zeros((n, size), np.int64)
        net = np.zeros(size if count_net else 0, np.int64)
        neuron_scan(current, v, theta, negative, params.burst, params.reset_to_zero, time.window,
                    time.binary, spikes, values, sent, net, first, last)
        return sent, net

    parts = on_threads(scan, shares(batch, threads, item_size=n * size))
    sent = sum(part[0] for part in parts)
    return (spikes.reshape((n, batch) + shape) if keep else None,
            values.reshape((n, batch) + shape) if write_values else None, sent,
            sum(part[1] for part in parts) if count_net else None)


#: The smallest Concat or nearest upsampling output (bytes, the whole block) that the dense
#: engine writes with non-temporal stores, as a large memcpy does (BENCHMARKS.md, Concat
#: and upsampling), a Concat where each input's part of a frame is at least
#: :data:`STREAM_PART_BYTES` (short parts would be mostly the ordinary stores before and
#: after their whole cache lines).
STREAM_BYTES = 4 << 20
STREAM_PART_BYTES = 4 << 10


def _apply_to_block(layer: L.Layer, inputs: list[np.ndarray], threads: int, arena: Arena,
                    name: str) -> np.ndarray:
    """A synapse, pooling, flatten or add layer applied to every step of a block at once,
    into an array of ``arena`` (under ``name``) where it can.

    Inputs are (steps or 1, B, *shape); steps and images are folded into one batch.
    """
    n = max(len(v) for v in inputs)
    batch = inputs[0].shape[1]
    frames = [np.broadcast_to(v, (n,) + v.shape[1:]).reshape((n * batch,) + v.shape[2:])
              for v in inputs]
    compiled = _COMPILED.get(type(layer))
    if compiled is not None or kinds.rules_of(layer).writes_out:
        shape = (n * batch,) + tuple(layer.output_shape([f.shape[1:] for f in frames]))
        out = arena.take(name, shape, frames[0].dtype)
        if compiled is not None:
            out = compiled(layer, frames, threads, out)
        else:
            out = kinds.apply(layer, frames, threads, out)
    else:
        out = kinds.apply(layer, frames, threads)
    return out.reshape((n, batch) + out.shape[1:])


def _average_pool(layer: L.AvgPool2d, inputs: list[np.ndarray], threads: int,
                  out: np.ndarray) -> np.ndarray:
    """:func:`evsim.ann_ops.avgpool2d` of ``inputs[0]`` (frames, C, H, W) into ``out`` in one
    compiled pass (:func:`evsim.simulate.kernels.average_pool`, the same arithmetic), the
    frames shared among ``threads``."""
    x = np.ascontiguousarray(inputs[0])
    divisor = ann_ops.avgpool_divisor(layer, x.shape[2], x.shape[3]).astype(x.dtype)

    def share(lo: int, hi: int) -> None:
        average_pool(x, layer.kernel_size, layer.stride, layer.padding, divisor, out, lo, hi)

    on_threads(share, shares(len(x), threads, item_size=x[0].size))
    return out


def _upsample(layer: L.Upsample, inputs: list[np.ndarray], threads: int,
              out: np.ndarray) -> np.ndarray:
    """:func:`evsim.ann_ops.upsample` of ``inputs[0]`` (frames, C, H, W) into ``out`` in one
    compiled pass (:func:`evsim.simulate.kernels.upsample_nearest` or ``upsample_separable``,
    the same values bit for bit), the frames shared among ``threads``; a large output
    (:data:`STREAM_BYTES`) is written with non-temporal stores."""
    x = np.ascontiguousarray(inputs[0])
    (sh, sw), h, w = layer.scale, x.shape[2], x.shape[3]
    stream = out.nbytes >= STREAM_BYTES
    if layer.mode == "nearest":
        def share(lo: int, hi: int) -> None:
            upsample_nearest(x, sh, sw, out, lo, hi, stream)
    else:
        rows, row_weights = ann_ops.upsample_taps(h, sh, layer.mode, layer.align_corners)
        cols, col_weights = ann_ops.upsample_taps(w, sw, layer.mode, layer.align_corners)
        row_weights, col_weights = row_weights.astype(x.dtype), col_weights.astype(x.dtype)

        def share(lo: int, hi: int) -> None:
            upsample_separable(x, rows, row_weights, cols, col_weights, out, lo, hi,
                               stream)

    on_threads(share, shares(len(x), threads, item_size=x[0].size))
    return out


def _concat(layer: L.Concat, inputs: list[np.ndarray], threads: int,
            out: np.ndarray) -> np.ndarray:
    """:func:`evsim.ann_ops.concat` of ``inputs`` (frames, C_k, ...) into ``out`` (frames,
    ΣC_k, ...) by a compiled copy, frame by frame
    (:func:`evsim.simulate.kernels.concat_frames`; NumPy's strided copy took about 1.6× a
    copy of the same bytes), the frames shared among ``threads``; a large output
    (:data:`STREAM_BYTES`) is written with non-temporal stores."""
    flat = out.reshape(len(out), -1)
    parts = []
    for x in inputs:
        part = np.ascontiguousarray(x, out.dtype).reshape(len(x), -1).view()
        part.flags.writeable = False  # all of one Numba type: a tuple it can index
        parts.append(part)
    parts = tuple(parts)

    stream = (out.nbytes >= STREAM_BYTES
              and min(part.shape[1] * part.itemsize for part in parts) >= STREAM_PART_BYTES)

    def share(lo: int, hi: int) -> None:
        concat_frames(parts, flat, lo, hi, stream)

    on_threads(share, shares(len(out), threads, item_size=flat.shape[1]))
    return out


def _convolution(layer: L.Conv2d, inputs: list[np.ndarray], threads: int,
                 out: np.ndarray) -> np.ndarray:
    """:func:`evsim.ann_ops.conv2d` of ``inputs[0]`` (frames, C, H, W) into ``out``, each GEMM's
    result laid out (bias added) by a compiled pass
    (:func:`evsim.simulate.dense_conv.lay_out_conv`, the same additions) instead of NumPy's
    strided add, about a tenth of the engine's time on the bundled ``resnet``, and at stride
    1 its columns are copied by :func:`evsim.simulate.dense_conv.fill_columns`. A depthwise
    layer without dilation takes :func:`evsim.simulate.dense_conv.depthwise` (no
    im2col, the same result) wherever that matches this machine's BLAS (dilated, it was
    no faster). Sparse frames take :func:`evsim.simulate.dense_tiles.tile_conv` where
    :func:`~evsim.simulate.dense_tiles.tiles` (small layers: eight positions to a vector,
    the taps they read non-zero) and else :func:`evsim.simulate.dense_gather.gather_conv`
    where :func:`~evsim.simulate.dense_gather.gathers` (each position's non-zero inputs),
    both in the GEMM's order: the same result."""
    x = np.ascontiguousarray(inputs[0])  # the compiled parts read it flat
    kh, kw = layer.weight.shape[2:]
    if (is_depthwise(layer, x.shape[1]) and layer.dilation == (1, 1)
            and matches_blas(x.dtype, kh, kw)):
        return depthwise(layer, x, threads, out)
    shape = x.shape[1:]
    if may_tile(layer, shape, x.dtype) or may_gather(layer, shape, x.dtype):
        density, run_density = occupancy(x)
        if tiles(layer, x, run_density):
            return tile_conv(layer, x, threads, out)
        if gathers(layer, x, density):
            return gather_conv(layer, x, threads, out)
    return ann_ops.conv2d(layer, x, threads, out, lay_out=_lay_out_compiled, columns=columns)


def _lay_out_compiled(result: np.ndarray, bias: np.ndarray | None, group: int,
                      out: np.ndarray) -> None:
    """:func:`evsim.ann_ops._lay_out` by :func:`evsim.simulate.dense_conv.lay_out_conv`."""
    channels = out.shape[1]
    bias = (np.empty(0, out.dtype) if bias is None
            else bias[group * channels:(group + 1) * channels].reshape(channels))
    lay_out_conv(result, bias, out)


#: Kinds the dense engine computes with a compiled kernel of its own instead of their forward
#: rule (the same arithmetic, tested against it): ``kernel(layer, inputs, threads, out) ->
#: out``.
_COMPILED = {L.AvgPool2d: _average_pool, L.Upsample: _upsample, L.Concat: _concat,
             L.Conv2d: _convolution}


def _spiking_maxpool_block(mode: str, layer: L.MaxPool2d, incoming: np.ndarray,
                           cumulative_in: np.ndarray, cumulative_out: np.ndarray,
                           amplitude: np.ndarray, dtype, threads: int, arena: Arena,
                           name: str):
    """:func:`evsim.pooling.spiking_maxpool` over a block's steps (``incoming``
    (steps, B, C, H, W)) in one compiled pass (:func:`evsim.simulate.kernels.pool_scan`), the
    images shared among ``threads``. Returns the spikes (steps, B, C, H', W') int32 and
    their values (spikes × amplitude, in ``dtype``), arrays of ``arena`` under ``name``,
    and the spikes summed over the images: |s| per step and output neuron (steps, C H' W')
    and s per output neuron (C H' W',)."""
    steps, batch = incoming.shape[:2]
    _, ho, wo = layer.output_shape([incoming.shape[2:]])
    spikes = arena.take((name, "spikes"), (steps, batch, incoming.shape[2], ho, wo), np.int32)
    values = arena.take((name, "values"), spikes.shape, dtype)
    incoming = np.ascontiguousarray(incoming, np.int32)
    scale = np.ascontiguousarray(np.broadcast_to(amplitude, (incoming.shape[2], 1, 1))
                                 .reshape(-1), dtype)
    size = incoming.shape[2] * ho * wo

    def share(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        sent, net = np.zeros((steps, size), np.int64), np.zeros(size, np.int64)
        pool_scan(incoming, cumulative_in, cumulative_out, layer.kernel_size, layer.stride,
                  layer.padding, mode == "lipooling", scale, spikes, values, sent, net, lo, hi)
        return sent, net

    parts = on_threads(share, shares(batch, threads, item_size=steps * incoming[0, 0].size))
    return (spikes, values, sum(part[0] for part in parts), sum(part[1] for part in parts))


def _record(rec: _Recorder, name: str, t: int, s: np.ndarray, v: np.ndarray,
            m: np.ndarray) -> None:
    """Keep step ``t``'s spikes ``s``, membrane ``v`` after and ``m`` before the reset,
    all (B, *shape), of the chosen neurons."""
    chosen = rec.selection[name]
    flat_s = s.reshape(len(s), -1)[:, chosen]
    img, neuron = np.nonzero(flat_s)
    rec.trains[name].append((np.full(img.size, t), img, neuron, flat_s[img, neuron]))
    rec.traces[name].append(v.reshape(len(v), -1)[:, chosen].copy())
    rec.before_reset[name].append(m.reshape(len(m), -1)[:, chosen].copy())


def _concat_train(parts: list) -> SpikeTrain:
    if not parts:
        empty = np.zeros(0, np.int64)
        return SpikeTrain(empty, empty, empty, empty)
    steps, images, neurons, counts = (np.concatenate([p[i] for p in parts]).astype(np.int64)
                                      for i in range(4))
    return SpikeTrain(steps, images, neurons, counts)


def spiking_maxpool(mode: str, layer: L.MaxPool2d, incoming: np.ndarray,
                    cumulative_in: np.ndarray, cumulative_out: np.ndarray) -> np.ndarray:
    """Deprecated alias of :func:`evsim.pooling.spiking_maxpool` (moved out of the engine),
    kept for one release."""
    warnings.warn("evsim.simulate.dense.spiking_maxpool moved to evsim.pooling",
                  DeprecationWarning, stacklevel=2)
    return pooling.spiking_maxpool(mode, layer, incoming, cumulative_in, cumulative_out)


__all__ = ["DenseRunner", "run_chunk", "amplitudes", "spiking_maxpool", "announce_compile"]
