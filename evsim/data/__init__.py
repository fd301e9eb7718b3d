"""Data sets for evsim, read from local files only (nothing is ever downloaded).

* :func:`load_fashion_mnist` -- Fashion-MNIST from its IDX files, found via
  ``path=``, ``$EVSIM_DATA``, or Debian's ``dataset-fashion-mnist`` package
  (:func:`find_fashion_mnist` reports which directory would be used).
* :func:`load_bundled_sample` -- 1000 real Fashion-MNIST test images and 1000
  training images that ship with evsim, for examples and tests without the full set.
* :func:`make_scenes` / :func:`fashion_mnist_scenes` -- Fashion-MNIST *scenes*
  (items pasted on a larger canvas) with per-pixel class masks and boxes, for
  segmentation and detection; :func:`bundled_scenes` loads 300 that ship with
  evsim; :func:`save_scenes` / :func:`load_scenes` write and read them.
* :func:`load_cifar10` -- CIFAR-10 from user-supplied "python version" batches.
* :func:`read_idx` -- the underlying IDX (MNIST format) reader.

All image loaders return float32 images ``(N, C, H, W)`` in [0, 1] and int64
labels ``(N,)``.
"""

from .bundled import bundled_scenes, load_bundled_sample
from .cifar10 import load_cifar10
from .fashion_mnist import CLASS_NAMES, find_fashion_mnist, load_fashion_mnist
from .idx import read_idx
from .scenes import (
    MASK_CLASS_NAMES, Scenes, fashion_mnist_scenes, load_scenes, make_scenes, save_scenes,
)

__all__ = [
    "CLASS_NAMES",
    "MASK_CLASS_NAMES",
    "Scenes",
    "bundled_scenes",
    "fashion_mnist_scenes",
    "load_scenes",
    "make_scenes",
    "save_scenes",
    "find_fashion_mnist",
    "load_bundled_sample",
    "load_cifar10",
    "load_fashion_mnist",
    "read_idx",
]
