"""Whole-network throughput: event engine versus dense (BLAS) engine, same thread count.

Converts the bundled Fashion-MNIST CNN (percentile normalisation) and
simulates real test images at T = 32 with both engines in the same run.
Prints images per second, the measured firing rate, SOPs per image and the
ratio; compile (first-call) time is measured separately in a fresh Numba
cache directory.

    python benchmarks/bench_network.py [--threads 2] [--images 256] [--T 32] [--quick]
"""

from __future__ import annotations

import argparse
import sys

from threads import set_threads

THREADS = set_threads(sys.argv, default=2)

import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import evsim  # noqa: E402
from evsim.data import load_bundled_sample  # noqa: E402
from evsim.models import load_model  # noqa: E402

_COMPILE_PROBE = """
import time, numpy as np, evsim
from evsim.data import load_bundled_sample
from evsim.models import load_model
snn = evsim.convert(load_model(), load_bundled_sample("train")[0][:64])
x = load_bundled_sample("test")[0][:1]
start = time.perf_counter(); evsim.simulate(snn, x, T=1, engine="event")
first = time.perf_counter() - start
start = time.perf_counter(); evsim.simulate(snn, x, T=1, engine="event")
print(first - (time.perf_counter() - start))
"""


def compile_seconds() -> float:
    """First-call time minus a warm call, with an empty Numba cache (a fresh compile)."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        done = subprocess.run([sys.executable, "-c", _COMPILE_PROBE], env=env, check=True,
                              capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def _median(fn, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--T", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="32 images, one run (smoke)")
    args = parser.parse_args()
    if args.quick:
        args.images, args.runs = 32, 1
    snn = evsim.convert(load_model(), load_bundled_sample("train")[0], method="percentile")
    images, labels = load_bundled_sample("test")
    images, labels = images[:args.images], labels[:args.images]
    evsim.simulate(snn, images[:2], T=2, engine="event")  # load or compile the kernels
    rows = {}
    for engine in ("dense", "event"):
        seconds, result = _median(lambda e=engine: evsim.simulate(
            snn, images, T=args.T, engine=e, threads=args.threads if e == "event" else None),
            args.runs)
        rows[engine] = (seconds, result)
    dense_s, dense = rows["dense"]
    event_s, event = rows["event"]
    rate = float(np.mean(list(event.firing_rates().values())))
    per_layer = ", ".join(f"{k} {v:.3f}" for k, v in event.firing_rates().items())
    sops = event.total_sops() / len(images)
    print(f"evsim whole-network benchmark: bundled fashion_cnn, percentile conversion, "
          f"T = {args.T}, {len(images)} real test images, float32, {args.threads} thread(s) "
          f"for both engines, median of {args.runs} runs\n")
    print("| engine | images/s | time per image | accuracy at T | SOPs per image | GSOP/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (seconds, result) in rows.items():
        print(f"| {name} | {len(images) / seconds:.1f} | {1e3 * seconds / len(images):.2f} ms | "
              f"{100 * result.accuracy(labels)[-1]:.1f} % | {sops:.3g} | "
              f"{sops * len(images) / seconds / 1e9:.2f} |")
    print(f"\nevent engine speed-up over dense: {dense_s / event_s:.2f}x")
    print(f"firing rate (spikes per neuron per step): mean {rate:.3f} ({per_layer})")
    print(f"engines agree: {dict(evsim.difference(dense, event))}")
    if args.quick:
        return
    print(f"event engine compile (first call, empty cache): {compile_seconds():.1f} s")
    print("\nfiring-rate sweep (thresholds divided by a factor; 64 images, one run each):\n")
    print("| threshold factor | mean firing rate | dense images/s | event images/s | "
          "dense/event time |")
    print("|---:|---:|---:|---:|---:|")
    crossing, previous = None, None
    for factor in (1, 2, 4, 8, 16, 32):
        scaled = evsim.SpikingNetwork(
            snn.network, {k: evsim.NeuronSpec(v.threshold / factor, v.v_init / factor,
                                              v.reset, v.burst)
                          for k, v in snn.neurons.items()})
        few = images[:64]
        times = {}
        for engine in ("dense", "event"):
            start = time.perf_counter()
            result = evsim.simulate(scaled, few, T=args.T, engine=engine,
                                    threads=args.threads if engine == "event" else None)
            times[engine] = time.perf_counter() - start
        rate = float(np.mean(list(result.firing_rates().values())))
        ratio = times["dense"] / times["event"]
        if ratio < 1 and crossing is None:
            # where the time ratio crosses 1, linear between the two rates around it
            crossing = rate if previous is None else previous[0] + (previous[1] - 1) * (
                rate - previous[0]) / (previous[1] - ratio)
        previous = rate, ratio
        print(f"| 1/{factor} | {rate:.3f} | {64 / times['dense']:.1f} | "
              f"{64 / times['event']:.1f} | {ratio:.2f} |")
    print("\nwhole-network crossover: "
          + (f"the dense engine wins from a mean firing rate of about {crossing:.2f} "
             "(interpolated)"
             if crossing else "the event engine won at every rate measured"))


if __name__ == "__main__":
    main()
