"""Data sets for evsim, read from local files only (nothing is ever downloaded).

* :func:`load_fashion_mnist` -- Fashion-MNIST from its IDX files, found via
  ``path=``, ``$EVSIM_DATA``, or Debian's ``dataset-fashion-mnist`` package
  (:func:`find_fashion_mnist` reports which directory would be used).
* :func:`load_bundled_sample` -- 1000 real Fashion-MNIST test images and 1000
  training images that ship with evsim, for examples and tests without the full set.
* :func:`load_cifar10` -- CIFAR-10 from user-supplied "python version" batches.
* :func:`read_idx` -- the underlying IDX (MNIST format) reader.

All image loaders return float32 images ``(N, C, H, W)`` in [0, 1] and int64
labels ``(N,)``.
"""

from .bundled import load_bundled_sample
from .cifar10 import load_cifar10
from .fashion_mnist import CLASS_NAMES, find_fashion_mnist, load_fashion_mnist
from .idx import read_idx

__all__ = [
    "CLASS_NAMES",
    "find_fashion_mnist",
    "load_bundled_sample",
    "load_cifar10",
    "load_fashion_mnist",
    "read_idx",
]
