"""Looking inside a spiking network: spike trains, membranes, rates and errors.

The dense engine can record the spike trains and membrane potentials of
chosen neurons (memory grows with T only for those). With per-image spike
counts, each neuron's rate θN/T can be set against the ANN activation it
approximates. The script prints spike statistics per layer and writes:

* raster.png -- spikes of 100 neurons of relu2 on one image;
* membrane.png -- the membrane of relu1's most active recorded neuron, with
  its threshold and spikes;
* rate_vs_activation.png, conversion_error.png, output_error.png -- how
  well rates follow activations, layer by layer and at the output;
* spike_counts.png -- how many spikes neurons emit (many emit none).

    python examples/05_look_inside.py [--smoke] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import evsim
from evsim import plot
from evsim.analysis import (conversion_error, first_spike_times, isi_cv, layer_firing_rates,
                            output_error, saturated_fraction, silent_fraction, sparsity_per_step)
from evsim.data import load_bundled_sample
from evsim.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for a quick check")
    parser.add_argument("--out", type=Path, default=Path("evsim-examples/05_look_inside"),
                        help="folder for the files this script writes")
    args = parser.parse_args()
    n_images, T = (4, 16) if args.smoke else (50, 64)
    args.out.mkdir(parents=True, exist_ok=True)

    snn = evsim.convert(load_model(), load_bundled_sample("train")[0], method="percentile")
    images, _ = load_bundled_sample("test")
    images = images[:n_images]
    record = {name: np.linspace(0, np.prod(snn.network.shape(name)) - 1, 100).astype(int)
              for name in snn.neurons}               # 100 neurons spread over each layer
    result = evsim.simulate(snn, images, T=T, engine="dense", record=record,
                            per_image_counts=True)

    rates = layer_firing_rates(result)
    silent, saturated = silent_fraction(result, per_image=True), saturated_fraction(result, snn)
    errors = conversion_error(snn, result, images)
    print("| layer | spikes/neuron/step | silent | saturated | ISI CV (median) | "
          "first spike (median) | quiet steps | RMS error | correlation |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in snn.neurons:
        cv, first = isi_cv(result, name), first_spike_times(result, name)
        quiet = int((sparsity_per_step(result, name) == 1).sum())
        print(f"| {name} | {rates[name]:.4f} | {silent[name]:.3f} | {saturated[name]:.4f} | "
              f"{np.nanmedian(cv) if np.isfinite(cv).any() else float('nan'):.3f} | "
              f"{np.nanmedian(first) if np.isfinite(first).any() else float('nan'):.0f} | "
              f"{quiet} | {errors[name].rms:.4f} | {errors[name].correlation:.4f} |")

    busiest = record["relu1"][int(np.argmax(result.spike_counts["relu1"][0].reshape(-1)[
        record["relu1"]]))]
    figures = {
        "raster.png": plot.spike_raster(result, "relu2", image=0),
        "membrane.png": plot.membrane_trace(result, snn, "relu1", int(busiest), image=0),
        "rate_vs_activation.png": plot.rate_vs_activation(snn, result, images),
        "conversion_error.png": plot.conversion_error(errors),
        "output_error.png": plot.output_error(output_error(snn, result, images)),
        "spike_counts.png": plot.spike_count_histogram(result),
    }
    for name, figure in figures.items():
        figure.savefig(args.out / name, dpi=110)
    print(f"\nwrote {', '.join(figures)} to {args.out}")


if __name__ == "__main__":
    main()
