"""Reproduce the MobileNet-v2 measurement: rate-coded and SpikeConverter-style conversion.

The bundled ``mobilenet`` (linear bottlenecks converted with signed identity
neurons, θ⁻ = θ) is converted with percentile normalisation (p = 99.9 of all
activations of training images 0..999, or of the bundled ones) several ways and
simulated on the Fashion-MNIST test images with the event engine, analog input:

- synchronous rate coding, v(0) = 0 and v(0) = θ/2 (OPI-style), one run read at
  T = 1, 2, 4, ..., ``--t-max``;
- SpikeConverter-style temporal separation (``method="spikeconverter"``: T is a
  window W, one run per W; latency (D + 1) W steps), v(0) = θ/2 (the preset),
  v(0) = 0, and θ/2 with v(0) = 0 at the signed layers only;
- SpikeConverter-style inverse-leaky binary firing (``time_scheme="ilif"``: T = K
  bits per window, K ≤ 24).

One :func:`evsim.compare_methods` call (its cells are kept in ``OUT/cells``, so an
interrupted run resumes). Accuracy gets a Wilson 95 % interval; SOPs and energy per
image (45 nm float32 table) are read at the first T where a method comes within one
point of the ANN. Writes ``OUT/mobilenet.json`` and ``OUT/mobilenet.md`` (the section
of ``docs/results.md``; ``--write-docs`` puts it there, replacing the MobileNet-v2
section — ``compare_methods.py`` rewrites that file, so run this one after it)::

    python examples/mobilenet_conversion.py --images 10000 --out /tmp/mobilenet --write-docs
    python examples/mobilenet_conversion.py --smoke --out /tmp/mobilenet-smoke   # CI, ~1 min
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import time
from pathlib import Path

import numpy as np

import evsim
from evsim.analysis import energy_report
from evsim.data import load_bundled_sample, load_fashion_mnist
from evsim.models import load_model
from evsim.timescheme import spiking_depth

DOCS = Path(__file__).resolve().parents[1] / "docs"
HEADING = "## MobileNet-v2"
METHODS = [
    ("percentile 99.9, v(0) = 0", "percentile", {}),
    ("percentile 99.9, v(0) = θ/2 (OPI-style)", "percentile", {"initial_potential": 0.5}),
    ("SpikeConverter-style temporal, v(0) = θ/2 (T = window W)", "spikeconverter", {}),
    ("SpikeConverter-style temporal, v(0) = 0 (T = window W)", "spikeconverter",
     {"initial_potential": 0.0}),
    ("SpikeConverter-style iLIF, v(0) = 0 (T = K bits, K ≤ 24)", "spikeconverter",
     {"time_scheme": "ilif"}),
]
SIGNED_FROM_ZERO = "SpikeConverter-style temporal, v(0) = θ/2, 0 at the signed layers"


def signed_layers_from_zero(network, calibration, images, labels, steps: list[int],
                            threads: int) -> dict:
    """A row like compare_methods' for the SpikeConverter-style preset with v(0) = 0 at the
    signed (linear-bottleneck) layers only: there θ/2 would start the negative side half a
    threshold further from firing (docs/methods.md, signed neurons)."""
    snn = evsim.convert(network, calibration, method="spikeconverter")
    neurons = {name: dataclasses.replace(spec, v_init=np.zeros((), np.float32))
               if spec.signed else spec for name, spec in snn.neurons.items()}
    snn = dataclasses.replace(snn, neurons=neurons)
    row = {"label": SIGNED_FROM_ZERO, "method": "spikeconverter", "accuracy": {}, "sops": {},
           "energy_uj": {}, "latency": {}}
    for t in steps:
        result = evsim.simulate(snn, images, T=t, engine="event", threads=threads)
        row["accuracy"][t] = float(result.accuracy(labels)[-1])
        row["sops"][t] = result.total_sops() / len(images)
        row["energy_uj"][t] = energy_report(snn, result).snn_pj / 1e6
        row["latency"][t] = result.latency
        print(f"signed layers from 0 at T={t}: {100 * row['accuracy'][t]:.2f} %", flush=True)
    return row


def wilson(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) of ``correct`` successes in ``n``."""
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def load_images(n: int, bundled: bool):
    """(calibration, test images, test labels, the test and calibration images described)."""
    if bundled:
        x, y = load_bundled_sample("test")
        calibration, _ = load_bundled_sample("train")
        return (calibration, x[:n], y[:n], f"the first {min(n, len(x))} bundled test images",
                "the 1,000 bundled training images (59,000..59,999)")
    x, y = load_fashion_mnist(split="test", limit=n)
    calibration, _ = load_fashion_mnist(split="train", limit=1000)
    return (calibration, x, y, f"Fashion-MNIST test images 0..{len(x) - 1}",
            "training images 0..999")


def first_within(row: dict, ann: float, steps: list[int], points: float = 1.0) -> int | None:
    """The first T at which ``row``'s accuracy is within ``points`` of the ANN's."""
    return next((t for t in steps if t in row["accuracy"]
                 and 100 * row["accuracy"][t] >= 100 * ann - points), None)


def section(data: dict) -> str:
    """The Markdown section of docs/results.md."""
    steps, n, ann = data["T"], data["n_images"], data["ann_accuracy"]
    lo, hi = wilson(round(ann * n), n)
    lines = [f"{HEADING}: rate coding against SpikeConverter-style conversion "
             f"({data['date']})", "",
             f"Made by `{data['command']}` on {data['date']} ({data['minutes']:.0f} min on one "
             f"core of the shared 2-core machine{data.get('minutes_note', '')}). The bundled "
             "`mobilenet` (21,946 parameters; its linear bottlenecks become signed identity "
             "neurons, θ⁻ = θ), percentile "
             f"normalisation (p = 99.9 of all activations of {data['calibration']}), event "
             f"engine, analog input, float32, on {data['images']}; ANN "
             f"{100 * ann:.2f} % (Wilson 95 % interval {100 * lo:.1f}–{100 * hi:.1f}). "
             "Synchronous rows: one run read at every T. Temporal rows (SpikeConverter-style: "
             "each layer integrates a window of W = T steps, then fires clip(floor(V/θ), 0, W) "
             "spikes, −clip(floor(−V/θ⁻), 0, W) below zero, in the next window): one run per "
             f"T, output complete after (D + 1) W steps, D = {data['depth']} spiking layers on "
             "the longest path (the signed identity layers included). The iLIF row sends "
             "each layer's V/θ as a K-bit binary expansion, most significant bit first "
             "(−V/θ⁻'s as negative spikes at the signed layers; T = K ≤ 24 bits, output "
             "after (D + 1) K steps).", "",
             "### Accuracy (%)", "",
             "| method | " + " | ".join(f"T={t}" for t in steps) + " |",
             "|---|" + "---:|" * len(steps)]
    for row in data["methods"]:
        lines.append(f"| {row['label']} | " + " | ".join(
            f"{100 * row['accuracy'][t]:.2f}" if t in row["accuracy"] else "–"
            for t in steps) + " |")
    lines.append("| ANN | " + " | ".join(f"{100 * ann:.2f}" for _ in steps) + " |")
    lines += ["", "### Within one point of the ANN: the first T, its cost per image", "",
              "| method | T | latency (steps) | accuracy (95 % interval) | SOPs | "
              "energy (µJ) | ANN energy (µJ) |", "|---|---:|---:|---|---:|---:|---:|"]
    for row in data["methods"]:
        t = first_within(row, ann, steps)
        if t is None:
            best = max(steps, key=lambda s: row["accuracy"].get(s, 0))
            lines.append(f"| {row['label']} | not within 1 point up to T = {steps[-1]} (best "
                         f"{100 * row['accuracy'][best]:.2f} at T = {best}) | | | | | |")
            continue
        acc = row["accuracy"][t]
        lo, hi = wilson(round(acc * n), n)
        latency = row["latency"].get(t, t)
        lines.append(f"| {row['label']} | {t} | {latency} | {100 * acc:.2f} "
                     f"({100 * lo:.1f}–{100 * hi:.1f}) | {row['sops'][t]:.3g} | "
                     f"{row['energy_uj'][t]:.3g} | {data['ann_energy_uj']:.3g} |")
    lines += ["", "### SOPs per image (millions)", "",
              "| method | " + " | ".join(f"T={t}" for t in steps) + " |",
              "|---|" + "---:|" * len(steps)]
    for row in data["methods"]:
        lines.append(f"| {row['label']} | " + " | ".join(
            f"{row['sops'][t] / 1e6:.3g}" if t in row["sops"] else "–" for t in steps) + " |")
    lines += ["", verdict(data)]
    return "\n".join(lines) + "\n"


FEW_STEPS = 16  # "few steps": a window of at most this many steps


def _reading(row: dict, ann: float, steps: list[int], unit: str) -> tuple[bool, str]:
    """Whether ``row`` is within one point of the ANN at some T ≤ FEW_STEPS, and a sentence
    giving its accuracy at the largest such T it ran and where it gets within a point."""
    few = max(t for t in steps if t <= FEW_STEPS and t in row["accuracy"])
    within = first_within(row, ann, steps)
    gap = 100 * (ann - row["accuracy"][few])
    text = (f"at {unit} = {few} it scores {100 * row['accuracy'][few]:.2f} % "
            f"({abs(gap):.1f} points {'below' if gap >= 0 else 'above'} the ANN)")
    if within is not None:
        text += (f"; within one point from {unit} = {within}: {100 * row['accuracy'][within]:.2f}"
                 f" %, output complete after {row['latency'][within]} steps, "
                 f"{row['sops'][within]:.3g} SOPs and {row['energy_uj'][within]:.3g} µJ per image")
    return within is not None and within <= FEW_STEPS, text


def verdict(data: dict) -> str:
    """SpikeConverter's "almost lossless with few steps" against these numbers, for both
    readings of its neuron (rows 3 and 5: windows of W steps, K-bit codes): supported if
    either is within one point of the ANN with at most FEW_STEPS steps per layer."""
    steps, ann, rows = data["T"], data["ann_accuracy"], data["methods"]
    rate = rows[1]
    windows, windows_text = _reading(rows[2], ann, steps, "W")
    codes, codes_text = _reading(rows[4], ann, steps, "K")
    supported = [name for name, ok in (("the K-bit codes", codes), ("the windows", windows))
                 if ok]
    text = (f"**Verdict.** SpikeConverter claims almost lossless conversion with few steps. "
            f"Read as \"within one point of the ANN with at most {FEW_STEPS} steps per "
            f"layer\", the claim is **{'supported' if supported else 'not supported'}** on "
            f"this MobileNet-v2" + (f" with {' and '.join(supported)}" if supported else "")
            + f". SpikeConverter-style windows (the preset): {windows_text}. Inverse-leaky "
            f"binary firing (signed codes at the linear bottlenecks; evsim's [unverified] "
            f"reading of SpikeConverter's neuron, docs/methods.md): {codes_text}.")
    t_rate = first_within(rate, ann, steps)
    if t_rate is not None:
        text += (f" Rate coding with v(0) = θ/2 gets within one point after {t_rate} steps, "
                 f"with {rate['sops'][t_rate]:.3g} SOPs and {rate['energy_uj'][t_rate]:.3g} µJ "
                 f"per image; the ANN needs {data['ann_energy_uj']:.3g} µJ (45 nm float32).")
    zero = next((row for row in rows if row["label"] == SIGNED_FROM_ZERO), None)
    few = max(t for t in steps if t <= FEW_STEPS)
    if zero is not None:
        text += (f" Starting the signed layers of the windowed preset at v(0) = 0 (their "
                 f"negative side then loses no extra half threshold) does not help: "
                 f"{100 * zero['accuracy'][few]:.2f} % at W = {few} against "
                 f"{100 * rows[2]['accuracy'][few]:.2f} %; the positive side's rounding "
                 "matters more.")
    return text


def write_docs(text: str, path: Path) -> None:
    """Replace the MobileNet-v2 section of ``path`` (to the next level-2 heading) by
    ``text``, or append it."""
    old = path.read_text()
    start = old.find("\n" + HEADING)
    if start < 0:
        path.write_text(old.rstrip("\n") + "\n\n" + text)
        return
    end = old.find("\n## ", start + 1)
    rest = "" if end < 0 else old[end:]
    path.write_text(old[:start + 1] + text + rest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=10000, help="test images (from 0)")
    parser.add_argument("--t-max", type=int, default=256, help="largest T (a power of 2)")
    parser.add_argument("--bundled", action="store_true",
                        help="the 1,000 bundled test images instead of the full test set")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--write-docs", action="store_true",
                        help="replace the MobileNet-v2 section of docs/results.md")
    parser.add_argument("--smoke", action="store_true", help="20 images, T up to 16")
    args = parser.parse_args()
    if args.smoke:
        args.images, args.t_max = 20, 16
    started = time.time()
    calibration, images, labels, described, calibrated = load_images(args.images, args.bundled)
    steps = [1 << k for k in range(args.t_max.bit_length()) if (1 << k) <= args.t_max]
    network = load_model("mobilenet")
    args.out.mkdir(parents=True, exist_ok=True)
    comparison = evsim.compare_methods(network, calibration, images, labels, methods=METHODS,
                                       T=steps, engine="event", threads=args.threads,
                                       energy="float32", cells=args.out / "cells",
                                       progress=True)
    data = comparison.as_dict()
    for row in data["methods"]:  # keys as ints (as_dict keeps them so until JSON)
        for key in ("accuracy", "sops", "energy_uj", "latency"):
            row[key] = {int(t): v for t, v in row.get(key, {}).items()}
    data["methods"].append(signed_layers_from_zero(network, calibration, images, labels,
                                                   steps, args.threads))
    command = ("python examples/mobilenet_conversion.py " + (
        "--smoke" if args.smoke else f"--images {args.images} --t-max {args.t_max}"
        + (" --bundled" if args.bundled else "")) + f" --threads {args.threads}")
    converted = evsim.convert(network, calibration[:1], method="spikeconverter").network
    data.update(images=described, calibration=calibrated, depth=spiking_depth(converted),
                command=command, date=datetime.date.today().isoformat(),
                minutes=(time.time() - started) / 60)
    (args.out / "mobilenet.json").write_text(json.dumps(data, indent=1))
    text = section(data)
    (args.out / "mobilenet.md").write_text(text)
    print(text)
    if args.write_docs:
        write_docs(text, DOCS / "results.md")
        print(f"wrote {DOCS / 'results.md'}")


if __name__ == "__main__":
    main()
