"""The lower bound on any dense engine's time, against SpikingJelly and evsim's dense engine.

A dense engine computes every product of every synapse layer at every step, spikes or
not. Per image at T steps that is, for each convolution or dense layer that reads
spikes, its multiply-accumulates per frame (C_out · H_out · W_out · C_in/groups · k_h ·
k_w, zero padding included, as a dense convolution computes it) times T, plus the
analog first layer's MACs once (evsim computes it once per image; SpikingJelly every
step). No dense engine can do them faster than this machine's best float32 GEMM rate, so

    bound (ms per image) = dense MACs per image / best GEMM rate

and SpikingJelly's time over that bound is the highest dense-engine-vs-SpikingJelly ratio
any dense engine could reach here (a ratio < 1.5 bounds issue 24's 1.5× target); the last
column takes NumPy's sgemm rate instead, the BLAS that evsim's dense engine calls. Measured
in the same run, one process, per model:

- the best GEMM rate: NumPy's (OpenBLAS) square sgemm and ``torch.mm`` (if torch is
  importable), at ``--threads`` threads, best of a few calls;
- torch's ``conv2d`` (oneDNN) at each spiking layer's shape with batch T × images (at
  most 16 images: :data:`LAYER_IMAGES`; and
  ``F.linear`` at each dense layer's): the time the MACs take at the rates these shapes
  get (``bound at layer shapes``; the peak rate is the best of all these rates and the
  square GEMMs', so the peak bound is the lowest);
- evsim's dense engine (``engine="dense"``) per image on the images ``peers.py`` uses,
  and the time inside its GEMMs (every ``np.matmul`` call timed, summed over threads and
  divided by the thread count) with the MACs those GEMMs did (its stride-1 convolutions
  compute every column of the padded width, so more than the model's MACs);
- SpikingJelly 2.0 per image (``peers.SpikingJelly``, its standard step-by-step loop),
  if it is importable; tools alternate over ``--rounds`` rounds, best time kept (the
  statistic least inflated by other jobs on a shared machine).

    python benchmarks/dense_bound.py [--threads 1] [--images 64] [--batch 64] [--rounds 3]
    python benchmarks/dense_bound.py --models vgg_wide,cifar_wide --threads 2
    python benchmarks/dense_bound.py --quick      # smoke: fashion_cnn, 8 images, 1 round
    python benchmarks/dense_bound.py --clock cpu  # one thread's CPU time: a shared machine
"""

from __future__ import annotations

import argparse
import sys

from threads import set_threads

THREADS = set_threads(sys.argv, default=1)

import platform  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

from evsim import kinds  # noqa: E402
from evsim import layers as L  # noqa: E402
from evsim.data import load_bundled_sample  # noqa: E402
from evsim.signals import ANALOG, plan  # noqa: E402
import peers  # noqa: E402
import wide_models  # noqa: E402

MODELS = peers.MODELS + wide_models.MODELS
#: Images per batch of torch's per-layer rates (× T frames): enough for the rate, and the
#: wide models' first layers stay within a few hundred MB.
LAYER_IMAGES = 16


@dataclass(frozen=True)
class SynapseLayer:
    """One convolution or dense layer: its MACs per frame (one image, one step), its input
    shape (per frame) and whether it reads spikes (computed every step) or the analog
    image (once per image)."""

    name: str
    layer: L.Layer
    in_shape: tuple
    macs: int
    spiking: bool


def synapse_layers(snn) -> list[SynapseLayer]:
    """The synapse layers of a spiking network with their dense MACs per frame."""
    net = snn.network
    classes = plan(net).classes
    found = []
    for node in net:
        if kinds.role_of(node.layer) != kinds.SYNAPSE:
            continue
        layer, in_shape = node.layer, net.shape(node.inputs[0])
        if isinstance(layer, L.Conv2d):
            _, cin_g, kh, kw = layer.weight.shape
            macs = int(np.prod(net.shape(node.name))) * cin_g * kh * kw
        elif isinstance(layer, L.Dense):
            macs = int(layer.weight.size)
        else:
            raise TypeError(f"dense_bound.py counts Conv2d and Dense layers only, not "
                            f"{type(layer).__name__} ('{node.name}')")
        found.append(SynapseLayer(node.name, layer, in_shape, macs,
                                  classes[node.name] != ANALOG))
    return found


def dense_macs(layers: list[SynapseLayer], T: int) -> int:
    """MACs per image at T steps: spiking layers every step, the analog ones once."""
    return sum(s.macs * (T if s.spiking else 1) for s in layers)


#: The clock of every timing: wall time, or with ``--clock cpu`` (one thread only) this
#: thread's CPU time, which time slices lost to other jobs on a shared machine do not
#: inflate (caches and memory bandwidth are still shared).
CLOCK = {"wall": time.perf_counter, "cpu": time.thread_time}


def timed(fn, clock) -> float:
    """Seconds one call of ``fn`` takes on ``clock``."""
    start = clock()
    fn()
    return clock() - start


def best_time(fn, calls: int, clock=time.perf_counter) -> float:
    """The shortest of ``calls`` timed calls of ``fn`` (after one untimed), seconds."""
    fn()
    return min(timed(fn, clock) for _ in range(calls))


def gemm_rates(n: int, calls: int, clock) -> dict[str, float]:
    """MAC/s of an n × n × n float32 GEMM: NumPy's BLAS and, if importable, torch.mm."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
    out = np.empty((n, n), np.float32)
    rates = {"numpy sgemm": n ** 3 / best_time(lambda: np.matmul(a, b, out=out), calls, clock)}
    try:
        import torch
    except ImportError:
        return rates
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    tout = torch.empty((n, n))
    rates["torch.mm"] = n ** 3 / best_time(lambda: torch.mm(ta, tb, out=tout), calls, clock)
    return rates


def torch_layer_rates(layers: list[SynapseLayer], frames: int, calls: int,
                      clock) -> dict[str, float]:
    """MAC/s of torch's conv2d (oneDNN) or mm at each spiking layer's shape, ``frames`` =
    T × images frames of 0/1 inputs at once; {} without torch."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {}
    rng, rates = np.random.default_rng(1), {}
    for s in layers:
        if not s.spiking:
            continue
        x = torch.from_numpy((rng.random((frames,) + s.in_shape) < 0.1).astype(np.float32))
        w = torch.from_numpy(np.array(s.layer.weight, np.float32))
        bias = None if s.layer.bias is None else torch.from_numpy(
            np.array(s.layer.bias, np.float32))
        with torch.no_grad():
            if isinstance(s.layer, L.Conv2d):
                def run(x=x, w=w, bias=bias, layer=s.layer):
                    return F.conv2d(x, w, bias, layer.stride, layer.padding, layer.dilation,
                                    layer.groups)
            else:
                x = x.reshape(frames, -1)

                def run(x=x, w=w, bias=bias):
                    return F.linear(x, w, bias)
            rates[s.name] = s.macs * frames / best_time(run, calls, clock)
    return rates


class GemmClock:
    """Times every ``np.matmul`` call while active (from any thread) and adds up the MACs
    they do (result size × the shared dimension)."""

    def __init__(self, clock):
        self.seconds, self.macs, self._lock, self._clock = 0.0, 0, threading.Lock(), clock

    def __enter__(self):
        self._matmul = original = np.matmul

        def timed(a, b, *args, **kwargs):
            start = self._clock()
            result = original(a, b, *args, **kwargs)
            elapsed = self._clock() - start
            with self._lock:
                self.seconds += elapsed
                self.macs += int(result.size) * int(np.shape(a)[-1])
            return result

        np.matmul = timed
        return self

    def __exit__(self, *exc):
        np.matmul = self._matmul


@dataclass
class Reading:
    """One model's numbers, per image: MACs, bound times, measured times (seconds)."""

    model: str
    macs: int
    layer_macs: list  # (MACs per image, torch's MAC/s at the layer's shape or None)
    dense: float
    dense_gemm: float
    dense_gemm_macs: int
    spikingjelly: float | None

    def bound(self, peak: float) -> float:
        """The MACs' time at the ``peak`` GEMM rate (MAC/s), seconds per image."""
        return self.macs / peak

    def shape_bound(self, peak: float) -> float | None:
        """Each spiking layer's MACs at torch's rate at its shape, the analog layer's at
        ``peak``, seconds per image; None without torch."""
        if any(rate is None for _, rate in self.layer_macs):
            return None
        return sum(macs / (rate or peak) for macs, rate in self.layer_macs)

    def best_rate(self) -> float:
        """The fastest of torch's rates at this model's layer shapes (0 without torch)."""
        return max((rate or 0.0) for _, rate in self.layer_macs)


def measure_model(name, images, labels, calibration, calibration_labels, args) -> tuple:
    """The model's :class:`Reading` and its per-layer rows (name, frame shape, MACs per
    frame, torch's rate at that shape)."""
    work = peers.model_and_data(name, images, labels, calibration, calibration_labels)
    network, images, calibration = work.network, work.images, work.calibration
    dense = peers.Evsim(network, calibration, "dense")
    layers = synapse_layers(dense.snn)
    macs = dense_macs(layers, args.T)
    tools = {"dense": dense}
    try:
        tools["spikingjelly"] = peers.SpikingJelly(network, calibration, args.batch)
    except ImportError as err:
        print(f"({name}: SpikingJelly not importable: {err})", file=sys.stderr)
    for tool in tools.values():  # warm-up: compile, allocate, first-touch
        tool.run(images[:args.batch], args.T, args.batch)
    clock, times = CLOCK[args.clock], {key: [] for key in tools}
    for _ in range(args.rounds):
        for key, tool in tools.items():
            times[key].append(timed(lambda t=tool: t.run(images, args.T, args.batch), clock))
    with GemmClock(clock) as gemms:
        dense.run(images, args.T, args.batch)
    rates = torch_layer_rates(layers, args.T * min(args.batch, LAYER_IMAGES), args.calls,
                              clock)
    per_image = {key: min(t) / len(images) for key, t in times.items()}
    layer_macs = [(s.macs * args.T, rates.get(s.name)) if s.spiking else (s.macs, 0.0)
                  for s in layers]  # the analog layer: at the peak rate
    reading = Reading(name, macs, layer_macs, per_image["dense"],
                      gemms.seconds / THREADS / len(images), gemms.macs // len(images),
                      per_image.get("spikingjelly"))
    rows = [(s.name, s.in_shape, s.macs, rates.get(s.name)) for s in layers]
    return reading, rows


def print_tables(readings: list[Reading], layer_rows: dict, T: int, peak: float,
                 blas: float) -> None:
    """The bound table (``peak``: the best rate seen; ``blas``: NumPy's sgemm, the BLAS the
    dense engine calls) and torch's rate per layer."""
    print("| model | dense MACs per image | bound at peak GEMM | bound at layer shapes "
          "| evsim dense | its GEMMs (their MACs / the model's) | SpikingJelly | dense vs "
          "SpikingJelly now | highest ratio the bound allows | at NumPy's sgemm rate |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in readings:
        sj, bound, shape_bound = r.spikingjelly, r.bound(peak), r.shape_bound(peak)
        shape = "–" if shape_bound is None else f"{1e3 * shape_bound:.2f} ms"
        allowed = "–" if sj is None else f"**{sj / bound:.2f}×**" + (
            "" if shape_bound is None else f" ({sj / shape_bound:.2f}× at layer shapes)")
        print(f"| {r.model} | {r.macs / 1e9:.3f} G | {1e3 * bound:.2f} ms | {shape} "
              f"| {1e3 * r.dense:.2f} ms | {1e3 * r.dense_gemm:.2f} ms "
              f"({r.dense_gemm_macs / r.macs:.2f}) "
              f"| {'–' if sj is None else f'{1e3 * sj:.2f} ms'} "
              f"| {'–' if sj is None else f'{sj / r.dense:.2f}×'} | {allowed} "
              f"| {'–' if sj is None else f'{sj / r.bound(blas):.2f}×'} |")
    print(f"\nPer spiking layer (× T = {T} per image): torch's rate at its shape "
          f"(batch T × {LAYER_IMAGES} images at most)\n")
    print("| model | layer | input per frame | MACs per frame | torch GMAC/s |")
    print("|---|---|---|---:|---:|")
    for model, rows in layer_rows.items():
        for layer, shape, macs, rate in rows:
            cell = "analog, once per image" if rate is None else f"{rate / 1e9:.1f}"
            print(f"| {model} | {layer} | {'×'.join(map(str, shape))} | {macs / 1e6:.2f} M "
                  f"| {cell} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--T", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5, help="timed calls per GEMM rate")
    parser.add_argument("--gemm-size", type=int, default=2048, help="n of the n³ GEMM")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--clock", choices=tuple(CLOCK), default="wall",
                        help="cpu: this thread's CPU time (one thread only), for a shared "
                        "machine")
    parser.add_argument("--quick", action="store_true",
                        help="fashion_cnn, 8 images, 1 round, a 512³ GEMM")
    args = parser.parse_args()
    if args.clock == "cpu" and THREADS != 1:
        parser.error("--clock cpu times one thread: use it with --threads 1")
    if args.quick:
        args.images = args.batch = 8
        args.rounds, args.calls, args.gemm_size, args.models = 1, 2, 512, "fashion_cnn"
    try:
        import torch
        torch.set_num_threads(THREADS)
        versions = f"torch {torch.__version__}, "
    except ImportError:
        versions = "no torch, "
    calibration, calibration_labels = load_bundled_sample("train")
    images, labels = (a[:args.images] for a in load_bundled_sample("test"))
    readings, layer_rows, peaks = [], {}, []
    for name in args.models.split(","):
        peaks.append(gemm_rates(args.gemm_size, args.calls, CLOCK[args.clock]))  # best kept
        reading, layer_rows[name] = measure_model(name, images, labels, calibration,
                                                   calibration_labels, args)
        readings.append(reading)
    peaks.append(gemm_rates(args.gemm_size, args.calls, CLOCK[args.clock]))
    # the best float32 product rate seen: a layer shape may beat the square GEMM
    peak = max([max(r.values()) for r in peaks] + [r.best_rate() for r in readings])
    peak_cells = ", ".join(f"{key} {max(r[key] for r in peaks) / 1e9:.1f}" for key in peaks[0])
    print(f"dense bound: T = {args.T}, {len(images)} Fashion-MNIST test images (batch "
          f"{args.batch}), {THREADS} thread(s) for every tool; best GEMM rate {peak_cells} "
          f"GMAC/s ({args.gemm_size}³ float32), best of all, layer shapes included, "
          f"{peak / 1e9:.1f}; best of {args.rounds} alternating rounds, {args.clock} clock; "
          f"{platform.processor() or platform.machine()}, {versions}numpy {np.__version__}\n")
    print_tables(readings, layer_rows, args.T, peak,
                 max(r["numpy sgemm"] for r in peaks))


if __name__ == "__main__":
    main()
