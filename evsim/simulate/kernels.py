"""Numba kernels of the event engine.

One image is simulated by one thread from start to end (``prange`` over
images): each owns its workspaces, so there are no shared scatter targets and
results do not depend on the thread count. The program (:mod:`evsim.compile`)
is interpreted step by step; every operation works on preallocated flat
buffers. ``fastmath`` stays off so that the arithmetic equals the dense
engine's wherever float sums are exact.
"""

from __future__ import annotations

import numba
import numpy as np

# Operation codes (column 0 of a program row; evsim.compile writes the rows).
OP_RATE, OP_FILL, OP_ADDBUF, OP_COPYPERM, OP_SYN, OP_NEURON, OP_MAXPOOL, OP_READOUT = range(8)
# Scatter modes of OP_SYN.
MODE_CONV, MODE_DENSE, MODE_IDENTITY = range(3)
OP_WIDTH = 20

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@numba.njit(cache=True, inline="always")
def _mix(z):
    z = z ^ (z >> np.uint64(30))
    z = z * _M1
    z = z ^ (z >> np.uint64(27))
    z = z * _M2
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, inline="always")
def _popcount(m):
    """Set bits of a non-negative integer."""
    n = 0
    while m > 0:
        m &= m - 1
        n += 1
    return n


@numba.njit(cache=True, inline="always")
def _sent(m, binary):
    """Spikes an event of multiplicity m stands for: |m|, or the set bits of a K-bit code."""
    return _popcount(m) if binary else abs(m)


@numba.njit(cache=True)
def _rate(op, x, image_key, t, idx, mult, base):
    """Bernoulli input spikes of one image, as evsim.encoding draws them: those of step t,
    or, for a window of the temporal scheme (op[4] = W > 0), the counts over steps 1..W."""
    channels, hw, window = op[2], op[3], op[4]
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


@numba.njit(cache=True)
def _scatter(op, ip, fp, buf, idx, mult, base, n_events, binary):
    """Add every event's weighted kernel slab into the target buffer; return the SOPs.

    Inner loops run over slices (views) so that LLVM vectorises them: indexing
    with computed signed offsets would add a negative-index check per element.
    A target reached through several pooling windows (overlapping average
    pooling folded into the kernel) gets the summed composite weight first,
    in the scratch region, and is accumulated once.
    """
    channels, grp_ptr, grp_t, ent_ptr = op[2], op[3], op[4], op[5]
    ent_tap, ent_fac, mode, w_off = op[6], op[7], op[8], op[9]
    cin_g, cout_g, cout, q_size, amp_off, dst, layout = (op[10], op[11], op[12], op[13],
                                                         op[14], op[15], op[17])
    scratch = buf[op[18]:op[18] + cout_g]
    sops = 0
    for e in range(n_events):
        i = idx[base + e]
        m = mult[base + e]
        s = i // channels
        ci = i - s * channels
        a = m * fp[amp_off + i]  # both in the simulation dtype, as the dense engine computes
        if mode == MODE_CONV:
            group = ci // cin_g
            co0 = group * cout_g
            row = (ci - group * cin_g) * cout + co0
        else:
            co0 = 0
            row = ci * q_size
        touched = 0
        for g in range(ip[grp_ptr + s], ip[grp_ptr + s + 1]):
            t = ip[grp_t + g]
            e0, e1 = ip[ent_ptr + g], ip[ent_ptr + g + 1]
            if mode == MODE_IDENTITY:
                target = dst + (ci * q_size + t if layout == 1 else t * channels + ci)
                buf[target] += a * fp[ent_fac + e0]
                touched += 1
                continue
            if mode == MODE_CONV:
                target = dst + t * cout + co0
                w = w_off + ip[ent_tap + e0] * cin_g * cout + row
            else:
                target = dst
                w = w_off + (row + ip[ent_tap + e0]) * cout
            out = buf[target:target + cout_g]
            if e1 - e0 == 1:
                val = a * fp[ent_fac + e0]
                weights = fp[w:w + cout_g]
                for co in range(cout_g):
                    out[co] += val * weights[co]
            else:
                for k in range(e0, e1):
                    factor = fp[ent_fac + k]
                    if mode == MODE_CONV:
                        wk = w_off + ip[ent_tap + k] * cin_g * cout + row
                    else:
                        wk = w_off + (row + ip[ent_tap + k]) * cout
                    weights = fp[wk:wk + cout_g]
                    if k == e0:
                        for co in range(cout_g):
                            scratch[co] = factor * weights[co]
                    else:
                        for co in range(cout_g):
                            scratch[co] += factor * weights[co]
                for co in range(cout_g):
                    out[co] += a * scratch[co]
            touched += cout_g
        sops += _sent(np.int64(m), binary) * touched
    return sops


@numba.njit(cache=True)
def _calibrate(s, t, allowance, state, cal, i, n):
    """SpiCalib (evsim.neuron.spicalib_step) of neuron i's output s at step t."""
    t_last, fired, net = cal + i, cal + n + i, cal + 2 * n + i
    if s > 0:
        state[fired] += 1
        state[t_last] = t
    count = state[fired]
    gap = np.float64(t - state[t_last])
    if count > 0:
        late = count * gap > state[t_last] + count * allowance
    else:
        late = gap > allowance
    if late:
        s -= 1
    if state[net] + s < 0:
        s = -state[net]
    state[net] += s
    return s


@numba.njit(cache=True)
def _neurons(op, fp, f64, buf, state, idx, mult, base, counts, t, binary):
    """IF update of one layer (evsim.neuron.if_step, then spicalib_step when enabled);
    emits one event per neuron with a non-zero output."""
    current, n, v_off, th_off = op[1], op[2], op[3], op[4]
    reset_zero, burst, count_off, allowance_off, cal = op[6], op[7], op[9], op[10], op[11]
    window = op[12]
    emitted = 0
    for i in range(n):
        m = buf[v_off + i] + buf[current + i]
        theta = fp[th_off + i]
        s = 0
        if window > 0:  # evsim.timescheme.window_spikes
            th64 = np.float64(theta)
            q = np.floor(np.float64(m) / th64)
            if (q + 1) * th64 <= m:
                q += 1
            elif q * th64 > m:
                q -= 1
            s = int(min(max(q, 0.0), np.float64(window)))
        elif m >= theta:
            s = 1
            for k in range(2, burst + 1):
                if m >= np.float64(theta) * k:
                    s += 1
        if s > 0:
            if reset_zero:
                buf[v_off + i] = 0
            else:
                buf[v_off + i] = m - s * theta
        else:
            buf[v_off + i] = m
        if allowance_off >= 0:
            s = _calibrate(s, t, f64[allowance_off], state, cal, i, n)
        if s != 0:
            idx[base + emitted] = i
            mult[base + emitted] = s
            emitted += 1
            counts[count_off + i] += _popcount(np.int64(s)) if binary else s
    return emitted


@numba.njit(cache=True)
def _maxpool(op, ip, state, idx, mult, in_base, n_in, out_base, binary):
    """Spiking max pooling (LIPooling or the gate) of one step; returns (events, pool ops)."""
    channels, win_ptr, win_idx, mem_ptr, mem_idx = op[3], op[4], op[5], op[6], op[7]
    c_in, c_out, dirty, dlist, current, gate = op[8], op[9], op[10], op[11], op[12], op[13]
    n_dirty = 0
    pool_ops = 0
    for e in range(n_in):
        i = idx[in_base + e]
        m = np.int64(mult[in_base + e])
        s = i // channels
        c = i - s * channels
        state[c_in + i] += m
        if gate:
            state[current + i] += m
        for k in range(ip[win_ptr + s], ip[win_ptr + s + 1]):
            slot = ip[win_idx + k] * channels + c
            if state[dirty + slot] == 0:
                state[dirty + slot] = 1
                state[dlist + n_dirty] = slot
                n_dirty += 1
        pool_ops += _sent(m, binary) * (ip[win_ptr + s + 1] - ip[win_ptr + s])
    emitted = 0
    for d in range(n_dirty):
        slot = state[dlist + d]
        state[dirty + slot] = 0
        w = slot // channels
        c = slot - w * channels
        first = ip[mem_ptr + w]
        best_member = ip[mem_idx + first]
        best = state[c_in + best_member * channels + c]
        for k in range(first + 1, ip[mem_ptr + w + 1]):
            member = ip[mem_idx + k]
            value = state[c_in + member * channels + c]
            if value > best:
                best = value
                best_member = member
        if gate:
            out = state[current + best_member * channels + c]
        else:
            out = best - state[c_out + slot]
            state[c_out + slot] = best
        if out != 0:
            idx[out_base + emitted] = slot
            mult[out_base + emitted] = out
            emitted += 1
    if gate:
        for e in range(n_in):
            state[current + idx[in_base + e]] = 0
    return emitted, pool_ops


@numba.njit(cache=True)
def _run_image(ops, ip, fp, f64, x, analog, analog_layout, T, checkpoints, event_offsets,
               image_key, readout_offset, readout_size, binary, buf, state, idx, mult,
               n_events, out, counts, sops, pool_ops):
    """Simulate one image for T steps in its own workspaces (buf, state, idx, mult)."""
    for a in range(analog_layout.shape[0]):
        start, size, src = analog_layout[a, 0], analog_layout[a, 1], analog_layout[a, 2]
        for i in range(size):
            buf[start + i] = analog[src + i]
    for r in range(ops.shape[0]):
        if ops[r, 0] == OP_NEURON:
            for i in range(ops[r, 2]):
                buf[ops[r, 3] + i] = fp[ops[r, 5] + i]
    k = 0
    for t in range(1, T + 1):
        for r in range(ops.shape[0]):
            op = ops[r]
            code = op[0]
            if code == OP_SYN:
                slot = op[1]
                done = _scatter(op, ip, fp, buf, idx, mult, event_offsets[slot], n_events[slot],
                                binary)
                if op[16] >= 0:
                    sops[op[16], t - 1] += done
            elif code == OP_FILL:
                dst, size, bias, period = op[1], op[2], op[3], op[4]
                target = buf[dst:dst + size]
                if bias < 0:
                    target[:] = 0
                else:
                    for start in range(0, size, period):
                        target[start:start + period] = fp[bias:bias + period]
            elif code == OP_NEURON:
                slot = op[8]
                n_events[slot] = _neurons(op, fp, f64, buf, state, idx, mult, event_offsets[slot],
                                          counts, t, binary)
            elif code == OP_ADDBUF or code == OP_READOUT:
                dst, src, size = op[1], op[2], op[3]
                target, source = buf[dst:dst + size], buf[src:src + size]
                for i in range(size):
                    target[i] += source[i]
            elif code == OP_COPYPERM:
                dst, src, channels, hw = op[1], op[2], op[3], op[4]
                for s in range(hw):
                    for c in range(channels):
                        buf[dst + c * hw + s] = buf[src + s * channels + c]
            elif code == OP_MAXPOOL:
                src_slot, out_slot = op[1], op[2]
                emitted, done = _maxpool(op, ip, state, idx, mult, event_offsets[src_slot],
                                         n_events[src_slot], event_offsets[out_slot], binary)
                n_events[out_slot] = emitted
                pool_ops[op[14], t - 1] += done
            elif code == OP_RATE:
                slot = op[1]
                n_events[slot] = _rate(op, x, image_key, t, idx, mult, event_offsets[slot])
        if k < checkpoints.shape[0] and t == checkpoints[k]:
            for i in range(readout_size):
                out[k, i] = buf[readout_offset + i]
            k += 1


@numba.njit(cache=True, parallel=True)
def run_batch(ops, ip, fp, f64, x, analog, analog_layout, T, checkpoints, event_offsets,
              seed, first_image, readout_offset, readout_size, binary, buf, state, idx, mult,
              out, counts, sops, pool_ops):
    """Simulate a batch, one image per thread iteration; all outputs are per image.

    ``buf`` (B, float_size), ``state`` (B, int_size), ``idx`` (int32) and
    ``mult`` (event multiplicities, stored in the simulation dtype so that
    spike values are formed in that dtype; K-bit codes when ``binary``, whose
    set bits count as spikes and SOPs) (B, event_capacity) are the
    images' workspaces; ``out`` (B, K, readout),
    ``counts`` (B, neurons), ``sops`` (B, sop layers, T), ``pool_ops``
    (B, pool layers, T) receive the results.
    """
    seed_key = _mix(np.uint64(seed) + _GOLDEN)
    n_slots = event_offsets.shape[0] - 1
    for b in numba.prange(x.shape[0]):
        image_key = _mix((seed_key ^ np.uint64(first_image + b)) + _GOLDEN)
        n_events = np.zeros(n_slots, np.int64)
        _run_image(ops, ip, fp, f64, x[b], analog[b], analog_layout, T, checkpoints,
                   event_offsets, image_key, readout_offset, readout_size, binary, buf[b],
                   state[b], idx[b], mult[b], n_events, out[b], counts[b], sops[b], pool_ops[b])
