"""Comparing conversion methods on the same network, data and simulator.

Each method is a preset over a few components (evsim.convert's options):

* ``max`` (Diehl 2015): θ = the largest activation seen in calibration,
  reset to zero;
* ``percentile`` (Rueckauer 2017): θ = the 99.9th percentile, reset by
  subtraction (outliers no longer set θ, so the rest fire more);
* ``channelwise``: one percentile θ per channel;
* ``percentile + θ/2``: percentile with initial potential v(0) = θ/2, which
  turns the SNN's rounding down into rounding to nearest (OPI, Bu 2022).

One run per method gives accuracy at every checkpoint; the script prints a
table, and writes it (methods.md) with a plot (methods.png).

    python examples/03_compare_methods.py [--smoke] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import evsim
from evsim import plot
from evsim.data import load_bundled_sample
from evsim.models import load_model

METHODS = {
    "max": dict(method="max"),
    "percentile": dict(method="percentile"),
    "channelwise": dict(method="channelwise"),
    "percentile + θ/2": dict(method="percentile", initial_potential=0.5),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for a quick check")
    parser.add_argument("--out", type=Path, default=Path("evsim-examples/03_compare_methods"),
                        help="folder for the files this script writes")
    args = parser.parse_args()
    n_images, T = (16, 8) if args.smoke else (300, 128)
    args.out.mkdir(parents=True, exist_ok=True)

    network = load_model()
    calibration, _ = load_bundled_sample("train")
    images, labels = load_bundled_sample("test")
    images, labels = images[:n_images], labels[:n_images]
    ann_accuracy = float((evsim.forward(network, images).argmax(axis=1) == labels).mean())

    curves = {}
    for name, options in METHODS.items():
        snn = evsim.convert(network, calibration, **options)
        result = evsim.simulate(snn, images, T=T, engine="event")
        curves[name] = (result.checkpoints, result.accuracy(labels))
        print(f"{name}: {100 * curves[name][1][-1]:.2f} % at T = {T}")

    steps = next(iter(curves.values()))[0]
    lines = ["| T | " + " | ".join(curves) + " |", "|---:|" + "---:|" * len(curves)]
    for k, t in enumerate(steps):
        lines.append(f"| {t} | " + " | ".join(f"{100 * acc[k]:.2f}" for _, acc in
                                             curves.values()) + " |")
    lines.append("| ANN | " + " | ".join(f"{100 * ann_accuracy:.2f}" for _ in curves) + " |")
    table = "\n".join(lines)
    print(f"\naccuracy (%) on {n_images} test images\n\n{table}")

    (args.out / "methods.md").write_text(table + "\n", encoding="utf-8")
    plot.accuracy_vs_T(curves, ann_accuracy).savefig(args.out / "methods.png", dpi=110)
    print(f"\nwrote {args.out / 'methods.md'} and {args.out / 'methods.png'}")


if __name__ == "__main__":
    main()
