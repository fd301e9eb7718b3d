"""The dense engine's small convolutions of sparse frames: the GEMM's product computed
straight from each zero-padded image, eight output positions to a vector, taking only the
taps that one of those eight reads non-zero, in the GEMM's order and with its rounding, so
the result is :func:`evsim.ann_ops.conv2d`'s bit for bit.

:mod:`evsim.simulate.dense_gather` lists each output position's non-zero inputs, and on
layers of 16 output channels that listing costs more than the products it saves (its
channels fill two vectors). Here the vector runs over positions instead. At stride 1
the GEMM path's product columns are the positions of the padded width, and tap (c, i, j)
of column q reads the padded plane of channel c at q + i·W' + j (W' the padded width).
So eight adjacent columns read eight adjacent inputs, one vector load. Per image:

1. copy the image into a zero-padded plane per channel, and mark its non-zero inputs in
   a bit mask; dilate each mask so that bit q says whether any of q .. q + 7 is non-zero;
2. for each group of eight columns (a *tile*), list the taps (channel, then window row,
   then column: product order) whose eight inputs are not all zero, from one byte of the
   dilated mask per channel and window row;
3. for each output channel, the fused multiply-add chain over the listed taps of
   ``weight · inputs`` into a vector of eight sums from zero, in registers
   (:func:`_chains`), each sum then added to zero as the GEMM adds it to its zeroed
   output. A zero input's product, ±0, changes at most the sign of a zero sum, and that
   last addition makes every zero +0; so skipping it leaves the result as it is (inputs
   are finite: the spikes of a converted network);
4. copy the columns that are output positions into the output, plus bias.

**The GEMM's order.** It holds for one K block (K ≤ 320 products): each output is one
chain, or two where OpenBLAS pairs accumulators (:func:`evsim.simulate.blas_order.paired`:
the block's odd products before its last multiple of 8 in the second, added at the end).
Pairing is fixed per output channel over aligned runs of eight product columns, so a tile
pairs the same channels in every lane when a product's columns come in whole tiles
(H_out · W' a multiple of 8). A paired channel runs both chains in one loop over the
list, with weight tables in which the other chain's products have weight zero.

It runs where :func:`tiles` says: float32, one group, stride 1, no dilation, one K block,
at most 8 window columns, whole tiles, and layers and frames where it beat both other
paths (:data:`MAX_PRODUCTS`, :data:`MAX_RUN_DENSITY`).
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .. import ann_ops
from .. import layers as L
from ..threads import on_threads, shares
from .blas_order import HASWELL, Q, UNROLL_M, GemmOrder, pair_tables
from .dense_conv import LANES, _copy_run, _splat, _vector
from .dense_gather import (_fma_vector, _nonzero_bits, agrees_with_gemm, gemm_order,
                           products_modelled)
from .kernels import _set_bits

#: The tiles are used on layers of at least :data:`MIN_PRODUCTS` and fewer than
#: :data:`MAX_PRODUCTS` multiply-adds per output position (C_out · C_in · kh · kw; the
#: gather takes larger ones) and :data:`MIN_TAPS` taps, on frames at most
#: :data:`MAX_RUN_DENSITY` of whose runs of 8 inputs hold a non-zero one
#: (:func:`occupancy`): a tile lists a tap when any of its eight inputs is non-zero, so
#: its work follows that fraction. Where they beat both the GEMM path and the gather in
#: ``benchmarks/bench_network.py --sparse`` and on random frames (break-even with the GEMM
#: path near 0.6).
MIN_PRODUCTS, MAX_PRODUCTS, MIN_TAPS = 1024, 9216, 4
MAX_RUN_DENSITY = 0.5


def _chains(n_single: int, n_paired: int):
    """An intrinsic ``chains(result, q, row, singles, first, pairs, pair_first, weights,
    stride, taps, offsets, n, plane, base)``: for each output channel of ``singles[first
    ...]`` (``n_single`` of them) and of ``pairs[pair_first ...]`` (``n_paired``), the fused
    multiply-add chain over the listed taps ``taps[:n]`` of ``weights[tap · stride +
    channel]`` times the eight inputs ``plane[base + offsets[tap] ...]``, from zero, in
    registers, stored to ``result[channel · row + q ...]``. A paired channel runs two
    chains, with the weights ``stride / 3`` and ``2 · stride / 3`` further on (the even and
    the odd products' shares), added at the end. Both kinds in one loop keep up to 12
    chains in flight: four alone wait on the multiply-adds' latency."""

    @intrinsic
    def chains(typingctx, result, q, row, singles, first, pairs, pair_first, weights, stride,
               taps, offsets, n, plane, base):
        def codegen(context, builder, signature, args):
            (result_t, _, _, singles_t, _, pairs_t, _, weights_t, _, taps_t, offsets_t, _,
             plane_t, _) = signature.args
            (result_a, q_v, row_v, singles_a, first_v, pairs_a, pair_first_v, weights_a,
             stride_v, taps_a, offsets_a, n_v, plane_a, base_v) = args
            vector = ir.VectorType(ir.FloatType(), LANES)
            fma = _fma_vector(builder, vector)
            index = first_v.type

            def data(array_type, array):
                return context.make_array(array_type)(context, builder, array).data

            def picked(array_type, array, start, count):
                chosen = data(array_type, array)
                return [builder.load(cgutils.gep(builder, chosen, builder.add(
                    start, ir.Constant(index, u)))) for u in range(count)]

            weights_d = data(weights_t, weights_a)
            taps_d, offsets_d = data(taps_t, taps_a), data(offsets_t, offsets_a)
            third = builder.sdiv(stride_v, ir.Constant(index, 3))
            # (channel, the offsets of its chains' weights)
            channels = ([(c, [ir.Constant(index, 0)])
                         for c in picked(singles_t, singles_a, first_v, n_single)]
                        + [(c, [third, builder.add(third, third)])
                           for c in picked(pairs_t, pairs_a, pair_first_v, n_paired)])

            def zero_slot():
                return cgutils.alloca_once_value(builder, cgutils.get_null_value(vector))

            slots = [[zero_slot() for _ in shares] for _, shares in channels]
            with cgutils.for_range(builder, n_v) as loop:
                tap = builder.sext(builder.load(cgutils.gep(builder, taps_d, loop.index)), index)
                at = builder.add(builder.load(cgutils.gep(builder, offsets_d, tap)), base_v)
                source, _ = _vector(context, builder, plane_t, plane_a, at)
                inputs = builder.load(source, align=1)
                row_start = builder.mul(tap, stride_v)
                for (channel, shares), chain_slots in zip(channels, slots):
                    at_weight = builder.add(row_start, channel)
                    for share, slot in zip(shares, chain_slots):
                        weight = builder.load(cgutils.gep(builder, weights_d,
                                                          builder.add(at_weight, share)))
                        builder.store(builder.call(fma, [_splat(builder, vector, weight),
                                                         inputs, builder.load(slot)]), slot)
            for (channel, _), chain_slots in zip(channels, slots):
                total = builder.load(chain_slots[0])
                if len(chain_slots) == 2:
                    total = builder.fadd(total, builder.load(chain_slots[1]))
                # the GEMM adds each block's sum to its output, zeroed first: a sum that
                # underflowed to -0 is stored as +0
                total = builder.fadd(total, cgutils.get_null_value(vector))
                target, _ = _vector(context, builder, result_t, result_a,
                                    builder.add(builder.mul(channel, row_v), q_v))
                builder.store(total, target, align=1)
            return context.get_dummy_value()

        return types.void(result, types.intp, types.intp, singles, types.intp, pairs,
                          types.intp, weights, types.intp, taps, offsets, types.intp, plane,
                          types.intp), codegen

    return chains


_single8, _single4, _single2, _single1 = (_chains(n, 0) for n in (8, 4, 2, 1))
_paired4, _paired2, _paired1 = (_chains(0, n) for n in (4, 2, 1))
_single4_paired4 = _chains(4, 4)


@numba.njit(cache=True, nogil=True, inline="always")
def _all_chains(result, q, row, singles, n_singles, pairs, n_pairs, at, weights, stride,
                taps, offsets, n, plane, base):
    """:func:`_chains` for the ``n_singles`` channels ``singles[at ...]`` (8 at a time,
    then the last 4 with 4 paired ones where there are, then 4, 2, 1) and the ``n_pairs``
    paired channels ``pairs[at ...]`` (4, 2, 1 at a time)."""
    u, v = at, at  # the next single and paired channel
    while n_singles - (u - at) >= 8:
        _single8(result, q, row, singles, u, pairs, v, weights, stride, taps,
                 offsets, n, plane, base)
        u += 8
    if n_singles - (u - at) == 4 and n_pairs >= 4:  # 16 channels' usual tile: 12 chains
        _single4_paired4(result, q, row, singles, u, pairs, v, weights, stride, taps,
                         offsets, n, plane, base)
        u += 4
        v += 4
    if n_singles - (u - at) >= 4:
        _single4(result, q, row, singles, u, pairs, v, weights, stride, taps,
                 offsets, n, plane, base)
        u += 4
    if n_singles - (u - at) >= 2:
        _single2(result, q, row, singles, u, pairs, v, weights, stride, taps,
                 offsets, n, plane, base)
        u += 2
    if n_singles - (u - at) >= 1:
        _single1(result, q, row, singles, u, pairs, v, weights, stride, taps,
                 offsets, n, plane, base)
    while n_pairs - (v - at) >= 4:
        _paired4(result, q, row, singles, u, pairs, v, weights, stride, taps,
                 offsets, n, plane, base)
        v += 4
    if n_pairs - (v - at) >= 2:
        _paired2(result, q, row, singles, u, pairs, v, weights, stride, taps,
                 offsets, n, plane, base)
        v += 2
    if n_pairs - (v - at) >= 1:
        _paired1(result, q, row, singles, u, pairs, v, weights, stride, taps,
                 offsets, n, plane, base)


@intrinsic
def _list_field(typingctx, taps, at, field_taps, row, first):
    """``taps[at + e] = first + field_taps[row + e]`` for e < 8 (int32): one vector load,
    add and store, whatever the field's count (the caller advances ``at`` by it)."""

    def codegen(context, builder, signature, args):
        taps_t, _, field_taps_t, _, _ = signature.args
        taps_a, at_v, field_taps_a, row_v, first_v = args
        vector = ir.VectorType(ir.IntType(32), LANES)

        def pointer(array_type, array, index):
            data = context.make_array(array_type)(context, builder, array).data
            return builder.bitcast(cgutils.gep(builder, data, index), vector.as_pointer())

        lanes = builder.load(pointer(field_taps_t, field_taps_a, row_v), align=4)
        listed = builder.add(lanes, _splat(builder, vector, first_v))
        builder.store(listed, pointer(taps_t, taps_a, at_v), align=4)
        return context.get_dummy_value()

    return types.void(taps, types.intp, field_taps, types.intp, types.int32), codegen


@numba.njit(cache=True, nogil=True)
def _mark(padded, masks, width):
    """``masks[c]``: bit q set where any of ``padded[c, q .. q + width − 1]`` is non-zero
    (the planes' length a multiple of 8, the masks at least two words longer than they
    need)."""
    channels, length = padded.shape
    flat = padded.reshape(-1)
    for c in range(channels):
        words = masks[c]
        words[:] = 0
        for q in range(0, length, LANES):
            words[q >> 6] |= _nonzero_bits(flat, c * length + q) << np.uint64(q & 63)
        for w in range(words.shape[0] - 1):
            low, high = words[w], words[w + 1]
            dilated = low
            for d in range(1, width):
                dilated |= (low >> np.uint64(d)) | (high << np.uint64(64 - d))
            words[w] = dilated


@numba.njit(cache=True, nogil=True)
def tile_frames(x, lo, hi, step, weights, bias, out, kh, kw, ph, pw, mode, singles,
                n_singles, pairs, n_pairs, last_mode, last_singles, last_n_singles,
                last_pairs, last_n_pairs):
    """Frames [lo, hi) of ``x`` (F, C_in, H, W), C-contiguous, taken ``step`` to a product
    from 0 as :func:`ann_ops.conv2d` takes them (lo a multiple of ``step``), into ``out``
    (F, C_out, H_out, W_out), C-contiguous. ``weights`` (K, 3·C_out): product k's weights
    (k = (c·kh + i)·kw + j), then those of the even-chain products (the others zero), then
    the odd ones'. Per product column pattern ("mode", of ``mode``), ``singles`` the
    channels of one chain and ``pairs`` those of two; the ``last_`` tables for the last
    product when it has fewer frames."""
    frames, cin, h, w = x.shape
    k_total, stride = weights.shape
    cout, ho, wo = out.shape[1], out.shape[2], out.shape[3]
    wp = w + 2 * pw
    run = ho * wp  # product columns per image, a multiple of 8
    tiles = run // LANES
    length = ((h + 2 * ph) * wp + kw - 1 + LANES - 1) // LANES * LANES + LANES
    padded = np.zeros((cin, length), np.float32)
    flat_padded = padded.reshape(-1)
    masks = np.zeros((cin, length // 64 + 3), np.uint64)
    used_words = (run + 63) // 64
    groups = cin * kh
    fields = np.zeros((used_words * 8, groups), np.uint8)
    # the taps j of each field (a byte whose bit j says tap j is needed), in order, and
    # how many there are: a tile lists each group's taps by one 8-lane add and store
    field_taps = np.zeros((1 << kw, LANES), np.int32)
    field_counts = np.zeros(1 << kw, np.int64)
    window = np.uint8((1 << kw) - 1)
    for field in range(1 << kw):
        for j in range(kw):
            if (field >> j) & 1:
                field_taps[field, field_counts[field]] = j
                field_counts[field] += 1
    offsets = np.empty(k_total, np.int64)
    for c in range(cin):
        for i in range(kh):
            for j in range(kw):
                offsets[(c * kh + i) * kw + j] = c * length + i * wp + j
    taps = np.empty(k_total + LANES, np.int32)
    result = np.empty((cout, run), np.float32)
    flat_x, flat_weights = x.reshape(-1), weights.reshape(-1)
    has_bias = bias.shape[0] > 0
    zero = np.float32(0)
    last_start = (frames - 1) // step * step
    flat_singles, flat_pairs = singles.reshape(-1), pairs.reshape(-1)
    flat_last_singles, flat_last_pairs = last_singles.reshape(-1), last_pairs.reshape(-1)
    flat_field_taps = field_taps.reshape(-1)
    for f in range(lo, hi):
        m = (f - lo) % step
        table, one, n_one, two, n_two = mode, flat_singles, n_singles, flat_pairs, n_pairs
        if f >= last_start and frames - last_start < step:  # the last, shorter product
            table, one, n_one = last_mode, flat_last_singles, last_n_singles
            two, n_two = flat_last_pairs, last_n_pairs
        for c in range(cin):
            source = (f * cin + c) * h * w
            for r in range(h):
                _copy_run(flat_padded, c * length + (r + ph) * wp + pw, flat_x, source + r * w,
                          w, zero, False)
        _mark(padded, masks, LANES)
        # byte t of channel c's dilated mask shifted by i·wp: the taps (c, i, ·) of tile t
        for c in range(cin):
            words = masks[c]
            for i in range(kh):
                first, shift = (i * wp) >> 6, np.uint64((i * wp) & 63)
                # byte t: bits 8t .. 8t + 7 (a slice assignment of the words viewed as
                # bytes made the whole kernel 1.16-1.22x as long)
                g = c * kh + i
                for v in range(used_words):
                    word = words[first + v] >> shift
                    if shift:
                        word |= words[first + v + 1] << (np.uint64(64) - shift)
                    for byte in range(8):
                        fields[v * 8 + byte, g] = np.uint8((word >> np.uint64(8 * byte))
                                                           & np.uint64(255))
        for t in range(tiles):
            listed = 0
            for g in range(groups):
                field = fields[t, g] & window
                _list_field(taps, listed, flat_field_taps, LANES * field, np.int32(g * kw))
                listed += field_counts[field]
            q = t * LANES
            md = table[m * run + q]
            _all_chains(result, q, run, one, n_one[md], two, n_two[md], md * cout,
                        flat_weights, stride, taps, offsets, listed, flat_padded, q)
        for co in range(cout):
            b = bias[co] if has_bias else zero
            for oy in range(ho):
                _copy_run(out[f, co, oy], 0, result[co], oy * wp, wo, b, has_bias)


@numba.njit(cache=True, nogil=True)
def _occupancy(frames, every):
    """(non-zero values, runs of 8 holding one, values, runs) of every ``every``-th row of
    ``frames`` (F, N), float32, C-contiguous; runs from each row's start, its last one
    shorter where N is not a multiple of 8."""
    count, size = frames.shape
    whole = size // LANES * LANES
    flat = frames.reshape(-1)
    values, runs, sampled = 0, 0, 0
    for f in range(0, count, every):
        first = f * size
        for start in range(first, first + whole, LANES):
            bits = _nonzero_bits(flat, start)
            values += _set_bits(bits)
            runs += bits != 0
        tail = 0
        for i in range(first + whole, first + size):
            tail += flat[i] != 0
        values += tail
        runs += tail > 0
        sampled += 1
    return values, runs, sampled * size, sampled * ((size + LANES - 1) // LANES)


#: :func:`occupancy` reads every this many frames: the rule needs an estimate, and a full
#: pass over the frames cost a seventh of a small layer's tiles (one thread).
SAMPLE_EVERY = 4


def occupancy(x: np.ndarray, every: int = SAMPLE_EVERY) -> tuple[float, float]:
    """(density, run density) of frames ``x`` (F, ...) float32, C-contiguous, from every
    ``every``-th frame (the first included): the fraction of their values that are
    non-zero, and of their runs of 8 adjacent values (from each frame's start, in memory
    order) that hold one. Spikes cluster, so the second, which sets the tiles' work, is
    often well below the 1 − (1 − density)⁸ of scattered ones."""
    if x.size == 0:
        return 0.0, 0.0
    values, runs, n_values, n_runs = _occupancy(x.reshape(len(x), -1), every)
    return values / n_values, runs / n_runs


def _weights(layer: L.Conv2d) -> np.ndarray:
    """(K, 3·C_out) float32: each product's weights, then the even chain's share (zero
    where the product goes to the odd chain), then the odd chain's (zero elsewhere)."""
    cout = layer.weight.shape[0]
    plain = layer.weight.reshape(cout, -1).T.astype(np.float32)
    k = np.arange(len(plain))[:, None]
    odd = (k < len(plain) // UNROLL_M * UNROLL_M) & (k % 2 == 1)
    zero = np.float32(0)
    return np.ascontiguousarray(
        np.concatenate([plain, np.where(odd, zero, plain), np.where(odd, plain, zero)], axis=1))


@functools.lru_cache(maxsize=64)
def _tables(channels: int, n: int, order: GemmOrder) -> tuple:
    """(mode, singles, n_singles, pairs, n_pairs) of a product with ``channels`` output
    channels and ``n`` columns summed in ``order``: :func:`blas_order.pair_tables` with
    each mode's channels of one chain listed too."""
    t = pair_tables(channels, n, order)
    singles = np.zeros((len(t.n_channels), channels), np.int64)
    n_singles = np.zeros(len(t.n_channels), np.int64)
    for md in range(len(t.n_channels)):
        alone = np.setdiff1d(np.arange(channels), t.channels[md, :t.n_channels[md]])
        singles[md, :len(alone)] = alone
        n_singles[md] = len(alone)
    return t.mode, singles, n_singles, t.channels, t.n_channels


def tile_conv(layer: L.Conv2d, x: np.ndarray, threads: int, out: np.ndarray,
              order: GemmOrder | None = None) -> np.ndarray:
    """``layer`` of ``x`` (B, C_in, H, W) float32, C-contiguous, into ``out`` (B, C_out,
    H_out, W_out), C-contiguous, each product summed in ``order`` (by default this
    machine's, :func:`~evsim.simulate.dense_gather.gemm_order`): :func:`ann_ops.conv2d`'s
    result with the dense engine's lay-out, bit for bit where :func:`tiles` (for finite
    inputs); whole products (its groups of images) shared among ``threads``, so that any
    share gives the same bits."""
    order = order or gemm_order() or HASWELL
    cout, cin, kh, kw = layer.weight.shape
    _, ho, _ = layer.output_shape([x.shape[1:]])
    step = ann_ops.images_per_product(layer, x.shape[1:])
    width = ann_ops.product_row_width(layer, x.shape[1:])
    weights = _weights(layer)
    bias = (np.empty(0, np.float32) if layer.bias is None
            else np.ascontiguousarray(layer.bias, np.float32))
    whole = _tables(cout, step * ho * width, order)
    rest = len(x) % step
    last = _tables(cout, rest * ho * width, order) if rest else whole

    def images(lo: int, hi: int) -> None:
        tile_frames(x, lo, hi, step, weights, bias, out, kh, kw, *layer.padding, *whole,
                    *last)

    on_threads(images, shares(len(x), 4 * threads, unit=step,
                              item_size=cin * kh * kw * ho * width), threads)
    return out


def fits_shape(layer: L.Conv2d, input_shape: tuple, dtype) -> bool:
    """Whether the kernel takes ``layer`` on inputs of ``input_shape`` (C, H, W) and
    ``dtype``: float32, one group, stride 1, no dilation, at least two output channels
    (NumPy takes a one-row product to another BLAS routine), one K block, at most 8 window
    columns, and whole tiles (H_out times the padded width a multiple of 8)."""
    cout, cin, kh, kw = layer.weight.shape
    if not (np.dtype(dtype) == np.float32 and layer.groups == 1 and layer.stride == (1, 1)
            and layer.dilation == (1, 1) and cout >= 2 and kw <= 8
            and cin * kh * kw <= Q):
        return False
    _, ho, _ = layer.output_shape([tuple(input_shape)])
    return ho * ann_ops.product_row_width(layer, input_shape) % LANES == 0


def may_tile(layer: L.Conv2d, input_shape: tuple, dtype) -> bool:
    """Whether the dense engine may take :func:`tile_conv` for ``layer`` (on sparse enough
    frames): it fits, and its size is within the rule of :data:`MAX_PRODUCTS`."""
    _, _, kh, kw = layer.weight.shape
    return (fits_shape(layer, input_shape, dtype) and kh * kw >= MIN_TAPS
            and MIN_PRODUCTS <= layer.weight.size < MAX_PRODUCTS)


def tiles(layer: L.Conv2d, x: np.ndarray, run_density: float) -> bool:
    """Whether the dense engine computes ``layer`` of ``x``, ``run_density`` of whose runs
    of 8 inputs hold a non-zero one (:func:`occupancy`), by :func:`tile_conv`."""
    return (run_density <= MAX_RUN_DENSITY and may_tile(layer, x.shape[1:], x.dtype)
            and matches_blas_tiles() and products_modelled(layer, x, gemm_order()))


#: Convolutions the probe checks (C_in, C_out, H, W, window, stride, padding, frames):
#: between them, several row blocks and halved ones, the first row block's 4-column panels,
#: 12-column panels whose last tile falls on either side, 8-, 4-, 2- and 1-column panels,
#: K from 9 to 315 (whose last 3 products follow the block's last multiple of 8), 3 × 3
#: and 5 × 5 windows (ten frames: above the 100³ multiply-adds that SKYLAKEX models).
PROBES = ((16, 16, 28, 28, 3, 1, 1, 7), (3, 47, 30, 30, 3, 1, 1, 3),
          (35, 20, 13, 14, 3, 1, 1, 9), (1, 2, 6, 6, 3, 1, 0, 5), (4, 6, 12, 12, 5, 1, 2, 10))


@functools.cache
def matches_blas_tiles() -> bool:
    """Whether :func:`tile_conv`, in the order this machine's BLAS follows
    (:func:`~evsim.simulate.dense_gather.gemm_order`), equals :func:`ann_ops.conv2d` bit
    for bit here on every probe in :data:`PROBES`
    (:func:`~evsim.simulate.dense_gather.agrees_with_gemm`)."""
    order = gemm_order()
    return order is not None and agrees_with_gemm(tile_conv, PROBES, 1, order)


__all__ = ["tile_conv", "tile_frames", "tiles", "occupancy", "fits_shape", "may_tile",
           "matches_blas_tiles"]
