"""Two engines, one answer: the event-driven engine against the dense reference.

The dense engine steps every neuron every step with NumPy; the event engine
only touches the synapses of neurons that fired, and counts each accumulate
it performs (a synaptic operation, SOP). Both return a SimResult with the
same schema. This script shows that:

* they agree (spike counts, SOPs per layer, predictions); on real float
  weights a handful of spikes may differ, because the engines sum currents in
  a different order and a potential can land exactly on θ;
* SOPs are exact: the readout's SOPs equal the last spiking layer's spikes
  times its 10 outputs, counted from the recorded spike trains;
* SOPs respect borders: a 3×3 'same' convolution reaches fewer than 9 × C_out
  targets from a neuron on the edge of the map.

    python examples/02_event_vs_dense.py [--smoke] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import evsim
from evsim.data import load_bundled_sample
from evsim.models import load_model
from evsim.signals import plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for a quick check")
    parser.add_argument("--out", type=Path, default=Path("evsim-examples/02_event_vs_dense"),
                        help="folder for the files this script writes")
    args = parser.parse_args()
    n_images, T = (8, 8) if args.smoke else (100, 64)
    args.out.mkdir(parents=True, exist_ok=True)

    snn = evsim.convert(load_model(), load_bundled_sample("train")[0], method="percentile")
    images, labels = load_bundled_sample("test")
    images, labels = images[:n_images], labels[:n_images]

    timings = {}
    results = {}
    for engine in ("event", "dense"):
        start = time.perf_counter()
        record = ["relu3"] if engine == "dense" else None
        results[engine] = evsim.simulate(snn, images, T=T, engine=engine, record=record)
        timings[engine] = time.perf_counter() - start
    event, dense = results["event"], results["dense"]

    lines = ["| layer | SOPs (event engine) | SOPs (dense engine) | difference |",
             "|---|---:|---:|---:|"]
    for layer in event.sops:
        a, b = int(event.sops[layer].sum()), int(dense.sops[layer].sum())
        lines.append(f"| {layer} | {a} | {b} | {a - b} |")
    table = "\n".join(lines)
    print(f"{n_images} images, T = {T}\n\n{table}\n")
    difference = evsim.difference(event, dense)
    print(f"differing spikes: {difference['spikes']} of "
          f"{sum(int(c.sum()) for c in event.spike_counts.values())}; differing predictions: "
          f"{difference['predictions']}")
    print(f"accuracy at T = {T}: event {100 * event.accuracy(labels)[-1]:.2f} %, "
          f"dense {100 * dense.accuracy(labels)[-1]:.2f} %")
    print(f"time: event {timings['event']:.2f} s, dense {timings['dense']:.2f} s "
          "(the event engine's first call includes compilation unless cached)\n")

    # The readout fc (Dense, 10 outputs) receives every spike of relu3 at 10 synapses.
    train = dense.spike_trains["relu3"]
    by_hand = 10 * int(train.counts.sum())
    print(f"fc SOPs counted by the dense engine: {int(dense.sops['fc'].sum())}; "
          f"relu3 spikes from the recorded trains × 10: {by_hand}")
    if by_hand != int(dense.sops["fc"].sum()):
        raise SystemExit("SOP count disagrees with the spike trains")

    # Border-aware fan-out: relu1 reaches conv2 through 2×2 average pooling (folded in).
    path = next(p for p in plan(snn.network).paths if p.layer == "conv2")
    fan = path.fanout[0]
    print(f"conv2 targets per relu1 spike: corner {fan[0, 0]}, centre {fan[14, 14]} "
          f"(nominal 3×3×32 = {9 * 32}); mean {fan.mean():.1f}")

    (args.out / "sops.md").write_text(table + "\n", encoding="utf-8")
    np.savez(args.out / "sops_per_step.npz", **{f"event_{k}": v for k, v in event.sops.items()},
             **{f"dense_{k}": v for k, v in dense.sops.items()})
    print(f"\nwrote {args.out / 'sops.md'} and {args.out / 'sops_per_step.npz'}")


if __name__ == "__main__":
    main()
