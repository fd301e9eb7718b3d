"""The dense engine's depthwise layers: the compiled kernel against the GEMM path.

For each depthwise shape (MobileNet's layers, and wider ones), one call over ``--frames``
frames (images × steps, as the dense engine passes a block) of 10 % random spikes:
:func:`evsim.ann_ops.conv2d` with the dense engine's lay-out (im2col and one BLAS product
per channel and group of images) against :func:`evsim.simulate.dense_conv.depthwise`,
alternated over ``--rounds`` rounds, median kept; each pair's outputs compared bit for
bit (``same``). The kernel is used by the engine only where ``matches_blas`` says that
this machine's BLAS rounds as it does (printed). One thread.

    python benchmarks/dense_depthwise.py [--frames 1024] [--rounds 7]
    python benchmarks/dense_depthwise.py --quick   # smoke: 64 frames, 1 round
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

from threads import set_threads

set_threads(sys.argv, default=1)

import numpy as np  # noqa: E402

from evsim import ann_ops  # noqa: E402
from evsim import layers as L  # noqa: E402
from evsim.simulate.dense import _lay_out_compiled  # noqa: E402
from evsim.simulate.dense_conv import depthwise, matches_blas  # noqa: E402
from evsim.threads import one_blas_thread  # noqa: E402

#: (label, channels, input side, kernel, stride)
SHAPES = [("mobilenet block1", 64, 14, 3, 1), ("mobilenet block2", 64, 14, 3, 2),
          ("mobilenet block3/4", 96, 7, 3, 1), ("64 ch 28x28", 64, 28, 3, 1),
          ("128 ch 28x28 s2", 128, 28, 3, 2), ("256 ch 14x14", 256, 14, 3, 1),
          ("64 ch 14x14 5x5", 64, 14, 5, 1)]


def _layer(channels: int, kernel: int, stride: int, rng) -> L.Conv2d:
    return L.Conv2d(weight=rng.standard_normal((channels, 1, kernel, kernel)),
                    bias=rng.standard_normal(channels), stride=(stride, stride),
                    padding=(kernel // 2, kernel // 2), groups=channels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="64 frames, one round (smoke)")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.rounds = 64, 1
    rng = np.random.default_rng(0)
    print(f"# {platform.processor() or platform.machine()}, {args.frames} frames of 10 % "
          f"spikes, float32, one thread, median of {args.rounds} alternated rounds")
    print("| shape | MACs per frame | GEMM path ms | kernel ms | speed-up | kernel GMAC/s "
          "| same | engine uses the kernel |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for label, channels, side, kernel, stride in SHAPES:
        layer = _layer(channels, kernel, stride, rng)
        x = (rng.random((args.frames, channels, side, side)) < 0.1).astype(np.float32)
        _, ho, wo = layer.output_shape([x.shape[1:]])
        macs = channels * ho * wo * kernel * kernel
        gemm_out, kernel_out = (np.empty((args.frames, channels, ho, wo), np.float32)
                                for _ in range(2))
        times = {"gemm": [], "kernel": []}
        with one_blas_thread():
            for _ in range(args.rounds):
                start = time.perf_counter()
                ann_ops.conv2d(layer, x, 1, gemm_out, lay_out=_lay_out_compiled)
                middle = time.perf_counter()
                depthwise(layer, x, 1, kernel_out)
                times["gemm"].append(middle - start)
                times["kernel"].append(time.perf_counter() - middle)
        gemm, ours = (float(np.median(times[k])) for k in ("gemm", "kernel"))
        same = np.array_equal(gemm_out.view(np.uint32), kernel_out.view(np.uint32))
        used = matches_blas(np.dtype(np.float32), kernel, kernel)
        print(f"| {label} ({channels}x{side}x{side}, {kernel}x{kernel}/s{stride}) | {macs:,} | "
              f"{1e3 * gemm:.1f} | {1e3 * ours:.1f} | {gemm / ours:.2f}x | "
              f"{macs * args.frames / ours / 1e9:.2f} | {'yes' if same else 'NO'} | "
              f"{'yes' if used else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
