"""NIR export: hand a converted network to other neuromorphic tools, and read it back.

NIR (the neuromorphic intermediate representation) describes spiking
networks as a graph of standard nodes. evsim writes IF neurons with r = 1
and one threshold per neuron; NIR spikes have amplitude 1, so each layer's
threshold θ is folded into the next layer's weights. What NIR's IF cannot
say — reset by subtraction, the initial potential, dt — goes into metadata,
and the export warns about it: another reader may ignore it.

This script converts the bundled model (reset to zero and v(0) = 0, so a
reader that ignores the metadata still computes the same network), exports
it to ``fashion_cnn.nir``, reads it back, and checks that both spike alike.
(``tests/io/test_nir.py`` also runs such a file in Norse, another NIR reader,
and gets the same spike counts.)

    python examples/06_nir_export.py [--smoke] [--out DIR]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

import evsim
from evsim.data import load_bundled_sample
from evsim.io import load_nir, save_nir
from evsim.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for a quick check")
    parser.add_argument("--out", type=Path, default=Path("evsim-examples/06_nir_export"),
                        help="folder for the files this script writes")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    n_images, T = (8, 8) if args.smoke else (200, 32)

    calibration, _ = load_bundled_sample("train")
    images, labels = load_bundled_sample("test")
    images, labels = images[:n_images], labels[:n_images]
    snn = evsim.convert(load_model(), calibration, method="percentile", reset="zero")

    path = args.out / "fashion_cnn.nir"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        save_nir(snn, path)
    for warning in caught:
        print(f"export warning: {warning.message}")
    back = load_nir(path)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB) and read it back: "
          f"{len(back.neurons)} spiking layers")

    ours = evsim.simulate(snn, images, T=T, engine="event", per_image_counts=True)
    again = evsim.simulate(back, images, T=T, engine="event", per_image_counts=True)
    for name in snn.neurons:
        differing = int(np.abs(ours.spike_counts[name] - again.spike_counts[name]).sum())
        print(f"  {name}: {int(ours.spike_counts[name].sum())} spikes, "
              f"{differing} differ after the round trip")
    print(f"accuracy at T = {T}: {100 * ours.accuracy(labels)[-1]:.1f} % before, "
          f"{100 * again.accuracy(labels)[-1]:.1f} % after the round trip")


if __name__ == "__main__":
    main()
