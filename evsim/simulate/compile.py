"""Compiling a spiking network into an event program for the event engine.

The program is a table of operation rows over flat, preallocated buffers
(column layout: :data:`evsim.simulate.kernels.LAYOUT`), so the Numba kernels
run without allocating in the time loop:

- every current-carrying layer has a float buffer in channels-last layout
  (``[H, W, C]`` flattened; 1-D layers as they are);
- every spiking layer (activation, spiking MaxPool, rate-coded input) has an
  event list: int32 indices (channels-last) and multiplicities, bounded by
  the layer's neuron count;
- every synaptic path (:mod:`evsim.signals`) becomes one scatter operation
  whose targets are stored as *runs*: for each source position, slices
  ``(output offset, weight offset, length, factor)`` that an event adds as
  ``out[o:o+n] += a · factor · w[k:k+n]``, shifted per source channel.
  Average pooling and Flatten between a spiking layer and a Dense/Conv2d are
  folded in (the factor), borders are clipped here, and adjacent runs that
  are contiguous in both output and weights are merged, so a 3×3
  convolution costs one run per kernel row. The SOPs an event causes come
  from the exact fan-out map the dense engine uses
  (:func:`evsim.fanout.path_fanout`), stored once per source position since
  it does not depend on the channel; a depthwise convolution that reads a
  spiking layer directly also gets its window's geometry, which its own kernel
  walks instead of the runs (``kernels._scatter_depthwise``);
- weights are stored so that runs are contiguous: a convolution's as
  ``[C_in, KH, KW reversed, C_out/groups]`` (ascending outputs along a
  kernel row meet descending kernel columns), a dense layer's as
  ``[N_in, N_out]``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .. import kinds
from .. import layers as L
from ..fanout import path_fanout, spatial_map
from ..kinds import role_of, rules_of
from ..signals import ANALOG, CURRENT, plan, trace_sources
from ..spiking import SpikingNetwork
from .kernels import (ADD_SRC, EMIT_SPARE, FILL_BIAS, FILL_CHANNELS, FILL_DST, FILL_SIZE,
                      LAYOUT, NR_CURRENT, NR_PERIOD, NR_REFILL, NR_SIZE, OP_ADD, OP_COPYPERM,
                      OP_FILL, OP_MAXPOOL, OP_NEURON, OP_RATE, OP_SCATTER, OP_WIDTH, PERM_SRC,
                      _plain)
from ..errors import EvsimValueError


@dataclass(frozen=True, eq=False)
class EventProgram:
    """A spiking network compiled for the event engine (all arrays read-only, shared by threads).

    ``ops`` (n_ops, OP_WIDTH) int64 rows ``[code, named columns...]``;
    ``iparams`` int64 run, fan-out and window tables; ``fparams`` weights,
    biases, thresholds, initial potentials, amplitudes and pooling factors in
    the simulation dtype; ``f64params`` float64 scalars (SpiCalib
    allowances). Per-image workspaces: ``float_size`` floats, ``int_size``
    int64s, ``event_capacity`` event entries in lists starting at
    ``event_offsets``, each list holding up to ``event_sizes`` events (its source's
    neurons; a neuron layer's list has spare entries after them, which its emission
    may write: :data:`~evsim.simulate.kernels.EMIT_SPARE`). ``binary``: events are K-bit
    codes (the ilif scheme) whose set bits are the spikes and SOPs counted.
    ``pool_outputs``: (layer name, int64 workspace offset, shape) of each spiking max
    pooling's cumulative output spikes per neuron, channels-last (kept by both pooling
    kernels).
    """

    ops: np.ndarray
    iparams: np.ndarray
    fparams: np.ndarray
    f64params: np.ndarray
    float_size: int
    int_size: int
    event_offsets: np.ndarray
    event_sizes: np.ndarray
    event_capacity: int
    analog: tuple  # (layer name, float offset, per-image size) filled from the analog head
    readout_offset: int
    readout_size: int
    neuron_layers: tuple  # (layer name, count offset, neurons, shape, negative-total offset)
    n_counts: int
    sop_layers: tuple
    pool_layers: tuple
    encoding: str
    dtype: np.dtype
    classes: dict  # signal class of every layer (evsim.signals) for this encoding
    binary: bool = False
    pool_outputs: tuple = ()


def channels_last(array: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(B, C, H, W) -> (B, H*W*C) channels-last; (B, N) unchanged. A contiguous copy, or
    written into ``out`` (B, H*W*C), which may be a slice of a wider array's columns."""
    if array.ndim == 4:
        array = array.transpose(0, 2, 3, 1)
    if out is None:
        return np.ascontiguousarray(array.reshape(len(array), -1))
    target = out.view()
    target.shape = array.shape  # a view of out's columns (raises if it cannot be)
    target[...] = array
    return out


def _cl(values: np.ndarray, shape) -> np.ndarray:
    """A per-image array broadcast to ``shape`` and flattened channels-last."""
    full = np.broadcast_to(values, shape)
    return channels_last(full[None])[0]


_ALIGN = 16  # floats: arrays in fparams and buffers start on 64-byte cache-line boundaries


#: The longest pattern (floats) with which a neuron layer refills its current in place of an
#: OP_FILL row: its bias repeated over lcm(channels, 64) values, small enough to stay in cache.
MAX_REFILL_PERIOD = 4096


def _fuse_fills(b: _Builder) -> None:
    """Where a plain neuron layer (Γ = 1, no window, no calibration, unsigned) is the only
    reader of its current buffer, the buffer's OP_FILL row is dropped and the layer refills
    the buffer as it reads it (kernels.NR_REFILL): the same values, one pass fewer."""
    # reads of each float buffer: 1 per neuron row, 2 per Add or copy (a buffer that one of
    # those reads too must keep this step's values until it runs)
    reads = {OP_NEURON: (NR_CURRENT, 1), OP_ADD: (ADD_SRC, 2), OP_COPYPERM: (PERM_SRC, 2)}
    readers: dict[int, int] = {}
    for row in b.ops:
        if row[0] in reads:
            column, weight = reads[row[0]]
            readers[row[column]] = readers.get(row[column], 0) + weight
    fills = {row[FILL_DST]: row for row in b.ops if row[0] == OP_FILL}
    fp = np.concatenate(b.fp) if b.fp else np.zeros(0, b.dtype)  # the biases the fills read
    fused = set()
    for row in (row for row in b.ops if row[0] == OP_NEURON):
        current, size = row[NR_CURRENT], row[NR_SIZE]
        if current not in fills or readers[current] != 1 or not _plain(np.array(row)):
            continue
        fill = fills[current]
        channels, bias = fill[FILL_CHANNELS], fill[FILL_BIAS]
        period = int(np.lcm(channels, 64))
        if fill[FILL_SIZE] != size or period > MAX_REFILL_PERIOD:
            continue
        values = fp[bias:bias + channels] if bias >= 0 else np.zeros(channels, b.dtype)
        # no more of the pattern than the layer's blocks read
        length = min(period, -(-size // 64) * 64)
        row[NR_REFILL] = b.floats(np.resize(values, length))
        row[NR_PERIOD] = period
        fused.add(current)
    b.ops = [row for row in b.ops if not (row[0] == OP_FILL and row[FILL_DST] in fused)]


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
        self.event_sizes: list[int] = []
        self.event_entries = 0

    def ints(self, array) -> int:
        array = np.asarray(array, dtype=np.int64).ravel()
        self.ip.append(array)
        self.ip_size += array.size
        return self.ip_size - array.size

    def floats(self, array) -> int:
        array = np.asarray(array, dtype=self.dtype).ravel()
        self.fp.append(np.zeros(-self.fp_size % _ALIGN, self.dtype))  # vector loads stay aligned
        self.fp.append(array)
        self.fp_size += self.fp[-2].size + array.size
        return self.fp_size - array.size

    def float64s(self, array) -> int:
        array = np.asarray(array, dtype=np.float64).ravel()
        self.f64.append(array)
        self.f64_size += array.size
        return self.f64_size - array.size

    def float_buffer(self, size: int) -> int:
        self.float_size += -self.float_size % _ALIGN + size
        return self.float_size - size

    def int_buffer(self, size: int) -> int:
        self.int_size += size
        return self.int_size - size

    def events(self, size: int, spare: int = 0) -> int:
        """A new event list for up to ``size`` events, with ``spare`` entries after them;
        its slot."""
        self.event_offsets.append(self.event_entries)
        self.event_sizes.append(size)
        self.event_entries += size + spare
        return len(self.event_offsets) - 1

    def op(self, code: int, **columns: int) -> None:
        """Append a row; ``columns`` must name exactly the columns of ``code``'s layout."""
        names = LAYOUT[code]
        if set(columns) != set(names):
            raise EvsimValueError(f"operation {code}: columns {sorted(columns)} do not match its "
                                  f"layout {names}")
        self.ops.append([code] + [int(columns[name]) for name in names]
                        + [0] * (OP_WIDTH - 1 - len(names)))


def _pooled_map(chain, source_shape) -> tuple[sp.csr_matrix, bool]:
    """Weighted map (Q, S) from source positions to positions after the pooling chain,
    and whether a Flatten was crossed."""
    size = source_shape[1] * source_shape[2] if len(source_shape) == 3 else source_shape[0]
    matrix = sp.identity(size, dtype=np.float64, format="csr")
    flattened = len(source_shape) == 1
    for layer, in_shape in chain:
        if role_of(layer) == kinds.RESHAPE:
            flattened = True
            continue
        step = rules_of(layer).weights(layer, in_shape)  # an average: its weighted map
        matrix = sp.csr_matrix(step @ matrix)
    return matrix, flattened


@dataclass(frozen=True)
class _Runs:
    """Per source position ``s``: runs ``[ptr[s], ptr[s+1])`` of (out, w, length, factor);
    per source channel ``c``: offsets added to every run's output and weight offset."""

    ptr: np.ndarray
    out: np.ndarray
    w: np.ndarray
    length: np.ndarray
    factor: np.ndarray
    channel_out: np.ndarray
    channel_w: np.ndarray
    weights: np.ndarray


def _merge_runs(n_positions: int, s, out, w, length, factor) -> tuple:
    """Sort runs by (position, output) and merge neighbours contiguous in output and weights."""
    order = np.lexsort((out, s))
    s, out, w, length, factor = s[order], out[order], w[order], length[order], factor[order]
    joins = np.zeros(s.size, dtype=bool)
    joins[1:] = ((s[1:] == s[:-1]) & (out[1:] == out[:-1] + length[:-1])
                 & (w[1:] == w[:-1] + length[:-1]) & (factor[1:] == factor[:-1]))
    starts = np.flatnonzero(~joins)
    total = np.add.reduceat(length, starts) if s.size else length
    s, out, w, factor = s[starts], out[starts], w[starts], factor[starts]
    ptr = np.searchsorted(s, np.arange(n_positions + 1))
    return ptr, out, w, total, factor


def _conv_runs(consumer: L.Conv2d, consumer_in_shape, q, s, factor, channels: int,
               q_size: int, offset: int = 0) -> tuple:
    """A convolution's run entries, weights and per-channel offsets (see :func:`_runs`)."""
    _, hq, wq = consumer_in_shape
    _, ho, wo = consumer.output_shape([consumer_in_shape])
    kh, kw = consumer.kernel_size
    cout, cin_g = consumer.out_channels, consumer.weight.shape[1]
    cout_g = cout // consumer.groups
    c = offset + np.arange(channels, dtype=np.int64)
    targets = []
    qy, qx = np.divmod(q, wq)
    for ky in range(kh):
        for kx in range(kw):
            # target (oy, ox) reads pooled position (oy*s - p + ky*d, ox*s - p + kx*d);
            # targets off the output's border do not exist (the runs are clipped)
            ny = qy + consumer.padding[0] - ky * consumer.dilation[0]
            nx = qx + consumer.padding[1] - kx * consumer.dilation[1]
            oy, ox = ny // consumer.stride[0], nx // consumer.stride[1]
            ok = ((ny >= 0) & (nx >= 0) & (ny % consumer.stride[0] == 0)
                  & (nx % consumer.stride[1] == 0) & (oy < ho) & (ox < wo))
            targets.append((s[ok], (oy[ok] * wo + ox[ok]) * cout,
                            np.full(ok.sum(), ky * kw + (kw - 1 - kx)), factor[ok]))
    s, out, tap, factor = (np.concatenate([t[i] for t in targets]) for i in range(4))
    entries = [s, out, tap * cout_g, np.full(s.size, cout_g), factor]
    # [C_out, C_in/g, KH, KW] -> [groups, C_in/g, KH, KW reversed, C_out/g]
    weight = consumer.weight.reshape(consumer.groups, cout_g, cin_g, kh, kw)
    weights = weight.transpose(0, 2, 3, 4, 1)[:, :, :, ::-1, :]
    return entries, weights, (c // cin_g) * cout_g, c * kh * kw * cout_g


def _dense_runs(consumer: L.Dense, consumer_in_shape, q, s, factor, channels: int,
                q_size: int, offset: int = 0) -> tuple:
    """A dense layer's run entries, weights and per-channel offsets (see :func:`_runs`)."""
    n_out = consumer.out_features
    c = offset + np.arange(channels, dtype=np.int64)
    # input row of the dense layer: channel-first flatten of (channel, pooled position)
    entries = [s, np.zeros_like(s), q * n_out, np.full(s.size, n_out), factor]
    return entries, consumer.weight.T, np.zeros_like(c), c * q_size * n_out


def _conv_transpose_runs(consumer: L.ConvTranspose2d, consumer_in_shape, q, s, factor,
                         channels: int, q_size: int, offset: int = 0) -> tuple:
    """A transposed convolution's run entries, weights and per-channel offsets (see
    :func:`_runs`): pooled position (qy, qx) reaches output (qy·s − p + ky·d, qx·s − p +
    kx·d) through tap (ky, kx), one run over the group's output channels; along a kernel
    row with dilation 1 and one group these runs are contiguous and merge."""
    _, _, wq = consumer_in_shape
    _, ho, wo = consumer.output_shape([consumer_in_shape])
    kh, kw = consumer.kernel_size
    cout, cout_g = consumer.out_channels, consumer.weight.shape[1]
    cin_g = consumer.in_channels // consumer.groups
    (sy, sx), (py, px), (dy, dx) = consumer.stride, consumer.padding, consumer.dilation
    c = offset + np.arange(channels, dtype=np.int64)
    qy, qx = np.divmod(q, wq)
    targets = []
    for ky in range(kh):
        for kx in range(kw):
            oy, ox = qy * sy - py + ky * dy, qx * sx - px + kx * dx
            ok = (oy >= 0) & (ox >= 0) & (oy < ho) & (ox < wo)  # the runs are clipped
            targets.append((s[ok], (oy[ok] * wo + ox[ok]) * cout,
                            np.full(ok.sum(), ky * kw + kx), factor[ok]))
    s, out, tap, factor = (np.concatenate([t[i] for t in targets]) for i in range(4))
    entries = [s, out, tap * cout_g, np.full(s.size, cout_g), factor]
    # [C_in, C_out/g, KH, KW] -> [C_in, KH, KW, C_out/g]
    weights = consumer.weight.transpose(0, 2, 3, 1)
    return entries, weights, (c // cin_g) * cout_g, c * kh * kw * cout_g


#: How each synapse kind lowers to runs: ``(consumer, its input shape, pooled positions q,
#: source positions s, factors, source channels, pooled size, offset of the source's channels
#: in the consumer's input (after a Concat)) -> (entries [s, out, w, length, factor], weights
#: laid out for the runs, channel_out, channel_w)``.
_SYNAPSE_RUNS = {L.Conv2d: _conv_runs, L.Dense: _dense_runs,
                 L.ConvTranspose2d: _conv_transpose_runs}


def _runs(source_shape, chain, consumer: L.Layer | None, consumer_in_shape, offset: int = 0,
          width: int | None = None) -> _Runs:
    """The runs of one synaptic path from a spiking layer of ``source_shape``, whose channels
    start at channel ``offset`` of the ``width`` channels the consumer reads (a Concat's)."""
    channels = source_shape[0] if len(source_shape) == 3 else 1
    pooled, flattened = _pooled_map(chain, source_shape)
    coo = pooled.tocoo()
    q, s, factor = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    n_positions, q_size = pooled.shape[1], pooled.shape[0]
    if consumer is not None:
        lower = next((_SYNAPSE_RUNS[cls] for cls in type(consumer).__mro__
                      if cls in _SYNAPSE_RUNS), None)
        if lower is None:
            raise EvsimValueError(f"the event engine cannot lower {type(consumer).__name__}: "
                                  "add its runs to evsim.simulate.compile._SYNAPSE_RUNS")
        entries, weights, channel_out, channel_w = lower(consumer, consumer_in_shape, q, s,
                                                         factor, channels, q_size, offset)
    else:  # one value per target: an Add, an activation, the readout
        c = offset + np.arange(channels, dtype=np.int64)
        width = channels if width is None else width
        entries = [s, q if flattened else q * width, np.zeros_like(s), np.ones_like(s),
                   factor]
        weights = np.ones(1)
        channel_out, channel_w = (c * q_size if flattened else c), np.zeros_like(c)
    ptr, out, w, length, run_factor = _merge_runs(n_positions, *entries)
    return _Runs(ptr, out, w, length, run_factor, channel_out, channel_w, weights)


def _row(runs: _Runs) -> int:
    """The length of the row every run adds at the target's start, or 0 if they differ
    (then the kernel takes each run as it comes)."""
    lengths = np.unique(runs.length)
    if (len(lengths) == 1 and lengths[0] > 0 and not runs.out.any()
            and not runs.channel_out.any()):
        return int(lengths[0])
    return 0


def _affine_rows(runs: _Runs, fanout: np.ndarray) -> int:
    """1 if every source neuron adds one whole row at the target's start (:func:`_row`),
    neuron i's row i rows after neuron 0's, with factor 1 and a fan-out of one row (a
    Dense layer reading a spiking layer directly): then the kernel computes each event's
    row instead of looking it up, else 0."""
    row = _row(runs)
    positions = len(runs.ptr) - 1
    return int(row > 0 and len(runs.channel_w) == 1 and len(runs.w) == positions
               and np.array_equal(runs.ptr, np.arange(positions + 1))
               and np.array_equal(runs.w, runs.w[0] + row * np.arange(positions))
               and np.all(runs.factor == 1) and np.all(fanout == row))


def _disjoint(runs: _Runs) -> int:
    """1 if every channel of a position reaches the same outputs (one group) and the runs of
    every position write distinct outputs (sorted by output, each ends before the next
    begins), else 0: then the kernel may add a position's events run by run
    (:func:`evsim.simulate.kernels._scatter_positions`), each output's adds still in event
    order. Pooling folded into the runs can make them overlap; in a grouped or depthwise
    convolution, or an Add, consecutive events rarely share outputs and grouping them only
    cost time (the generic depthwise runs ran at half speed)."""
    if runs.channel_out.any():  # several groups: a position's events reach other outputs
        return 0
    position = np.repeat(np.arange(len(runs.ptr) - 1), np.diff(runs.ptr))
    same = position[1:] == position[:-1]
    ends = runs.out[:-1] + runs.length[:-1]
    return int(np.all(runs.out[1:][same] >= ends[same]))


def _per_position(fanout: np.ndarray) -> np.ndarray:
    """A source layer's fan-out map (per neuron, shape ``[C, H, W]`` or ``[N]``) as one
    value per position (``[H·W]``, or ``[N]`` for a 1-D layer): it does not depend on the
    channel, and a table C times smaller stays in cache."""
    if fanout.ndim == 1:
        return fanout
    positions = fanout.reshape(fanout.shape[0], -1)
    if (positions != positions[0]).any():
        raise AssertionError("the fan-out of a position differs between its channels")
    return positions[0]


def _depthwise_window(source_shape, chain, consumer, consumer_in_shape) -> np.ndarray | None:
    """The geometry the depthwise kernel walks (``kernels.WIN_*``), for a depthwise
    convolution (one input channel per group) that reads its source's positions unchanged
    (no pooling, padding or upsampling between, a Concat at most); else None (runs)."""
    if (not isinstance(consumer, L.Conv2d) or consumer.weight.shape[1] != 1
            or len(source_shape) != 3):
        return None
    pooled, flattened = _pooled_map(chain, source_shape)
    identity = sp.identity(pooled.shape[1], dtype=np.float64, format="csr")
    if flattened or pooled.shape != identity.shape or (pooled != identity).nnz:
        return None
    _, width = consumer_in_shape[1:]
    cout, ho, wo = consumer.output_shape([consumer_in_shape])
    return np.array([width, ho, wo, cout, cout // consumer.groups, *consumer.kernel_size,
                     *consumer.stride, *consumer.padding, *consumer.dilation], np.int64)


#: The largest tap table (bytes) a depthwise convolution gets; a larger one walks its windows.
TAP_TABLE_BYTES = 16 << 20


def _with_taps(window: np.ndarray, consumer: L.Conv2d, consumer_in_shape, dst: int,
               b: _Builder) -> np.ndarray:
    """``window`` followed by the tap table fields (``kernels.WIN_TAPS`` .. ``WIN_SCRATCH``):
    the table and its scratch floats, allocated in ``b`` (``dst``: the output buffer the
    table's offsets are relative to), or none (-1, 0, -1) for a 3×3, stride 1, multiplier 1
    window (its own unrolled loop is faster) and a table over :data:`TAP_TABLE_BYTES`."""
    if (consumer.stride == (1, 1) and consumer.kernel_size == (3, 3)
            and consumer.dilation == (1, 1) and window[4] == 1):
        return np.concatenate([window, [-1, 0, -1]])
    table = _depthwise_taps(consumer, consumer_in_shape)
    if table.nbytes > TAP_TABLE_BYTES:
        return np.concatenate([window, [-1, 0, -1]])
    scratch = b.float_buffer(int(window[3]))  # the output channels' floats
    padding = table[..., 0] < 0
    table[..., 0][padding] = scratch - dst
    return np.concatenate([window, [b.ints(table), table.shape[1], scratch]])


def _depthwise_taps(consumer: L.Conv2d, consumer_in_shape) -> np.ndarray:
    """(H·W, P, 2): for each input position of a depthwise convolution, the (output offset,
    weight offset) of every tap that reaches an output, from the event's channel's output
    and weights (channels-last output; weights ``[KH, KW reversed, M]`` per channel, as the
    runs lay them out), padded to P, the most taps of any position, with (−1, 0)."""
    _, h, w = consumer_in_shape
    cout, ho, wo = consumer.output_shape([consumer_in_shape])
    (kh, kw), multiplier = consumer.kernel_size, cout // consumer.groups

    def axis(size: int, n_out: int, taps: int, stride: int, padding: int, dilation: int):
        """(size, taps): the output each tap of each input reaches along one axis, the tap,
        and whether it lies in the output."""
        tap = np.broadcast_to(np.arange(taps), (size, taps))
        reached = np.arange(size)[:, None] + padding - tap * dilation  # stride × output
        ok = (reached % stride == 0) & (reached >= 0) & (reached // stride < n_out)
        return reached // stride, tap, ok

    oy, ky, y_ok = axis(h, ho, kh, consumer.stride[0], consumer.padding[0],
                        consumer.dilation[0])
    ox, kx, x_ok = axis(w, wo, kw, consumer.stride[1], consumer.padding[1],
                        consumer.dilation[1])
    # (h, w, taps along y, taps along x)
    out = (oy[:, None, :, None] * wo + ox[None, :, None, :]) * cout
    weight = (ky[:, None, :, None] * kw + kw - 1 - kx[None, :, None, :]) * multiplier
    ok = y_ok[:, None, :, None] & x_ok[None, :, None, :]
    out, weight, ok = (a.reshape(h * w, -1) for a in (out, weight, ok))
    # each position's reaching taps first, in tap order; as many columns as the most taps
    order = np.argsort(~ok, axis=1, kind="stable")
    pick = order[:, :max(1, int(ok.sum(axis=1).max()))]
    out, weight, ok = (np.take_along_axis(a, pick, 1) for a in (out, weight, ok))
    return np.stack([np.where(ok, out, -1), np.where(ok, weight, 0)], axis=-1)


def _aligned_copy(array: np.ndarray) -> np.ndarray:
    """A copy of a 1-D array whose data starts on a 64-byte boundary."""
    raw = np.empty(array.size + 64 // array.itemsize, array.dtype)
    start = (-raw.ctypes.data % 64) // array.itemsize
    out = raw[start:start + array.size]
    out[:] = array
    return out


class _Compiler:
    """The state of compiling one network: the builder and what each layer put in it.

    One method per layer role lowers a layer to operation rows (:meth:`lower`), in
    topological order; :meth:`readout` and :meth:`program` finish.
    """

    def __init__(self, snn: SpikingNetwork, encoding: str, dtype: np.dtype, window: int,
                 binary: bool):
        self.snn, self.net, self.window, self.binary = snn, snn.network, window, binary
        signal_plan = plan(self.net, encoding)
        self.classes = signal_plan.classes
        self.b = _Builder(dtype)
        self.buffers: dict[str, int] = {}  # float buffer offset of each current-carrying layer
        self.slots: dict[str, int] = {}  # event list of each spiking layer
        self.amps: dict[str, int] = {}  # fparams offset of each spiking layer's amplitude
        self.amplitude: dict[str, np.ndarray] = {}  # the amplitude, broadcastable to the layer
        self.analog: list[tuple] = []
        self.sop_layers = tuple(dict.fromkeys(p.layer for p in signal_plan.paths
                                              if p.counts == "sops"))
        self.pool_layers = tuple(p.layer for p in signal_plan.paths if p.counts == "pool_ops")
        # counts per image: one per neuron, then one total of negative spikes per spiking layer
        self.neuron_layers: list[tuple] = []
        self.pool_outputs: list[tuple] = []
        self.n_counts = 0
        self.n_neurons = sum(self.size(name) for name in snn.neurons)

    def size(self, name: str) -> int:
        return int(np.prod(self.net.shape(name)))

    def buffer(self, name: str, bias=None) -> int:
        """A float buffer for ``name``, set at every step to its bias (one value per channel,
        stored once: :func:`evsim.simulate.kernels._fill` repeats it at every position) or
        to 0."""
        size, b = self.size(name), self.b
        offset = b.float_buffer(size)
        shape = self.net.shape(name)
        channels = shape[0] if len(shape) == 3 else size  # channels-last: repeats per position
        if bias is not None and np.size(bias) != channels:
            raise EvsimValueError(f"layer '{name}': a bias of {np.size(bias)} values for "
                                  f"{channels} channels; give one value per output channel")
        b.op(OP_FILL, dst=offset, size=size, bias=-1 if bias is None else b.floats(bias),
             channels=channels)
        return offset

    def scatter(self, src: str, consumer, consumer_in_shape, dst: int, sop_slot: int) -> None:
        """The scatters of the events reaching ``consumer`` through ``src`` into ``dst``: one
        per events source (several through a Concat)."""
        width = self.net.shape(src)[0] if len(self.net.shape(src)) == 3 else None
        for source, chain, offset in trace_sources(self.net, self.classes, src):
            self.scatter_source(source, chain, offset, width, consumer, consumer_in_shape, dst,
                                sop_slot)

    def scatter_source(self, source: str, chain, offset: int, width: int | None, consumer,
                       consumer_in_shape, dst: int, sop_slot: int) -> None:
        """The scatter of ``source``'s events through ``chain`` into ``dst``, its channels at
        ``offset`` of the ``width`` channels ``consumer`` reads."""
        b = self.b
        shape = self.net.shape(source)
        runs = _runs(shape, chain, consumer, consumer_in_shape, offset, width)
        fanout = _per_position(path_fanout(shape, chain, consumer, consumer_in_shape))
        window = _depthwise_window(shape, chain, consumer, consumer_in_shape)
        if window is not None:
            window = _with_taps(window, consumer, consumer_in_shape, dst, b)
        b.op(OP_SCATTER, slot=self.slots[source], amplitude=self.amps[source],
             channels=shape[0] if len(shape) == 3 else 1, run_ptr=b.ints(runs.ptr),
             run_out=b.ints(runs.out), run_w=b.ints(runs.w), run_len=b.ints(runs.length),
             run_factor=b.floats(runs.factor), channel_w=b.ints(runs.channel_w),
             channel_out=b.ints(runs.channel_out), fanout=b.ints(fanout),
             weights=b.floats(runs.weights), dst=dst, sop_slot=sop_slot, row=_row(runs),
             window=-1 if window is None else b.ints(window), disjoint=_disjoint(runs),
             affine_rows=_affine_rows(runs, fanout))

    def current_of(self, src: str, name: str, counted: bool = True) -> int:
        """The float buffer holding ``src``'s value as ``name`` reads it: its own buffer, or
        one that ``name`` fills from ``src``'s events (their SOPs counted for ``name`` if
        ``counted``; the readout's are not)."""
        if self.classes[src] in (CURRENT, ANALOG):
            return self.buffers[src]
        current = self.buffer(name)
        self.scatter(src, None, None, current, self.sop_layers.index(name) if counted else -1)
        return current

    def lower(self, node) -> None:
        """Lower one layer. Averages (AvgPool, GlobalAvgPool, Pad, Upsample), Concats and
        reshapes (Flatten) of events are folded into their readers' runs and have no rows of
        their own."""
        cls, role = self.classes[node.name], role_of(node.layer)
        if cls == ANALOG:
            self.lower_analog(node)
        elif role == kinds.RESHAPE and cls == CURRENT:
            self.lower_reshape(node)
        elif role in self._LOWER:
            self._LOWER[role](self, node)

    def lower_analog(self, node) -> None:
        """A buffer for an analog value that a dynamic layer or the readout reads."""
        name, net = node.name, self.net
        if (any(self.classes[c] != ANALOG for c in net.consumers(name))
                or name == net.output_name):
            self.buffers[name] = self.b.float_buffer(self.size(name))
            self.analog.append((name, self.buffers[name], self.size(name)))

    def lower_input(self, node) -> None:
        name, size, b = node.name, self.size(node.name), self.b
        self.slots[name] = b.events(size)
        self.amplitude[name] = np.ones(())
        self.amps[name] = b.floats(np.ones(size))
        input_shape = self.net.input_shape
        channels = input_shape[0] if len(input_shape) == 3 else 1
        b.op(OP_RATE, slot=self.slots[name], channels=channels, hw=size // channels,
             window=self.window)

    def lower_synapse(self, node) -> None:
        name, src = node.name, node.inputs[0]
        self.buffers[name] = self.buffer(name, node.layer.bias)
        self.scatter(src, node.layer, self.net.shape(src), self.buffers[name],
                     self.sop_layers.index(name))

    def lower_sum(self, node) -> None:
        name = node.name
        self.buffers[name] = self.buffer(name)
        for src in node.inputs:
            if self.classes[src] in (CURRENT, ANALOG):
                self.b.op(OP_ADD, dst=self.buffers[name], src=self.buffers[src],
                          size=self.size(name))
            else:
                self.scatter(src, None, None, self.buffers[name], self.sop_layers.index(name))

    def lower_reshape(self, node) -> None:
        """A Flatten of currents: channels-first order, copied from the channels-last one."""
        name, src = node.name, node.inputs[0]
        self.buffers[name] = self.b.float_buffer(self.size(name))
        c, h, w = self.net.shape(src)
        self.b.op(OP_COPYPERM, dst=self.buffers[name], src=self.buffers[src], channels=c,
                  hw=h * w)

    def lower_neuron(self, node) -> None:
        name, b = node.name, self.b
        current = self.current_of(node.inputs[0], name)
        spec, shape, size = self.snn.neurons[name], self.net.shape(name), self.size(name)
        self.slots[name] = b.events(size, EMIT_SPARE)
        self.amplitude[name] = spec.threshold
        self.amps[name] = b.floats(_cl(spec.threshold, shape))
        negative = self.n_neurons + len(self.neuron_layers)
        self.neuron_layers.append((name, self.n_counts, size, shape, negative))
        calibrated = spec.allowance > 0
        b.op(OP_NEURON, current=current, size=size, v=b.float_buffer(size),
             theta=self.amps[name], v0=b.floats(_cl(spec.v_init, shape)),
             zero_reset=spec.reset == "zero", burst=spec.burst, slot=self.slots[name],
             counts=self.n_counts, negative=negative,
             allowance=b.float64s([spec.allowance]) if calibrated else -1,
             calibration=b.int_buffer(3 * size) if calibrated else -1, window=self.window,
             negative_theta=(b.floats(_cl(spec.negative_threshold, shape)) if spec.signed
                             else -1),
             uniform=np.unique(spec.threshold).size == 1 and (
                 not spec.signed or np.unique(spec.negative_threshold).size == 1),
             refill=-1, period=0)  # refills are set by _fuse_fills
        self.n_counts += size

    def lower_max_pool(self, node) -> None:
        name, src, b = node.name, node.inputs[0], self.b
        gate = self.snn.max_pool == "gate"  # only the gate keeps this step's counts
        c, h, w = self.net.shape(src)
        windows = spatial_map(node.layer, self.net.shape(src)).tocsr()
        windows.sort_indices()
        per_source = windows.T.tocsr()
        per_source.sort_indices()
        n_win = windows.shape[0]
        # a pool of a neuron layer reads that layer's spike counts: every event it gets
        # added its multiplicity there (K-bit codes add their set bits: not the same sum)
        counts_in = -1 if self.binary else next(
            (offset for layer, offset, *_ in self.neuron_layers if layer == src), -1)
        self.slots[name] = b.events(n_win * c)
        self.amplitude[name] = np.broadcast_to(self.amplitude[src],
                                               self.net.shape(src))[:, :1, :1]
        self.amps[name] = b.floats(_cl(self.amplitude[name], self.net.shape(name)))
        b.op(OP_MAXPOOL, src_slot=self.slots[src], out_slot=self.slots[name], channels=c,
             slots=n_win * c,
             win_ptr=b.ints(per_source.indptr), win_idx=b.ints(per_source.indices),
             member_ptr=b.ints(windows.indptr), member_idx=b.ints(windows.indices),
             cum_in=b.int_buffer(h * w * c) if counts_in < 0 else -1, counts_in=counts_in,
             cum_out=self.pool_output(name, n_win * c),
             dirty=b.int_buffer(n_win * c), dirty_list=b.int_buffer(n_win * c),
             current=b.int_buffer(h * w * c) if gate else -1, peak=b.int_buffer(n_win * c),
             gate=gate, pool_slot=self.pool_layers.index(name),
             touched=b.int_buffer((n_win * c + 63) // 64))

    def pool_output(self, name: str, size: int) -> int:
        """The workspace counters of a pooling layer's cumulative output, noted for the
        result; their offset."""
        offset = self.b.int_buffer(size)
        self.pool_outputs.append((name, offset, self.net.shape(name)))
        return offset

    #: The lowering of each role with rows of its own (of a layer that is not analog).
    _LOWER = {kinds.INPUT: lower_input, kinds.SYNAPSE: lower_synapse, kinds.SUM: lower_sum,
              kinds.NEURON: lower_neuron, kinds.MAX_POOL: lower_max_pool}

    def readout(self) -> int:
        """A buffer that sums the output layer's value over the steps; its offset."""
        out = self.net.output_name
        source_buffer = self.current_of(out, out, counted=False)
        readout = self.b.float_buffer(self.size(out))
        self.b.op(OP_ADD, dst=readout, src=source_buffer, size=self.size(out))
        return readout

    def program(self, readout: int, encoding: str) -> EventProgram:
        """The finished program, its tables concatenated."""
        _fuse_fills(self.b)
        b, dtype, out = self.b, self.b.dtype, self.net.output_name
        return EventProgram(
            ops=np.array(b.ops, dtype=np.int64).reshape(-1, OP_WIDTH),
            iparams=np.concatenate(b.ip) if b.ip else np.zeros(0, np.int64),
            fparams=_aligned_copy(np.concatenate(b.fp) if b.fp else np.zeros(0, dtype)),
            f64params=np.concatenate(b.f64) if b.f64 else np.zeros(1, np.float64),
            float_size=b.float_size, int_size=max(b.int_size, 1),
            event_offsets=np.array(b.event_offsets + [b.event_entries], dtype=np.int64),
            event_sizes=np.array(b.event_sizes, dtype=np.int64),
            event_capacity=max(b.event_entries, 1), analog=tuple(self.analog),
            readout_offset=readout, readout_size=self.size(out),
            neuron_layers=tuple(self.neuron_layers),
            n_counts=self.n_neurons + len(self.neuron_layers), sop_layers=self.sop_layers,
            pool_layers=self.pool_layers, encoding=encoding, dtype=dtype,
            classes=self.classes, binary=self.binary, pool_outputs=tuple(self.pool_outputs))


def compile_program(snn: SpikingNetwork, encoding: str = "analog", dtype=np.float32,
                    window: int = 0, binary: bool = False) -> EventProgram:
    """Compile ``snn`` for the event engine with the given input ``encoding`` and ``dtype``.

    ``window`` > 0 compiles one window of the temporal scheme as one step
    (``snn`` already scaled by :func:`evsim.timescheme.window_network`);
    ``binary`` makes events K-bit codes whose set bits count as spikes and
    SOPs (the ilif scheme, ``snn`` from :func:`evsim.timescheme.binary_network`).
    """
    compiler = _Compiler(snn, encoding, np.dtype(dtype), window, binary)
    for node in snn.network:
        compiler.lower(node)
    return compiler.program(compiler.readout(), encoding)


_PROGRAMS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled(snn: SpikingNetwork, encoding: str = "analog", dtype=np.float32, window: int = 0,
             binary: bool = False) -> EventProgram:
    """:func:`compile_program`, remembered for each spiking network (networks are immutable),
    so that repeated simulations of one network do not rebuild its tables."""
    programs = _PROGRAMS.setdefault(snn, {})
    key = (encoding, np.dtype(dtype).str, window, binary)
    if key not in programs:
        programs[key] = compile_program(snn, encoding, dtype, window, binary)
    return programs[key]


__all__ = ["EventProgram", "compile_program", "compiled", "channels_last"]
