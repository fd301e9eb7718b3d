"""The ``evsim`` command.

``evsim demo`` runs the main job end to end on the bundled default: the
bundled Fashion-MNIST CNN is converted with calibration images from the
training set and simulated on real test images, printing accuracy versus T.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from . import __version__


def _demo(args: argparse.Namespace) -> int:
    from . import convert, forward, simulate
    from .data import load_bundled_sample, load_fashion_mnist
    from .models import load_model, model_info

    network = load_model(args.model)
    calibration, _ = load_bundled_sample("train")
    if args.full_test_set:
        images, labels = load_fashion_mnist("test")
        source = "Fashion-MNIST test set"
    else:
        images, labels = load_bundled_sample("test")
        source = "bundled Fashion-MNIST test sample"
    images, labels = images[:args.images], labels[:args.images]

    started = time.perf_counter()
    snn = convert(network, calibration, method=args.method)
    ann_accuracy = float((forward(network, images).argmax(axis=1) == labels).mean())
    result = simulate(snn, images, T=args.T, engine=args.engine, progress=not args.json)
    elapsed = time.perf_counter() - started
    accuracy = result.accuracy(labels)
    sops = np.cumsum(sum(result.sops.values()))
    if args.json:
        print(json.dumps({
            "model": args.model, "method": args.method, "engine": args.engine,
            "images": len(images), "data": source, "ann_accuracy": ann_accuracy,
            "T": result.checkpoints.tolist(), "accuracy": accuracy.tolist(),
            "sops_per_image": [float(sops[t - 1] / len(images)) for t in result.checkpoints],
            "seconds": elapsed}))
        return 0
    info = model_info(args.model)
    print(f"evsim {__version__} demo: {args.model} ({info['description']})")
    print(f"converted with method '{args.method}', simulated with the {args.engine} engine "
          f"on {len(images)} images of the {source}\n")
    print(result.accuracy_table(labels, ann_accuracy=ann_accuracy))
    print("\nfiring rates (spikes per neuron per step): "
          + ", ".join(f"{k} {v:.3f}" for k, v in result.firing_rates().items()))
    print(f"took {elapsed:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evsim", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"evsim {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="convert and simulate the bundled default model",
                               description=_demo.__doc__ or __doc__)
    demo.add_argument("--model", default="fashion_cnn", help="bundled model (default: %(default)s)")
    demo.add_argument("--method", default="percentile", help="conversion method "
                      "(default: %(default)s)")
    demo.add_argument("--T", type=int, default=128, help="time steps (default: %(default)s)")
    demo.add_argument("--images", type=int, default=1000,
                      help="number of test images (default: %(default)s)")
    demo.add_argument("--engine", default="event", choices=["event", "dense"],
                      help="simulation engine (default: %(default)s)")
    demo.add_argument("--full-test-set", action="store_true",
                      help="use the 10,000 Fashion-MNIST test images from the local data "
                      "(apt-get install dataset-fashion-mnist) instead of the bundled sample")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors are one line on stderr with exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, FileNotFoundError, KeyError) as err:
        print(f"evsim {args.command}: error: {err}", file=sys.stderr)
        return 2


__all__ = ["main", "build_parser"]
