"""Regenerate evsim/data/scenes_sample.npz: 300 Fashion-MNIST test scenes, 64 x 64.

Needs the full test set on disk, found as :func:`evsim.data.load_fashion_mnist`
finds it (``--path``, ``$EVSIM_DATA``, or ``apt-get install dataset-fashion-mnist``).
From the repository root::

    PYTHONPATH=. python examples/make_scenes_sample.py

The scenes follow the rules in :mod:`evsim.data.scenes` (seed 0, 1 to 4 items).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from evsim.data import fashion_mnist_scenes, save_scenes

N_SCENES = 300
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "evsim" / "data" / "scenes_sample.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=None, help="directory with the IDX files")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz file")
    args = parser.parse_args()
    scenes = fashion_mnist_scenes("test", N_SCENES, size=64, items=(1, 4), seed=0,
                                  path=args.path)
    save_scenes(args.out, scenes)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.3f} MB, "
          f"{sum(len(b) for b in scenes.boxes)} items)")


if __name__ == "__main__":
    main()
