"""Regenerate evsim/data/fashion_mnist_sample.npz from the official Fashion-MNIST files.

Needs the full data set on disk, found the same way as
:func:`evsim.data.load_fashion_mnist` (``--path``, ``$EVSIM_DATA``, or Debian's
``apt-get install dataset-fashion-mnist``). From the repository root::

    PYTHONPATH=. python examples/make_bundled_sample.py

The sample holds the first 1000 test images and the last 1000 training images
(indices 59000..59999) as uint8; see :mod:`evsim.data.bundled`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from evsim.data import load_fashion_mnist

N_SAMPLE = 1000
N_TRAIN = 60_000
TRAIN_START = N_TRAIN - N_SAMPLE
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "evsim" / "data" / "fashion_mnist_sample.npz"


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Invert the loader's /255 scaling: float32 (N, 1, 28, 28) -> uint8 (N, 28, 28)."""
    pixels = np.rint(images[:, 0] * 255.0).astype(np.uint8)
    # The round trip must be exact, or the sample would differ from the official files.
    if not np.array_equal(pixels.astype(np.float32) / np.float32(255.0), images[:, 0]):
        raise RuntimeError("uint8 round trip of Fashion-MNIST pixels is not exact")
    return pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=None, help="directory with the IDX files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz file")
    args = parser.parse_args()

    test_images, test_labels = load_fashion_mnist("test", path=args.path, limit=N_SAMPLE)
    train_images, train_labels = load_fashion_mnist("train", path=args.path)
    if len(train_images) != N_TRAIN:
        raise RuntimeError(f"expected {N_TRAIN} training images, found {len(train_images)}")

    np.savez_compressed(
        args.out,
        test_images=to_uint8(test_images),
        test_labels=test_labels.astype(np.uint8),
        train_images=to_uint8(train_images[TRAIN_START:]),
        train_labels=train_labels[TRAIN_START:].astype(np.uint8),
        test_start=np.int64(0),
        train_start=np.int64(TRAIN_START),
    )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
