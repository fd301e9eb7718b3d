"""Whole-network throughput: event engine versus dense (BLAS) engine, same thread count.

Converts a model (the bundled Fashion-MNIST CNN by default, any bundled model or a
realistic-width one of ``wide_models.py``; percentile normalisation) and
simulates real test images at T = 32 with both engines in the same run.
Prints images per second, the measured firing rate, SOPs per image and the
ratio; compile (first-call) time is measured separately in a fresh Numba
cache directory. ``--breakdown`` prints instead where the event engine's time goes
(one thread): per part (scatter, neuron updates, pooling, the analog first layer's MACs,
bookkeeping) and per layer, and each layer's scatter GSOP/s in the network beside the
isolated kernel's (``bench_kernels.py``) at the same shape and spike rate, measured in the
same run, with the whole network's GSOP/s against what the isolated kernels would give.

    python benchmarks/bench_network.py [--threads 2] [--images 256] [--T 32] [--quick]
    python benchmarks/bench_network.py --breakdown --model vgg_wide [--images 16] [--quick]
    python benchmarks/bench_network.py --scaling --model vgg_wide [--images 32] [--quick]

``--scaling`` times the event engine at one and at ``--threads`` threads (2 by default),
alternating, in one process, prints the speed-up and checks that the results are bit
for bit the same; then the dense engine likewise, with each convolution's GEMM groups per
block (its threads share these groups, fixed by the results).

``--sparse`` times the dense engine's convolutions (one thread) every way on the frames
each call receives: the GEMM path, the gather of each position's non-zero inputs
(``evsim.simulate.dense_gather``) and the tiles of eight positions
(``evsim.simulate.dense_tiles``) where each fits, with the frames' density, the share of
their runs of 8 inputs that hold a non-zero one, and the choice the engine's rules make;
then whole dense runs with and without the sparse kernels, alternating, checking that
they give the same results bit for bit.

    python benchmarks/bench_network.py --sparse --model vgg_relu [--images 64]

``--memory`` times runs of both engines (at one thread and at ``--threads``) on memory kept
from the run before (``evsim.arena.borrow``) and on fresh memory (``evsim.arena.release()``
before each run), alternating, with the page faults each run takes, and checks that both
give the same results bit for bit.

    python benchmarks/bench_network.py --memory --model mobilenet [--images 64] [--runs 5]
"""

from __future__ import annotations

import argparse
import sys

from threads import set_threads

THREADS = set_threads(sys.argv, default=1 if ("--breakdown" in sys.argv
                                              or "--sparse" in sys.argv) else 2)

import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import evsim  # noqa: E402
from evsim.data import bundled_scenes, load_bundled_sample, make_scenes  # noqa: E402
from evsim.forward import forward  # noqa: E402
from evsim.models import load_model  # noqa: E402
import breakdown  # noqa: E402
import wide_models  # noqa: E402

#: Height and width of the scenes the task models (segmenter, detector) read.
SCENE_SHAPE = (64, 64)

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


def model(name: str, n_images: int):
    """(converted network, test images, labels) of a bundled or a wide model. A wide model's
    labels are its ANN's predictions (its weights are random); so are a task model's (a
    segmenter or detector on 64x64 scenes, its flattened output's argmax): it reads the
    bundled test scenes and is calibrated on 200 scenes made from the training sample (as
    peers.py does)."""
    calibration, calibration_labels = load_bundled_sample("train")
    images, labels = load_bundled_sample("test")
    images, labels = images[:n_images], labels[:n_images]
    if name in wide_models.MODELS:
        network = wide_models.build(name, wide_models.images_for(name, calibration[:64]))
        calibration = wide_models.images_for(name, calibration)
        images = wide_models.images_for(name, images)
        labels = forward(network, images).reshape(len(images), -1).argmax(1)
        return evsim.convert(network, calibration, method="percentile"), images, labels
    network = load_model(name)
    if network.input_shape[1:] == SCENE_SHAPE:
        calibration = make_scenes(calibration, calibration_labels, 200, seed=3).images
        images = bundled_scenes().take(slice(0, n_images)).images
        labels = forward(network, images).reshape(len(images), -1).argmax(1)
    return evsim.convert(network, calibration, method="percentile"), images, labels


def print_breakdown(name, snn, images, T, rounds) -> None:
    """The event engine's time per part and per layer, and the scatters against the isolated
    kernels (one thread; see breakdown.py)."""
    program, row_s, other_s, head_s, per_layer, slot_rates = breakdown.profile(snn, images, T)
    names = breakdown.row_names(program)
    total = row_s.sum() + other_s + head_s
    parts = {"first-layer MACs (analog head)": head_s, "bookkeeping": other_s}
    layers = {}
    for op, name_, seconds in zip(program.ops, names, row_s):
        part = breakdown.PARTS[op[0]]
        parts[part] = parts.get(part, 0.0) + seconds
        layers[(name_, part)] = layers.get((name_, part), 0.0) + seconds
    print(f"where the event engine's time goes: {name}, T = {T}, {len(images)} images, one "
          f"thread, {1e3 * total:.2f} ms per image (cycle counter around every operation)\n")
    print("| part | ms per image | share |\n|---|---:|---:|")
    for part, seconds in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"| {part} | {1e3 * seconds:.3f} | {100 * seconds / total:.1f} % |")
    print("\n| layer | part | ms per image | share |\n|---|---|---:|---:|")
    for (layer, part), seconds in layers.items():
        print(f"| {layer} | {part} | {1e3 * seconds:.3f} | {100 * seconds / total:.1f} % |")
    kernels = breakdown.kernel_rates(snn, per_layer, T, rounds)
    own_rows = breakdown.row_kernel_rates(
        program, slot_rates, [layer for layer in per_layer if layer not in kernels
                              and layers.get((layer, "scatter"), 0.0) > 0], rounds)
    kernels.update(own_rows)
    print("\n| layer | input spike rate | SOPs per image | GSOP/s of its scatter in the network "
          "| isolated kernel GSOP/s | network / kernel |\n|---|---:|---:|---:|---:|---:|")
    at_kernel_speed = 0.0
    for layer, sops in per_layer.items():
        seconds = layers.get((layer, "scatter"), 0.0)
        if layer in kernels and seconds > 0:
            rate, kernel = kernels[layer]
            at_kernel_speed += sops / kernel / 1e9
            mark = " †" if layer in own_rows else ""
            in_network = sops / seconds / 1e9
            print(f"| {layer}{mark} | {100 * rate:.2f} % | {sops:.3g} | {in_network:.2f} | "
                  f"{kernel:.2f} | {in_network / kernel:.2f} |")
    if own_rows:
        print("\n† a path that no one-layer network rebuilds (a residual shortcut, a read "
              "through a Flatten, a Concat or an upsampling): its isolated kernel is the "
              "engine's own scatter rows on fresh random events at the source's measured rate")
    counted = sum(sops for layer, sops in per_layer.items() if layer in kernels)
    everything = sum(per_layer.values())
    print(f"\nwhole network: {everything / total / 1e9:.2f} GSOP/s over all its time; the layers "
          f"above at their isolated kernels' speed would take {1e3 * at_kernel_speed:.3f} ms "
          f"per image for their {counted:.3g} SOPs: whole network / kernels = "
          f"{at_kernel_speed / total:.2f} (target ≥ 0.8)")
    floor = breakdown.neuron_floor(program, T, max(rounds, 5))
    spent = parts.get("neuron updates", 0.0) + sum(
        seconds for op, seconds in zip(program.ops, row_s) if op[0] == breakdown.K.OP_FILL)
    print(f"neuron updates and bias fills: {1e3 * spent:.3f} ms per image; a bare pass over "
          f"their buffers (v += current, current refilled) takes {1e3 * floor:.3f} ms "
          f"({spent / floor:.2f}x)")
    if at_kernel_speed > 0:
        rest = total - spent - sum(layers.get((layer, "scatter"), 0.0) for layer in kernels)
        print(f"with the layers above at their kernels' speed, the neuron updates and fills "
              f"at that floor and the rest as measured ({1e3 * rest:.3f} ms), whole network / "
              f"kernels would be {at_kernel_speed / (at_kernel_speed + floor + rest):.2f}")


def _thread_times(snn, images, T, engine, threads, rounds, per_image_counts=False) -> tuple:
    """``engine``'s median run time (seconds) at one thread and at ``threads``, alternating
    rounds after one short run that loads or compiles its kernels, and the last result at
    each thread count ({1: result, threads: result})."""
    times, results = {1: [], threads: []}, {}
    evsim.simulate(snn, images[:2], T=2, engine=engine)
    for _ in range(rounds):
        for k in times:
            start = time.perf_counter()
            results[k] = evsim.simulate(snn, images, T=T, engine=engine, threads=k,
                                        per_image_counts=per_image_counts)
            times[k].append(time.perf_counter() - start)
    return tuple(float(np.median(times[k])) for k in (1, threads)), results


def print_scaling(name, snn, images, T, threads, rounds) -> None:
    """The event engine's time at one thread and at ``threads``, alternating rounds, and
    whether both give the same results bit for bit."""
    (one, many), results = _thread_times(snn, images, T, "event", threads, rounds,
                                         per_image_counts=True)
    same = evsim.results_equal(results[1], results[threads])
    print(f"event engine threads: {name}, T = {T}, {len(images)} images, median of {rounds} "
          f"alternating rounds\n")
    print(f"| threads | ms per image | speed-up |\n|---:|---:|---:|\n"
          f"| 1 | {1e3 * one / len(images):.2f} | 1.00x |\n"
          f"| {threads} | {1e3 * many / len(images):.2f} | {one / many:.2f}x (target ≥ 1.7x) |")
    print(f"\nresults bit for bit the same at 1 and {threads} threads: {same}")
    print_dense_scaling(snn, images, T, threads, rounds)


def print_dense_scaling(snn, images, T, threads, rounds) -> None:
    """The dense engine at one thread and at ``threads`` (alternating rounds), and how many
    GEMM groups each convolution has per block: an image's sums depend on the images that
    share its GEMM, so the groups are fixed by the results, and the threads share a
    convolution's groups, not the columns of one GEMM."""
    from evsim import ann_ops, layers
    from evsim.simulate import dense
    from evsim.simulate.dense_conv import is_depthwise

    (one, many), _ = _thread_times(snn, images, T, "dense", threads, rounds)
    print(f"\ndense engine: {1e3 * one / len(images):.2f} ms per image at one thread, "
          f"{1e3 * many / len(images):.2f} at {threads} ({one / many:.2f}x)\n")
    net = snn.network
    batch = min(evsim.SimulationOptions().batch_size, len(images))
    largest = max(int(np.prod(net.shape(n.name))) for n in net)
    frames = batch * max(1, min(T, dense.BLOCK_FLOATS // (batch * largest)))
    print(f"| convolution (on the GEMM path; depthwise layers, the gather and the tiles share "
          f"frames freely) | frames per GEMM | GEMM groups per block of {frames} frames |\n"
          "|---|---:|---:|")
    analog = evsim.signals.plan(net).classes  # the analog head runs once per image
    for node in net:
        layer = node.layer
        shape = net.shape(node.inputs[0]) if node.inputs else None
        if (isinstance(layer, layers.Conv2d) and analog[node.name] != evsim.signals.ANALOG
                and not is_depthwise(layer, shape[0])):
            step = ann_ops.images_per_product(layer, shape)
            print(f"| {node.name} | {min(step, frames)} | {-(-frames // step)} |")


def print_memory(name, snn, images, T, threads, rounds) -> None:
    """Each engine's runs on memory the run before left against runs on fresh memory,
    alternating, at one thread and at ``threads``: ms per image and page faults per run
    (medians), and whether both give the same results."""
    import resource

    from evsim import arena

    print(f"memory kept between runs: {name}, T = {T}, {len(images)} images per run, median "
          f"of {rounds} alternating rounds\n")
    print("| engine | threads | fresh memory, ms per image | kept, ms per image | fresh / kept "
          "| page faults per run, fresh | kept |\n|---|---:|---:|---:|---:|---:|---:|")
    for engine in ("event", "dense"):
        for k in sorted({1, threads}):
            times, faults, results = {False: [], True: []}, {False: [], True: []}, {}
            evsim.simulate(snn, images, T=T, engine=engine, threads=k)  # compile, warm up
            for _ in range(rounds):
                for kept in (False, True):
                    if not kept:
                        arena.release()
                    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                    start = time.perf_counter()
                    results[kept] = evsim.simulate(snn, images, T=T, engine=engine, threads=k)
                    times[kept].append(time.perf_counter() - start)
                    faults[kept].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                                        - before)
            if not evsim.results_equal(results[False], results[True]):
                raise SystemExit(f"{engine}: runs on kept memory differ from fresh ones")
            fresh, kept = (1e3 * float(np.median(times[c])) / len(images) for c in (False, True))
            print(f"| {engine} | {k} | {fresh:.2f} | {kept:.2f} | {fresh / kept:.2f}x | "
                  f"{np.median(faults[False]):.0f} | {np.median(faults[True]):.0f} |")
    print("\nresults bit for bit the same on kept and on fresh memory: True")


def print_sparse(name, snn, images, T, rounds) -> None:
    """Each convolution of the dense engine by the GEMM path, by the gather and by the
    tiles (where each fits), on the same frames, then whole dense runs with and without
    the two sparse kernels (one thread)."""
    from evsim import ann_ops, layers
    from evsim.simulate import dense, dense_gather, dense_tiles

    rows = {}
    engine_conv = dense._COMPILED[layers.Conv2d]
    order = dense_gather.gemm_order()
    kernels = {"gather": (dense_gather.gather_conv, lambda layer, x: (
                   dense_gather.fits(layer, x) and dense_gather.matches_blas_gemm()
                   and dense_gather.products_modelled(layer, x, order))),
               "tiles": (dense_tiles.tile_conv, lambda layer, x: (
                   dense_tiles.fits_shape(layer, x.shape[1:], x.dtype)
                   and dense_tiles.matches_blas_tiles()
                   and dense_gather.products_modelled(layer, x, order)))}

    def all_ways(layer, inputs, threads, out):
        x = np.ascontiguousarray(inputs[0])
        fitting = {k: conv for k, (conv, fits) in kernels.items() if fits(layer, x)}
        if not fitting:
            return engine_conv(layer, inputs, threads, out)
        cout, cin, kh, kw = layer.weight.shape
        key = f"{cin}->{cout} {kh}x{kw}/{layer.stride[0]} at {x.shape[2]}x{x.shape[3]}"
        row = rows.setdefault(key, {"GEMM": 0.0, "gather": None, "tiles": None, "nonzero": 0.0,
                                    "runs": 0.0, "taken": {}, "calls": 0})
        start = time.perf_counter()
        ann_ops.conv2d(layer, x, threads, out, lay_out=dense._lay_out_compiled,
                       columns=dense.columns)
        row["GEMM"] += time.perf_counter() - start
        for kernel, conv in fitting.items():
            start = time.perf_counter()
            got = conv(layer, x, threads, np.empty_like(out))
            row[kernel] = (row[kernel] or 0.0) + time.perf_counter() - start
            if not np.array_equal(got.view(np.uint8), out.view(np.uint8)):
                raise AssertionError(f"the {kernel} differs from the GEMM path on {key}")
        density, run_density = dense.occupancy(x, every=1)
        row["nonzero"] += density
        row["runs"] += run_density
        sampled, sampled_runs = dense.occupancy(x)  # what the rule reads
        taken = ("tiles" if dense.tiles(layer, x, sampled_runs) else "gather"
                 if dense.gathers(layer, x, sampled) else "GEMM")
        row["taken"][taken] = row["taken"].get(taken, 0) + 1
        row["calls"] += 1
        return out

    if not (dense_gather.matches_blas_gemm() or dense_tiles.matches_blas_tiles()):
        print("this machine's BLAS sums its GEMMs in another order: the dense engine keeps "
              "the GEMM path everywhere")
        return
    dense._COMPILED[layers.Conv2d] = all_ways
    try:
        for round_ in range(1 + rounds):  # the first loads the kernels: not counted
            if round_ == 1:
                rows.clear()
            evsim.simulate(snn, images, T=T, engine="dense", threads=1)
    finally:
        dense._COMPILED[layers.Conv2d] = engine_conv
    n = len(images) * rounds
    print(f"dense engine convolutions: {name}, T = {T}, {len(images)} images, one thread, "
          f"every way on the same frames, {rounds} runs (ms per image; GEMM path ÷ kernel)\n")
    print("| layer | non-zero inputs | runs of 8 with one | GEMM path | gather | tiles "
          "| engine takes |\n|---|---:|---:|---:|---:|---:|---|")

    def way(seconds, gemm):
        return "–" if seconds is None else f"{1e3 * seconds / n:.3f} ({gemm / seconds:.2f}×)"

    for key, row in rows.items():
        calls = row["calls"]
        taken = ", ".join(f"{k} {v}" for k, v in sorted(row["taken"].items()))
        print(f"| {key} | {100 * row['nonzero'] / calls:.1f} % | "
              f"{100 * row['runs'] / calls:.1f} % | {1e3 * row['GEMM'] / n:.3f} | "
              f"{way(row['gather'], row['GEMM'])} | {way(row['tiles'], row['GEMM'])} | "
              f"{taken} of {calls} calls |")
    times, results = {"GEMM path": [], "with the sparse kernels": []}, {}
    rules = dense.gathers, dense.tiles
    for _ in range(rounds):
        for label in times:
            if label == "GEMM path":
                dense.gathers = dense.tiles = lambda *a: False
            try:
                start = time.perf_counter()
                results[label] = evsim.simulate(snn, images, T=T, engine="dense", threads=1)
                times[label].append(time.perf_counter() - start)
            finally:
                dense.gathers, dense.tiles = rules
    gemm_s, sparse_s = (float(np.median(times[k])) for k in times)
    n = len(images)
    print(f"\nwhole dense run (median of {rounds} alternating rounds): GEMM path "
          f"{1e3 * gemm_s / n:.2f} ms per image, with the sparse kernels "
          f"{1e3 * sparse_s / n:.2f} ({gemm_s / sparse_s:.2f}x); results bit for bit the "
          f"same: {evsim.results_equal(*results.values())}")


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
    parser.add_argument("--model", default="fashion_cnn",
                        help="a bundled model or one of " + ", ".join(wide_models.MODELS))
    parser.add_argument("--breakdown", action="store_true",
                        help="where the event engine's time goes (one thread)")
    parser.add_argument("--scaling", action="store_true",
                        help="the event engine at one thread against --threads, same run")
    parser.add_argument("--sparse", action="store_true",
                        help="the dense engine's convolutions by GEMM, gather and tiles")
    parser.add_argument("--memory", action="store_true",
                        help="both engines' runs on memory kept from the run before and on "
                             "fresh memory")
    args = parser.parse_args()
    if args.quick:
        args.images, args.runs = (4, 1) if args.breakdown else (32, 1)
    snn, images, labels = model(args.model, args.images)
    if args.breakdown:
        print_breakdown(args.model, snn, images, args.T, 1 if args.quick else 3)
        return
    if args.sparse:
        print_sparse(args.model, snn, images, args.T, 1 if args.quick else max(args.runs, 3))
        return
    if args.memory:
        print_memory(args.model, snn, images, args.T, args.threads,
                     1 if args.quick else max(args.runs, 3))
        return
    if args.scaling:
        print_scaling(args.model, snn, images, args.T, args.threads, max(args.runs, 3))
        return
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
    print(f"evsim whole-network benchmark: {args.model}, percentile conversion, "
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
