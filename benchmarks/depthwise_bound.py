"""What bounds the event engine's 3x3 depthwise loop (issue 22's >= 2 GSOP/s target).

Times, on the same random events (ascending channels-last, as a neuron layer emits them),
alternating in one process:

- the engine's own scatter (``kernels._scatter`` on the compiled layer);
- a copy of its event loop (``_depthwise3x3_events``, calling the engine's own window
  and border adds) with the geometry read at run time, as the engine reads it from the
  compiled program;
- the same copy with the geometry as compile-time constants: Numba then turns the
  divisions by a power-of-two channel count and width into shifts and folds the output
  offsets. This is the most that cutting arithmetic out of the loop can give; it is not
  something the engine can do (one compiled loop serves every layer).

Both copies must produce the engine's sums bit for bit and its SOP count (checked), so
the three rows time the same adds. Prints GSOP/s (median, best) and ns per event.

    python benchmarks/depthwise_bound.py [--channels 64] [--size 16] [--rate 0.05] [--quick]
"""

from __future__ import annotations

import argparse
import sys

from threads import set_threads

THREADS = set_threads(sys.argv, default=1)

import time  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402

import evsim  # noqa: E402
from evsim.simulate import kernels as K  # noqa: E402
from evsim.simulate.compile import compile_program  # noqa: E402

LOOP = '''
def loop(buf, fp, amp, fanout, idx, mult, ptr, geometry):
    ho, wo, cout, width, channels = {geometry}
    py, px, w_first, out_first = geometry[5], geometry[6], geometry[7], geometry[8]
    reciprocal, row_reciprocal = _reciprocal(channels), _reciprocal(width)
    row = wo * cout
    sops = 0
    for n in range(ptr.shape[0] - 1):
        inside_spikes = 0
        for e in range(ptr[n], ptr[n + 1]):
            i = idx[_u(e)]
            m = mult[_u(e)]
            s, c = _source(i, channels, reciprocal)
            y, x = _source(s, width, row_reciprocal)
            ny0, nx0 = y + py, x + px
            a = m * amp[_u(i)]
            out0, w0 = out_first + c, w_first + 9 * c
            if not (2 <= ny0 < ho and 2 <= nx0 < wo):
                _border_adds_3x3(buf, fp, out0, w0, a, ny0, nx0, ho, wo, cout)
                sops += _sent(np.int64(m), False) * fanout[_u(s)]
                continue
            _window_adds_3x3(buf, fp, out0, ((ny0 - 2) * wo + nx0 - 2) * cout, w0, a, row,
                             cout)
            inside_spikes += _sent(np.int64(m), False)
        sops += 9 * inside_spikes
    return sops
'''


def _loop(geometry: str):
    """The loop copy with its first five geometry fields given by ``geometry``."""
    namespace = {"np": np, "_u": K._u, "_source": K._source, "_reciprocal": K._reciprocal,
                 "_sent": K._sent, "_border_adds_3x3": K._border_adds_3x3,
                 "_window_adds_3x3": K._window_adds_3x3}
    exec(LOOP.format(geometry=geometry), namespace)  # noqa: S102 (fixed text above)
    return numba.njit(namespace["loop"])


@numba.njit
def _engine(op, ip, fp, buf, idx, mult, ptr):
    sops = 0
    for n in range(ptr.shape[0] - 1):
        sops += K._scatter(op, ip, fp, buf, idx, mult, ptr[n], ptr[n + 1] - ptr[n], False, 1)
    return sops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--size", type=int, default=16, help="input height and width")
    parser.add_argument("--rate", type=float, default=0.05, help="spikes per neuron")
    parser.add_argument("--sets", type=int, default=64, help="event sets per timed run")
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--quick", action="store_true", help="a smoke run: 16 channels, "
                        "8x8, 4 sets, 3 rounds")
    args = parser.parse_args()
    if args.quick:
        args.channels, args.size, args.sets, args.rounds = 16, 8, 4, 3
    c, n = args.channels, args.size
    rng = np.random.default_rng(0)
    layer = evsim.Conv2d(rng.normal(size=(c, 1, 3, 3)).astype(np.float32), padding=1,
                         groups=c)
    snn = evsim.SpikingNetwork(evsim.Network.sequential((c, n, n), [layer]), {})
    program = compile_program(snn, "rate", np.float32)
    op = next(row for row in program.ops if row[K.CODE] == K.OP_SCATTER)
    ip, fp = program.iparams, program.fparams
    g = op[K.SC_WINDOW]
    window = ip[g:g + K.WIN_DX + 1]
    out_first = op[K.SC_DST] + ip[op[K.SC_CHANNEL_OUT]]
    w_first = op[K.SC_WEIGHTS] + ip[op[K.SC_CHANNEL_W]]
    geometry = np.array([window[K.WIN_OUT_H], window[K.WIN_OUT_W], window[K.WIN_OUT_C],
                         window[K.WIN_IN_W], c, window[K.WIN_PY], window[K.WIN_PX], w_first,
                         out_first], np.int64)
    amp = fp[op[K.SC_AMPLITUDE]:op[K.SC_AMPLITUDE] + c * n * n]
    fanout = ip[op[K.SC_FANOUT]:op[K.SC_FANOUT] + n * n]
    count = max(1, round(args.rate * c * n * n))
    sets = [np.sort(rng.choice(c * n * n, count, replace=False)) for _ in range(args.sets)]
    idx = np.concatenate(sets).astype(np.int32)
    mult = np.ones(idx.size, np.float32)
    ptr = np.arange(args.sets + 1, dtype=np.int64) * count
    constants = ", ".join(str(int(v)) for v in geometry[:5])
    at_run_time = _loop("geometry[0], geometry[1], geometry[2], geometry[3], geometry[4]")
    as_constants = _loop(constants)
    cases = {
        "engine (_scatter)": lambda buf: _engine(op, ip, fp, buf, idx, mult, ptr),
        "loop copy, geometry at run time": (
            lambda buf: at_run_time(buf, fp, amp, fanout, idx, mult, ptr, geometry)),
        "loop copy, geometry as constants": (
            lambda buf: as_constants(buf, fp, amp, fanout, idx, mult, ptr, geometry)),
    }
    sums, sops = {}, {}
    for name, run in cases.items():
        buf = np.zeros(program.float_size, np.float32)
        sops[name] = run(buf)
        sums[name] = buf.view(np.int32).copy()
    for name in cases:
        if not (np.array_equal(sums[name], sums["engine (_scatter)"])
                and sops[name] == sops["engine (_scatter)"]):
            raise SystemExit(f"{name!r} does not add what the engine adds")
    times = {name: [] for name in cases}
    buf = np.zeros(program.float_size, np.float32)
    for _ in range(args.rounds):
        for name, run in cases.items():
            start = time.perf_counter()
            run(buf)
            times[name].append(time.perf_counter() - start)
    total = sops["engine (_scatter)"]
    print(f"3x3 depthwise, {c} channels, {n}x{n}, {100 * args.rate:g} % firing, "
          f"{idx.size} events, {THREADS} thread(s), median of {args.rounds} alternating "
          f"rounds (best in brackets)\n")
    print("| loop | GSOP/s | ns per event |\n|---|---:|---:|")
    for name, values in times.items():
        median, best = float(np.median(values)), min(values)
        print(f"| {name} | {total / median / 1e9:.2f} ({total / best / 1e9:.2f}) | "
              f"{median / idx.size * 1e9:.2f} |")


if __name__ == "__main__":
    main()
