"""Compiled parts of the dense engine's convolutions, each giving :func:`ann_ops.conv2d`'s
result bit for bit: the columns of its GEMMs (im2col), their results' lay-out, and
depthwise layers without GEMMs.

**Columns.** At stride 1 and dilation 1, :func:`ann_ops.conv2d` copies each image into a
zero-padded buffer and then, per kernel tap, that buffer's runs into the GEMM's column
matrix (NumPy: a padded copy and kh·kw strided copies). :func:`fill_columns` builds each
plane's padded copy in a buffer that stays in L1 and copies every tap's run from there by
vectors: the same columns, 1.3–1.7× faster (16–128 channels, 7–28 pixels).

**Lay-out.** Each GEMM's result is copied into the output, its bias added, row by row
by vectors (:func:`lay_out_conv`).

**Depthwise layers.** :func:`evsim.ann_ops.conv2d` computes a depthwise layer (one input
and one output channel per group) as one (1 × K) by (K × N) product per channel, K =
kh·kw taps and N the im2col columns of a few images. Each product copies its columns
first (9 times the input for a 3×3 window) and costs a BLAS call, so on ``mobilenet``
these layers took half of the dense engine's time (7.1 of 14.7 ms per image) for 15 % of
its multiply-adds.

The kernel here reads the taps straight from a zero-padded copy of each plane and sums
them in the order, and with the fused multiply-adds, that OpenBLAS's single-precision
matrix-vector kernel for AVX2 machines (the one a 1-row product reaches) uses, so its
results equal the GEMM path's bit for bit. That kernel's order depends on an output's
position among the product's N columns (:func:`lane_path`):

- it takes N in blocks of 4,096 columns; the last, partial block starts with 4 and then
  8 columns (when its size has those bits) summed by two alternating accumulators, while
  every other column sums each group of 8 taps (then 4) with one accumulator;
- a group's sum is added to the column's total, and any last 2 or 1 taps are each
  multiplied and added, rounded apart;
- the last N mod 4 columns sum every tap by a plain multiply and add.

Other BLAS builds (another library, another CPU's kernels, double precision) round in
other orders. So :func:`matches_blas` runs the kernel once per process, dtype and window
size against NumPy's product on columns chosen to reach every one of these cases, and
the dense engine uses it only where they agree bit for bit, and only while BLAS is held
to one thread (``threadpoolctl``): a threaded BLAS splits the columns among its threads.
Elsewhere it keeps the GEMM path.
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

LANES = 8  # outputs per vector: one AVX2 register of float32
BLOCK = 4096  # columns per block of OpenBLAS's matrix-vector driver (NBMAX)
#: Column orders of :func:`lane_path`.
ONE_ACCUMULATOR, TWO_ACCUMULATORS, PLAIN = 0, 1, 2


def _vector(context, builder, array_type, array, index):
    """A pointer to LANES values of ``array`` from ``index``."""
    vector = ir.VectorType(context.get_data_type(array_type.dtype), LANES)
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(cgutils.gep(builder, data, index), vector.as_pointer()), vector


def _splat(builder, vector, value):
    out = cgutils.get_null_value(vector)
    for lane in range(LANES):
        out = builder.insert_element(out, value, ir.Constant(ir.IntType(32), lane))
    return out


def _tap_group(first: bool):
    """An intrinsic ``group(total, q, plane, offsets, weights)``: for the LANES outputs
    from ``q``, the fused multiply-add chain over the taps of the tuples ``offsets`` and
    ``weights`` (weight ``weights[t]``, input ``plane[offsets[t] + q + lane]``; tuples, so
    that their values stay in registers across the caller's loop) from one zero
    accumulator, added to ``total[q:q + LANES]`` (to zero when ``first``: a vector store,
    so that the next vector load there is forwarded from it)."""

    @intrinsic
    def group(typingctx, total, q, plane, offsets, weights):
        if not (isinstance(offsets, types.UniTuple) and isinstance(weights, types.UniTuple)
                and offsets.count == weights.count):
            return None

        def codegen(context, builder, signature, args):
            total_type, _, plane_type, _, _ = signature.args
            target, vector = _vector(context, builder, total_type, args[0], args[1])
            fma = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vector, [vector] * 3),
                f"llvm.fma.v{LANES}f{32 if total_type.dtype == types.float32 else 64}")
            accumulator = cgutils.get_null_value(vector)
            for t in range(offsets.count):
                offset = builder.extract_value(args[3], t)
                weight = _splat(builder, vector, builder.extract_value(args[4], t))
                source, _ = _vector(context, builder, plane_type, args[2],
                                    builder.add(offset, args[1]))
                accumulator = builder.call(fma, [weight, builder.load(source, align=1),
                                                 accumulator])
            before = (cgutils.get_null_value(vector) if first
                      else builder.load(target, align=1))
            builder.store(builder.fadd(accumulator, before), target, align=1)
            return context.get_dummy_value()

        return types.void(total, types.intp, plane, offsets, weights), codegen

    return group


_group, _first_group = _tap_group(False), _tap_group(True)


@intrinsic
def _add_product(typingctx, total, q, plane, o, weight):
    """``total[q:q+LANES] += weight · plane[o:o+LANES]``, multiply and add rounded apart."""

    def codegen(context, builder, signature, args):
        target, vector = _vector(context, builder, signature.args[0], args[0], args[1])
        source, _ = _vector(context, builder, signature.args[2], args[2], args[3])
        product = builder.fmul(_splat(builder, vector, args[4]), builder.load(source, align=1))
        builder.store(builder.fadd(builder.load(target, align=1), product), target, align=1)
        return context.get_dummy_value()

    return types.void(total, types.intp, plane, types.intp, weight), codegen


def _mover(plus: bool):
    """An intrinsic ``move(dst, d, src, s, b)``: ``dst[d:d+LANES] = src[s:s+LANES]``
    (``+ b`` when ``plus``)."""

    @intrinsic
    def move(typingctx, dst, d, src, s, b):
        def codegen(context, builder, signature, args):
            target, vector = _vector(context, builder, signature.args[0], args[0], args[1])
            source, _ = _vector(context, builder, signature.args[2], args[2], args[3])
            value = builder.load(source, align=1)
            if plus:
                value = builder.fadd(value, _splat(builder, vector, args[4]))
            builder.store(value, target, align=1)
            return context.get_dummy_value()

        return types.void(dst, types.intp, src, types.intp, b), codegen

    return move


_move, _move_plus = _mover(False), _mover(True)


@numba.njit(cache=True, inline="always")
def _copy_run(dst, d, src, s, n, b, plus):
    """``dst[d:d+n] = src[s:s+n]`` (``+ b`` when ``plus``, one rounding), by vectors (the
    last one overlapping its neighbour) when n ≥ LANES, writing nothing outside."""
    if n < LANES:
        for i in range(n):
            dst[d + i] = src[s + i] + b if plus else src[s + i]
        return
    for q in range(0, n - LANES, LANES):
        if plus:
            _move_plus(dst, d + q, src, s + q, b)
        else:
            _move(dst, d + q, src, s + q, b)
    if plus:
        _move_plus(dst, d + n - LANES, src, s + n - LANES, b)
    else:
        _move(dst, d + n - LANES, src, s + n - LANES, b)


@intrinsic
def _fma(typingctx, a, b, c):
    """a·b + c rounded once."""
    if not a == b == c:
        return None

    def codegen(context, builder, signature, args):
        kind = args[0].type
        fma = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(kind, [kind] * 3),
            "llvm.fma.f32" if kind == ir.FloatType() else "llvm.fma.f64")
        return builder.call(fma, args)

    return a(a, b, c), codegen


@numba.njit(cache=True)
def lane_path(p, n_lanes):
    """How OpenBLAS's kernel sums column ``p`` of a product with ``n_lanes`` columns:
    ONE_ACCUMULATOR, TWO_ACCUMULATORS or PLAIN (see the module's docstring)."""
    tail = n_lanes & 3
    body = n_lanes - tail
    if p >= body:
        return PLAIN
    full = body // BLOCK * BLOCK
    if p < full:
        return ONE_ACCUMULATOR
    size, offset = body - full, p - full
    if size & 4:
        if offset < 4:
            return TWO_ACCUMULATORS
        offset -= 4
    if size & 8 and offset < 8:
        return TWO_ACCUMULATORS
    return ONE_ACCUMULATOR


@numba.njit(cache=True)
def lane_value(values, weights, path):
    """One output of the product, ``values`` and ``weights`` (K,) its taps, summed as
    ``path`` says (the scalar twin of the vector code, and the reference for the
    columns it does not take)."""
    zero = values.dtype.type(0)
    n_taps = values.shape[0]
    if path == PLAIN:
        total = zero
        for k in range(n_taps):
            total = total + weights[k] * values[k]
        return zero + total
    total = zero
    k = 0
    for width in (8, 4):
        groups = n_taps >> 3 if width == 8 else (n_taps >> 2) & 1
        for _ in range(groups):
            if path == ONE_ACCUMULATOR:
                accumulator = zero
                for t in range(width):
                    accumulator = _fma(weights[k + t], values[k + t], accumulator)
                total = accumulator + total
            else:
                even = zero
                odd = zero
                for t in range(0, width, 2):
                    even = _fma(weights[k + t], values[k + t], even)
                    odd = _fma(weights[k + t + 1], values[k + t + 1], odd)
                total = (even + odd) + total
            k += width
    while k < n_taps:
        total = total + weights[k] * values[k]
        k += 1
    return total


@numba.njit(cache=True, inline="always")
def _group_pass(total, plane, offsets, weights, n_out, first):
    """One group of taps (the tuples ``offsets`` and ``weights``) over the outputs
    ``total[:n_out]`` (rounded up to LANES): :func:`_tap_group`'s chain, added to the total
    or, when ``first``, written as it."""
    for q in range(0, n_out, LANES):
        if first:
            _first_group(total, q, plane, offsets, weights)
        else:
            _group(total, q, plane, offsets, weights)


@numba.njit(cache=True, inline="always")
def _sum_taps(total, plane, weights, offsets, n_out, n_taps):
    """``total[q]`` for q < n_out (rounded up to LANES) = the ONE_ACCUMULATOR sum of the
    taps ``weights[k] · plane[offsets[k] + q]``: each group of taps (8, then 4, then the
    single ones) in one pass over the outputs, its weights and offsets held in registers."""
    k = 0
    for _ in range(n_taps >> 3):
        _group_pass(total, plane,
                    (offsets[k], offsets[k + 1], offsets[k + 2], offsets[k + 3],
                     offsets[k + 4], offsets[k + 5], offsets[k + 6], offsets[k + 7]),
                    (weights[k], weights[k + 1], weights[k + 2], weights[k + 3],
                     weights[k + 4], weights[k + 5], weights[k + 6], weights[k + 7]),
                    n_out, k == 0)
        k += 8
    if (n_taps >> 2) & 1:
        _group_pass(total, plane, (offsets[k], offsets[k + 1], offsets[k + 2], offsets[k + 3]),
                    (weights[k], weights[k + 1], weights[k + 2], weights[k + 3]), n_out, k == 0)
        k += 4
    if k == 0:
        for q in range(0, n_out + LANES - 1):
            total[q] = total.dtype.type(0)
    while k < n_taps:
        offset, weight = offsets[k], weights[k]
        for q in range(0, n_out, LANES):
            _add_product(total, q, plane, offset + q, weight)
        k += 1


@numba.njit(cache=True, nogil=True)
def depthwise_frames(x, weights, bias, out, kh, kw, sh, sw, ph, pw, dh, dw, step, width,
                     lo, hi):
    """A depthwise convolution of images ``lo .. hi − 1`` of ``x`` (B, C, H, W) into
    ``out`` (B, C, H', W'), both C-contiguous: ``weights`` (C, kh·kw), ``bias`` (C,) or
    empty. Rounds as :func:`evsim.ann_ops.conv2d` of all of ``x`` with OpenBLAS's kernel
    does, whose products take ``step`` images (from ``x[0]``) and ``width`` columns per
    output row: any range of images gets the same values, so threads may split anywhere.

    Without dilation, at strides up to 2, every tap reads one contiguous run of the flat
    padded plane for all of a plane's stride-1 outputs at once (computed at every column
    of the padded width), and the outputs at the stride are picked from them: an output's
    taps and their order do not depend on the stride. Four times the multiply-adds at
    stride 2 cost less than gathering each output row's taps, which larger strides and
    dilations do. (Splitting a strided plane into its stride's phases, so that its taps
    are runs too, was slower still.)
    """
    frames, channels, h, w = x.shape
    ho, wo = out.shape[2], out.shape[3]
    n_taps = kh * kw
    hp, wp = h + 2 * ph, w + 2 * pw
    runs = dh == 1 and dw == 1 and sh <= 2 and sw <= 2
    n_out = (hp - kh + 1) * wp if runs else wo
    offsets = np.empty(n_taps, np.int64)
    for k in range(n_taps):
        offsets[k] = (k // kw) * wp + k % kw if runs else k * wo
    # the plane, and past it what the last vector of the last tap reads
    plane = np.zeros(hp * wp + kw + LANES, x.dtype)
    total = np.zeros(n_out + LANES, x.dtype)
    gathered = np.zeros(n_taps * wo + LANES, x.dtype)
    flat_in, flat_out = x.reshape(-1), out.reshape(-1)
    values = np.empty(n_taps, x.dtype)
    others = np.empty(2 * LANES, np.int64)  # columns of the other two orders, at most 15
    has_bias = bias.shape[0] > 0
    zero = x.dtype.type(0)
    for start in range(lo // step * step, hi, step):
        n_lanes = min(step, frames - start) * ho * width
        n_others = 0
        body = n_lanes - (n_lanes & 3)
        for p in range(body // BLOCK * BLOCK, n_lanes):
            if lane_path(p, n_lanes) != ONE_ACCUMULATOR:
                others[n_others] = p
                n_others += 1
        for f in range(max(start, lo), min(start + step, hi)):
            # the other orders' columns in this image's lanes (ascending): most have none
            first_lane = (f - start) * ho * width
            mine_lo = 0
            while mine_lo < n_others and others[mine_lo] < first_lane:
                mine_lo += 1
            mine_hi = mine_lo
            while mine_hi < n_others and others[mine_hi] < first_lane + ho * width:
                mine_hi += 1
            for c in range(channels):
                source = (f * channels + c) * h * w
                target = (f * channels + c) * ho * wo
                for r in range(h):
                    _copy_run(plane, (r + ph) * wp + pw, flat_in, source + r * w, w, zero,
                              False)
                b = bias[c] if has_bias else zero
                if runs:
                    _sum_taps(total, plane, weights[c], offsets, n_out, n_taps)
                    for oy in range(ho):
                        if sw == 1:
                            _copy_run(flat_out, target + oy * wo, total, oy * sh * wp, wo, b,
                                      has_bias)
                        else:
                            row = oy * sh * wp
                            for ox in range(wo):
                                value = total[row + ox * sw]
                                flat_out[target + oy * wo + ox] = value + b if has_bias \
                                    else value
                else:
                    for oy in range(ho):
                        for k in range(n_taps):
                            first = (oy * sh + (k // kw) * dh) * wp + (k % kw) * dw
                            for ox in range(wo):
                                gathered[k * wo + ox] = plane[first + ox * sw]
                        _sum_taps(total, gathered, weights[c], offsets, wo, n_taps)
                        _copy_run(flat_out, target + oy * wo, total, 0, wo, b, has_bias)
                for i in range(mine_lo, mine_hi):
                    oy, ox = divmod(others[i] - first_lane, width)
                    if ox >= wo:  # a padding column, dropped
                        continue
                    for k in range(n_taps):
                        values[k] = plane[(oy * sh + (k // kw) * dh) * wp + ox * sw
                                          + (k % kw) * dw]
                    value = lane_value(values, weights[c], lane_path(others[i], n_lanes))
                    flat_out[target + oy * wo + ox] = value + b if has_bias else value


@numba.njit(cache=True, nogil=True)
def fill_columns(x, columns, start, n, first_channel, kh, kw, ph, pw):
    """:func:`ann_ops._conv2d_images`'s GEMM columns at stride 1 and dilation 1 for images
    ``start .. start + n − 1`` of ``x`` (B, C, H, W), C-contiguous, and the channels of
    one group from ``first_channel``: ``columns`` (C/groups, kh, kw, step, H', W + 2·pw)
    gets, for each image m < n, channel c and tap (i, j), the run of the flat zero-padded
    plane from i·(W + 2·pw) + j, H' padded rows long."""
    _, channels, h, w = x.shape
    group_channels, step = columns.shape[0], columns.shape[3]
    hp, wp = h + 2 * ph, w + 2 * pw
    run = (hp - kh + 1) * wp
    flat_in, flat_columns = x.reshape(-1), columns.reshape(-1)
    # kw − 1 spare zeros: the last tap's run ends there (in columns that are dropped)
    plane = np.zeros(hp * wp + kw - 1, x.dtype)
    zero = x.dtype.type(0)
    for m in range(n):
        for c in range(group_channels):
            source = ((start + m) * channels + first_channel + c) * h * w
            for r in range(h):
                _copy_run(plane, (r + ph) * wp + pw, flat_in, source + r * w, w, zero, False)
            for i in range(kh):
                for j in range(kw):
                    target = (((c * kh + i) * kw + j) * step + m) * run
                    _copy_run(flat_columns, target, plane, i * wp + j, run, zero, False)


def columns(layer: L.Conv2d, x: np.ndarray, cols: np.ndarray, start: int, n: int,
            group: int) -> None:
    """:func:`fill_columns` for ``layer``'s group ``group`` (``x`` C-contiguous): the hook
    :func:`ann_ops.conv2d` takes as ``columns``."""
    kh, kw = layer.kernel_size
    fill_columns(x, cols, start, n, group * layer.weight.shape[1], kh, kw, *layer.padding)


@numba.njit(cache=True, nogil=True)
def lay_out_conv(result, bias, out):
    """:func:`evsim.ann_ops._lay_out`: a convolution's GEMM result ``result`` (N, C, H, W)
    copied into ``out`` (N, C, H, W), any strides, with ``bias[c]`` added to channel c (one
    rounding each, as NumPy's add), or copied as it is when ``bias`` is empty. Where both
    keep a row's values adjacent (as a GEMM and a C-contiguous output do), rows are copied
    by vectors: 1.5–3.2× the scalar loop, which was 3–4× NumPy's strided add."""
    n, channels, h, w = out.shape
    has_bias = bias.shape[0] > 0
    zero = out.dtype.type(0)
    adjacent = w < 2 or (result.strides[3] == result.itemsize
                         and out.strides[3] == out.itemsize)
    for f in range(n):
        for c in range(channels):
            b = bias[c] if has_bias else zero
            for y in range(h):
                source, target = result[f, c, y], out[f, c, y]
                if adjacent:
                    _copy_run(target, 0, source, 0, w, b, has_bias)
                else:
                    for x in range(w):
                        target[x] = source[x] + b if has_bias else source[x]


def is_depthwise(layer: L.Conv2d, channels: int) -> bool:
    """One input and one output channel per group."""
    return layer.groups == channels == layer.weight.shape[0] and layer.weight.shape[1] == 1


def depthwise(layer: L.Conv2d, x: np.ndarray, threads: int, out: np.ndarray) -> np.ndarray:
    """``layer`` (depthwise) of ``x`` (B, C, H, W), C-contiguous, into ``out``, as
    :func:`ann_ops.conv2d`
    with the dense engine's lay-out, bit for bit where :func:`matches_blas`; the images
    shared among ``threads`` (evenly: unlike the GEMM path's, the shares need not be whole
    products)."""
    cout, _, kh, kw = layer.weight.shape
    _, ho, wo = layer.output_shape([x.shape[1:]])
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    step = ann_ops.images_per_product(layer, x.shape[1:])
    width = ann_ops.product_row_width(layer, x.shape[1:])
    weights = np.ascontiguousarray(layer.weight.reshape(cout, kh * kw), x.dtype)
    bias = (np.empty(0, x.dtype) if layer.bias is None
            else np.ascontiguousarray(layer.bias, x.dtype))

    def images(lo: int, hi: int) -> None:
        depthwise_frames(x, weights, bias, out, kh, kw, sh, sw, ph, pw, dh, dw, step, width,
                         lo, hi)

    on_threads(images, shares(len(x), 4 * threads, item_size=kh * kw * ho * wo), threads)
    return out


@functools.cache
def matches_blas(dtype: np.dtype, kh: int, kw: int) -> bool:
    """Whether :func:`depthwise` equals :func:`ann_ops.conv2d` bit for bit for a kh × kw
    window in ``dtype`` here: BLAS held to one thread, and a product with full blocks,
    both two-accumulator runs and a three-column tail, longer than any the GEMM path makes
    (were BLAS to run threads for long products after all, this one would show it),
    checked on random values."""
    if _threadpool_limits() is None:
        return False
    rng = np.random.default_rng(0)
    ph, pw = kh // 2, kw // 2
    layer = L.Conv2d(weight=rng.standard_normal((1, 1, kh, kw)),
                     bias=rng.standard_normal(1), padding=(ph, pw))
    # one image whose product has N ≡ 15 (mod 16) columns, N > 2 · IM2COL_FLOATS / taps
    # (> BLOCK): an odd padded row width (the product's row width at stride 1) and a
    # height that makes the rest
    w = 63
    columns = w + 2 * pw
    least = max(BLOCK, 2 * ann_ops.IM2COL_FLOATS // (kh * kw))
    h = next(h for h in range(least // columns, least // columns + 32)
             if (h + 2 * ph - kh + 1) * columns % 16 == 15
             and (h + 2 * ph - kh + 1) * columns > least)
    x = rng.standard_normal((1, 1, h, w)).astype(dtype)
    with one_blas_thread():
        expected = ann_ops.conv2d(layer, x)
        got = depthwise(layer, x, 1, np.empty_like(expected))
    return bool(np.array_equal(expected.view(np.uint8), got.view(np.uint8)))
