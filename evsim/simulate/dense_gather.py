"""The dense engine's convolutions of sparse frames: each output sums only its non-zero
inputs, in the order and with the rounding of the GEMM path, so the result is
:func:`evsim.ann_ops.conv2d`'s bit for bit.

A spiking layer's frames are mostly zeros (5-15 % of neurons fire per step in converted
networks), and a GEMM multiplies every one of them. Adding a zero product to a sum leaves
it unchanged, so a sum over the non-zero products alone, taken in the GEMM's order, gives
the GEMM's result: :mod:`evsim.simulate.blas_order` models the orders of OpenBLAS's
kernel families, and :func:`gemm_order` picks the one this machine's BLAS follows, checked
on probes, before the engine relies on it.

Per output position the kernel (:func:`gather_frames`):

1. reads which of its window's inputs are non-zero from bit masks of the frame's rows
   (one word per row and channel, computed once per frame), several channels' windows
   packed into one 64-bit word per position;
2. lists the non-zero inputs in product order (channel, then tap) from those words;
3. for each K block of the product, adds ``weight · input`` for the listed inputs to
   accumulators held in registers, eight channels to a vector, one fused multiply-add
   each (:func:`_accumulator`); where BLAS pairs accumulators, two chains for the 8
   channels holding them, the first such vector's in the same loop, any others' in loops
   of their own (:func:`_pair_accumulate`);
4. writes the position's C_out sums, plus bias, into the output.

It runs where :func:`gathers` says: float32, one group, no dilation, rows of at most 64
padded columns, and layers and frames where it is the faster of the two
(:func:`worth_gathering`; both give the same bits).
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
from ..threads import _threadpool_limits, on_threads, one_blas_thread, shares
from .blas_order import HASWELL, ORDERS, GemmOrder, block_ends, modelled, pair_tables
from .dense_conv import LANES, _splat, _vector
from .kernels import _set_bits, _trailing_zeros, _u

#: Widest padded row a frame's bit masks hold (one 64-bit word per row).
MAX_ROW = 64

#: The gather is used on layers of at least :data:`MIN_PRODUCTS` multiply-adds per output
#: position (C_out · C_in · kh · kw) and :data:`MIN_TAPS` taps, on frames with at most
#: :data:`MAX_DENSITY` of their inputs non-zero (:data:`WIDE_DENSITY` from
#: :data:`WIDE_PRODUCTS` multiply-adds): where it beat the GEMM path in
#: ``benchmarks/bench_network.py --sparse`` on this project's models. On smaller layers,
#: or 1 × 1 ones, its work per position outweighs the products it skips.
MIN_PRODUCTS, WIDE_PRODUCTS, MIN_TAPS = 4096, 9216, 4
MAX_DENSITY, WIDE_DENSITY = 0.15, 0.25


def _fma_vector(builder, vector):
    return cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vector, [vector] * 3), f"llvm.fma.v{LANES}f32")


def _chain_step(builder, fma, weight, value, slot):
    builder.store(builder.call(fma, [weight, value, builder.load(slot)]), slot)


def _accumulator(vectors: int, paired: bool):
    """An intrinsic ``accumulate(total, at, first, weights, stride, taps, values, lo, hi,
    pair_total, pair_first, start, pair_end)``: for the ``vectors`` × 8 channels from
    ``first``, the fused multiply-add chain ``Σ weights[taps[i] · stride + channel] ·
    values[i]`` over i in [lo, hi), from zero, in registers, then added to
    ``total[at + first ...]``. With ``paired``, in the same loop, the two chains of the 8
    channels from ``pair_first`` of a K block starting at product ``start``: products at
    an odd offset from it and before ``pair_end`` into one, the others into the second,
    then ``pair_total[pair_first ...] += (first + second)``. A product goes to the chain
    not taking it as ``weight · (value · 0)``, adding ±0, which leaves a sum as it is: no
    branch on the parity. (Without ``paired`` the last four arguments are ignored.)"""

    @intrinsic
    def accumulate(typingctx, total, at, first, weights, stride, taps, values, lo, hi,
                   pair_total, pair_first, start, pair_end):
        def codegen(context, builder, signature, args):
            (total_t, _, _, weights_t, _, taps_t, values_t, _, _, pair_total_t) = \
                signature.args[:10]
            (total_a, at_v, first_v, weights_a, stride_v, taps_a, values_a, lo_v, hi_v,
             pair_total_a, pair_first_v, start_v, pair_end_v) = args
            vector = ir.VectorType(ir.FloatType(), LANES)
            fma = _fma_vector(builder, vector)

            def zero_slot():
                return cgutils.alloca_once_value(builder, cgutils.get_null_value(vector))

            sums = [zero_slot() for _ in range(vectors)]
            even, odd = zero_slot(), zero_slot()
            tap_data = context.make_array(taps_t)(context, builder, taps_a).data
            value_data = context.make_array(values_t)(context, builder, values_a).data
            with cgutils.for_range(builder, hi_v, start=lo_v) as loop:
                tap = builder.load(cgutils.gep(builder, tap_data, loop.index))
                scalar = builder.load(cgutils.gep(builder, value_data, loop.index))
                value = _splat(builder, vector, scalar)
                row = builder.mul(tap, stride_v)
                base = builder.add(row, first_v)
                for u, slot in enumerate(sums):
                    source, _ = _vector(context, builder, weights_t, weights_a,
                                        builder.add(base, ir.Constant(base.type, LANES * u)))
                    _chain_step(builder, fma, builder.load(source, align=1), value, slot)
                if paired:
                    source, _ = _vector(context, builder, weights_t, weights_a,
                                        builder.add(row, pair_first_v))
                    weight = builder.load(source, align=1)
                    parity = builder.trunc(builder.sub(tap, start_v), ir.IntType(1))
                    is_odd = builder.and_(builder.icmp_signed("<", tap, pair_end_v), parity)
                    odd_share = builder.uitofp(is_odd, ir.FloatType())
                    even_share = builder.fsub(ir.Constant(ir.FloatType(), 1.0), odd_share)
                    _chain_step(builder, fma, weight,
                                _splat(builder, vector, builder.fmul(scalar, even_share)), even)
                    _chain_step(builder, fma, weight,
                                _splat(builder, vector, builder.fmul(scalar, odd_share)), odd)
            base = builder.add(at_v, first_v)
            for u, slot in enumerate(sums):
                target, _ = _vector(context, builder, total_t, total_a,
                                    builder.add(base, ir.Constant(base.type, LANES * u)))
                builder.store(builder.fadd(builder.load(slot), builder.load(target, align=1)),
                              target, align=1)
            if paired:
                target, _ = _vector(context, builder, pair_total_t, pair_total_a, pair_first_v)
                both = builder.fadd(builder.load(even), builder.load(odd))
                builder.store(builder.fadd(both, builder.load(target, align=1)), target,
                              align=1)
            return context.get_dummy_value()

        return types.void(total, types.intp, types.intp, weights, types.intp, taps, values,
                          types.intp, types.intp, pair_total, types.intp, types.intp,
                          types.intp), codegen

    return accumulate


_accumulate8, _accumulate4, _accumulate2, _accumulate1 = (
    _accumulator(n, False) for n in (8, 4, 2, 1))
_accumulate8p, _accumulate4p, _accumulate2p, _accumulate1p, _accumulate0p = (
    _accumulator(n, True) for n in (8, 4, 2, 1, 0))


@numba.njit(cache=True, nogil=True, inline="always")
def _accumulate_all(total, at, weights, stride, taps, values, lo, hi, pair_total, pair_first,
                    start, pair_end):
    """:func:`_accumulator` over every channel vector (``stride`` channels, a multiple of
    8), 64 channels at a time and then 32, 16, 8; the paired chains of the 8 channels from
    ``pair_first`` (if ≥ 0) in the first of these loops."""
    first = 0
    pair = pair_first >= 0
    while stride - first >= 64:
        if pair:
            _accumulate8p(total, at, first, weights, stride, taps, values, lo, hi, pair_total,
                          pair_first, start, pair_end)
            pair = False
        else:
            _accumulate8(total, at, first, weights, stride, taps, values, lo, hi, pair_total,
                         0, 0, 0)
        first += 64
    for vectors in (4, 2, 1):
        if stride - first >= 8 * vectors:
            if pair:
                if vectors == 4:
                    _accumulate4p(total, at, first, weights, stride, taps, values, lo, hi,
                                  pair_total, pair_first, start, pair_end)
                elif vectors == 2:
                    _accumulate2p(total, at, first, weights, stride, taps, values, lo, hi,
                                  pair_total, pair_first, start, pair_end)
                else:
                    _accumulate1p(total, at, first, weights, stride, taps, values, lo, hi,
                                  pair_total, pair_first, start, pair_end)
                pair = False
            elif vectors == 4:
                _accumulate4(total, at, first, weights, stride, taps, values, lo, hi,
                             pair_total, 0, 0, 0)
            elif vectors == 2:
                _accumulate2(total, at, first, weights, stride, taps, values, lo, hi,
                             pair_total, 0, 0, 0)
            else:
                _accumulate1(total, at, first, weights, stride, taps, values, lo, hi,
                             pair_total, 0, 0, 0)
            first += 8 * vectors


@numba.njit(cache=True, nogil=True, inline="always")
def _pair_accumulate(pair_total, pair_first, weights, stride, taps, values, lo, hi, start,
                     pair_end):
    """The paired chains alone (:func:`_accumulator` with no channel vectors)."""
    _accumulate0p(pair_total, 0, 0, weights, stride, taps, values, lo, hi, pair_total,
                  pair_first, start, pair_end)


@intrinsic
def _nonzero_bits(typingctx, values, index):
    """Bit i set where ``values[index + i]`` is not zero, i < 8 (one vector compare and
    ``movmskps``); the eight values must lie inside the array."""

    def codegen(context, builder, signature, args):
        pointer, vector = _vector(context, builder, signature.args[0], args[0], args[1])
        nonzero = builder.fcmp_unordered("!=", builder.load(pointer, align=1),
                                         cgutils.get_null_value(vector))
        bits = builder.bitcast(nonzero, ir.IntType(LANES))
        return builder.zext(bits, ir.IntType(64))

    return types.uint64(values, types.intp), codegen


@numba.njit(cache=True, nogil=True)
def _row_masks(x, f, masks, ph, pw):
    """``masks[c, ph + y]`` = the bits ``pw + x`` of frame ``f``'s non-zero inputs of
    channel c and row y; the padding rows zero. Eight inputs per vector compare wherever
    eight lie inside ``x`` (those past the row's end are masked off)."""
    _, channels, h, w = x.shape
    flat = x.reshape(-1)
    row_bits = np.uint64(0xFFFFFFFFFFFFFFFF) >> np.uint64(64 - w)
    masks[:] = 0
    for c in range(channels):
        for y in range(h):
            first = ((f * channels + c) * h + y) * w
            word = np.uint64(0)
            if first + 64 <= flat.shape[0]:
                for column in range(0, w, LANES):
                    word |= _nonzero_bits(flat, first + column) << np.uint64(column)
                word &= row_bits
            else:
                for column in range(w):
                    word |= np.uint64(flat[first + column] != 0) << np.uint64(column)
            masks[c, ph + y] = word << np.uint64(pw)


@numba.njit(cache=True, nogil=True)
def gather_frames(x, lo, hi, step, weights, bias, out, kh, kw, sy, sx, ph, pw, width,
                   ends, pair_ends, mode, vectors, n_vectors, channels, n_channels,
                   last_mode, last_vectors, last_n_vectors, last_channels, last_n_channels):
    """Frames [lo, hi) of ``x`` (F, C_in, H, W), C-contiguous, taken ``step`` to a product
    from 0 as :func:`ann_ops.conv2d` takes them (lo a multiple of ``step``), into ``out``
    (F, C_out, H_out, W_out), C-contiguous. ``weights`` (K, S): the products' weights,
    product k = (c·kh + i)·kw + j in row k, channels padded with zeros to S (a multiple of
    8). ``ends``/``pair_ends``: :func:`blas_order.block_ends`; the tables: a whole product's
    :class:`blas_order.PairTables`, and the last product's (the ``last_`` ones) when it
    has fewer frames."""
    frames, cin, h, w = x.shape
    k_total, stride = weights.shape
    cout, ho, wo = out.shape[1], out.shape[2], out.shape[3]
    taps = kh * kw
    per_word = 64 // taps  # channels whose windows share one word
    n_words = (cin + per_word - 1) // per_word
    flat_weights, flat_x, flat_out = weights.reshape(-1), x.reshape(-1), out.reshape(-1)
    plane = h * w
    # where tap t of a word's bits reads, from its first channel's window corner (65
    # entries: a word with no bit left gives t = 64, read and then dropped)
    reach = np.zeros(65, np.int64)
    for t in range(per_word * taps):
        c, tap = t // taps, t % taps
        reach[t] = c * plane + (tap // kw) * w + tap % kw
    masks = np.zeros((step, cin, h + 2 * ph + kh), np.uint64)
    words = np.zeros(n_words * wo, np.uint64)
    shifts = np.arange(wo).astype(np.uint64) * np.uint64(sx)
    window_row = np.uint64((1 << kw) - 1)
    listed_taps = np.empty(k_total + 8, np.int64)
    listed_values = np.empty(k_total + 8, np.float32)
    sums = np.zeros(wo * stride, np.float32)
    paired_sums = np.zeros(stride, np.float32)
    splits = np.zeros(ends.shape[0], np.int64)  # per K block: where its listed inputs end
    has_bias = bias.shape[0] > 0
    n_blocks = ends.shape[0] - 1
    for start in range(lo, hi, step):
        n = min(step, frames - start)
        if n < step:  # the last product, with fewer frames: its own order
            mode, vectors, n_vectors = last_mode, last_vectors, last_n_vectors
            channels, n_channels = last_channels, last_n_channels
        for m in range(n):
            _row_masks(x, start + m, masks[m], ph, pw)
        for m in range(n):
            f = start + m
            for oy in range(ho):
                for g in range(n_words):
                    row_words = words[g * wo:(g + 1) * wo]
                    row_words[:] = 0
                    for c in range(g * per_word, min(cin, (g + 1) * per_word)):
                        lift = np.uint64((c - g * per_word) * taps)
                        for i in range(kh):
                            row = masks[m, c, oy * sy + i]
                            lift_i = lift + np.uint64(i * kw)
                            for ox in range(wo):
                                row_words[ox] |= ((row >> shifts[ox]) & window_row) << lift_i
                sums[:] = 0
                for ox in range(wo):
                    at = ox * stride
                    corner = f * cin * plane + (oy * sy - ph) * w + ox * sx - pw
                    listed, boundary = 0, 0
                    for g in range(n_words):
                        word = words[g * wo + ox]
                        count = _set_bits(word)
                        first_tap = g * per_word * taps
                        first_input = corner + g * per_word * plane
                        # where each K block ending in this word's taps ends in the list:
                        # the word's bits below its end counted (a scan of the list for
                        # the first tap past it ran 1.02-1.04x as long)
                        span_end = first_tap + per_word * taps
                        while boundary < n_blocks - 1 and ends[boundary] < span_end:
                            below = np.uint64(ends[boundary] - first_tap)
                            splits[boundary] = listed + _set_bits(
                                word & ((np.uint64(1) << below) - np.uint64(1)))
                            boundary += 1
                        # eight entries up to a count of eight (those past it are
                        # overwritten next): a loop that mostly runs exactly eight times,
                        # whose exit is then predicted (at least four entries ran
                        # 1.02-1.06x as long on 5-8 % frames). Indices
                        # unsigned (_u: no wrap-around code); an entry past the count
                        # reads its word's window corner, clipped to the frames' start
                        for e in range(8 if count <= 8 else count):
                            t = _trailing_zeros(word)
                            word &= word - np.uint64(1)
                            listed_taps[_u(listed + e)] = first_tap + t
                            listed_values[_u(listed + e)] = flat_x[
                                _u(max(first_input + reach[_u(t)], 0))]
                        listed += count
                    for r in range(boundary, n_blocks):
                        splits[r] = listed
                    p = (m * ho + oy) * width + ox
                    md = mode[p]
                    pairs = n_vectors[md]
                    for r in range(pairs):
                        v = vectors[md, r]
                        for lane in range(LANES):
                            paired_sums[v + lane] = 0
                    block_lo, block_start = 0, 0
                    for b in range(n_blocks):
                        block_hi = splits[b]
                        if block_hi > block_lo:
                            # the first paired vector's chains share the main loop
                            v = -1 if pairs == 0 else vectors[md, 0]
                            _accumulate_all(sums, at, flat_weights, stride, listed_taps,
                                            listed_values, block_lo, block_hi, paired_sums,
                                            v, block_start, pair_ends[b])
                            for r in range(1, pairs):
                                _pair_accumulate(paired_sums, vectors[md, r], flat_weights,
                                                 stride, listed_taps, listed_values,
                                                 block_lo, block_hi, block_start,
                                                 pair_ends[b])
                        block_lo, block_start = block_hi, ends[b]
                    for r in range(n_channels[md]):
                        ch = channels[md, r]
                        sums[at + ch] = paired_sums[ch]
                for ch in range(cout):
                    target = (f * cout + ch) * ho * wo + oy * wo
                    b = bias[ch] if has_bias else np.float32(0)
                    for ox in range(wo):
                        total = sums[ox * stride + ch]
                        flat_out[target + ox] = total + b if has_bias else total


def _weights(layer: L.Conv2d) -> np.ndarray:
    """(K, S) float32: product k's weights for every output channel, padded with zero
    channels to S, a multiple of 8."""
    cout = layer.weight.shape[0]
    table = np.zeros((layer.weight[0].size, (cout + 7) // 8 * 8), np.float32)
    table[:, :cout] = layer.weight.reshape(cout, -1).T
    return table


def gather_conv(layer: L.Conv2d, x: np.ndarray, threads: int, out: np.ndarray,
                order: GemmOrder | None = None) -> np.ndarray:
    """``layer`` of ``x`` (B, C_in, H, W) float32, C-contiguous, into ``out`` (B, C_out,
    H_out, W_out), C-contiguous, each product summed in ``order`` (by default this
    machine's, :func:`gemm_order`): :func:`ann_ops.conv2d`'s result with the dense engine's
    lay-out, bit for bit where :func:`gathers`; groups of images shared among ``threads``
    as that function shares them."""
    order = order or gemm_order() or HASWELL
    cout, cin, kh, kw = layer.weight.shape
    _, ho, _ = layer.output_shape([x.shape[1:]])
    step = ann_ops.images_per_product(layer, x.shape[1:])
    width = ann_ops.product_row_width(layer, x.shape[1:])
    weights = _weights(layer)
    bias = (np.empty(0, np.float32) if layer.bias is None
            else np.ascontiguousarray(layer.bias, np.float32))
    ends, pair_ends = block_ends(weights.shape[0], order)
    whole = pair_tables(cout, step * ho * width, order)
    rest = len(x) % step
    last = pair_tables(cout, rest * ho * width, order) if rest else whole

    def images(lo: int, hi: int) -> None:
        gather_frames(x, lo, hi, step, weights, bias, out, kh, kw, *layer.stride,
                       *layer.padding, width, ends, pair_ends, *whole, *last)

    on_threads(images, shares(len(x), 4 * threads, unit=step, item_size=cin * kh * kw * ho * width),
               threads)
    return out


def fits(layer: L.Conv2d, x: np.ndarray) -> bool:
    """Whether the kernel takes ``layer`` on frames like ``x`` (:func:`fits_shape`)."""
    return fits_shape(layer, x.shape[1:], x.dtype)


def fits_shape(layer: L.Conv2d, input_shape: tuple, dtype) -> bool:
    """Whether the kernel takes ``layer`` on inputs of ``input_shape`` (C, H, W) and
    ``dtype``: float32, one group, no dilation, at least two output channels (NumPy takes
    a one-row product to another BLAS routine), a window of at most 64 taps and padded
    rows of at most :data:`MAX_ROW`."""
    cout, _, kh, kw = layer.weight.shape
    return (np.dtype(dtype) == np.float32 and layer.groups == 1 and layer.dilation == (1, 1)
            and cout >= 2 and kh * kw <= 64
            and input_shape[2] + 2 * layer.padding[1] <= MAX_ROW)


def _large_enough(layer: L.Conv2d) -> bool:
    """At least :data:`MIN_PRODUCTS` multiply-adds per output position and
    :data:`MIN_TAPS` taps."""
    _, _, kh, kw = layer.weight.shape
    return layer.weight.size >= MIN_PRODUCTS and kh * kw >= MIN_TAPS


def may_gather(layer: L.Conv2d, input_shape: tuple, dtype) -> bool:
    """Whether the dense engine may take :func:`gather_conv` for ``layer`` (on sparse
    enough frames): it fits, and it is large enough for the rule of :data:`MIN_PRODUCTS`."""
    return fits_shape(layer, input_shape, dtype) and _large_enough(layer)


def worth_gathering(layer: L.Conv2d, density: float) -> bool:
    """Whether the gather beats the GEMM path on ``layer`` and frames ``density`` of whose
    inputs are non-zero (the rule of :data:`MIN_PRODUCTS`)."""
    if not _large_enough(layer):
        return False
    return density <= (WIDE_DENSITY if layer.weight.size >= WIDE_PRODUCTS else MAX_DENSITY)


def gathers(layer: L.Conv2d, x: np.ndarray, density: float) -> bool:
    """Whether the dense engine computes ``layer`` of ``x``, ``density`` of whose inputs are
    non-zero, by :func:`gather_conv`."""
    return (fits(layer, x) and worth_gathering(layer, density) and matches_blas_gemm()
            and products_modelled(layer, x, gemm_order()))


def products_modelled(layer: L.Conv2d, x: np.ndarray, order: GemmOrder) -> bool:
    """Whether ``order`` models every GEMM of :func:`ann_ops.conv2d`'s ``layer`` (one
    group) of ``x`` (B, C_in, H, W): its groups of images per product, and the last,
    smaller group (:func:`blas_order.modelled`), each of two or more columns (NumPy takes
    a one-column product to BLAS's matrix-vector routine)."""
    cout, cin, kh, kw = layer.weight.shape
    _, ho, _ = layer.output_shape([x.shape[1:]])
    step = ann_ops.images_per_product(layer, x.shape[1:])
    width = ann_ops.product_row_width(layer, x.shape[1:])
    columns = {n * ho * width for n in (min(step, len(x)), len(x) % step) if n}
    return all(n >= 2 and modelled(cout, n, cin * kh * kw, order) for n in columns)


#: Convolutions the probe checks (C_in, C_out, H, W, window, stride, padding, frames):
#: between them, several row blocks and halved ones, a first row block's 4-column panels,
#: 12-column panels whose last tile falls on either side, 8-, 4-, 2- and 1-column panels,
#: K from 9 to four blocks (halved, and ending inside a channel's window; K = 558 halves
#: to 288 + 270 where the halving rounds up to 16, to 280 + 278 where it rounds to 8),
#: strides 1 and 2.
PROBES = ((128, 20, 9, 9, 3, 1, 1, 7), (64, 64, 14, 14, 3, 1, 1, 5),
          (3, 47, 30, 30, 3, 1, 1, 2), (36, 40, 13, 13, 3, 2, 1, 9), (1, 2, 20, 20, 3, 1, 0, 3),
          (62, 24, 10, 10, 3, 1, 1, 6))


def agrees_with_gemm(conv, probes, seed: int, order: GemmOrder) -> bool:
    """Whether ``conv(layer, x, 1, out, order)`` equals :func:`ann_ops.conv2d` bit for bit
    here on each of ``probes`` (C_in, C_out, H, W, window, stride, padding, frames) that
    ``order`` models (:func:`products_modelled`; at least one): BLAS held to one thread,
    random weights and bias, inputs 10 % non-zero of several magnitudes and both signs
    (from ``seed``). False without ``threadpoolctl``: a BLAS that may run threads splits
    the rows among them."""
    if _threadpool_limits() is None:
        return False
    rng = np.random.default_rng(seed)
    checked = 0
    with one_blas_thread():
        for cin, cout, h, w, window, stride, padding, frames in probes:
            layer = L.Conv2d(
                weight=rng.standard_normal((cout, cin, window, window)).astype(np.float32),
                bias=rng.standard_normal(cout).astype(np.float32), stride=(stride, stride),
                padding=(padding, padding))
            x = ((rng.random((frames, cin, h, w)) < 0.1)
                 * rng.choice([-1.5, 0.25, 1.0, 3.0], (frames, cin, h, w))).astype(np.float32)
            if not products_modelled(layer, x, order):
                continue
            expected = ann_ops.conv2d(layer, x)
            got = conv(layer, x, 1, np.empty_like(expected), order)
            if not np.array_equal(expected.view(np.uint32), got.view(np.uint32)):
                return False
            checked += 1
    return checked > 0


@functools.cache
def gemm_order() -> GemmOrder | None:
    """The model (:data:`blas_order.ORDERS`) that this machine's BLAS follows: the first
    with which :func:`gather_conv` equals :func:`ann_ops.conv2d` bit for bit on every
    probe in :data:`PROBES` (:func:`agrees_with_gemm`); None where none does."""
    for order in ORDERS:
        if agrees_with_gemm(gather_conv, PROBES, 0, order):
            return order
    return None


def matches_blas_gemm() -> bool:
    """Whether this machine's BLAS follows one of the modelled orders (:func:`gemm_order`)."""
    return gemm_order() is not None


__all__ = ["gather_conv", "gather_frames", "gathers", "fits", "fits_shape", "may_gather",
           "worth_gathering", "products_modelled", "gemm_order", "matches_blas_gemm"]
