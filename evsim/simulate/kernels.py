"""Numba kernels of the event engine.

Images are independent: each owns its workspaces, so there are no shared
scatter targets, and :func:`run_steps` releases the GIL so that threads can
simulate disjoint groups of images at once (results do not depend on the
thread count). Python threads are used rather than Numba's ``prange``, whose
compilation costs several seconds more on the first run. The program
(:mod:`evsim.simulate.compile`) is a table of operation rows interpreted step
by step over preallocated flat buffers.

Speed comes from the scatter: every synaptic path is stored as *runs*, so
that an event adds a few contiguous slices ``out[o:o+n] += a * w[k:k+n]``
(a 3×3 convolution: one run per kernel row, 3·C_out floats), added eight
lanes at a time by one vector instruction (:func:`_axpy`; sixteen on an Intel core
with AVX-512, :data:`WIDE_LANES`). LLVM would not vectorise these short loops
itself: it cannot prove that the output and weight arrays do not overlap. A dense
layer's events all add whole rows at one place, so four of them share one pass over
the outputs (one load and one store per eight outputs instead of four;
:func:`_scatter_rows`), each output still summing in event order. Border runs are
clipped at compile time, and the synaptic operations of an event are looked up in the
exact fan-out map the dense engine uses, so the count is exact without any border
logic here.

The neuron rules are written once, as scalar functions named like their
array twins in :mod:`evsim.neuron` (``fire``, ``reset``, ``window_fire``,
``signed_window_fire``, ``spicalib_step``); ``fastmath`` stays off so that the
arithmetic equals the dense engine's wherever float sums are exact.

Everything the kernels use is in this file, the program's column layout
included: Numba's cache freezes globals into the machine code and only
notices changes to the kernels' own file.

Compile time shapes the call graph. Numba links every compiled callee into
its caller's module and optimises the result again, so a chain of
dispatchers (``run_steps`` → ``_step`` → ``_scatter`` → ``_scatter_rows``)
optimises the leaves once per level: ``_step`` and the per-code dispatchers
are inlined into ``run_steps`` (about 1.5 s less on a first compile), while
the large leaves stay separate functions (inlining them too doubled the
compile time). The small helpers (``_source``, ``fire``, ...) are plain
functions that LLVM inlines: Numba's own inlining re-reads a function at
every call site, which cost about 1 s more. Kernels that only some programs
need (the pooling kernels, the general neuron rule, rate-coded input) sit
behind arguments that are None when unused (:func:`kernel_paths`), whose
branches Numba prunes before compiling: a network without max pooling never
compiles them.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import binding, ir
from numba.core import cgutils, types
from numba.extending import intrinsic

# --- the program: one int64 row per operation ------------------------------------------
# Column 0 holds the operation code; the other columns are named below, per code.
# evsim.simulate.compile writes rows by these names (see LAYOUT).

CODE = 0
OP_RATE, OP_FILL, OP_ADD, OP_COPYPERM, OP_SCATTER, OP_NEURON, OP_MAXPOOL = range(7)

# OP_RATE: Bernoulli input spikes of one step (or their counts over a window).
RATE_SLOT, RATE_CHANNELS, RATE_HW, RATE_WINDOW = range(1, 5)
# OP_FILL: buf[dst:dst+size] = the bias, or 0 when bias < 0. The bias is stored per channel
# (fp[bias:bias+channels]) and repeats at every position of the channels-last buffer.
FILL_DST, FILL_SIZE, FILL_BIAS, FILL_CHANNELS = range(1, 5)
# OP_ADD: buf[dst:dst+size] += buf[src:src+size] (Add of currents, the readout).
ADD_DST, ADD_SRC, ADD_SIZE = range(1, 4)
# OP_COPYPERM: channels-last (hw, channels) to channels-first copy (Flatten of currents).
PERM_DST, PERM_SRC, PERM_CHANNELS, PERM_HW = range(1, 5)
# OP_SCATTER: every event of a slot adds its runs to a buffer and counts its SOPs.
# SC_ROW > 0: every run adds a whole row of that length at dst (a dense layer's targets).
# SC_WINDOW >= 0: a depthwise convolution read directly (no pooling between); its geometry
# (WIN_* below) at that offset in ip, and the kernel walks each event's window itself.
# SC_DISJOINT = 1: the runs of each position write distinct outputs, so the events of one
# position may be added run by run, up to four at once (_scatter_positions).
# SC_AFFINE_ROWS = 1 (with SC_ROW): source neuron i has one row, i rows after neuron 0's, of
# factor 1 and fan-out SC_ROW (a Dense reading a spiking layer directly): no lookups.
(SC_SLOT, SC_AMPLITUDE, SC_CHANNELS, SC_RUN_PTR, SC_RUN_OUT, SC_RUN_W, SC_RUN_LEN, SC_RUN_FACTOR,
 SC_CHANNEL_W, SC_CHANNEL_OUT, SC_FANOUT, SC_WEIGHTS, SC_DST, SC_SOP_SLOT, SC_ROW,
 SC_WINDOW, SC_DISJOINT, SC_AFFINE_ROWS) = range(1, 19)
# A depthwise window's geometry in ip: input width, output height, width and channels, the
# channel multiplier, kernel height and width, strides, paddings, dilations; then, but for a
# 3×3 / stride-1 / M = 1 window or a table over compile.TAP_TABLE_BYTES (-1, 0, -1 there),
# its tap table: WIN_TAPS, the offset in ip of WIN_PER
# (output offset, weight offset) pairs per input position, relative to the event's channel,
# the positions with fewer taps padded with taps into WIN_SCRATCH (an offset in buf: WIN_OUT_C
# floats that nothing reads).
(WIN_IN_W, WIN_OUT_H, WIN_OUT_W, WIN_OUT_C, WIN_MULTIPLIER, WIN_KH, WIN_KW, WIN_SY, WIN_SX,
 WIN_PY, WIN_PX, WIN_DY, WIN_DX, WIN_TAPS, WIN_PER, WIN_SCRATCH) = range(16)
# OP_NEURON: integrate-and-fire update of one layer; emits its events into a slot.
# NR_NEGATIVE_THETA: offset of θ⁻ of signed neurons in fp, or -1 (methods.md §5b).
# NR_UNIFORM = 1: every neuron of the layer has the same θ (and θ⁻): the vector paths read
# one value, not one per neuron.
# NR_REFILL >= 0 (plain neurons only): the layer refills its current for the next step as it
# reads it, in place of an OP_FILL: neuron i's value is fp[NR_REFILL + i mod NR_PERIOD] (the
# bias repeated over NR_PERIOD floats, a multiple of 64: one vector copy per 64 neurons).
(NR_CURRENT, NR_SIZE, NR_V, NR_THETA, NR_V0, NR_ZERO_RESET, NR_BURST, NR_SLOT, NR_COUNTS,
 NR_NEGATIVE, NR_ALLOWANCE, NR_CALIBRATION, NR_WINDOW, NR_NEGATIVE_THETA,
 NR_UNIFORM, NR_REFILL, NR_PERIOD) = range(1, 18)
# OP_MAXPOOL: LIPooling or the spike-count gate, from one slot into another (MP_CURRENT,
# this step's counts, only for the gate: -1 for LIPooling). MP_COUNTS_IN >= 0 (a pool of a
# neuron layer's events, not K-bit codes): the cumulative input counts are that layer's own
# spike counts, counts[MP_COUNTS_IN + i], which its neuron row has just brought up to date
# (MP_CUM_IN is then -1); otherwise the pool keeps them in state[MP_CUM_IN + i].
(MP_SRC_SLOT, MP_OUT_SLOT, MP_CHANNELS, MP_SLOTS, MP_WIN_PTR, MP_WIN_IDX, MP_MEMBER_PTR,
 MP_MEMBER_IDX, MP_CUM_IN, MP_CUM_OUT, MP_DIRTY, MP_DIRTY_LIST, MP_CURRENT, MP_PEAK, MP_GATE,
 MP_POOL_SLOT, MP_TOUCHED, MP_COUNTS_IN) = range(1, 19)
OP_WIDTH = 19

#: Column names of each operation, in column order (column 1 first).
LAYOUT = {
    OP_RATE: ("slot", "channels", "hw", "window"),
    OP_FILL: ("dst", "size", "bias", "channels"),
    OP_ADD: ("dst", "src", "size"),
    OP_COPYPERM: ("dst", "src", "channels", "hw"),
    OP_SCATTER: ("slot", "amplitude", "channels", "run_ptr", "run_out", "run_w", "run_len",
                 "run_factor", "channel_w", "channel_out", "fanout", "weights", "dst",
                 "sop_slot", "row", "window", "disjoint", "affine_rows"),
    OP_NEURON: ("current", "size", "v", "theta", "v0", "zero_reset", "burst", "slot", "counts",
                "negative", "allowance", "calibration", "window", "negative_theta", "uniform",
                "refill", "period"),
    OP_MAXPOOL: ("src_slot", "out_slot", "channels", "slots", "win_ptr", "win_idx", "member_ptr",
                 "member_idx", "cum_in", "cum_out", "dirty", "dirty_list", "current", "peak",
                 "gate", "pool_slot", "touched", "counts_in"),
}

LANES = 8  # floats per vector add: one AVX2 instruction for float32, two for float64


def _wide_lanes() -> int:
    """Floats per wide vector (the scatters' adds, :func:`_add_run` and :func:`_add_rows`;
    bilinear upsampling's blends): 16, one AVX-512 register of float32, on an Intel core
    with AVX-512, else LANES. On the Emerald Rapids machine 16 made the 3×3 convolution's
    scatter 1.14-1.37× faster (32-128 channels, 5 %) and bilinear upsampling's kernel
    take 0.84-0.88 of its time; on a Zen 4 core, which splits a 512-bit operation in two,
    the scatters were slower (BENCHMARKS.md). LANES too where Numba compiles for a named
    CPU (``NUMBA_CPU_NAME``) rather than this one."""
    if numba.config.CPU_NAME:
        return LANES
    features = binding.get_host_cpu_features()
    intel_avx512 = (features.get("avx512f", False)
                    and not binding.get_host_cpu_name().startswith("znver"))
    return 16 if intel_avx512 else LANES


WIDE_LANES = _wide_lanes()

#: Event entries after each neuron layer's event list, which its spike emission may write
#: past the last event (:func:`_emit_plain`).
EMIT_SPARE = 8

#: A streamed copy whose target lies less than this many bytes (but not 0) above its
#: source, modulo 4 KiB, runs downwards (:func:`_stream_copy`): a Concat whose output lay
#: 16-32 bytes above its inputs took 0.73-0.82 of a copy of its bytes upwards, 0.67-0.76
#: downwards (BENCHMARKS.md).
ALIASING_BYTES = 512

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


# --- arithmetic helpers ----------------------------------------------------------------

def _axpy_of(lanes: int):
    """An intrinsic ``_axpy(out, o, w, k, a)``: ``out[o:o+lanes] += a * w[k:k+lanes]`` as one
    vector multiply and one vector add.

    The caller guarantees the bounds. Multiply then add, each rounded (no
    fused multiply-add), exactly as the scalar code and the dense engine do.
    """

    @intrinsic
    def _axpy(typingctx, out, o, w, k, a):
        if not (isinstance(out, types.Array) and isinstance(w, types.Array)
                and out.dtype == w.dtype and a == out.dtype):
            return None

        def codegen(context, builder, signature, args):
            out_type, _, w_type, _, _ = signature.args
            out_arr = context.make_array(out_type)(context, builder, args[0])
            w_arr = context.make_array(w_type)(context, builder, args[2])
            vector = ir.VectorType(context.get_data_type(out_type.dtype), lanes)
            target = builder.bitcast(cgutils.gep(builder, out_arr.data, args[1]),
                                     vector.as_pointer())
            source = builder.bitcast(cgutils.gep(builder, w_arr.data, args[3]),
                                     vector.as_pointer())
            scale = cgutils.get_null_value(vector)
            for lane in range(lanes):
                scale = builder.insert_element(scale, args[4],
                                               ir.Constant(ir.IntType(32), lane))
            total = builder.fadd(builder.load(target, align=1),
                                 builder.fmul(scale, builder.load(source, align=1)))
            builder.store(total, target, align=1)
            return context.get_dummy_value()

        return types.void(out, types.intp, w, types.intp, a), codegen

    return _axpy


_axpy, _axpy_wide = _axpy_of(LANES), _axpy_of(WIDE_LANES)


def _blend_of(lanes: int):
    """An intrinsic ``_blend(out, o, a, ka, b, kb, wa, wb)``: ``out[o:o+lanes] =
    a[ka:ka+lanes]·wa + b[kb:kb+lanes]·wb``, two vector products and a vector sum, each
    rounded (no fused multiply-add, as the scalar code). The caller guarantees the
    bounds."""

    @intrinsic
    def _blend(typingctx, out, o, a, ka, b, kb, wa, wb):
        if not (isinstance(out, types.Array) and isinstance(a, types.Array)
                and isinstance(b, types.Array)
                and out.dtype == a.dtype == b.dtype == wa == wb):
            return None

        def codegen(context, builder, signature, args):
            vector = ir.VectorType(context.get_data_type(signature.args[0].dtype), lanes)

            def pointer(i):
                array = context.make_array(signature.args[i])(context, builder, args[i])
                return builder.bitcast(cgutils.gep(builder, array.data, args[i + 1]),
                                       vector.as_pointer())

            def product(i, weight):
                scale = cgutils.get_null_value(vector)
                for lane in range(lanes):
                    scale = builder.insert_element(scale, weight,
                                                   ir.Constant(ir.IntType(32), lane))
                return builder.fmul(builder.load(pointer(i), align=1), scale)

            builder.store(builder.fadd(product(2, args[6]), product(4, args[7])), pointer(0),
                          align=1)
            return context.get_dummy_value()

        return types.void(out, types.intp, a, types.intp, b, types.intp, wa, wb), codegen

    return _blend


def _pairs_of(lanes: int):
    """An intrinsic ``_pairs(line, o, t, k0, k1, k2, k3, w0, w1, w2, w3)``: ``line[o + 2j] =
    t[k0 + j]·w0 + t[k1 + j]·w1`` and ``line[o + 2j + 1] = t[k2 + j]·w2 + t[k3 + j]·w3`` for
    j in 0..lanes − 1, two vector products and a vector sum per parity, each rounded (no
    fused multiply-add, as the scalar code), interleaved into two vector stores. The
    caller guarantees the bounds."""

    @intrinsic
    def _pairs(typingctx, line, o, t, k0, k1, k2, k3, w0, w1, w2, w3):
        if not (isinstance(line, types.Array) and isinstance(t, types.Array)
                and line.dtype == t.dtype == w0 == w1 == w2 == w3):
            return None

        def codegen(context, builder, signature, args):
            line_arr = context.make_array(signature.args[0])(context, builder, args[0])
            t_arr = context.make_array(signature.args[2])(context, builder, args[2])
            vector = ir.VectorType(context.get_data_type(signature.args[0].dtype), lanes)

            def product(at, weight):
                source = builder.bitcast(cgutils.gep(builder, t_arr.data, at),
                                         vector.as_pointer())
                scale = cgutils.get_null_value(vector)
                for lane in range(lanes):
                    scale = builder.insert_element(scale, weight,
                                                   ir.Constant(ir.IntType(32), lane))
                return builder.fmul(builder.load(source, align=1), scale)

            even = builder.fadd(product(args[3], args[7]), product(args[4], args[8]))
            odd = builder.fadd(product(args[5], args[9]), product(args[6], args[10]))
            target = builder.bitcast(cgutils.gep(builder, line_arr.data, args[1]),
                                     vector.as_pointer())
            for half in range(2):
                mask = [half * lanes // 2 + j // 2 + (lanes if j % 2 else 0)
                        for j in range(lanes)]
                both = builder.shuffle_vector(even, odd, ir.Constant(
                    ir.VectorType(ir.IntType(32), lanes), mask))
                builder.store(both, builder.gep(target, [ir.Constant(ir.IntType(32), half)]),
                              align=1)
            return context.get_dummy_value()

        return (types.void(line, types.intp, t, types.intp, types.intp, types.intp, types.intp,
                           w0, w1, w2, w3), codegen)

    return _pairs


_blend, _pairs = _blend_of(LANES), _pairs_of(LANES)
_blend_wide, _pairs_wide = _blend_of(WIDE_LANES), _pairs_of(WIDE_LANES)


@intrinsic
def _high_product(typingctx, a, b):
    """The upper 64 bits of the 128-bit product of two uint64."""
    if a != types.uint64 or b != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))

    return types.uint64(a, b), codegen


@intrinsic
def _trailing_zeros(typingctx, word):
    """Index of the lowest set bit of a uint64; 64 for 0 (one ``tzcnt``)."""
    if word != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return _bit_count(builder, "llvm.cttz.i64", args[0], 0)  # 0: defined for 0

    return types.int64(word), codegen


@intrinsic
def _set_bits(typingctx, word):
    """The number of set bits of a uint64 (one ``popcnt``)."""
    if word != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return _bit_count(builder, "llvm.ctpop.i64", args[0])

    return types.int64(word), codegen


def _bit_count(builder, name: str, word, *flags: int):
    """IR: the LLVM bit-counting intrinsic ``name`` (i64) of ``word``, with its i1 flags."""
    int64, bit = ir.IntType(64), ir.IntType(1)
    function = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(int64, [int64] + [bit] * len(flags)), name)
    return builder.call(function, [word] + [ir.Constant(bit, flag) for flag in flags])


if numba.config.BOUNDSCHECK:
    @numba.njit(cache=True)
    def _add_run(out, o, w, k, a, n):
        """Scalar form, so that bounds checking sees every index."""
        for j in range(n):
            out[o + j] += a * w[k + j]
else:
    @numba.njit(cache=True, inline="always")
    def _add_run(out, o, w, k, a, n):
        """``out[o:o+n] += a * w[k:k+n]``: vector adds of WIDE_LANES, then one of LANES if
        as many remain, then the remainder one by one."""
        main = n & -WIDE_LANES  # n >= 0: the multiple below it, without a signed modulo
        for j in range(0, main, WIDE_LANES):
            _axpy_wide(out, o + j, w, k + j, a)
        if WIDE_LANES > LANES and n - main >= LANES:
            _axpy(out, o + main, w, k + main, a)
            main += LANES
        for j in range(main, n):
            out[o + j] += a * w[k + j]


if numba.config.BOUNDSCHECK:
    @numba.njit(cache=True)
    def _add_one(out, o, w, k, a):
        """Indexed form, so that bounds checking sees the index."""
        out[o] += a * w[k]
else:
    @intrinsic
    def _add_one(typingctx, out, o, w, k, a):
        """``out[o] += a * w[k]`` without the wraparound of negative indices that Numba
        puts on every indexing (about six instructions each: a depthwise event's nine
        adds doubled in length). The caller guarantees the bounds."""
        if not (isinstance(out, types.Array) and isinstance(w, types.Array)
                and out.dtype == w.dtype and a == out.dtype):
            return None

        def codegen(context, builder, signature, args):
            out_arr = context.make_array(signature.args[0])(context, builder, args[0])
            w_arr = context.make_array(signature.args[2])(context, builder, args[2])
            target = cgutils.gep(builder, out_arr.data, args[1])
            product = builder.fmul(args[4], builder.load(cgutils.gep(builder, w_arr.data,
                                                                     args[3])))
            builder.store(builder.fadd(builder.load(target), product), target)
            return context.get_dummy_value()

        return types.void(out, types.intp, w, types.intp, a), codegen


@numba.njit(cache=True)
def _u(i):
    """Index i as unsigned: Numba then indexes without wrapping negative values around."""
    return np.uint64(i)

_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


@numba.njit(cache=True)
def _reciprocal(d):
    """⌈2⁶⁴ / d⌉ for :func:`_quotient` (0 for d = 1, whose quotient needs no product)."""
    if d == 1:
        return np.uint64(0)
    return _ALL_ONES // np.uint64(d) + np.uint64(1)


@numba.njit(cache=True)
def _quotient(i, reciprocal):
    """``i // d`` for 0 ≤ i < 2³² by one multiplication (Lemire, Kaser and Kurz 2019: the
    high half of i · ⌈2⁶⁴ / d⌉ is exact for 32-bit i), instead of a division per event."""
    if reciprocal == 0:
        return np.int64(i)
    return np.int64(_high_product(np.uint64(i), reciprocal))


@numba.njit(cache=True)
def _source(i, channels, reciprocal):
    """(position, channel) of channels-last neuron i: i = position · channels + channel."""
    position = _quotient(i, reciprocal)
    return position, i - position * channels


@numba.njit(cache=True, inline="always")
def _event(ip, fp, idx, mult, at, channels, reciprocal, amp, channel_out, channel_w):
    """Event ``idx[at]`` of a scatter: its position s, multiplicity m, amplitude
    a = m θ_i (both in the simulation dtype, as the dense engine computes it), and its
    channel's output and weight offsets (before the scatter's SC_DST and SC_WEIGHTS).
    Indices unsigned (:func:`_u`)."""
    i = idx[_u(at)]
    m = mult[_u(at)]
    s, c = _source(i, channels, reciprocal)
    return s, m, m * fp[_u(amp + i)], ip[_u(channel_out + c)], ip[_u(channel_w + c)]


@numba.njit(cache=True)
def _mix(z):
    z = z ^ (z >> np.uint64(30))
    z = z * _M1
    z = z ^ (z >> np.uint64(27))
    z = z * _M2
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def _popcount(m):
    """Set bits of a non-negative integer."""
    n = 0
    while m > 0:
        m &= m - 1
        n += 1
    return n


@numba.njit(cache=True)
def _sent(m, binary):
    """Spikes an event of multiplicity m stands for: |m|, or the set bits of a K-bit code
    (of |m|: a signed neuron's negative code)."""
    return _popcount(abs(m)) if binary else abs(m)


@numba.njit(cache=True)
def _net(m, binary):
    """Net spikes of an event of multiplicity m: m, or the set bits of the code |m| with
    m's sign."""
    if not binary:
        return m
    return _popcount(m) if m >= 0 else -_popcount(-m)


# --- the neuron vocabulary (array twins in evsim.neuron) -------------------------------

@numba.njit(cache=True)
def fire(m, theta, burst):
    """Spikes at membrane m: ``#{k = 1..Γ : m ≥ k θ}``, k θ formed in float64 (exact)."""
    if not m >= theta:
        return 0
    s = 1
    for k in range(2, burst + 1):
        if m >= np.float64(theta) * k:
            s += 1
    return s


@numba.njit(cache=True)
def reset(m, s, theta, to_zero):
    """Membrane after emitting s spikes: 0 (zero reset, s > 0) or ``m − s θ``."""
    if s == 0:
        return np.float64(m)
    if to_zero:
        return 0.0
    return m - s * theta  # formed in float64, rounded once where it is stored


@numba.njit(cache=True)
def signed_fire(m, theta, negative_theta, burst):
    """Spikes of a signed neuron: ``fire`` at m with θ, else minus ``fire`` at −m with θ⁻."""
    s = fire(m, theta, burst)
    if s == 0:
        s = -fire(-m, negative_theta, burst)
    return s


@numba.njit(cache=True)
def window_fire(m, theta, window):
    """``clip(floor(m / θ), 0, W)`` decided by exact float64 comparisons ``m ≥ k θ``."""
    th64 = np.float64(theta)
    q = np.floor(np.float64(m) / th64)
    if (q + 1) * th64 <= m:
        q += 1
    elif q * th64 > m:
        q -= 1
    return int(min(max(q, 0.0), np.float64(window)))


@numba.njit(cache=True)
def signed_window_fire(m, theta, negative_theta, window):
    """The window rule of a signed neuron: ``window_fire`` at m with θ, else minus
    ``window_fire`` at −m with θ⁻ (``−clip(floor(−m / θ⁻), 0, W)``)."""
    s = window_fire(m, theta, window)
    if s == 0:
        s = -window_fire(-m, negative_theta, window)
    return s


@numba.njit(cache=True)
def spicalib_step(x, t, allowance, state, calibration, i, n):
    """SpiCalib of neuron i's output x at step t; state columns t_last, n fired, net count.
    Times count from the first step, as the published code does (see evsim.neuron)."""
    t_last, fired, net = calibration + i, calibration + n + i, calibration + 2 * n + i
    if x > 0:
        state[fired] += 1
        state[t_last] = t
    count = state[fired]
    if count > 0:
        late = count * np.float64(t - state[t_last]) > (state[t_last] - 1) + count * allowance
    else:
        late = np.float64(t - 1) > allowance
    if late:
        x -= 1
    if state[net] + x < 0:
        x = -state[net]
    state[net] += x
    return x


@numba.njit(cache=True, nogil=True)
def neuron_scan(current, v, theta, negative_theta, burst, to_zero, window, binary, spikes,
                values, sent, net, first, last):
    """The dense engine's neuron layer over a block of steps: ``fire``, ``reset`` (or
    ``window_fire``) at every neuron of images ``first..last − 1``, step after step.

    ``current`` (steps or 1, B, N) input currents (one row: the same every step); ``v``
    (B, N) membranes, updated; ``theta`` (N,); ``negative_theta`` θ⁻ (N,) of signed neurons,
    or empty for unsigned ones. Writes ``spikes`` (steps, B, N) int32 and
    ``values`` = s θ (steps, B, N), and adds to ``sent`` (steps, N) the spikes sent per
    neuron and step summed over those images (|s|, or the set bits of a K-bit code).
    ``spikes`` may be empty (0, B, N) under the plain rule (Γ = 1, no window), when no one
    reads them: only ``values`` and ``sent`` are written then, and for signed neurons
    ``net`` (N,) gets the spikes' sum (s, not |s|) over the steps and those images added
    (``net`` is read only then). Under the plain rule ``values`` may be empty too, when no
    one reads them (a layer read only by max poolings, which read its spikes). Disjoint
    ranges of images may run on several threads at once, each with its own ``sent`` and
    ``net``.
    """
    n, size = sent.shape
    signed = negative_theta.shape[0] > 0
    if burst == 1 and window == 0 and not binary and not signed:
        _plain_neuron_scan(current, v, theta, to_zero, spikes, values, sent, first, last)
        return
    if burst == 1 and window == 0 and not binary:
        _signed_plain_neuron_scan(current, v, theta, negative_theta, to_zero, spikes, values,
                                  sent, net, first, last)
        return
    for k in range(n):
        step_current = current[0] if current.shape[0] == 1 else current[k]
        for b in range(first, last):
            for i in range(size):
                m = v[b, i] + step_current[b, i]
                th = theta[i]
                if window > 0 and signed:
                    s = signed_window_fire(m, th, negative_theta[i], window)
                elif window > 0:
                    s = window_fire(m, th, window)
                elif signed:
                    s = signed_fire(m, th, negative_theta[i], burst)
                else:
                    s = fire(m, th, burst)
                v[b, i] = reset(m, s, negative_theta[i] if s < 0 else th, to_zero)
                spikes[k, b, i] = s
                values[k, b, i] = s * th
                sent[k, i] += _sent(np.int64(s), binary)


@numba.njit(cache=True, inline="always")
def _scan_rows(current, spikes, values, sent, row, values_row, k, b):
    """The rows a plain neuron scan uses at step k of image b: its input current (the one
    row of ``current`` when it has one for every step), the step's spikes sent, and its
    spikes and values, or ``row`` and ``values_row`` where those arrays are empty (the
    spikes not kept, the values not written)."""
    inflow = current[0, b] if current.shape[0] == 1 else current[k, b]
    step_spikes = spikes[k, b] if spikes.shape[0] > 0 else row
    step_values = values[k, b] if values.shape[0] > 0 else values_row
    return inflow, sent[k], step_spikes, step_values


@numba.njit(cache=True)
def _plain_neuron_scan(current, v, theta, to_zero, spikes, values, sent, first, last):
    """neuron_scan for Γ = 1 outside windows (``fire`` and ``reset`` with s in {0, 1}, as
    _plain_neurons), in two loops that each write two arrays: LLVM vectorises a loop only
    if it can check at run time that its arrays do not overlap, and gives up on one loop
    writing four (values and ``sent`` were two loops until one took 0.77-0.88 of the
    scan's time alone). With ``spikes`` empty the spikes of one image and step go
    to a row that stays in cache (about 3 times faster than writing them all on the
    bundled ``resnet``'s first layers). Each image's steps are taken in turn, so that its
    membranes stay in cache between them (the dense run of ``vgg_relu`` 1.04x faster at
    one thread, 1.05x at two, than step after step over all images)."""
    n, size = sent.shape
    zero = v.dtype.type(0)
    write = values.shape[0] > 0
    row = np.empty(size, np.int32)
    values_row = np.empty(0, values.dtype)  # stands for a values row not written
    for b in range(first, last):
        membrane = v[b]
        for k in range(n):
            inflow, step_sent, step_spikes, step_values = _scan_rows(
                current, spikes, values, sent, row, values_row, k, b)
            for i in range(size):
                m = membrane[i] + inflow[i]
                spike = m >= theta[i]
                after = zero if to_zero else m - theta[i]  # exact as in _plain_neurons
                membrane[i] = after if spike else m
                step_spikes[i] = spike
            if write:
                for i in range(size):
                    spiked = step_spikes[i]
                    step_values[i] = theta[i] if spiked != 0 else zero
                    step_sent[i] += spiked
            else:
                for i in range(size):
                    step_sent[i] += step_spikes[i]



@numba.njit(cache=True)
def _signed_plain_neuron_scan(current, v, theta, negative_theta, to_zero, spikes, values, sent,
                              net, first, last):
    """_plain_neuron_scan for signed neurons (``signed_fire`` and ``reset`` with s in
    {−1, 0, 1}); s θ is −θ, not −θ⁻, at a negative spike, as in neuron_scan. With
    ``spikes`` empty the spikes go to one row that stays in cache, and their sum per
    neuron to ``net``."""
    n, size = sent.shape
    zero = v.dtype.type(0)
    keep, write = spikes.shape[0] > 0, values.shape[0] > 0
    row = np.empty(size, np.int32)
    values_row = np.empty(0, values.dtype)  # stands for a values row not written
    for b in range(first, last):
        membrane = v[b]
        for k in range(n):
            inflow, step_sent, step_spikes, step_values = _scan_rows(
                current, spikes, values, sent, row, values_row, k, b)
            for i in range(size):
                m = membrane[i] + inflow[i]
                up = m >= theta[i]
                down = m <= -negative_theta[i]  # −m ≥ θ⁻, exactly
                after = zero if to_zero else (m - theta[i] if up else m + negative_theta[i])
                membrane[i] = after if up or down else m
                step_spikes[i] = 1 if up else (-1 if down else 0)
            if write:
                for i in range(size):
                    step_values[i] = step_spikes[i] * theta[i]
            for i in range(size):
                step_sent[i] += abs(step_spikes[i])
            if not keep:
                for i in range(size):
                    net[i] += step_spikes[i]


@numba.njit(cache=True, nogil=True)
def pool_scan(incoming, cumulative_in, cumulative_out, kernel, stride, padding, lipool,
              amplitude, spikes, values, sent, net, first, last):
    """The dense engine's spiking max pooling over a block of steps, images
    ``first..last − 1`` (disjoint ranges may run on several threads at once, each with
    its own ``sent`` and ``net``): at each step the input spikes join ``cumulative_in``,
    then each window emits the current spikes of its member with the largest cumulative
    count (the first such in row-major kernel order; the gate) or, with ``lipool``,
    ``max(cumulative_in) − cumulative_out`` (LIPooling). Padding never wins. The scalar
    form of :func:`evsim.pooling.spiking_maxpool`, step for step.

    ``incoming`` (steps, B, C, H, W) int32 spikes; ``cumulative_in`` (B, C, H, W) and
    ``cumulative_out`` (B, C, H', W') int64, updated; ``kernel``, ``stride``,
    ``padding`` (height, width); ``amplitude`` (C,) the value of one spike. Writes
    ``spikes`` (steps, B, C, H', W') int32 and ``values`` = spikes × amplitude, and adds
    the spikes over those images to ``sent`` (steps, C H' W') as |s| and to ``net``
    (C H' W',) as s, summed over the steps too (the SOP count reads the one, the spike
    counts the other, without another pass over the spikes). Each image's steps are taken
    in turn, so that its cumulative counts stay in cache between them.
    """
    n, _, channels, h, w = incoming.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    halves = _halves(kernel, stride, padding, (h, w), spikes.shape[3:])
    plane = spikes.shape[3] * spikes.shape[4]  # outputs per channel
    # one-dimensional slices of the whole arrays flattened once (a reshape per image,
    # step and channel made the scan 1.1-3.9x as long, the most on the smallest planes)
    batch, size = incoming.shape[1], h * w
    all_counts, all_now = cumulative_in.reshape(-1), incoming.reshape(-1)
    all_out = spikes.reshape(-1)
    for b in range(first, last):
        for k in range(n):
            for c in range(channels):
                counts, now = cumulative_in[b, c], incoming[k, b, c]
                at_in = (b * channels + c) * size
                at_now = ((k * batch + b) * channels + c) * size
                flat_counts = all_counts[at_in:at_in + size]
                flat_now = all_now[at_now:at_now + size]
                for i in range(size):
                    flat_counts[i] += flat_now[i]
                state, out, out_values = cumulative_out[b, c], spikes[k, b, c], values[k, b, c]
                if halves:
                    _pool_windows(counts, now, state, out, out_values, amplitude[c], lipool,
                                  True, 2, 2, 2, 2, 0, 0)
                else:
                    _pool_windows(counts, now, state, out, out_values, amplitude[c], lipool,
                                  False, kh, kw, sh, sw, ph, pw)
                at_out = ((k * batch + b) * channels + c) * plane
                flat_out = all_out[at_out:at_out + plane]
                step_sent = sent[k, c * plane:(c + 1) * plane]
                total = net[c * plane:(c + 1) * plane]
                for j in range(plane):
                    step_sent[j] += abs(flat_out[j])
                for j in range(plane):
                    total[j] += flat_out[j]


@numba.njit(cache=True)
def _halves(kernel, stride, padding, size, out_size):
    """Whether a pooling is the common 2×2 / stride 2 one with every window inside the
    input: the pooling kernels then call their window loop with these sizes as literal
    constants, which LLVM unrolls (three times faster than the general loop)."""
    return (kernel[0] == kernel[1] == stride[0] == stride[1] == 2
            and padding[0] == padding[1] == 0
            and out_size[0] == size[0] // 2 and out_size[1] == size[1] // 2)


@numba.njit(cache=True, inline="always")
def _pool_windows(counts, now, cumulative_out, spikes, values, scale, lipool, inside,
                  kh, kw, sh, sw, ph, pw):
    """pool_scan's windows of one image, channel and step; ``inside``: every window lies
    inside the input, so its members need no clipping."""
    h, w = counts.shape
    ho, wo = spikes.shape
    lowest = np.iinfo(np.int64).min
    for oy in range(ho):
        top = oy * sh - ph
        y0, y1 = (top, top + kh) if inside else (max(top, 0), min(top + kh, h))
        for ox in range(wo):
            left = ox * sw - pw
            x0, x1 = (left, left + kw) if inside else (max(left, 0), min(left + kw, w))
            best, by, bx = lowest, 0, 0
            for y in range(y0, y1):
                for x in range(x0, x1):
                    if counts[y, x] > best:
                        best, by, bx = counts[y, x], y, x
            if lipool:
                s = np.int32(best - cumulative_out[oy, ox])
                cumulative_out[oy, ox] = best
            else:
                s = now[by, bx]
            spikes[oy, ox] = s
            values[oy, ox] = values.dtype.type(s) * scale


@numba.njit(cache=True, nogil=True)
def average_pool(x, kernel, stride, padding, divisor, out, first, last):
    """:func:`evsim.ann_ops.avgpool2d` of frames ``first..last − 1`` (disjoint ranges may run
    on several threads at once), with the same sums in the same order: each window's
    members in row-major kernel order, padding adding 0, then one division.

    ``x`` (N, C, H, W); ``kernel``, ``stride``, ``padding`` (height, width);
    ``divisor`` (H', W') in x's dtype (:func:`evsim.ann_ops.avgpool_divisor`); writes
    ``out`` (N, C, H', W').
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    halves = _halves(kernel, stride, padding, x.shape[2:], out.shape[2:])
    for f in range(first, last):
        for c in range(x.shape[1]):
            if halves:
                _average_windows(x[f, c], divisor, out[f, c], True, 2, 2, 2, 2, 0, 0)
            else:
                _average_windows(x[f, c], divisor, out[f, c], False, kh, kw, sh, sw, ph, pw)


@numba.njit(cache=True, inline="always")
def _average_windows(plane, divisor, out, inside, kh, kw, sh, sw, ph, pw):
    """average_pool's windows of one frame and channel; ``inside``: as in _pool_windows."""
    h, w = plane.shape
    ho, wo = out.shape
    zero = plane.dtype.type(0)
    for oy in range(ho):
        for ox in range(wo):
            total = zero
            for i in range(kh):
                y = oy * sh - ph + i
                for j in range(kw):
                    x = ox * sw - pw + j
                    v = plane[y, x] if inside or (0 <= y < h and 0 <= x < w) else zero
                    total = v if i == 0 and j == 0 else total + v
            out[oy, ox] = total / divisor[oy, ox]

@numba.njit(cache=True, nogil=True)
def upsample_nearest(x, scale_h, scale_w, out, first, last, stream=False):
    """:func:`evsim.ann_ops.upsample` in "nearest" mode of frames ``first..last − 1``: a copy,
    each input sample written to its ``scale_h × scale_w`` block of ``out``.

    ``x`` (N, C, H, W); writes ``out`` (N, C, H·scale_h, W·scale_w), C-contiguous. Every
    store indexes a whole plane: the same loops through row views (and a slice
    assignment for the repeated rows) took 3-4 times as long on the bundled U-Net's
    64 × 28 × 28 maps. ``stream``: each plane is built in a scratch plane, then written to
    ``out`` with non-temporal stores (:func:`_stream_copy`), as :func:`concat_frames` does
    for a large output.
    """
    w, wide = x.shape[3], out.shape[3]
    scratch = np.empty((out.shape[2], wide) if stream else (1, 1), out.dtype)
    plane, flat_scratch, flat_out = out.shape[2] * wide, scratch.reshape(-1), out.reshape(-1)
    for f in range(first, last):
        for c in range(x.shape[1]):
            target = scratch if stream else out[f, c]
            for y in range(out.shape[2]):
                source = y // scale_h
                if scale_w == 2:  # the usual case: a loop that LLVM vectorises
                    for i in range(w):
                        v = x[f, c, source, i]
                        target[y, 2 * i] = v
                        target[y, 2 * i + 1] = v
                elif scale_w == 1:
                    for i in range(w):
                        target[y, i] = x[f, c, source, i]
                elif y % scale_h == 0:
                    for i in range(w):
                        v = x[f, c, source, i]
                        for j in range(scale_w):
                            target[y, i * scale_w + j] = v
                else:  # a repeated row: the row above again
                    for i in range(wide):
                        target[y, i] = target[y - 1, i]
            if stream:
                at = (f * x.shape[1] + c) * plane
                _stream_copy(flat_out[at:at + plane], flat_scratch)
    if stream:
        _store_fence()


@numba.njit(cache=True, nogil=True)
def upsample_separable(x, rows, row_weights, cols, col_weights, out, first, last,
                       stream=False):
    """:func:`evsim.ann_ops.upsample` in "bilinear" mode of frames ``first..last − 1``, with the
    same products and sums in the same order: each output row the taps of the rows
    (:func:`evsim.ann_ops.upsample_taps`) summed in tap order, then each output sample the
    taps of that row's columns.

    ``x`` (N, C, H, W); ``rows`` (H', taps) and ``cols`` (W', taps) int64, their weights in
    x's dtype; writes ``out`` (N, C, H', W'), C-contiguous.

    The doubled columns of a plane (align_corners False) are one pass over its rows laid
    end to end: output pair i of row o is pair ``o·W + i`` of the flat plane, reading
    ``tall`` at the same shifts, so the pairs at the rows' ends are computed with the
    interior weights too and then written again by the border gather. One pass instead
    of a call per row took 0.80 of the kernel's time on 64 × 28 × 28 maps. ``stream``: each
    plane is built in a scratch plane, then written to ``out`` with non-temporal stores
    (:func:`_stream_copy`), as :func:`upsample_nearest` does.
    """
    w = x.shape[3]
    tall = np.empty((rows.shape[0], w), x.dtype)  # a plane's rows, then columns
    flat_tall, flat_out, area = tall.reshape(-1), out.reshape(-1), out.shape[2] * out.shape[3]
    scratch = np.empty(out.shape[2:] if stream else (1, 1), out.dtype)
    flat_scratch = scratch.reshape(-1)
    lo, hi, shift, pattern = _doubled_span(cols, col_weights, w)
    for f in range(first, last):
        for c in range(x.shape[1]):
            at = (f * x.shape[1] + c) * area
            plane, target = x[f, c], scratch if stream else out[f, c]
            for o in range(rows.shape[0]):
                if rows.shape[1] == 2:  # the usual case
                    _blend_rows(plane[rows[o, 0]], plane[rows[o, 1]], row_weights[o, 0],
                                row_weights[o, 1], tall[o])
                else:
                    for i in range(tall.shape[1]):
                        tall[o, i] = plane[rows[o, 0], i] * row_weights[o, 0]
                    for k in range(1, rows.shape[1]):
                        for i in range(tall.shape[1]):
                            tall[o, i] += plane[rows[o, k], i] * row_weights[o, k]
            if hi > lo:
                _doubled_columns(flat_tall, lo, (rows.shape[0] - 1) * w + hi, shift, pattern,
                                 flat_scratch if stream else flat_out[at:at + area])
            _gather_columns(tall, cols, col_weights, target, 0, 2 * lo)
            _gather_columns(tall, cols, col_weights, target, 2 * hi, cols.shape[0])
            if stream:
                _stream_copy(flat_out[at:at + area], flat_scratch)
    if stream:
        _store_fence()


if numba.config.BOUNDSCHECK:
    @numba.njit(cache=True)
    def _blend_rows(top, bottom, w0, w1, tall):
        """Scalar form, so that bounds checking sees every index."""
        for i in range(tall.size):
            tall[i] = top[i] * w0 + bottom[i] * w1
else:
    @numba.njit(cache=True, inline="always")
    def _blend_rows(top, bottom, w0, w1, tall):
        """``tall = top·w0 + bottom·w1``, WIDE_LANES (else LANES) at a time (:func:`_blend`);
        a row whose length is not a multiple of them ends with one vector that overlaps the
        one before (it writes the same values again): no scalar remainder."""
        n = tall.size
        if n >= WIDE_LANES:
            for i in range(0, n - WIDE_LANES, WIDE_LANES):
                _blend_wide(tall, i, top, i, bottom, i, w0, w1)
            i = n - WIDE_LANES
            _blend_wide(tall, i, top, i, bottom, i, w0, w1)
        elif n >= LANES:
            for i in range(0, n - LANES, LANES):
                _blend(tall, i, top, i, bottom, i, w0, w1)
            _blend(tall, n - LANES, top, n - LANES, bottom, n - LANES, w0, w1)
        else:
            for i in range(n):
                tall[i] = top[i] * w0 + bottom[i] * w1


@numba.njit(cache=True, inline="always")
def _gather_columns(tall, cols, col_weights, target, first, last):
    """Output columns ``first..last − 1`` of every row: ``target[o, p]`` the taps ``cols[p]``
    of ``tall[o]`` times their weights, summed in tap order (each column's taps read
    once for all the rows)."""
    for p in range(first, last):
        c0, w0 = cols[p, 0], col_weights[p, 0]
        if cols.shape[1] == 2:  # the usual case, unrolled
            c1, w1 = cols[p, 1], col_weights[p, 1]
            for o in range(tall.shape[0]):
                target[o, p] = tall[o, c0] * w0 + tall[o, c1] * w1
            continue
        for o in range(tall.shape[0]):
            total = tall[o, c0] * w0
            for k in range(1, cols.shape[1]):
                total += tall[o, cols[p, k]] * col_weights[p, k]
            target[o, p] = total


if numba.config.BOUNDSCHECK:
    @numba.njit(cache=True)
    def _doubled_columns(tall, lo, hi, shift, pattern, line):
        """Scalar form, so that bounds checking sees every index."""
        for i in range(lo, hi):
            line[2 * i] = tall[i + shift[0]] * pattern[0] + tall[i + shift[1]] * pattern[1]
            line[2 * i + 1] = (tall[i + shift[2]] * pattern[2]
                               + tall[i + shift[3]] * pattern[3])
else:
    @numba.njit(cache=True, inline="always")
    def _doubled_columns(tall, lo, hi, shift, pattern, line):
        """``line[2i] = tall[i + shift[0]]·w0 + tall[i + shift[1]]·w1`` and ``line[2i+1]`` from
        taps 2 and 3 likewise (``pattern`` w0..w3), i in lo..hi − 1: the gather of
        :func:`_gather_columns` where the taps shift by one input per output pair,
        WIDE_LANES (else LANES) pairs per :func:`_pairs` (LLVM would not vectorise the
        interleaved stores), the last ones overlapping those before (as in
        :func:`_blend_rows`)."""
        w0, w1, w2, w3 = pattern[0], pattern[1], pattern[2], pattern[3]
        s0, s1, s2, s3 = shift[0], shift[1], shift[2], shift[3]
        if hi - lo >= WIDE_LANES:
            for i in range(lo, hi - WIDE_LANES, WIDE_LANES):
                _pairs_wide(line, 2 * i, tall, i + s0, i + s1, i + s2, i + s3, w0, w1, w2, w3)
            i = hi - WIDE_LANES  # the last pairs, overlapping the vector before: the same values
            _pairs_wide(line, 2 * i, tall, i + s0, i + s1, i + s2, i + s3, w0, w1, w2, w3)
        elif hi - lo >= LANES:
            for i in range(lo, hi - LANES, LANES):
                _pairs(line, 2 * i, tall, i + s0, i + s1, i + s2, i + s3, w0, w1, w2, w3)
            i = hi - LANES
            _pairs(line, 2 * i, tall, i + s0, i + s1, i + s2, i + s3, w0, w1, w2, w3)
        else:
            for i in range(lo, hi):
                line[2 * i] = tall[i + s0] * w0 + tall[i + s1] * w1
                line[2 * i + 1] = tall[i + s2] * w2 + tall[i + s3] * w3


@numba.njit(cache=True)
def _same_bits(a, b):
    """Whether two floats are the same value with the same sign (0.0 is not −0.0)."""
    return a == b and np.signbit(a) == np.signbit(b)


@numba.njit(cache=True)
def _doubled_span(cols, col_weights, width):
    """For an axis scaled ×2 with two taps: the output pairs ``lo..hi − 1`` around the middle
    whose pair i reads inputs ``i + shift`` (shift: the four taps of samples 2i and 2i+1)
    with the same four weights ``pattern`` (align_corners False: all but the border pairs);
    ``lo == hi`` when there is no such span (another scale, align_corners True)."""
    shift, pattern = np.zeros(4, np.int64), np.zeros(4, col_weights.dtype)
    if cols.shape[0] != 2 * width or cols.shape[1] != 2 or width < 2:
        return 0, 0, shift, pattern
    mid = width // 2
    for j in range(4):
        shift[j] = cols[2 * mid + j // 2, j % 2] - mid
        pattern[j] = col_weights[2 * mid + j // 2, j % 2]
    lo, hi = mid, mid
    while hi < width and _doubled_pair(cols, col_weights, hi, shift, pattern):
        hi += 1
    while lo > 0 and _doubled_pair(cols, col_weights, lo - 1, shift, pattern):
        lo -= 1
    return lo, hi, shift, pattern


@numba.njit(cache=True)
def _doubled_pair(cols, col_weights, i, shift, pattern):
    """Whether output pair i reads inputs ``i + shift`` with weights ``pattern``."""
    for j in range(4):
        p, k = 2 * i + j // 2, j % 2
        if cols[p, k] != i + shift[j] or not _same_bits(col_weights[p, k], pattern[j]):
            return False
    return True


@numba.njit(cache=True, nogil=True)
def concat_frames(parts, out, first, last, stream=False):
    """A Concat of frames ``first..last − 1``: ``out[f]`` the inputs ``parts[k][f]`` side by
    side, frame by frame (each frame's output written in one sweep). ``parts`` a tuple
    of (N, n_k) arrays of one type, ``out`` (N, Σ n_k), all C-contiguous. ``stream``:
    write ``out`` with non-temporal stores (:func:`_stream_copy`), as a large memcpy does:
    for an output far larger than the cache they save the read of every output line
    that a cached store makes before it writes."""
    for f in range(first, last):
        offset = 0
        for k in range(len(parts)):
            line = parts[k][f]
            target = out[f, offset:offset + line.size]
            if stream:
                _stream_copy(target, line)
            else:
                for i in range(line.size):
                    target[i] = line[i]
            offset += line.size
    if stream:
        _store_fence()


@numba.njit(cache=True, inline="always")
def _stream_copy(target, line):
    """``target[:] = line`` (1-D, contiguous): the elements before the first 64-byte boundary
    of ``target`` and after the last one by one, the whole 64-byte lines between with
    non-temporal stores (:func:`_stream_lanes`; a line written partly so and partly by
    ordinary stores is slow). Where ``target`` lies just above ``line`` modulo 4 KiB
    (:data:`ALIASING_BYTES`), the lines go from the last down: upwards, every load would
    follow a store to the same offset in its page, which the processor takes for a
    dependence until the addresses resolve (4K aliasing; a large memcpy turns the same
    way). The caller fences (:func:`_store_fence`) before another thread reads
    ``target``."""
    n, per_line = line.size, 64 // target.itemsize
    head = min(n, ((64 - target.ctypes.data % 64) % 64) // target.itemsize)
    end = head + (n - head) // per_line * per_line
    for i in range(head):
        target[i] = line[i]
    for i in range(end, n):
        target[i] = line[i]
    t, source = _data(target), _data(line)
    if 0 < (target.ctypes.data - line.ctypes.data) % 4096 < ALIASING_BYTES:
        j = end
        while j > head:
            j -= per_line
            for q in range(0, per_line, LANES):
                _stream_lanes(t, j + q, source, j + q)
    else:
        j = head
        while j < end:
            for q in range(0, per_line, LANES):
                _stream_lanes(t, j + q, source, j + q)
            j += per_line


# --- operations ------------------------------------------------------------------------

@numba.njit(cache=True)
def _rate(op, x, image_key, t, idx, mult, base):
    """Bernoulli input spikes of one image, as evsim.encoding draws them: those of step t,
    or, for a window of the temporal scheme (window W > 0), the counts over steps 1..W."""
    channels, hw, window = op[RATE_CHANNELS], op[RATE_HW], op[RATE_WINDOW]
    first, last = (1, window) if window > 0 else (t, t)
    n = 0
    for p in range(channels * hw):
        count = 0
        for u in range(first, last + 1):
            step_key = _mix((image_key ^ np.uint64(u)) + _GOLDEN)
            h = _mix((step_key ^ np.uint64(p)) + _GOLDEN)
            if np.float64(h >> np.uint64(11)) * 1.1102230246251565e-16 < x[p]:
                count += 1
        if count > 0:
            idx[base + n] = (p % hw) * channels + p // hw
            mult[base + n] = count
            n += 1
    return n


@numba.njit(cache=True, inline="always")
def _scatter(op, ip, fp, buf, idx, mult, base, n_events, binary, depthwise):
    """Add every event's runs into the target buffer; return the SOPs (exact fan-out map).

    An event at source neuron i = s·C + c (position s, channel c, channels-last)
    with multiplicity m adds ``(m θ_i · factor_r) · w`` over each run r of
    position s, shifted by channel c's output and weight offsets.
    """
    if op[SC_ROW] > 0:
        return _scatter_rows(op, ip, fp, buf, idx, mult, base, n_events, binary)
    if op[SC_WINDOW] >= 0:
        if depthwise is None:  # pruned at compile time: see kernel_paths
            raise AssertionError("a depthwise scatter needs the depthwise kernel")
        return _scatter_depthwise(op, ip, fp, buf, idx, mult, base, n_events, binary)
    if op[SC_DISJOINT]:
        return _scatter_positions(op, ip, fp, buf, idx, mult, base, n_events, binary)
    channels, amp = op[SC_CHANNELS], op[SC_AMPLITUDE]
    run_ptr, run_out, run_w = op[SC_RUN_PTR], op[SC_RUN_OUT], op[SC_RUN_W]
    run_len, run_factor = op[SC_RUN_LEN], op[SC_RUN_FACTOR]
    channel_w, channel_out, fanout = op[SC_CHANNEL_W], op[SC_CHANNEL_OUT], op[SC_FANOUT]
    weights, dst = op[SC_WEIGHTS], op[SC_DST]
    reciprocal = _reciprocal(channels)
    sops = 0
    for e in range(n_events):  # unsigned indices (_u): no wrap-around code per lookup
        s, m, a, out, w = _event(ip, fp, idx, mult, base + e, channels, reciprocal, amp,
                                 channel_out, channel_w)
        out0, w0 = dst + out, weights + w
        for r in range(ip[_u(run_ptr + s)], ip[_u(run_ptr + s + 1)]):
            n = ip[_u(run_len + r)]
            o, k = out0 + ip[_u(run_out + r)], w0 + ip[_u(run_w + r)]
            scaled = a * fp[_u(run_factor + r)]
            if n == 1:  # one add (an Add's or an activation's events): no vector loop
                _add_one(buf, o, fp, k, scaled)
            else:
                _add_run(buf, o, fp, k, scaled, n)
        sops += _sent(np.int64(m), binary) * ip[_u(fanout + s)]
    return sops


@numba.njit(cache=True)
def _scatter_depthwise(op, ip, fp, buf, idx, mult, base, n_events, binary):
    """_scatter for a depthwise convolution (one input channel per group, any channel
    multiplier M) that reads the events directly: an event at input (y, x, c) adds
    ``a · w[c, tap, :]`` to the M output channels of c at each output position of its
    window, found here with border clipping instead of looked up run by run (with M = 1
    a run is one float, and its lookups cost more than its add). The same adds as the
    runs (their factors are 1), in the same order; SOPs from the same fan-out map. The
    common 3×3, stride 1, M = 1 layer has its own loop (:func:`_depthwise3x3_events`); the
    others read their taps from a table (:func:`_tabled_depthwise_events`), or walk their
    windows where the table would be too large (:func:`_depthwise_events`)."""
    g = op[SC_WINDOW]
    geometry = ip[g:g + WIN_SCRATCH + 1]
    if geometry[WIN_PER] > 0:
        return _tabled_depthwise_events(op, ip, fp, buf, idx, mult, base, n_events, binary,
                                        geometry[WIN_TAPS], geometry[WIN_PER],
                                        geometry[WIN_MULTIPLIER])
    kh, kw, sy, sx, dy, dx, mult_c = (geometry[WIN_KH], geometry[WIN_KW], geometry[WIN_SY],
                                      geometry[WIN_SX], geometry[WIN_DY], geometry[WIN_DX],
                                      geometry[WIN_MULTIPLIER])
    if kh == kw == 3 and sy == sx == dy == dx == mult_c == 1:
        return _depthwise3x3_events(op, ip, fp, buf, idx, mult, base, n_events, binary,
                                    geometry)
    return _depthwise_events(op, ip, fp, buf, idx, mult, base, n_events, binary, geometry,
                             mult_c, kh, kw, sy, sx, dy, dx)


@numba.njit(cache=True)
def _tabled_depthwise_events(op, ip, fp, buf, idx, mult, base, n_events, binary, table, per,
                             mult_c):
    """_scatter_depthwise's loop for a window with a tap table: an event at position s adds
    to the ``per`` taps of row s of the table (``ip[table:]``, pairs of output and weight
    offsets from its channel's), the same number for every event, so that no branch per
    tap or per border mispredicts (a 3×3 / stride-2 event reaches 1, 2 or 4 outputs by the
    parity of its row and column: walking them ran at 0.10–0.23 GSOP/s, below the generic
    runs at 1–5 %; a dilated 3×3 one ran at a third of the table's speed). Taps that pad a
    row add to scratch floats. Each output receives at
    most one add per event, in event order: the walk's sums; SOPs from the fan-out map.
    A function of its own: inlined into the dispatch, this loop ran a third slower."""
    channels, amp = op[SC_CHANNELS], op[SC_AMPLITUDE]
    channel_w, channel_out, fanout = op[SC_CHANNEL_W], op[SC_CHANNEL_OUT], op[SC_FANOUT]
    weights, dst = op[SC_WEIGHTS], op[SC_DST]
    reciprocal = _reciprocal(channels)
    sops = 0
    for e in range(n_events):
        s, m, a, out, w = _event(ip, fp, idx, mult, base + e, channels, reciprocal, amp,
                                 channel_out, channel_w)
        out0, w0 = dst + out, weights + w
        row = table + 2 * per * s
        for t in range(per):
            _add_tap(buf, fp, out0 + ip[_u(row + 2 * t)], w0 + ip[_u(row + 2 * t + 1)], a,
                     mult_c)
        sops += _sent(np.int64(m), binary) * ip[_u(fanout + s)]
    return sops


@numba.njit(cache=True, inline="always")
def _depthwise3x3_events(op, ip, fp, buf, idx, mult, base, n_events, binary, geometry):
    """_scatter_depthwise's loop for a 3×3, stride 1, M = 1 window: each event on its own
    (grouping the events of a position cost a mispredicted branch per position); an event
    whose nine taps all reach the output loads its nine weights, then adds them unrolled,
    and counts nine SOPs per spike (its fan-out) without looking them up; the others take
    :func:`_border_adds_3x3`. A channel's output and weight offsets are computed when
    they are affine in the channel (as the compiler lays them out; checked per call),
    else looked up. Each output still receives its adds in event order."""
    channels, amp = op[SC_CHANNELS], op[SC_AMPLITUDE]
    channel_w, channel_out, fanout = op[SC_CHANNEL_W], op[SC_CHANNEL_OUT], op[SC_FANOUT]
    weights, dst = op[SC_WEIGHTS], op[SC_DST]
    width, ho, wo, cout = (geometry[WIN_IN_W], geometry[WIN_OUT_H], geometry[WIN_OUT_W],
                           geometry[WIN_OUT_C])
    py, px = geometry[WIN_PY], geometry[WIN_PX]
    reciprocal, row_reciprocal = _reciprocal(channels), _reciprocal(width)
    row = wo * cout
    out_first, w_first = ip[_u(channel_out)], ip[_u(channel_w)]
    affine = True  # channel c's offsets out_first + c and w_first + 9 c: no lookups
    for c in range(channels):
        affine &= (ip[_u(channel_out + c)] == out_first + c
                   and ip[_u(channel_w + c)] == w_first + 9 * c)
    sops = 0
    inside_spikes = 0  # spikes of the events with all nine taps on the output
    for e in range(n_events):
        i = idx[_u(base + e)]
        m = mult[_u(base + e)]
        s, c = _source(i, channels, reciprocal)
        y, x = _source(s, width, row_reciprocal)
        ny0, nx0 = y + py, x + px  # tap (ky, kx) reaches output (ny0 − ky, nx0 − kx)
        a = m * fp[_u(amp + i)]  # both in the simulation dtype, as the dense engine does
        if affine:
            out0, w0 = dst + out_first + c, weights + w_first + 9 * c
        else:
            out0 = dst + ip[_u(channel_out + c)]
            w0 = weights + ip[_u(channel_w + c)]
        if not (2 <= ny0 < ho and 2 <= nx0 < wo):
            _border_adds_3x3(buf, fp, out0, w0, a, ny0, nx0, ho, wo, cout)
            sops += _sent(np.int64(m), binary) * ip[_u(fanout + s)]
            continue
        _window_adds_3x3(buf, fp, out0, ((ny0 - 2) * wo + nx0 - 2) * cout, w0, a, row, cout)
        inside_spikes += _sent(np.int64(m), binary)
    return sops + 9 * inside_spikes


@numba.njit(cache=True, inline="always")
def _window_adds_3x3(buf, fp, out0, corner, w0, a, row, cout):
    """The nine adds of a 3×3, stride 1, M = 1 window whose taps all reach the output:
    ``a · w`` with the nine weights from ``fp[w0]`` (``[KH, KW reversed]``), around output
    corner o (output (ny0 − 2, nx0 − 2), tap ky = kx = 2), rows ``row`` and columns
    ``cout`` apart. The weights are loaded before any add: LLVM cannot move a load past a
    store to buf. Indices unsigned (:func:`_u`)."""
    w00, w01, w02 = fp[_u(w0)], fp[_u(w0 + 1)], fp[_u(w0 + 2)]
    w10, w11, w12 = fp[_u(w0 + 3)], fp[_u(w0 + 4)], fp[_u(w0 + 5)]
    w20, w21, w22 = fp[_u(w0 + 6)], fp[_u(w0 + 7)], fp[_u(w0 + 8)]
    o = out0 + corner
    buf[_u(o)] += a * w20
    buf[_u(o + cout)] += a * w21
    buf[_u(o + 2 * cout)] += a * w22
    o += row
    buf[_u(o)] += a * w10
    buf[_u(o + cout)] += a * w11
    buf[_u(o + 2 * cout)] += a * w12
    o += row
    buf[_u(o)] += a * w00
    buf[_u(o + cout)] += a * w01
    buf[_u(o + 2 * cout)] += a * w02


@numba.njit(cache=True, inline="always")
def _border_adds_3x3(buf, fp, out0, w0, a, ny0, nx0, ho, wo, cout):
    """The adds of a 3×3, stride 1, M = 1 window whose taps are not all on the output:
    tap (ky, kx) reaches output (ny0 − ky, nx0 − kx) if that is inside. The adds of
    :func:`_depthwise_window` for this window, written for it: through that general walk
    the whole loop ran at 0.92 GSOP/s instead of 1.18 (64 channels, 5 %), and with scratch
    arrays allocated per call a third slower."""
    for ky in range(3):
        oy = ny0 - ky
        if 0 <= oy < ho:
            for kx in range(3):
                ox = nx0 - kx
                if 0 <= ox < wo:
                    _add_one(buf, out0 + (oy * wo + ox) * cout, fp, w0 + 3 * ky + 2 - kx, a)


@numba.njit(cache=True, inline="always")
def _depthwise_events(op, ip, fp, buf, idx, mult, base, n_events, binary, geometry, mult_c,
                      kh, kw, sy, sx, dy, dx):
    """_scatter_depthwise's event loop for any window. Consecutive events of one position
    share its window's quotients (:func:`_depthwise_window`). Indices are unsigned
    (:func:`_u`)."""
    channels, amp = op[SC_CHANNELS], op[SC_AMPLITUDE]
    channel_w, channel_out, fanout = op[SC_CHANNEL_W], op[SC_CHANNEL_OUT], op[SC_FANOUT]
    weights, dst = op[SC_WEIGHTS], op[SC_DST]
    width, ho, wo, cout = (geometry[WIN_IN_W], geometry[WIN_OUT_H], geometry[WIN_OUT_W],
                           geometry[WIN_OUT_C])
    py, px = geometry[WIN_PY], geometry[WIN_PX]
    reciprocal, row_reciprocal = _reciprocal(channels), _reciprocal(width)
    y_reciprocal, x_reciprocal = _reciprocal(sy), _reciprocal(sx)
    sops = 0
    e = 0
    while e < n_events:
        i = idx[_u(base + e)]
        s, _ = _source(i, channels, reciprocal)
        y, x = _source(s, width, row_reciprocal)
        ny0, nx0 = y + py, x + px  # tap (ky, kx) reaches output (ny0 − ky·dy, ...) / stride
        qy, qx = _quotient(ny0, y_reciprocal), _quotient(nx0, x_reciprocal)
        first, fan = s * channels, ip[_u(fanout + s)]
        while True:  # the events of position s
            m = mult[_u(base + e)]
            c = i - first
            a = m * fp[_u(amp + i)]  # both in the simulation dtype, as the dense engine does
            out0 = dst + ip[_u(channel_out + c)]
            w0 = weights + ip[_u(channel_w + c)]
            _depthwise_window(buf, fp, out0, w0, a, ny0, nx0, qy, qx, ho, wo, cout, mult_c,
                              kh, kw, sy, sx, dy, dx)
            sops += _sent(np.int64(m), binary) * fan
            e += 1
            if e == n_events:
                break
            i = idx[_u(base + e)]
            if not first <= i < first + channels:
                break
    return sops

@numba.njit(cache=True, inline="always")
def _depthwise_window(buf, fp, out0, w0, a, ny0, nx0, qy, qx, ho, wo, cout, mult_c, kh, kw,
                      sy, sx, dy, dx):
    """One event's adds in a depthwise window, clipped at the output's borders: tap
    (ky, kx) reaches output (oy, ox) with oy·sy = ny0 − ky·dy (likewise x); weights laid
    out as the runs', ``[KH, KW reversed, M]`` from w0. ``qy``, ``qx``: ny0 // sy and
    nx0 // sx, which the caller computes once per position. Without dilation the taps
    that reach an output are stepped through directly (ky ≡ ny0 mod sy), with no division
    per tap (a stride-2 layer's divisions had made it slower than the generic runs; taps
    listed in scratch arrays once per position were no faster, and an allocation per call
    slows a whole loop)."""
    if dy == 1 and dx == 1:
        oy, ky = qy, ny0 - qy * sy  # the lowest tap: the output furthest down
        if oy >= ho:
            ky += (oy - ho + 1) * sy
            oy = ho - 1
        ox_last, kx_first = qx, nx0 - qx * sx
        if ox_last >= wo:
            kx_first += (ox_last - wo + 1) * sx
            ox_last = wo - 1
        while ky < kh and oy >= 0:
            row = out0 + oy * wo * cout
            ox, kx = ox_last, kx_first
            while kx < kw and ox >= 0:
                _add_tap(buf, fp, row + ox * cout, w0 + (ky * kw + kw - 1 - kx) * mult_c, a,
                         mult_c)
                ox -= 1
                kx += sx
            oy -= 1
            ky += sy
        return
    for ky in range(kh):
        ny = ny0 - ky * dy
        if ny < 0:
            break
        oy = ny // sy
        if oy * sy != ny or oy >= ho:
            continue
        row = out0 + oy * wo * cout
        for kx in range(kw):
            nx = nx0 - kx * dx
            if nx < 0:
                break
            ox = nx // sx
            if ox * sx != nx or ox >= wo:
                continue
            _add_tap(buf, fp, row + ox * cout, w0 + (ky * kw + kw - 1 - kx) * mult_c, a,
                     mult_c)


@numba.njit(cache=True, inline="always")
def _add_tap(buf, fp, o, k, a, mult_c):
    """One tap's adds: its M output channels from output offset o, weights from k."""
    if mult_c == 1:
        _add_one(buf, o, fp, k, a)
    else:
        _add_run(buf, o, fp, k, a, mult_c)

if numba.config.BOUNDSCHECK:
    @numba.njit(cache=True)
    def _data(array):
        """The array itself, so that bounds checking sees every index."""
        return array

    @numba.njit(cache=True)
    def _stream_lanes(out, o, source, s):
        """Scalar form (ordinary stores), so that bounds checking sees every index."""
        for j in range(LANES):
            out[o + j] = source[s + j]

    @numba.njit(cache=True)
    def _store_fence():
        """Nothing to fence: the scalar form stores normally."""

    @numba.njit(cache=True)
    def _add_rows(out, o, w, k0, a0, k1, a1, k2, a2, k3, a3, n_rows, n):
        """Scalar form, so that bounds checking sees every index."""
        for p in range(n_rows):
            k, a = (k0, a0) if p == 0 else ((k1, a1) if p == 1 else (
                (k2, a2) if p == 2 else (k3, a3)))
            for j in range(n):
                out[o + j] += a * w[k + j]

    @numba.njit(cache=True)
    def _fire_block(v, current, theta, start, uniform, to_zero):
        """Scalar form, so that bounds checking sees every index."""
        return _fire_scalar(v, current, theta, start, start + 64, uniform, to_zero)

    @numba.njit(cache=True)
    def _copy_block(target, start, source, at):
        """Scalar form, so that bounds checking sees every index."""
        for j in range(64):
            target[start + j] = source[at + j]

    @numba.njit(cache=True)
    def _fire_signed_block(v, current, theta, negative_theta, start, uniform, to_zero):
        """Scalar form, so that bounds checking sees every index."""
        return _fire_signed_scalar(v, current, theta, negative_theta, start, start + 64,
                                   uniform, to_zero)
else:
    @intrinsic
    def _stream_lanes(typingctx, out, o, source, s):
        """``out[o:o+LANES] = source[s:s+LANES]`` as one vector load and one non-temporal
        vector store (``out[o]`` on a vector boundary). ``out``, ``source``: pointers
        (:func:`_data`). The caller guarantees the bounds."""
        if not (isinstance(out, types.CPointer) and out == source):
            return None

        def codegen(context, builder, signature, args):
            out_data, o, source_data, s = args
            lanes = ir.VectorType(out_data.type.pointee, LANES)
            _store_lanes(builder, _load_lanes(builder, source_data, s, lanes), out_data, o,
                         lanes, stream_align=LANES * signature.args[0].dtype.bitwidth // 8)
            return context.get_dummy_value()

        return types.void(out, types.intp, source, types.intp), codegen

    @intrinsic
    def _store_fence(typingctx):
        """Orders the non-temporal stores before every later memory access (a sequentially
        consistent fence: on x86 LLVM emits a locked instruction, which, as ``mfence``
        would, drains the write-combining buffers), so that a thread that sees this one
        finish also sees what they wrote."""
        def codegen(context, builder, signature, args):
            builder.fence("seq_cst")
            return context.get_dummy_value()

        return types.void(), codegen

    @intrinsic
    def _data(typingctx, array):
        """A pointer to a contiguous array's first element, for :func:`_add_rows`."""
        if not isinstance(array, types.Array):
            return None

        def codegen(context, builder, signature, args):
            return context.make_array(signature.args[0])(context, builder, args[0]).data

        return types.CPointer(array.dtype)(array), codegen

    @intrinsic
    def _add_rows(typingctx, out, o, w, k0, a0, k1, a1, k2, a2, k3, a3, n_rows, n):
        """``out[o:o+n] += a * w[k:k+n]`` for the first ``n_rows`` (0 to 4) of (k0, a0) ..
        (k3, a3) in turn, each element's adds in that order (as that many _add_run calls),
        loading and storing ``out`` once: WIDE_LANES outputs at a time (one vector
        multiply and add per row, each rounded, as :func:`_axpy`), then LANES if as many
        remain, then the rest one by one. ``out``
        and ``w``: pointers (:func:`_data`). The loops are emitted in place, not called
        (a call passed two arrays and ten scalars on the stack for every pass), and take
        pointers, not arrays: given the arrays, Numba counted their references (atomic
        adds) at every call of the kernel. The caller guarantees the bounds."""
        if not (isinstance(out, types.CPointer) and out == w
                and a0 == a1 == a2 == a3 == out.dtype):
            return None

        def codegen(context, builder, signature, args):
            out_data, o, w_data, rows, n_rows, n = args[0], args[1], args[2], args[3:11], \
                args[11], args[12]
            intp = n.type
            main = builder.and_(n, ir.Constant(intp, -WIDE_LANES))
            vector = ir.VectorType(out_data.type.pointee, WIDE_LANES)
            half = ir.VectorType(out_data.type.pointee, LANES)
            for count in range(1, 5):
                with builder.if_then(builder.icmp_signed("==", n_rows,
                                                         ir.Constant(n_rows.type, count))):
                    with cgutils.for_range_slice(builder, ir.Constant(intp, 0), main,
                                                 ir.Constant(intp, WIDE_LANES),
                                                 intp) as (j, _):
                        _add_rows_at(builder, out_data, w_data, o, rows[:2 * count], j, vector)
                    rest = main
                    if WIDE_LANES > LANES:  # one vector of LANES if as many remain
                        fits = builder.icmp_signed(">=", builder.sub(n, main),
                                                   ir.Constant(intp, LANES))
                        with builder.if_then(fits):
                            _add_rows_at(builder, out_data, w_data, o, rows[:2 * count], main,
                                         half)
                        rest = builder.select(fits, builder.add(main, ir.Constant(intp, LANES)),
                                              main)
                    with cgutils.for_range_slice(builder, rest, n, ir.Constant(intp, 1),
                                                 intp) as (j, _):
                        _add_rows_at(builder, out_data, w_data, o, rows[:2 * count], j, None)
            return context.get_dummy_value()

        return types.void(out, types.intp, w, types.intp, a0, types.intp, a1, types.intp, a2,
                          types.intp, a3, types.intp, types.intp), codegen

    def _add_rows_at(builder, out_data, w_data, o, rows, j, vector):
        """IR of ``out[o+j] += a * w[k+j]`` for each (k, a) of ``rows`` in turn, with one
        load and one store of ``out``: a ``vector`` type's floats at once, else one."""
        def at(data, start):
            pointer = cgutils.gep(builder, data, builder.add(start, j))
            return pointer if vector is None else builder.bitcast(pointer, vector.as_pointer())

        target = at(out_data, o)
        total = builder.load(target, align=1)
        for k, a in zip(rows[::2], rows[1::2]):
            scale = a
            if vector is not None:
                scale = cgutils.get_null_value(vector)
                for lane in range(vector.count):
                    scale = builder.insert_element(scale, a, ir.Constant(ir.IntType(32), lane))
            total = builder.fadd(total, builder.fmul(scale, builder.load(at(w_data, k),
                                                                         align=1)))
        builder.store(total, target, align=1)


if not numba.config.BOUNDSCHECK:
    @intrinsic
    def _fire_block(typingctx, v, current, theta, start, uniform, to_zero):
        """Neurons start .. start + 63 of a plain layer (:func:`_fire_one` for each) as one
        64-lane vector: m = v + I, spike = m ≥ θ (θ[0] for every lane when ``uniform``),
        v = reset or m; returns the spikes as the bits of one word (bit j: neuron start + j),
        the compare's own mask, so that no flag is stored and packed again. ``v``,
        ``current``, ``theta``: pointers (:func:`_data`). The caller guarantees the bounds."""
        if not (isinstance(v, types.CPointer) and v == current == theta):
            return None

        def codegen(context, builder, signature, args):
            v_data, current_data, theta_data, start, uniform, to_zero = args
            lanes = ir.VectorType(v_data.type.pointee, 64)
            m = builder.fadd(_load_lanes(builder, v_data, start, lanes),
                             _load_lanes(builder, current_data, start, lanes))
            theta_lanes = _threshold_lanes(builder, theta_data, start, uniform, lanes)
            spike = builder.fcmp_ordered(">=", m, theta_lanes)
            after = builder.select(_nonzero(builder, to_zero), ir.Constant(lanes, None),
                                   builder.fsub(m, theta_lanes))
            _store_lanes(builder, builder.select(spike, after, m), v_data, start, lanes)
            return builder.bitcast(spike, ir.IntType(64))

        return types.uint64(v, current, theta, start, uniform, to_zero), codegen

    @intrinsic
    def _fire_signed_block(typingctx, v, current, theta, negative_theta, start, uniform,
                           to_zero):
        """:func:`_fire_block` for signed neurons (:func:`_fire_signed_one` for each):
        returns the words of the neurons that fire +1 (m ≥ θ) and of those that fire −1
        (m ≤ −θ⁻ and not +1)."""
        if not (isinstance(v, types.CPointer) and v == current == theta == negative_theta):
            return None

        def codegen(context, builder, signature, args):
            v_data, current_data, theta_data, negative_data, start, uniform, to_zero = args
            lanes = ir.VectorType(v_data.type.pointee, 64)
            m = builder.fadd(_load_lanes(builder, v_data, start, lanes),
                             _load_lanes(builder, current_data, start, lanes))
            theta_lanes = _threshold_lanes(builder, theta_data, start, uniform, lanes)
            negative = _threshold_lanes(builder, negative_data, start, uniform, lanes)
            up = builder.fcmp_ordered(">=", m, theta_lanes)
            below = builder.fcmp_ordered("<=", m, builder.fsub(ir.Constant(lanes, -0.0),
                                                               negative))  # −θ⁻ exactly
            down = builder.and_(below, builder.not_(up))
            moved = builder.select(up, builder.fsub(m, theta_lanes), builder.fadd(m, negative))
            after = builder.select(_nonzero(builder, to_zero), ir.Constant(lanes, None), moved)
            _store_lanes(builder, builder.select(builder.or_(up, down), after, m), v_data,
                         start, lanes)
            words = [builder.bitcast(mask, ir.IntType(64)) for mask in (up, down)]
            return context.make_tuple(builder, signature.return_type, words)

        return (types.UniTuple(types.uint64, 2)(v, current, theta, negative_theta, start,
                                                uniform, to_zero), codegen)

    @intrinsic
    def _copy_block(typingctx, target, start, source, at):
        """``target[start:start+64] = source[at:at+64]``: one 64-lane load and store.
        ``target``, ``source``: pointers (:func:`_data`). The caller guarantees the bounds."""
        if not (isinstance(target, types.CPointer) and target == source):
            return None

        def codegen(context, builder, signature, args):
            target_data, start, source_data, at = args
            lanes = ir.VectorType(target_data.type.pointee, 64)
            _store_lanes(builder, _load_lanes(builder, source_data, at, lanes), target_data,
                         start, lanes)
            return context.get_dummy_value()

        return types.void(target, start, source, at), codegen

    def _load_lanes(builder, data, start, lanes):
        """IR: the ``lanes`` floats from data[start]."""
        pointer = builder.bitcast(cgutils.gep(builder, data, start), lanes.as_pointer())
        return builder.load(pointer, align=1)

    def _store_lanes(builder, value, data, start, lanes, stream_align=0):
        """IR: ``value`` stored at data[start]; with ``stream_align`` (bytes, the whole
        vector's, to which the address is aligned) a non-temporal store."""
        pointer = builder.bitcast(cgutils.gep(builder, data, start), lanes.as_pointer())
        if not stream_align:
            builder.store(value, pointer, align=1)
            return
        store = builder.store(value, pointer, align=stream_align)
        store.set_metadata("nontemporal", builder.module.add_metadata(
            [ir.Constant(ir.IntType(32), 1)]))

    def _nonzero(builder, flag):
        return builder.icmp_signed("!=", flag, ir.Constant(flag.type, 0))

    def _threshold_lanes(builder, data, start, uniform, lanes):
        """IR: θ of the lanes: data[0] in every lane when ``uniform``, else data[start:]."""
        first = builder.insert_element(ir.Constant(lanes, ir.Undefined), builder.load(data),
                                       ir.Constant(ir.IntType(32), 0))
        splat = builder.shuffle_vector(first, ir.Constant(lanes, ir.Undefined),
                                       ir.Constant(ir.VectorType(ir.IntType(32), 64), [0] * 64))
        with builder.if_else(_nonzero(builder, uniform)) as (then, otherwise):
            with then:
                from_splat = builder.block
            with otherwise:
                per_neuron = _load_lanes(builder, data, start, lanes)
                from_load = builder.block
        value = builder.phi(lanes)
        value.add_incoming(splat, from_splat)
        value.add_incoming(per_neuron, from_load)
        return value


@numba.njit(cache=True)
def _scatter_rows(op, ip, fp, buf, idx, mult, base, n_events, binary):
    """_scatter for a dense layer's targets (every run a whole row at dst): the runs are
    added four at a time, so that the row is loaded and stored once per four, not per run,
    and the last one to three in one pass; each target still receives its adds in event
    order. Pipelined: four runs wait until the next four are looked up, so that those
    lookups (in tables that the streaming rows keep pushing out of L1) overlap their adds
    instead of stalling each pass. Indices are unsigned (_u)."""
    channels, amp = op[SC_CHANNELS], op[SC_AMPLITUDE]
    run_ptr, run_w, run_factor = op[SC_RUN_PTR], op[SC_RUN_W], op[SC_RUN_FACTOR]
    channel_w, fanout, weights = op[SC_CHANNEL_W], op[SC_FANOUT], op[SC_WEIGHTS]
    dst, row, affine = op[SC_DST], op[SC_ROW], op[SC_AFFINE_ROWS] != 0
    first_row = (weights + ip[_u(channel_w)] + ip[_u(run_w + ip[_u(run_ptr)])] if affine
                 else 0)  # neuron 0's row
    # max (channels >= 1 anyway): with no division-by-zero branch, and so no exception
    # path, Numba does not count references to the arrays (two atomic adds each per call)
    reciprocal = _reciprocal(max(channels, 1))
    out, w = _data(buf), _data(fp)
    zero = fp.dtype.type(0)
    k0 = k1 = k2 = k3 = np.int64(0)  # the runs looked up, the latest in (k3, a3)
    a0 = a1 = a2 = a3 = zero
    h0 = h1 = h2 = h3 = np.int64(0)  # four earlier runs, waiting to be added
    b0 = b1 = b2 = b3 = zero
    n = 0  # runs in (k0, a0) .. (k3, a3) not yet passed to (h0, b0) .. (h3, b3)
    waiting = False
    sops = 0
    spikes = 0  # of the events of an affine path, whose fan-out is the row
    for e in range(n_events):
        i = idx[_u(base + e)]
        m = mult[_u(base + e)]
        a = m * fp[_u(amp + i)]  # both in the simulation dtype, as the dense engine computes
        if affine:
            s, c, w0, first, last = i, 0, first_row + i * row, 0, 1
        else:
            s, c = _source(i, channels, reciprocal)
            w0 = weights + ip[_u(channel_w + c)]
            first, last = ip[_u(run_ptr + s)], ip[_u(run_ptr + s + 1)]
        for r in range(first, last):
            k0, a0, k1, a1, k2, a2 = k1, a1, k2, a2, k3, a3
            if affine:  # one row of factor 1: a · 1 = a exactly
                k3, a3 = w0, a
            else:
                k3, a3 = w0 + ip[_u(run_w + r)], a * fp[_u(run_factor + r)]
            n += 1
            if n == 4:
                if waiting:
                    _add_rows(out, dst, w, h0, b0, h1, b1, h2, b2, h3, b3, 4, row)
                h0, b0, h1, b1, h2, b2, h3, b3 = k0, a0, k1, a1, k2, a2, k3, a3
                waiting, n = True, 0
        if affine:
            spikes += _sent(np.int64(m), binary)
        else:
            sops += _sent(np.int64(m), binary) * ip[_u(fanout + s)]
    if waiting:
        _add_rows(out, dst, w, h0, b0, h1, b1, h2, b2, h3, b3, 4, row)
    if n == 3:  # the last n runs looked up: (k4-n, a4-n) .. (k3, a3)
        _add_rows(out, dst, w, k1, a1, k2, a2, k3, a3, k3, a3, n, row)
    elif n == 2:
        _add_rows(out, dst, w, k2, a2, k3, a3, k3, a3, k3, a3, n, row)
    elif n == 1:
        _add_rows(out, dst, w, k3, a3, k3, a3, k3, a3, k3, a3, n, row)
    return sops + spikes * row


@numba.njit(cache=True)
def _scatter_positions(op, ip, fp, buf, idx, mult, base, n_events, binary):
    """_scatter where the runs of a position write distinct outputs: the events of one
    position with the same output offset (all of them, in a convolution of one group) share
    its runs, so up to four of them are added run by run in one pass (:func:`_add_rows`),
    each run's outputs loaded and stored once per four events, not per event. An output is
    in one run of the position, so it still receives its adds in event order: the sums
    are those of one event at a time, bit for bit. Indices are unsigned (_u)."""
    channels, amp = op[SC_CHANNELS], op[SC_AMPLITUDE]
    run_ptr = op[SC_RUN_PTR]  # the runs' other tables: _position_runs
    channel_w, channel_out, fanout = op[SC_CHANNEL_W], op[SC_CHANNEL_OUT], op[SC_FANOUT]
    weights, dst = op[SC_WEIGHTS], op[SC_DST]
    reciprocal = _reciprocal(max(channels, 1))  # max: no exception path (see _scatter_rows)
    out, w = _data(buf), _data(fp)
    zero = fp.dtype.type(0)
    sops = 0
    e = 0
    while e < n_events:
        i = idx[_u(base + e)]
        m = mult[_u(base + e)]
        s, c = _source(i, channels, reciprocal)
        first, shift = s * channels, ip[_u(channel_out + c)]  # position s's first neuron
        a0, k0 = m * fp[_u(amp + i)], weights + ip[_u(channel_w + c)]
        a1 = a2 = a3 = zero
        k1 = k2 = k3 = k0
        spikes = _sent(np.int64(m), binary)
        n = 1  # events of this pass
        while n < 4 and e + n < n_events:
            i = idx[_u(base + e + n)]
            c = i - first
            if not 0 <= c < channels or ip[_u(channel_out + c)] != shift:
                break
            m = mult[_u(base + e + n)]
            a, k = m * fp[_u(amp + i)], weights + ip[_u(channel_w + c)]
            if n == 1:
                a1, k1 = a, k
            elif n == 2:
                a2, k2 = a, k
            else:
                a3, k3 = a, k
            spikes += _sent(np.int64(m), binary)
            n += 1
        runs = (ip[_u(run_ptr + s)], ip[_u(run_ptr + s + 1)], dst + shift)
        rows = (k0, a0, k1, a1, k2, a2, k3, a3)
        if n == 1:  # one branch per pass: within it, _add_rows's own test on n is constant
            _position_runs(op, ip, fp, out, w, runs, rows, 1)
        elif n == 2:
            _position_runs(op, ip, fp, out, w, runs, rows, 2)
        elif n == 3:
            _position_runs(op, ip, fp, out, w, runs, rows, 3)
        else:
            _position_runs(op, ip, fp, out, w, runs, rows, 4)
        sops += spikes * ip[_u(fanout + s)]
        e += n
    return sops


@numba.njit(cache=True, inline="always")
def _position_runs(op, ip, fp, out, w, runs, rows, n_rows):
    """:func:`_scatter_positions`' adds for one pass: each run of the position
    (``runs``: first and last run, output offset) for the first ``n_rows`` of ``rows``
    (k0, a0, .. k3, a3), through :func:`_add_rows`."""
    run_out, run_w, run_len, run_factor = (op[SC_RUN_OUT], op[SC_RUN_W], op[SC_RUN_LEN],
                                           op[SC_RUN_FACTOR])
    first, last, out0 = runs
    k0, a0, k1, a1, k2, a2, k3, a3 = rows
    for r in range(first, last):
        o, kr, f = out0 + ip[_u(run_out + r)], ip[_u(run_w + r)], fp[_u(run_factor + r)]
        _add_rows(out, o, w, k0 + kr, a0 * f, k1 + kr, a1 * f, k2 + kr, a2 * f, k3 + kr,
                  a3 * f, n_rows, ip[_u(run_len + r)])


@numba.njit(cache=True, inline="always")
def _neurons(op, fp, f64, buf, state, idx, mult, base, counts, t, binary, rich):
    """One step of a layer of IF neurons (evsim.neuron.if_step, the window rule of the
    temporal scheme, then SpiCalib when enabled); one event per neuron whose output is
    not zero; negative ones (SpiCalib's) are also added up in ``counts[negative]``."""
    if _plain(op):
        return _plain_neurons(op, fp, buf, idx, mult, base, counts)
    if _signed_plain(op):
        return _signed_plain_neurons(op, fp, buf, idx, mult, base, counts)
    if rich is None:  # pruned at compile time: see kernel_paths
        raise AssertionError("a neuron layer needs the kernels' general path")
    current, n, v_off, th_off = op[NR_CURRENT], op[NR_SIZE], op[NR_V], op[NR_THETA]
    to_zero, burst, window = op[NR_ZERO_RESET] != 0, op[NR_BURST], op[NR_WINDOW]
    count_off, allowance_off, calibration = op[NR_COUNTS], op[NR_ALLOWANCE], op[NR_CALIBRATION]
    negative_off = op[NR_NEGATIVE_THETA]
    emitted = 0
    for i in range(n):
        m = buf[v_off + i] + buf[current + i]
        theta = fp[th_off + i]
        if window > 0 and negative_off >= 0:
            s = signed_window_fire(m, theta, fp[negative_off + i], window)
        elif window > 0:
            s = window_fire(m, theta, window)
        elif negative_off >= 0:
            s = signed_fire(m, theta, fp[negative_off + i], burst)
        else:
            s = fire(m, theta, burst)
        buf[v_off + i] = reset(m, s, fp[negative_off + i] if s < 0 else theta, to_zero)
        if allowance_off >= 0:
            s = spicalib_step(s, t, f64[allowance_off], state, calibration, i, n)
        if s != 0:
            idx[base + emitted] = i
            mult[base + emitted] = s
            emitted += 1
            net = _net(np.int64(s), binary)
            counts[count_off + i] += net
            if s < 0:
                counts[op[NR_NEGATIVE]] -= net
    return emitted


@numba.njit(cache=True)
def _plain(op):
    """Whether a neuron row takes the common path: Γ = 1, no window, no calibration, no
    negative spikes."""
    return (op[NR_BURST] == 1 and op[NR_WINDOW] == 0 and op[NR_ALLOWANCE] < 0
            and op[NR_NEGATIVE_THETA] < 0)


@numba.njit(cache=True)
def _plain_neurons(op, fp, buf, idx, mult, base, counts):
    """The common case of _neurons (Γ = 1, no window, no calibration): 64 neurons at a time
    as one vector (:func:`_fire_block`), whose spike mask is then scanned bit by bit (a
    branch per neuron would mispredict at every spike); the last n mod 64 one by one. With
    NR_REFILL, each block's current is refilled for the next step while in cache (one pass
    over the buffer fewer than a separate OP_FILL)."""
    n = op[NR_SIZE]
    v = buf[op[NR_V]:op[NR_V] + n]
    current = buf[op[NR_CURRENT]:op[NR_CURRENT] + n]
    theta = fp[op[NR_THETA]:op[NR_THETA] + n]
    to_zero, uniform = op[NR_ZERO_RESET], op[NR_UNIFORM]
    refill, period = op[NR_REFILL], op[NR_PERIOD]
    counts = counts[op[NR_COUNTS]:op[NR_COUNTS] + n]
    v_data, current_data, theta_data, fp_data = _data(v), _data(current), _data(theta), _data(fp)
    emitted = 0
    at = 0  # where this block's values start in the refill pattern
    blocks = n // 64
    for block in range(blocks):
        mask = _fire_block(v_data, current_data, theta_data, 64 * block, uniform, to_zero)
        if refill >= 0:
            _copy_block(current_data, 64 * block, fp_data, refill + at)
            at += 64
            at = 0 if at == period else at
        emitted = _emit_plain(mask, 64 * block, idx, mult, base, emitted)
    mask = _fire_scalar(v, current, theta, 64 * blocks, n, uniform, to_zero)
    if refill >= 0:
        for i in range(64 * blocks, n):
            current[i] = fp[refill + at + i - 64 * blocks]
    emitted = _emit_plain(mask, 64 * blocks, idx, mult, base, emitted)
    for e in range(emitted):  # counted after the emission: no branch per word here either
        counts[_u(idx[_u(base + e)])] += 1
    return emitted


@numba.njit(cache=True, inline="always")
def _fire_one(v, current, i, theta, to_zero):
    """Neuron i of a plain layer: integrate, fire, reset; whether it fired."""
    m = v[i] + current[i]
    spike = m >= theta
    # in the simulation dtype: float32 m − θ rounds like the float64 difference rounded
    # to float32 (double rounding is exact for +, −, ×, ÷ when 53 ≥ 2 × 24 + 2)
    after = v.dtype.type(0) if to_zero else m - theta
    v[i] = after if spike else m
    return spike


@numba.njit(cache=True, inline="always")
def _fire_scalar(v, current, theta, start, stop, uniform, to_zero):
    """Neurons start .. stop − 1 (at most 64) of a plain layer one by one
    (:func:`_fire_one`): their spikes as the bits of one word (bit j: neuron start + j),
    as :func:`_fire_block` returns them for 64."""
    mask = np.uint64(0)
    for i in range(start, stop):
        if _fire_one(v, current, i, theta[0] if uniform else theta[i], to_zero != 0):
            mask |= np.uint64(1) << np.uint64(i - start)
    return mask


@numba.njit(cache=True, inline="always")
def _fire_signed_scalar(v, current, theta, negative_theta, start, stop, uniform, to_zero):
    """:func:`_fire_scalar` for signed neurons: the words of +1 and of −1 spikes, as
    :func:`_fire_signed_block` returns them."""
    up, down = np.uint64(0), np.uint64(0)
    for i in range(start, stop):
        bit = np.uint64(1) << np.uint64(i - start)
        s = _fire_signed_one(v, current, i, theta[0] if uniform else theta[i],
                             negative_theta[0] if uniform else negative_theta[i], to_zero != 0)
        up |= bit if s > 0 else np.uint64(0)
        down |= bit if s < 0 else np.uint64(0)
    return up, down


@numba.njit(cache=True, inline="always")
def _emit_plain(mask, first, idx, mult, base, emitted):
    """The events of the set bits of ``mask`` (bit j: neuron first + j), each of
    multiplicity 1; returns the events emitted so far. A word with spikes writes eight
    entries, or as many as its spikes where they are more (those past its last spike name
    neuron ``first``; the next word's events overwrite them, and :data:`EMIT_SPARE`
    entries follow each list), so that no branch depends on that number unless it
    exceeds eight: a loop over the
    bits mispredicted its end about once a word (BENCHMARKS.md). The caller counts the
    events (:func:`_plain_neurons`)."""
    spikes = _set_bits(mask)
    if spikes == 0:
        return emitted
    at, rest = base + emitted, mask
    for k in range(max(8, spikes)):  # unsigned indices (_u): no wrap-around code per spike
        idx[_u(at + k)] = first + (_trailing_zeros(rest) & 63)
        mult[_u(at + k)] = 1
        rest &= rest - np.uint64(1)
    return emitted + spikes


@numba.njit(cache=True, inline="always")
def _fire_signed_one(v, current, i, theta, negative_theta, to_zero):
    """Neuron i of a signed layer: integrate, fire +1, −1 or nothing, reset; the spike."""
    m = v[i] + current[i]
    up = m >= theta
    down = m <= -negative_theta  # −m ≥ θ⁻, exactly (negation is exact)
    # one rounding of m ∓ θ, as reset's float64 difference rounded once (_fire_one)
    after = v.dtype.type(0) if to_zero else (m - theta if up else m + negative_theta)
    v[i] = after if up or down else m
    return 1 if up else (-1 if down else 0)


@numba.njit(cache=True, inline="always")
def _emit_signed(up, down, first, idx, mult, base, emitted, counts):
    """The events of the set bits of ``up`` (+1) and ``down`` (−1), in neuron order, each
    counted; returns (events emitted so far, negative ones among the new)."""
    mask, negatives = up | down, 0
    while mask != 0:
        j = _trailing_zeros(mask)
        negative = np.int64((down >> np.uint64(j)) & np.uint64(1))
        s = 1 - 2 * negative
        i = first + j
        idx[_u(base + emitted)] = i
        mult[_u(base + emitted)] = s
        counts[_u(i)] += s
        negatives += negative
        emitted += 1
        mask &= mask - np.uint64(1)
    return emitted, negatives


@numba.njit(cache=True)
def _signed_plain(op):
    """Whether a neuron row is a signed layer's common case: Γ = 1, no window, no
    calibration (each neuron sends +1, −1 or nothing)."""
    return (op[NR_BURST] == 1 and op[NR_WINDOW] == 0 and op[NR_ALLOWANCE] < 0
            and op[NR_NEGATIVE_THETA] >= 0)


@numba.njit(cache=True)
def _signed_plain_neurons(op, fp, buf, idx, mult, base, counts):
    """_plain_neurons for signed neurons (``signed_fire`` and ``reset`` with s in
    {−1, 0, 1}), 64 at a time (:func:`_fire_signed_block`: one word of +1 spikes, one of
    −1). Negative spikes are added up in ``counts[negative]``, as in _neurons."""
    n = op[NR_SIZE]
    v = buf[op[NR_V]:op[NR_V] + n]
    current = buf[op[NR_CURRENT]:op[NR_CURRENT] + n]
    theta = fp[op[NR_THETA]:op[NR_THETA] + n]
    negative_theta = fp[op[NR_NEGATIVE_THETA]:op[NR_NEGATIVE_THETA] + n]
    to_zero, uniform = op[NR_ZERO_RESET], op[NR_UNIFORM]
    counts_of = counts[op[NR_COUNTS]:op[NR_COUNTS] + n]
    data = _data(v), _data(current), _data(theta), _data(negative_theta)
    emitted, negatives = 0, 0
    blocks = n // 64
    for block in range(blocks):
        up, down = _fire_signed_block(data[0], data[1], data[2], data[3], 64 * block,
                                      uniform, to_zero)
        emitted, new = _emit_signed(up, down, 64 * block, idx, mult, base, emitted, counts_of)
        negatives += new
    up, down = _fire_signed_scalar(v, current, theta, negative_theta, 64 * blocks, n, uniform,
                                   to_zero)
    emitted, new = _emit_signed(up, down, 64 * blocks, idx, mult, base, emitted, counts_of)
    counts[op[NR_NEGATIVE]] += negatives + new
    return emitted


@numba.njit(cache=True, inline="always")
def _maxpool(op, ip, state, counts, idx, mult, in_base, n_in, out_base, binary, gate, lipool):
    """Spiking max pooling of one step (LIPooling or the gate); returns (events, pool ops).
    The cumulative input counts are ``cumulative[c_in + i]``: the source layer's own spike
    counts (``counts``) where MP_COUNTS_IN >= 0, already up to date (``counted``), else the
    pool's own in ``state``, which each event raises."""
    counted = op[MP_COUNTS_IN] >= 0
    cumulative = counts if counted else state
    c_in = op[MP_COUNTS_IN] if counted else op[MP_CUM_IN]
    if op[MP_GATE]:
        if gate is None:  # pruned at compile time: see kernel_paths
            raise AssertionError("a pooling layer needs the gate kernel")
        return _gate_pool(op, ip, state, cumulative, c_in, counted, idx, mult, in_base, n_in,
                          out_base, binary)
    if lipool is None:
        raise AssertionError("a pooling layer needs the LIPooling kernel")
    return _lipool(op, ip, state, cumulative, c_in, counted, idx, mult, in_base, n_in,
                   out_base, binary)


@numba.njit(cache=True)
def _lipool(op, ip, state, cumulative, c_in, counted, idx, mult, in_base, n_in, out_base,
            binary):
    """LIPooling: each window emits the rise of its largest cumulative input count.

    The largest count (``peak``) is kept as events arrive, since counts only grow; after
    a negative event (SpiCalib) the window is rescanned. Windows whose peak may have
    changed are marked in a bitmap (``touched``), whose set bits are then visited in
    window order, so that a step costs its events, not the number of windows. Indices
    are unsigned (:func:`_u`): no wrap-around code per lookup. Cumulative input counts
    ``cumulative[c_in + i]``, raised here unless ``counted`` (:func:`_maxpool`).
    """
    channels, win_ptr, win_idx = op[MP_CHANNELS], op[MP_WIN_PTR], op[MP_WIN_IDX]
    peak, rescan, n_rescan = op[MP_PEAK], op[MP_DIRTY_LIST], 0
    touched, dirty = op[MP_TOUCHED], op[MP_DIRTY]
    reciprocal = _reciprocal(channels)
    pool_ops = 0
    for e in range(n_in):
        i = idx[_u(in_base + e)]
        m = np.int64(mult[_u(in_base + e)])
        s, c = _source(i, channels, reciprocal)
        if counted:
            value = cumulative[_u(c_in + i)]
        else:
            value = cumulative[_u(c_in + i)] + m
            cumulative[_u(c_in + i)] = value
        first, last = ip[_u(win_ptr + s)], ip[_u(win_ptr + s + 1)]
        for k in range(first, last):
            slot = ip[_u(win_idx + k)] * channels + c
            if m > 0:  # no branch on the rise: it would mispredict
                at = _u(peak + slot)
                rose = value > state[at]
                state[at] = max(state[at], value)
                state[_u(touched + (slot >> 6))] |= np.int64(rose) << (slot & 63)
            elif state[_u(dirty + slot)] == 0:
                state[_u(dirty + slot)] = 1
                state[_u(rescan + n_rescan)] = slot
                n_rescan += 1
        pool_ops += _sent(m, binary) * (last - first)
    for d in range(n_rescan):
        slot = state[_u(rescan + d)]
        state[_u(dirty + slot)] = 0
        state[_u(peak + slot)] = _window_max(op, ip, cumulative, c_in, slot)[0]
        state[_u(touched + (slot >> 6))] |= np.int64(1) << (slot & 63)
    cum_out = op[MP_CUM_OUT]
    emitted = 0
    for word in range((op[MP_SLOTS] + 63) >> 6):
        mask = np.uint64(state[_u(touched + word)])
        if mask == 0:
            continue
        state[_u(touched + word)] = 0
        while mask != 0:
            slot = 64 * word + _trailing_zeros(mask)
            high = state[_u(peak + slot)]
            out = high - state[_u(cum_out + slot)]
            state[_u(cum_out + slot)] = high
            idx[_u(out_base + emitted)] = slot
            mult[_u(out_base + emitted)] = out
            emitted += out != 0
            mask &= mask - np.uint64(1)
    return emitted, pool_ops


@numba.njit(cache=True)
def _window_max(op, ip, cumulative, c_in, slot):
    """(largest cumulative input count ``cumulative[c_in + i]`` of a window slot, the first
    member holding it)."""
    channels, member_ptr, member_idx = op[MP_CHANNELS], op[MP_MEMBER_PTR], op[MP_MEMBER_IDX]
    w = np.int64(np.uint64(slot) // np.uint64(channels))
    c = slot - w * channels
    first = ip[_u(member_ptr + w)]
    best_member = ip[_u(member_idx + first)]
    best = cumulative[_u(c_in + best_member * channels + c)]
    for k in range(first + 1, ip[_u(member_ptr + w + 1)]):
        member = ip[_u(member_idx + k)]
        value = cumulative[_u(c_in + member * channels + c)]
        if value > best:
            best = value
            best_member = member
    return best, best_member * channels + c


@numba.njit(cache=True)
def _gate_pool(op, ip, state, cumulative, c_in, counted, idx, mult, in_base, n_in, out_base,
               binary):
    """The spike-count gate: each window touched this step passes the current events of its
    member with the largest cumulative count (the first on ties); the window's cumulative
    output is kept, as LIPooling keeps it. Indices are unsigned (:func:`_u`). Cumulative
    input counts ``cumulative[c_in + i]``, raised here unless ``counted`` (:func:`_maxpool`)."""
    channels, win_ptr, win_idx = op[MP_CHANNELS], op[MP_WIN_PTR], op[MP_WIN_IDX]
    dirty, dlist, current = op[MP_DIRTY], op[MP_DIRTY_LIST], op[MP_CURRENT]
    reciprocal = _reciprocal(channels)
    n_dirty = 0
    pool_ops = 0
    for e in range(n_in):
        i = idx[_u(in_base + e)]
        m = np.int64(mult[_u(in_base + e)])
        s, c = _source(i, channels, reciprocal)
        if not counted:
            cumulative[_u(c_in + i)] += m
        state[_u(current + i)] += m
        first, last = ip[_u(win_ptr + s)], ip[_u(win_ptr + s + 1)]
        for k in range(first, last):
            slot = ip[_u(win_idx + k)] * channels + c
            if state[_u(dirty + slot)] == 0:
                state[_u(dirty + slot)] = 1
                state[_u(dlist + n_dirty)] = slot
                n_dirty += 1
        pool_ops += _sent(m, binary) * (last - first)
    emitted = 0
    cum_out = op[MP_CUM_OUT]
    for d in range(n_dirty):
        slot = state[_u(dlist + d)]
        state[_u(dirty + slot)] = 0
        out = state[_u(current + _window_max(op, ip, cumulative, c_in, slot)[1])]
        if out != 0:
            state[_u(cum_out + slot)] += out  # the output so far, as LIPooling keeps it
            idx[_u(out_base + emitted)] = slot
            mult[_u(out_base + emitted)] = out
            emitted += 1
    for e in range(n_in):
        state[_u(current + idx[_u(in_base + e)])] = 0
    return emitted, pool_ops


# --- one image, a block of steps -------------------------------------------------------

def kernel_paths(ops: np.ndarray, every: bool = False) -> tuple:
    """The optional kernels a program uses, as :func:`run_steps`' last five arguments:
    (gate pooling, LIPooling, the general neuron rule — windows, Γ > 1 bursts, SpiCalib —,
    rate-coded input, the depthwise scatter), each 1 if some operation
    needs it, else None. Numba prunes the branches of an argument typed None at compile
    time, so a program without max pooling, say, never compiles the pooling kernels
    (seconds of a first compile); each combination is compiled, and cached, once.
    With ``every``, all five are 1: one compile that serves every program (the kernels
    choose by the program's rows, so the results are the same)."""
    pools = ops[ops[:, CODE] == OP_MAXPOOL]
    scatters = ops[ops[:, CODE] == OP_SCATTER]
    rich = any(not (_plain(op) or _signed_plain(op))
               for op in ops[ops[:, CODE] == OP_NEURON])
    return tuple(1 if every or used else None for used in
                 ((pools[:, MP_GATE] != 0).any(), (pools[:, MP_GATE] == 0).any(), rich,
                  (ops[:, CODE] == OP_RATE).any(), (scatters[:, SC_WINDOW] >= 0).any()))


@numba.njit(cache=True)
def _start_image(ops, fp, analog, analog_layout, buf, state, n_events, out, counts):
    """Clear an image's workspace and results, put the analog head's values in place, every
    membrane at v(0) and every current that its neuron layer refills (NR_REFILL) at its
    first value."""
    buf.fill(0)
    state.fill(0)
    n_events.fill(0)
    out.fill(0)
    counts.fill(0)
    for a in range(analog_layout.shape[0]):
        start, size, src = analog_layout[a, 0], analog_layout[a, 1], analog_layout[a, 2]
        buf[start:start + size] = analog[src:src + size]
    for r in range(ops.shape[0]):
        if ops[r, CODE] == OP_NEURON:
            v, v0, size = ops[r, NR_V], ops[r, NR_V0], ops[r, NR_SIZE]
            buf[v:v + size] = fp[v0:v0 + size]
            current, refill, period = ops[r, NR_CURRENT], ops[r, NR_REFILL], ops[r, NR_PERIOD]
            if refill >= 0:  # the first step's fill (later ones: the layer's own refill)
                for start in range(0, size, period):  # the pattern whole, not i % period
                    stop = min(start + period, size)
                    buf[current + start:current + stop] = fp[refill:refill + stop - start]


@numba.njit(cache=True, inline="always")
def _sum_into(op, buf):
    """An OP_ADD row: the buffer at dst += the one at src, vector adds
    (:func:`_add_run` with a factor of 1, exact: two slices of one array, which LLVM did
    not vectorise for fear they overlap; they do not). 0.45 ms per image of the bundled
    ``resnet``'s 3.7 ms had gone to this one loop."""
    _add_run(buf, op[ADD_DST], buf, op[ADD_SRC], buf.dtype.type(1), op[ADD_SIZE])


@numba.njit(cache=True, inline="always")
def _copy_permuted(op, buf):
    """An OP_COPYPERM row: the channels-last buffer at src copied channels-first to dst."""
    dst, src, channels, hw = op[PERM_DST], op[PERM_SRC], op[PERM_CHANNELS], op[PERM_HW]
    for p in range(hw):
        for c in range(channels):
            buf[_u(dst + c * hw + p)] = buf[_u(src + p * channels + c)]


@numba.njit(cache=True, inline="always")
def _fill(op, fp, buf):
    """An OP_FILL row: its buffer set to 0, or to its per-channel bias at every position
    (reading C floats that stay in cache, not a bias the buffer's size)."""
    dst, size, bias, channels = op[FILL_DST], op[FILL_SIZE], op[FILL_BIAS], op[FILL_CHANNELS]
    target = buf[dst:dst + size]
    if bias < 0:
        target[:] = 0
        return
    values = fp[bias:bias + channels]
    for p in range(0, size, channels):
        at = target[p:p + channels]
        for c in range(channels):
            at[c] = values[c]


@numba.njit(cache=True, inline="always")
def _step(ops, ip, fp, f64, x, t, event_offsets, image_key, binary, buf, state, idx, mult,
          n_events, counts, sops, pool_ops, gate, lipool, rich, rate, depthwise):
    """Every operation of step t, in program (topological) order; its SOPs and pooling
    operations go to ``sops[layer]`` and ``pool_ops[layer]``."""
    for r in range(ops.shape[0]):
        _operation(ops[r], ip, fp, f64, x, t, event_offsets, image_key, binary, buf, state,
                   idx, mult, n_events, counts, sops, pool_ops, gate, lipool, rich, rate,
                   depthwise)


@numba.njit(cache=True, inline="always")
def _operation(op, ip, fp, f64, x, t, event_offsets, image_key, binary, buf, state, idx,
               mult, n_events, counts, sops, pool_ops, gate, lipool, rich, rate, depthwise):
    """One operation row of step t (``benchmarks/breakdown.py`` times each one)."""
    code = op[CODE]
    if code == OP_SCATTER:
        slot = op[SC_SLOT]
        done = _scatter(op, ip, fp, buf, idx, mult, event_offsets[slot], n_events[slot],
                        binary, depthwise)
        if op[SC_SOP_SLOT] >= 0:
            sops[op[SC_SOP_SLOT]] += done
    elif code == OP_FILL:
        _fill(op, fp, buf)
    elif code == OP_NEURON:
        slot = op[NR_SLOT]
        n_events[slot] = _neurons(op, fp, f64, buf, state, idx, mult, event_offsets[slot],
                                  counts, t, binary, rich)
    elif code == OP_ADD:
        _sum_into(op, buf)
    elif code == OP_COPYPERM:
        _copy_permuted(op, buf)
    elif code == OP_MAXPOOL:
        if gate is None and lipool is None:  # pruned at compile time: see kernel_paths
            raise AssertionError("a pooling layer needs a pooling kernel")
        src_slot, out_slot = op[MP_SRC_SLOT], op[MP_OUT_SLOT]
        emitted, done = _maxpool(op, ip, state, counts, idx, mult, event_offsets[src_slot],
                                 n_events[src_slot], event_offsets[out_slot], binary,
                                 gate, lipool)
        n_events[out_slot] = emitted
        pool_ops[op[MP_POOL_SLOT]] += done
    elif code == OP_RATE:
        if rate is None:  # pruned at compile time: see kernel_paths
            raise AssertionError("a rate-coded input needs the rate kernel")
        slot = op[RATE_SLOT]
        n_events[slot] = _rate(op, x, image_key, t, idx, mult, event_offsets[slot])


@numba.njit(cache=True, nogil=True)
def run_steps(ops, ip, fp, f64, x, analog, analog_layout, first_step, last_step, checkpoints,
              event_offsets, seed, first_image, readout_offset, readout_size, binary, buf,
              state, idx, mult, n_events, out, counts, sops, pool_ops, stop, gate,
              lipool, rich, rate, depthwise):
    """Advance every image of a batch through steps first_step..last_step (1-based).

    The images' workspaces carry the simulation between calls, so a long run
    is a sequence of calls (Python can report progress in between);
    ``first_step == 1`` starts the images. The call returns early, leaving the
    workspaces mid-run, once another thread sets ``stop[0]`` (Ctrl-C: checked
    at every step, so a call stops within one step however long it is).
    Workspaces, per image (row b): ``buf`` floats, ``state`` int64s, ``idx`` (int32) and ``mult``
    (multiplicities in the simulation dtype, so spike values form in that
    dtype; K-bit codes when ``binary``, whose set bits are the spikes and
    SOPs counted) event lists, ``n_events`` per slot. Results, per image: ``out`` (checkpoints,
    readout) and ``counts`` (neurons) over the whole run; ``sops`` (sop
    layers, ≥ steps of this call) and ``pool_ops`` (pool layers, ...) of this
    call's steps only. ``gate``, ``lipool``, ``rich``, ``rate``, ``depthwise``:
    :func:`kernel_paths`.
    """
    seed_key = _mix(np.uint64(seed) + _GOLDEN)
    for b in range(x.shape[0]):
        image_key = _mix((seed_key ^ np.uint64(first_image + b)) + _GOLDEN)
        image_buf = buf[b]
        if first_step == 1:
            _start_image(ops, fp, analog[b], analog_layout, image_buf, state[b], n_events[b],
                         out[b], counts[b])
        sops[b] = 0
        pool_ops[b] = 0
        k = 0  # the next checkpoint
        while k < checkpoints.shape[0] and checkpoints[k] < first_step:
            k += 1
        for t in range(first_step, last_step + 1):
            if stop[0]:
                return
            _step(ops, ip, fp, f64, x[b], t, event_offsets, image_key, binary, image_buf,
                  state[b], idx[b], mult[b], n_events[b], counts[b], sops[b, :, t - first_step],
                  pool_ops[b, :, t - first_step], gate, lipool, rich, rate,
                  depthwise)
            if k < checkpoints.shape[0] and checkpoints[k] == t:
                for i in range(readout_size):
                    out[b, k, i] = image_buf[readout_offset + i]
                k += 1
