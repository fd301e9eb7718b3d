"""A small sample of real Fashion-MNIST images shipped inside evsim.

``fashion_mnist_sample.npz`` (made by ``examples/make_bundled_sample.py``) holds

* ``test_images``/``test_labels``: the first 1000 images of the official test set
  (indices 0..999 of ``t10k-*``), for evaluation;
* ``train_images``/``train_labels``: the last 1000 images of the official training
  set (indices 59000..59999 of ``train-*``), for calibration such as choosing
  firing thresholds; using the tail keeps it disjoint from any "first N" training
  subset.

Images are stored as uint8 (1000, 28, 28), labels as uint8 (1000,). The entries
``test_start`` and ``train_start`` record the first source index of each split.
``scenes_sample.npz`` holds 300 Fashion-MNIST scenes for segmentation and
detection (:func:`bundled_scenes`). Fashion-MNIST is released by Zalando
Research under the MIT license.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from .fashion_mnist import check_split, to_unit_float
from .scenes import Scenes, load_scenes

__all__ = ["SAMPLE_FILE", "SCENES_FILE", "bundled_scenes", "load_bundled_sample"]

#: File name of the sample, inside the ``evsim.data`` package.
SAMPLE_FILE = "fashion_mnist_sample.npz"


def load_bundled_sample(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """Load the 1000-image Fashion-MNIST sample that ships with evsim.

    Needs no download and no system package; see the module docstring for which
    images are included.

    Parameters
    ----------
    split:
        ``"test"`` (official test images 0..999) or ``"train"`` (official training
        images 59000..59999, intended for calibration).

    Returns
    -------
    images:
        float32, shape ``(1000, 1, 28, 28)``, scaled to [0, 1].
    labels:
        int64, shape ``(1000,)``, class indices 0..9 into
        :data:`evsim.data.CLASS_NAMES`.

    Raises
    ------
    ValueError
        If ``split`` is not ``"train"`` or ``"test"``.
    FileNotFoundError
        If the sample file is missing from the installation.
    """
    check_split(split, "load_bundled_sample")
    resource = resources.files(__package__).joinpath(SAMPLE_FILE)
    try:
        with resources.as_file(resource) as file, np.load(file, allow_pickle=False) as sample:
            images = sample[f"{split}_images"]
            labels = sample[f"{split}_labels"]
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"bundled sample {SAMPLE_FILE} is missing from the evsim.data package; "
            "reinstall evsim, or regenerate it with examples/make_bundled_sample.py"
        ) from exc
    return to_unit_float(images)[:, np.newaxis], labels.astype(np.int64)


#: File name of the bundled scenes, inside the ``evsim.data`` package.
SCENES_FILE = "scenes_sample.npz"


def bundled_scenes() -> Scenes:
    """Load the 300 Fashion-MNIST test scenes (64 × 64) that ship with evsim.

    Made by ``examples/make_scenes_sample.py``: ``fashion_mnist_scenes("test", 300,
    size=64, items=(1, 4), seed=0)`` (rules in :mod:`evsim.data.scenes`). Needs no
    download and no system package.
    """
    resource = resources.files(__package__).joinpath(SCENES_FILE)
    try:
        with resources.as_file(resource) as file:
            return load_scenes(file)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"bundled scenes {SCENES_FILE} are missing from the evsim.data package; "
            "reinstall evsim, or regenerate them with examples/make_scenes_sample.py"
        ) from exc
