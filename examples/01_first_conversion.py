"""Your first conversion: the bundled Fashion-MNIST CNN becomes a spiking network.

1. load the trained ANN (an :class:`evsim.Network`);
2. convert it: each ReLU becomes a layer of integrate-and-fire neurons whose
   threshold θ is the 99.9th percentile of that layer's activations on
   training images ("percentile" normalisation);
3. simulate it on test images for T steps with the event-driven engine;
   accuracy at T = 1, 2, 4, ... comes from one run (the output is summed
   over steps, so every checkpoint is a shorter simulation);
4. save the spiking network, to reload with ``evsim.load`` or simulate with
   ``evsim run``.

    python examples/01_first_conversion.py [--smoke] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import evsim
from evsim.data import load_bundled_sample
from evsim.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for a quick check")
    parser.add_argument("--out", type=Path, default=Path("evsim-examples/01_first_conversion"),
                        help="folder for the files this script writes")
    args = parser.parse_args()
    n_images, T = (20, 8) if args.smoke else (1000, 128)
    args.out.mkdir(parents=True, exist_ok=True)

    network = load_model("fashion_cnn")
    calibration, _ = load_bundled_sample("train")      # training images choose the thresholds
    images, labels = load_bundled_sample("test")
    images, labels = images[:n_images], labels[:n_images]
    print(network.summary(), "\n")

    snn = evsim.convert(network, calibration, method="percentile")
    print(snn.summary(), "\n")

    ann_accuracy = float((evsim.forward(network, images).argmax(axis=1) == labels).mean())
    result = evsim.simulate(snn, images, T=T, engine="event")
    print(result.accuracy_table(labels, ann_accuracy=ann_accuracy))
    print("\nspikes per neuron per step:", {k: round(v, 4)
                                            for k, v in result.firing_rates().items()})

    path = args.out / "fashion_cnn_snn.npz"
    evsim.save(snn, path)
    assert evsim.load(path).equals(snn)
    print(f"\nsaved the spiking network to {path}; simulate it again with\n"
          f"    evsim run {path} bundled --T {T}")


if __name__ == "__main__":
    main()
