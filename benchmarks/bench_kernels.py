"""Per-kernel throughput of the event engine's scatter against BLAS dense layers.

For each layer (3x3 convolutions with 16-256 channels, a 1024x1024 dense
layer, 3x3 depthwise convolutions, 2x2/stride-2 transposed convolutions beside the
3x3 convolution with the same output channels) and spike rate, times the event engine's
scatter kernel on random events (one event per spiking neuron, multiplicity 1, in the
order a neuron layer emits them: ascending channels-last index) and the dense
engine's BLAS forward of the same layer, both on one core by default. Each
rate is timed twice: on fresh events, drawn anew for every image-step as in a
network (each weight row or slab then comes from wherever the previous
image-steps left it, for a large layer L3), and on one event set repeated
(its rows stay in L1/L2 between repeats: what the kernel does with the data
at hand). The cases are timed in alternating rounds (every case once per
round), so that a slow spell of a shared machine falls on all of them alike;
figures are medians over the rounds, beside the best round. For the dense
layer, the same rows are also added with no bookkeeping at all, into the kernel's
own target and in its passes (four rows per pass over the outputs, the last one to
three of a step in one pass), called once per image-step as the kernel is: what
streaming the weight rows alone allows. Prints a table: what, size, rate, time per
image-step, GSOP/s (exact SOPs counted by the kernel), dense GMAC/s, ratio dense/event time,
the crossover rate where the event kernel stops winning, and this machine's
roofline for a scatter-add (one vector store per cycle).

    python benchmarks/bench_kernels.py [--threads 1] [--rounds 7] [--quick] [--only TEXT]
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
from evsim import Conv2d, Dense, SpikingNetwork, kinds  # noqa: E402
from evsim.layers import Concat, ConvTranspose2d, ReLU, Upsample  # noqa: E402
from evsim.network import NetworkBuilder  # noqa: E402
from evsim.arena import Arena  # noqa: E402
from evsim.simulate.compile import compile_program  # noqa: E402
from evsim.simulate.dense import _apply_to_block  # noqa: E402
from evsim.simulate.event import aligned_empty  # noqa: E402
from evsim.simulate.kernels import (CODE, LANES, OP_SCATTER, SC_DST, SC_ROW,  # noqa: E402
                                    SC_WEIGHTS, SC_WINDOW, _add_one, _add_rows,
                                    _data, _scatter, _window_adds_3x3)

SOPS_PER_RUN = 2e8  # adds per timed run of a case: about 20 ms at 10 GSOP/s
#: The most fresh event sets per case: enough that a set's rows have left L2 before the
#: next pass over the sets reaches it again.
MAX_SETS = 1024


@numba.njit  # not cached: Numba's cache would not notice changes in evsim's kernels
def _scatter_sets(op, ip, fp, buf, idx, mult, ptr, repeats):
    """Every event set ``idx[ptr[k]:ptr[k+1]]`` scattered in turn, ``repeats`` times; the
    SOPs done."""
    done = 0
    for _ in range(repeats):
        for k in range(ptr.shape[0] - 1):
            done += _scatter(op, ip, fp, buf, idx, mult, ptr[k], ptr[k + 1] - ptr[k], False, 1)
    return done


@numba.njit
def _bare_rows(op, starts, fp, buf, idx, mult, base, n_events, binary):
    """The dense layer's rows ``fp[starts[e]:starts[e]+row]`` of one event set
    ``starts[base:base+n_events]`` added to the kernel's target as the kernel adds them
    (four per pass, then the last one to three in one pass), nothing else: no event
    lookups, no SOP count. Called as the kernel is (same arguments, ``starts`` in place
    of the program's integer tables), so that both pay the same call per image-step."""
    out, w, dst, row = _data(buf), _data(fp), op[SC_DST], op[SC_ROW]
    one = fp.dtype.type(1)
    e, end = base, base + n_events
    while e < end:
        n_rows, last = min(4, end - e), end - 1
        _add_rows(out, dst, w, starts[e], one, starts[min(e + 1, last)], one,
                  starts[min(e + 2, last)], one, starts[min(e + 3, last)], one, n_rows, row)
        e += n_rows
    return 0


@numba.njit
def _repeat_rows(op, starts, fp, buf, idx, mult, ptr, repeats):
    """_bare_rows of every event set ``starts[ptr[k]:ptr[k+1]]`` in turn, ``repeats``
    times, as _scatter_sets calls the kernel."""
    for _ in range(repeats):
        for k in range(ptr.shape[0] - 1):
            _bare_rows(op, starts, fp, buf, idx, mult, ptr[k], ptr[k + 1] - ptr[k], False)


@numba.njit
def _repeat_taps(out, w, targets, amplitude, repeats):
    """A depthwise layer's adds, one float each, at precomputed (output, weight) offsets
    ``targets`` (n, 2): nothing else (no window, no event lookups, no SOP count)."""
    for _ in range(repeats):
        for t in range(targets.shape[0]):
            _add_one(out, targets[t, 0], w, targets[t, 1], amplitude)


@numba.njit
def _repeat_windows(out, w, corners, amplitudes, row, cout, repeats):
    """A 3x3 depthwise layer's adds as its kernel does them for an event whose nine taps
    reach the output (``kernels._window_adds_3x3``, the kernel's own code) around the
    output offset ``corners[e, 0]`` (weights at ``corners[e, 1]``); nothing else (no
    decoding of the event, no lookups, no border, no SOP count)."""
    for _ in range(repeats):
        for e in range(corners.shape[0]):
            _window_adds_3x3(out, w, corners[e, 0], 0, corners[e, 1], amplitudes[e], row,
                             cout)


def _window_corners(layer, input_shape, events) -> np.ndarray:
    """(output corner, weight) offsets of each event of a 3x3 multiplier-1 depthwise layer
    for :func:`_repeat_windows`, a border event's window moved inside the output (nine
    adds for every event)."""
    c_in, _, w = input_shape
    _, ho, wo = layer.output_shape([input_shape])
    py, px = layer.padding
    position, c = np.divmod(events.astype(np.int64), c_in)
    y, x = np.divmod(position, w)
    oy, ox = np.clip(y + py - 2, 0, ho - 3), np.clip(x + px - 2, 0, wo - 3)
    return np.stack([(oy * wo + ox) * c_in + c, c * 9], axis=1)


def _depthwise_targets(layer, input_shape, events) -> np.ndarray:
    """(output, weight) offsets of every add the events of a 3x3 multiplier-1 depthwise
    layer cause, in event order, as the kernel does them (channels-last output, weights
    [C, 3, 3])."""
    c_in, _, w = input_shape
    _, ho, wo = layer.output_shape([input_shape])
    py, px = layer.padding
    position, c = np.divmod(events.astype(np.int64), c_in)
    y, x = np.divmod(position, w)
    ky, kx = np.divmod(np.arange(9), 3)
    oy, ox = y[:, None] + py - ky, x[:, None] + px - kx  # (events, taps)
    inside = (oy >= 0) & (oy < ho) & (ox >= 0) & (ox < wo)
    out = (oy * wo + ox) * c_in + c[:, None]
    weight = c[:, None] * 9 + np.arange(9)
    return np.stack([out[inside], weight[inside]], axis=1)


def _layer_network(layers, input_shape):
    net = evsim.Network.sequential(input_shape, list(layers))
    return SpikingNetwork(net, {})


def _events(rate, input_shape, rng):
    """Indices of random spiking neurons, channels-last, ascending (a neuron layer's order)."""
    n_in = int(np.prod(input_shape))
    events = rng.choice(n_in, max(1, int(round(rate * n_in))), replace=False)
    if len(input_shape) == 3:
        chw = np.unravel_index(events, input_shape)
        events = np.ravel_multi_index(chw[1:], input_shape[1:]) * input_shape[0] + chw[0]
    return np.sort(events).astype(np.int32)


def _event_sets(rate, input_shape, rng, n_sets):
    """``n_sets`` independent event sets of :func:`_events`, concatenated, and their
    bounds ``ptr`` (n_sets + 1)."""
    sets = [_events(rate, input_shape, rng) for _ in range(n_sets)]
    ptr = np.concatenate([[0], np.cumsum([len(e) for e in sets])]).astype(np.int64)
    return np.concatenate(sets), ptr


class Case:
    """One timed thing: ``run()`` does ``units`` units of work (image-steps or images)."""

    clock = time.perf_counter  # main() may choose time.process_time

    def __init__(self, run, units: int):
        self.run, self.units, self.times = run, units, []

    def time(self):
        start = Case.clock()
        self.run()
        self.times.append((Case.clock() - start) / self.units)

    def median(self) -> float:
        return float(np.median(self.times))

    def best(self) -> float:
        return float(np.min(self.times))


def layer_cases(layer, input_shape, rates, rng, dense_batch=32, runs=False, through=()):
    """Cases of one layer: the dense forward, then per rate the scatter on fresh and on
    repeated events (and, for a dense layer, their bare row adds), with the exact SOPs of
    one image-step at each rate. ``runs``: a depthwise layer through the generic runs, not
    its own kernel (what it cost before that kernel). ``through``: layers the events cross
    on their way (an average pooling, folded into the layer's runs as the engine folds it);
    ``input_shape`` and the rates are then those of the spikes before them."""
    snn = _layer_network(list(through) + [layer], input_shape)
    program = compile_program(snn, "rate", np.float32)
    op = next(row for row in program.ops if row[CODE] == OP_SCATTER).copy()
    if runs:
        op[SC_WINDOW] = -1
    n_in = int(np.prod(input_shape))
    # on a cache line, as the engine's workspace: a buffer 16 bytes off one (where a large
    # np.zeros lands) splits every other vector store and ran the same kernel 15-20 % slower
    buf = aligned_empty((program.float_size,), np.float32)
    buf[:] = 0
    x = (rng.random((dense_batch,) + tuple(input_shape)) < 0.1).astype(np.float32)
    for before in through:
        x = kinds.apply(before, [x])
    dense = Case(lambda: kinds.apply(layer, [x]), dense_batch)
    macs = int(evsim.signals.plan(snn.network, "analog").macs[snn.network.output_name])
    per_rate = []
    for rate in rates:
        steps = max(1, int(SOPS_PER_RUN // max(1, round(rate * n_in) * (macs // n_in))))
        n_sets = min(MAX_SETS, steps)
        runs = {}
        for kind, (idx, ptr), repeats in (
                ("fresh", _event_sets(rate, input_shape, rng, n_sets), -(-steps // n_sets)),
                ("repeated", _event_sets(rate, input_shape, rng, 1), steps)):
            mult = np.ones(idx.size, np.float32)
            args = (op, program.iparams, program.fparams, buf, idx, mult, ptr, repeats)
            sops = _scatter_sets(*args[:-1], 1) / (len(ptr) - 1)  # compiles; SOPs/image-step
            units = repeats * (len(ptr) - 1)
            bare = None
            if op[SC_WINDOW] >= 0 and layer.kernel_size == (3, 3) and layer.stride == (1, 1) \
                    and layer.out_channels == layer.in_channels:
                targets = _depthwise_targets(layer, input_shape, idx)
                out = np.zeros(int(np.prod(layer.output_shape([input_shape]))), np.float32)
                w = np.ascontiguousarray(layer.weight, np.float32).reshape(-1)
                bare_args = (out, w, targets, np.float32(1), repeats)
                _repeat_taps(*bare_args[:-1], 1)
                corners = _window_corners(layer, input_shape, idx)
                window_args = (out, w, corners, rng.normal(size=len(idx)).astype(np.float32),
                               np.int64(layer.output_shape([input_shape])[2]
                                        * layer.out_channels),
                               np.int64(layer.out_channels), repeats)
                _repeat_windows(*window_args[:-1], 1)
                bare = (Case(lambda a=bare_args: _repeat_taps(*a), units),
                        len(targets) / (len(ptr) - 1),
                        Case(lambda a=window_args: _repeat_windows(*a), units),
                        9 * len(corners) / (len(ptr) - 1))
            elif op[SC_ROW] > 0:  # every event's row, into the kernel's own target
                row = int(op[SC_ROW])
                starts = op[SC_WEIGHTS] + idx.astype(np.int64) * row
                bare_args = (op, starts, program.fparams, buf, idx, mult, ptr, repeats)
                _repeat_rows(*bare_args[:-1], 1)
                bare = (Case(lambda a=bare_args: _repeat_rows(*a), units),
                        starts.size * row / (len(ptr) - 1))
            runs[kind] = (sops, Case(lambda args=args: _scatter_sets(*args), units), bare)
        per_rate.append((rate, runs))
    return dense, macs, per_rate


def upsampling_layers(rng, quick: bool) -> list:
    """3x3 depthwise convolutions (groups = C, multiplier 1; stride 1, and stride 2 as in
    MobileNet's down-sampling blocks) and 2x2/stride-2 transposed
    convolutions C -> C, each beside a 3x3 convolution C -> C on the transposed one's
    output size (the same output channels)."""
    out = []
    for c, hw in ([(16, 8)] if quick else [(32, 32), (64, 28), (64, 16), (128, 14),
                                           (128, 16)]):
        layer = Conv2d(rng.normal(size=(c, 1, 3, 3)).astype(np.float32), padding=1, groups=c)
        out.append((f"depthwise3x3 {c} {hw}x{hw}", layer, (c, hw, hw)))
        out.append((f"depthwise3x3 {c} {hw}x{hw} (through runs)", layer, (c, hw, hw)))
    for c, hw in ([(16, 8)] if quick else [(64, 14)]):  # MobileNet's stride-2 stage
        layer = Conv2d(rng.normal(size=(c, 1, 3, 3)).astype(np.float32), padding=1, groups=c,
                       stride=2)
        out.append((f"depthwise3x3/s2 {c} {hw}x{hw}", layer, (c, hw, hw)))
        out.append((f"depthwise3x3/s2 {c} {hw}x{hw} (through runs)", layer, (c, hw, hw)))
    for c, hw in ([(16, 4)] if quick else [(32, 16), (64, 8), (128, 8)]):
        out.append((f"transposed2x2/s2 {c}->{c} {hw}x{hw}",
                    ConvTranspose2d(rng.normal(size=(c, c, 2, 2)).astype(np.float32), stride=2),
                    (c, hw, hw)))
        out.append((f"conv3x3 {c}->{c} {2 * hw}x{2 * hw} (beside transposed)",
                    Conv2d(rng.normal(size=(c, c, 3, 3)).astype(np.float32), padding=1),
                    (c, 2 * hw, 2 * hw)))
    return out


def copy_cases(rng, quick: bool, batch: int = 32) -> list:
    """The dense engine's Concat and upsampling of a batch of spike maps, each beside a
    NumPy copy of the bytes it writes into the same memory: (name, layer case, copy case).

    The copy writes the layer's own output array (the engine's arena keeps it), and a
    Concat's copy reads its own inputs, each in one piece: how fast a large copy runs
    depends on where its arrays lie (BENCHMARKS.md, Concat), so the two are compared on
    the same ones."""
    c, hw = (8, 8) if quick else (64, 28)
    a, b = ((rng.random((batch, c, hw, hw)) < 0.1).astype(np.float32) for _ in range(2))
    out = []
    arena = Arena()
    for name, layer, inputs in (
            (f"Concat {c}+{c} {hw}x{hw}", Concat(), [a, b]),
            (f"Upsample nearest x2 {c} {hw}x{hw}", Upsample((2, 2)), [a]),
            (f"Upsample bilinear x2 {c} {hw}x{hw}", Upsample((2, 2), "bilinear"), [a])):
        # the dense engine's own path: one step of a block, into its arena's kept arrays
        steps = [v[None] for v in inputs]
        target = _apply_to_block(layer, steps, 1, arena, name).reshape(-1)
        sources = ([v.reshape(-1) for v in inputs] if isinstance(layer, Concat)
                   else [target.copy()])  # real bytes, not zero pages
        pieces = np.split(target, np.cumsum([v.size for v in sources])[:-1])
        copy = Case(lambda s=sources, p=pieces: [np.copyto(t, v) for t, v in zip(p, s)],
                    batch)
        out.append((name, Case(lambda la=layer, i=steps, n=name: _apply_to_block(
                        la, i, 1, arena, n), batch), copy))
        if isinstance(layer, Upsample) and layer.mode == "bilinear":
            out.append((name + " (ANN forward)", Case(
                lambda la=layer, i=inputs: kinds.apply(la, i), batch), copy))
    return out


def event_ops_of_routing() -> int:
    """Operation rows other than scatters that a Concat and a nearest upsampling of events
    add to an event program (both are folded into their reader's runs, which scatter each
    source of a Concat separately: expected 0)."""
    def program(route: bool) -> int:
        b = NetworkBuilder((4, 6, 6))
        x = b.add_layer(ReLU(), name="relu")
        if route:
            x = b.add_layer(Concat(), x, x)
            x = b.add_layer(Upsample((2, 2)), x)
        conv = Conv2d(np.ones((4, 8 if route else 4, 3, 3), np.float32), padding=1)
        b.add_layer(conv, x)
        snn = SpikingNetwork(b.build(), {"relu": evsim.NeuronSpec(1.0)})
        ops = compile_program(snn, "analog", np.float32).ops
        return int((ops[:, CODE] != OP_SCATTER).sum())
    return program(True) - program(False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (smoke)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default="", help="time only the layers whose name holds "
                        "this text (e.g. 'depthwise', 'transposed', 'Concat')")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="cpu: this process's CPU time, steadier than the wall clock on "
                        "a machine that other jobs share (one thread only)")
    args = parser.parse_args()
    Case.clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rng = np.random.default_rng(0)
    rounds = 1 if args.quick else args.rounds
    rates = [0.01, 0.05] if args.quick else [0.01, 0.02, 0.05, 0.1, 0.2]
    layers = [("dense 1024->1024", Dense(rng.normal(size=(1024, 1024)).astype(np.float32)),
               (1024,))]
    for c, hw in ([(16, 8)] if args.quick else [(16, 28), (32, 14), (64, 32), (128, 16),
                                                (256, 16)]):
        layers.append((f"conv3x3 {c}->{c} {hw}x{hw}",
                       Conv2d(rng.normal(size=(c, c, 3, 3)).astype(np.float32), padding=1),
                       (c, hw, hw)))
    layers += upsampling_layers(rng, args.quick)
    built = [(name,) + layer_cases(layer, shape, rates, rng, runs="(through runs)" in name)
             for name, layer, shape in layers if args.only in name]
    copies = [row for row in copy_cases(rng, args.quick) if args.only in row[0]]
    cases = [dense for _, dense, _, _ in built] + [c for _, *pair in copies for c in pair]
    for _, _, _, per_rate in built:
        for _, runs in per_rate:
            for _, scatter, bare in runs.values():  # bare: (case, SOPs) or two such pairs
                cases += [scatter] + list((bare or ())[::2])
    for _ in range(rounds):
        for case in cases:
            case.time()
    print(f"evsim kernel benchmark, float32, {args.threads} thread(s), median of {rounds} "
          f"alternating rounds (best round in brackets), {args.clock} clock, numba "
          f"{numba.__version__}, numpy {np.__version__}\n")
    print_kernels(built)
    print_depthwise(built)
    print_transposed(built)
    print_copies(copies)
    print(f"\nroofline: {roofline()}")


def print_kernels(built) -> None:
    """The kernel table, the crossover rates and the bare adds that bound two kernels."""
    print("| layer | spike rate | event time per image-step, fresh events "
          "| GSOP/s, fresh events (best) | GSOP/s, one event set repeated (best) "
          "| dense BLAS GMAC/s | dense/event time |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    crossovers, bounds = [], []
    for name, dense, macs, per_rate in built:
        dense_s = dense.median()
        for rate, runs in per_rate:
            gsops = _gsops(runs)
            event_s = runs["fresh"][1].median()
            print(f"| {name} | {100 * rate:.0f} % | {1e6 * event_s:.1f} µs | "
                  f"{gsops['fresh'][0]:.2f} ({gsops['fresh'][1]:.2f}) | "
                  f"{gsops['repeated'][0]:.2f} ({gsops['repeated'][1]:.2f}) | "
                  f"{macs / dense_s / 1e9:.1f} | {dense_s / event_s:.2f} |")
            if runs["fresh"][2]:
                bounds.append((name, rate, {kind: (bare[1] / bare[0].median() / 1e9,
                                                   bare[1] / bare[0].best() / 1e9)
                                            for kind, (_, _, bare) in runs.items()}, gsops))
        # crossover: event time grows linearly with the rate; dense time does not
        slope = np.polyfit([rate for rate, _ in per_rate],
                           [runs["fresh"][1].median() for _, runs in per_rate], 1)[0]
        crossovers.append((name, dense_s / slope if slope > 0 else float("inf")))
    print("\n| layer | crossover spike rate, fresh events (event faster below) |\n|---|---:|")
    for name, crossover in crossovers:
        print(f"| {name} | {100 * crossover:.1f} % |")
    print("\nBare adds: the same adds with no bookkeeping (dense rows: every event's row, "
          "four per pass, the last one to three in one pass; "
          "depthwise: one float each at precomputed offsets).\n")
    print("| layer | spike rate | bare adds, fresh events, GSOP/s (best) | kernel / bare "
          "| bare adds, one set repeated (best) | kernel / bare |\n"
          "|---|---:|---:|---:|---:|---:|")
    for name, rate, bare, kernel in bounds:
        print(f"| {name} | {100 * rate:.0f} % | "
              + " | ".join(f"{bare[kind][0]:.2f} ({bare[kind][1]:.2f}) | "
                           f"{kernel[kind][0] / bare[kind][0]:.2f}"
                           for kind in ("fresh", "repeated")) + " |")


def _gsops(runs) -> dict:
    return {kind: (sops / c.median() / 1e9, sops / c.best() / 1e9)
            for kind, (sops, c, _) in runs.items()}


def print_transposed(built) -> None:
    """Each transposed convolution's GSOP/s over the 3x3 convolution's beside it (same
    output channels and size), per rate, fresh events."""
    by_name = {name: per_rate for name, _, _, per_rate in built}
    rows = []
    for name, per_rate in by_name.items():
        if not name.startswith("transposed"):
            continue
        c, hw = name.split()[1].split("->")[1], int(name.split()[2].split("x")[0])
        beside = by_name.get(f"conv3x3 {c}->{c} {2 * hw}x{2 * hw} (beside transposed)")
        for (rate, runs), (_, conv) in zip(per_rate, beside or []):
            rows.append(f"| {name} | {100 * rate:.0f} % | {_gsops(runs)['fresh'][0]:.2f} | "
                        f"{_gsops(conv)['fresh'][0]:.2f} | "
                        f"{_gsops(runs)['fresh'][0] / _gsops(conv)['fresh'][0]:.2f} |")
    if rows:
        print("\n| layer | spike rate | GSOP/s | 3x3 conv beside, GSOP/s | ratio (target "
              "≥ 0.8) |\n|---|---:|---:|---:|---:|")
        print("\n".join(rows))


def print_depthwise(built) -> None:
    """Each depthwise layer's own kernel against the same layer through the generic runs,
    and against its bare window adds (:func:`_repeat_windows`), per rate, fresh events."""
    by_name = {name: per_rate for name, _, _, per_rate in built}
    rows = []
    for name, per_rate in by_name.items():
        runs = by_name.get(f"{name} (through runs)")
        for (rate, own), (_, generic) in zip(per_rate, runs or []):
            fast, slow = _gsops(own)["fresh"][0], _gsops(generic)["fresh"][0]
            window = own["fresh"][2][2:] if own["fresh"][2] else ()
            bound = window[1] / window[0].median() / 1e9 if window else float("nan")
            rows.append(f"| {name} | {100 * rate:.0f} % | {fast:.2f} | {slow:.2f} | "
                        f"{fast / slow:.2f} | {bound:.2f} | {fast / bound:.2f} |")
    if rows:
        print("\n| layer | spike rate | GSOP/s, own kernel (target ≥ 2 at 5 %) | GSOP/s through "
              "the runs | speed-up | window adds alone, GSOP/s | kernel / window adds |\n"
              "|---|---:|---:|---:|---:|---:|---:|")
        print("\n".join(rows))


def print_copies(copies) -> None:
    """The dense engine's Concat and upsampling against a copy of the bytes they write."""
    if not copies:
        return
    print(f"\nEvent engine: Concat and nearest upsampling of events add "
          f"{event_ops_of_routing()} operation rows besides their reader's scatters (they are "
          "folded into its runs).\n")
    print("| dense engine layer (batch of 32) | time per image | copy of its bytes into its "
          "output (a Concat's: from its inputs) | layer / copy |\n|---|---:|---:|---:|")
    for name, layer, copy in copies:
        print(f"| {name} | {1e6 * layer.median():.1f} µs | {1e6 * copy.median():.1f} µs | "
              f"{layer.median() / copy.median():.2f} |")


def clock_mhz() -> float | None:
    """The processor's current clock from /proc/cpuinfo (Linux), or None."""
    try:
        with open("/proc/cpuinfo") as info:
            return float(next(line.split(":")[1] for line in info if line.startswith("cpu MHz")))
    except (OSError, StopIteration, ValueError):
        return None


def roofline() -> str:
    """A one-row scatter-add stores every float it adds: one vector store per cycle bounds
    it. (The dense layer's four-row pass stores once per four rows; the bare row adds
    above measure what bounds it instead.)"""
    mhz = clock_mhz()
    per_cycle = LANES  # float32 lanes of one 256-bit (AVX2) store
    what = f"{per_cycle} SOPs per cycle (one {32 * per_cycle}-bit store per cycle)"
    if mhz is None:
        return f"{what} for a one-row scatter-add"
    return f"{what} x {mhz / 1e3:.2f} GHz = {per_cycle * mhz / 1e3:.1f} GSOP/s per core for a " \
           "one-row scatter-add"


if __name__ == "__main__":
    main()
