"""Energy: the ANN's multiply-accumulates against the SNN's synaptic operations.

An ANN layer costs one MAC per synapse per image. An SNN layer costs one
accumulate (AC, cheaper than a MAC) per synapse *per spike*, so its cost
grows with T and with the firing rate — and the SOP count already contains
the firing rate: multiply it by E_AC, never by a rate again.

This script converts the bundled model, simulates it once, and prints:

* the per-layer energy report (float32 table, analog head re-injected),
  with its conventions stated;
* the totals under every preset table and both analog-head conventions;
* accuracy against energy at every checkpoint — where the SNN is cheaper
  than the ANN, and what accuracy it has there;
* a user-defined table that also charges each neuron update.

It writes energy.md and energy.png.

    python examples/04_energy.py [--smoke] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import evsim
from evsim import plot
from evsim.analysis import (CONVENTIONS, ENERGY_TABLES, EnergyTable, checkpoint_summary,
                            energy_report)
from evsim.data import load_bundled_sample
from evsim.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for a quick check")
    parser.add_argument("--out", type=Path, default=Path("evsim-examples/04_energy"),
                        help="folder for the files this script writes")
    args = parser.parse_args()
    n_images, T = (16, 8) if args.smoke else (500, 64)
    args.out.mkdir(parents=True, exist_ok=True)

    snn = evsim.convert(load_model(), load_bundled_sample("train")[0], method="percentile",
                        initial_potential=0.5)
    images, labels = load_bundled_sample("test")
    images, labels = images[:n_images], labels[:n_images]
    result = evsim.simulate(snn, images, T=T, engine="event")

    report = energy_report(snn, result, "float32", "reinject")
    print(report.to_markdown(), "\n")

    print("| table | analog head | ANN (µJ) | SNN (µJ) | SNN / ANN |\n|---|---|---:|---:|---:|")
    for name in ENERGY_TABLES:
        for convention in CONVENTIONS:
            r = energy_report(snn, result, name, convention)
            print(f"| {name} | {convention} | {r.ann_pj / 1e6:.4g} | {r.snn_pj / 1e6:.4g} | "
                  f"{r.ratio:.3g} |")

    summary = checkpoint_summary(snn, result, labels, images, "float32", "reinject")
    print(f"\naccuracy and energy if the simulation stops at T:\n\n{summary.to_markdown()}")
    cheaper = [int(t) for t, e in zip(summary.steps, summary.snn_pj) if e < summary.ann_pj]
    print("\nlargest checkpoint at which the SNN costs less than the ANN: T = "
          + (str(max(cheaper)) if cheaper else "none"))

    chip = EnergyTable("my chip (example numbers)", e_mac_pj=3.0, e_ac_pj=0.5, e_update_pj=0.1)
    mine = energy_report(snn, result, chip)
    print(f"\nwith {chip.describe()}: SNN {mine.snn_pj / 1e6:.4g} µJ, of which neuron updates "
          f"{sum(r.snn_update_pj for r in mine.rows) / 1e6:.4g} µJ")

    (args.out / "energy.md").write_text(report.to_markdown() + "\n\n" + summary.to_markdown()
                                        + "\n", encoding="utf-8")
    plot.energy_breakdown(report).savefig(args.out / "energy.png", dpi=110)
    print(f"\nwrote {args.out / 'energy.md'} and {args.out / 'energy.png'}")


if __name__ == "__main__":
    main()
