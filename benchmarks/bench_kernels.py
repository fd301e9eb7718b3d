"""Per-kernel throughput of the event engine's scatter against BLAS dense layers.

For each layer (3x3 convolutions with 16-256 channels, a 1024x1024 dense
layer) and spike rate, times the event engine's scatter kernel on random
events (one event per spiking neuron, multiplicity 1, in the order a neuron
layer emits them: ascending channels-last index) and the dense
engine's BLAS forward of the same layer, both on one core by default. Prints
a table: what, size, rate, time per image-step, GSOP/s (exact SOPs counted
by the kernel), dense GMAC/s, ratio dense/event time, and the crossover rate
where the event kernel stops winning; then this machine's roofline for a
scatter-add (one vector store per cycle).

    python benchmarks/bench_kernels.py [--threads 1] [--quick]
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
from evsim import Conv2d, Dense, SpikingNetwork, ops  # noqa: E402
from evsim.simulate.compile import compile_program  # noqa: E402
from evsim.simulate.kernels import CODE, LANES, OP_SCATTER, _scatter  # noqa: E402


@numba.njit  # not cached: Numba's cache would not notice changes in evsim's kernels
def _repeat_scatter(op, ip, fp, buf, idx, mult, n_events, repeats):
    done = 0
    for _ in range(repeats):
        done += _scatter(op, ip, fp, buf, idx, mult, 0, n_events, False)
    return done


def _median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _layer_network(layer, input_shape):
    net = evsim.Network.sequential(input_shape, [layer])
    return SpikingNetwork(net, {})


def bench(name, layer, input_shape, rates, rng, runs, dense_batch=32):
    snn = _layer_network(layer, input_shape)
    program = compile_program(snn, "rate", np.float32)
    op = next(row for row in program.ops if row[CODE] == OP_SCATTER)
    n_in = int(np.prod(input_shape))
    buf = np.zeros(program.float_size, np.float32)
    # dense reference: the BLAS forward of the same layer on a batch of spike maps
    x = (rng.random((dense_batch,) + tuple(input_shape)) < 0.1).astype(np.float32)
    dense_s = _median_time(lambda: ops.apply(layer, [x]), runs) / dense_batch
    macs = int(evsim.signals.plan(snn.network, "analog").macs[snn.network.output_name])
    rows = []
    for rate in rates:
        n_events = max(1, int(round(rate * n_in)))
        events = rng.choice(n_in, n_events, replace=False).astype(np.int32)
        chw = np.unravel_index(events, input_shape)
        # event indices are channels-last, in the order a neuron layer emits them
        idx = np.sort(np.ravel_multi_index(chw[1:], input_shape[1:]) * input_shape[0] + chw[0]
                      if len(input_shape) == 3 else events).astype(np.int32)
        mult = np.ones(n_events, np.float32)
        repeats = max(1, int(2e8 // max(1, n_events * (macs // n_in))))
        _repeat_scatter(op, program.iparams, program.fparams, buf, idx, mult, n_events, 1)
        sops = _repeat_scatter(op, program.iparams, program.fparams, buf, idx, mult, n_events,
                               repeats) // repeats
        args = (op, program.iparams, program.fparams, buf, idx, mult, n_events, repeats)
        event_s = _median_time(lambda args=args: _repeat_scatter(*args), runs) / repeats
        rows.append((name, rate, event_s, sops / event_s / 1e9, macs / dense_s / 1e9,
                     dense_s / event_s))
    # crossover: event time grows linearly with the rate; dense time does not
    slope = np.polyfit([r[1] for r in rows], [r[2] for r in rows], 1)[0]
    crossover = dense_s / slope if slope > 0 else float("inf")
    return rows, crossover, dense_s


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run (smoke)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    runs = 1 if args.quick else args.runs
    rates = [0.01, 0.05] if args.quick else [0.01, 0.02, 0.05, 0.1, 0.2]
    layers = [("dense 1024->1024", Dense(rng.normal(size=(1024, 1024)).astype(np.float32)),
               (1024,))]
    for c, hw in ([(16, 8)] if args.quick else [(16, 28), (32, 14), (64, 32), (128, 16),
                                                (256, 16)]):
        layers.append((f"conv3x3 {c}->{c} {hw}x{hw}",
                       Conv2d(rng.normal(size=(c, c, 3, 3)).astype(np.float32), padding=1),
                       (c, hw, hw)))
    print(f"evsim kernel benchmark, float32, {args.threads} thread(s), median of {runs} runs, "
          f"numba {numba.__version__}, numpy {np.__version__}\n")
    print("| layer | spike rate | event time per image-step | GSOP/s | dense BLAS GMAC/s "
          "| dense/event time |")
    print("|---|---:|---:|---:|---:|---:|")
    crossovers = []
    for name, layer, shape in layers:
        rows, crossover, _ = bench(name, layer, shape, rates, rng, runs)
        for what, rate, event_s, gsops, gmacs, ratio in rows:
            print(f"| {what} | {100 * rate:.0f} % | {1e6 * event_s:.1f} µs | {gsops:.2f} | "
                  f"{gmacs:.1f} | {ratio:.2f} |")
        crossovers.append((name, crossover))
    print("\n| layer | crossover spike rate (event faster below) |\n|---|---:|")
    for name, crossover in crossovers:
        print(f"| {name} | {100 * crossover:.1f} % |")
    print(f"\nroofline: {roofline()}")


def clock_mhz() -> float | None:
    """The processor's current clock from /proc/cpuinfo (Linux), or None."""
    try:
        with open("/proc/cpuinfo") as info:
            return float(next(line.split(":")[1] for line in info if line.startswith("cpu MHz")))
    except (OSError, StopIteration, ValueError):
        return None


def roofline() -> str:
    """A scatter-add stores every float it adds: one vector store per cycle bounds it."""
    mhz = clock_mhz()
    per_cycle = LANES  # float32 lanes of one 256-bit (AVX2) store
    if mhz is None:
        return f"{per_cycle} SOPs per cycle (one {32 * per_cycle}-bit store per cycle)"
    return (f"{per_cycle} SOPs per cycle (one {32 * per_cycle}-bit store per cycle) x "
            f"{mhz / 1e3:.2f} GHz = {per_cycle * mhz / 1e3:.1f} GSOP/s per core")


if __name__ == "__main__":
    main()
