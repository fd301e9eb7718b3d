"""Scaling of compare_methods over Dask worker processes on this machine.

Compares the same methods at the same T on the same images (the bundled
Fashion-MNIST CNN and test sample) with a LocalCluster of 1 worker process
and of 2 (one thread each), after one untimed warm-up per cluster (workers
load the compiled kernels); prints the median wall time of ``--runs`` runs,
the speed-up over 1 worker, and checks that every run gives the same
comparison. The local run (no Dask, one event-engine thread) is timed too.

    python benchmarks/bench_scaling.py [--workers 1,2] [--images 1000] [--runs 3] [--quick]

Run it on otherwise idle cores (``taskset -c 0,1``): the workers, the
scheduler and this process share them. BLAS runs on one thread everywhere,
as Dask gives its workers: float sums in BLAS depend on its thread count
(docs/scaling.md).
"""

from __future__ import annotations

import argparse
import os
import time

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before NumPy loads BLAS

import numpy as np  # noqa: E402

import evsim  # noqa: E402
from evsim.data import load_bundled_sample  # noqa: E402
from evsim.models import load_model  # noqa: E402

def _timed(fn, runs: int):
    times, results = [], []
    for _ in range(runs):
        start = time.perf_counter()
        results.append(fn())
        times.append(time.perf_counter() - start)
    return times, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker process counts (default 1,2)")
    parser.add_argument("--images", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("--T-max", type=int, default=32, help="largest T (default 32)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs each (default 3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 64 images, T up to 4")
    args = parser.parse_args()
    if args.quick:
        args.images, args.T_max, args.runs = 64, 4, 1
    from dask.distributed import Client, LocalCluster

    calibration, _ = load_bundled_sample("train")
    images, labels = load_bundled_sample("test")
    images, labels = images[:args.images], labels[:args.images]
    network = load_model("fashion_cnn")
    steps = [1 << k for k in range(args.T_max.bit_length()) if (1 << k) <= args.T_max]
    methods = [("percentile", "percentile"), ("opi-style θ/2", "percentile",
                                              {"initial_potential": 0.5}),
               ("spicalib", "spicalib"), ("spikeconverter", "spikeconverter")]

    def compare(client=None):
        return evsim.compare_methods(network, calibration[:256], images, labels,
                                     methods=methods, T=steps, client=client, threads=1)

    evsim.compare_methods(network, calibration[:256], images[:8], labels[:8], methods=methods,
                          T=steps, threads=1)  # compiles the kernels here, untimed
    rows = []
    times, results = _timed(compare, args.runs)
    reference = results[0].to_json()
    same = all(r.to_json() == reference for r in results)
    rows.append(("local, no Dask (1 thread)", times))
    for n in [int(part) for part in args.workers.split(",")]:
        with LocalCluster(n_workers=n, processes=True, threads_per_worker=1,
                          dashboard_address=":0") as cluster, Client(cluster) as client:
            evsim.compare_methods(network, calibration[:256], images[:8], labels[:8],
                                  methods=methods, T=steps, client=client)  # warm-up
            times, results = _timed(lambda client=client: compare(client), args.runs)
        same = same and all(r.to_json() == reference for r in results)
        rows.append((f"{n} worker process{'es' if n > 1 else ''}", times))
    cells = sum(len(steps) if m[1] in ("spicalib", "spikeconverter") else 1 for m in methods)
    print(f"compare_methods: {len(methods)} methods ({cells} cells), T = "
          f"{','.join(map(str, steps))}, {len(images)} images, bundled fashion_cnn, event "
          f"engine; median of {args.runs} run(s) after a warm-up\n")
    print("| setup | median (s) | runs (s) | speed-up over 1 worker |")
    print("|---|---:|---:|---:|")
    one = next((np.median(t) for name, t in rows if name.startswith("1 worker")), None)
    for name, times in rows:
        speedup = "" if one is None else f"{one / np.median(times):.2f}x"
        print(f"| {name} | {np.median(times):.2f} | {', '.join(f'{t:.2f}' for t in times)} | "
              f"{speedup} |")
    print(f"\nevery run gave the same comparison: {'yes' if same else 'NO'}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
