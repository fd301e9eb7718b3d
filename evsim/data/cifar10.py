"""CIFAR-10 loader for the "python version" batches already on disk.

evsim never downloads CIFAR-10. Get ``cifar-10-python.tar.gz`` from
https://www.cs.toronto.edu/~kriz/cifar.html, extract it, and pass the
``cifar-10-batches-py`` directory (or the directory containing it) as ``path``.
"""

from __future__ import annotations

import math
import os
import pickle
from pathlib import Path

import numpy as np

from .fashion_mnist import check_limit, check_split, to_unit_float
from ..errors import EvsimValueError

__all__ = ["load_cifar10"]

_SPLIT_BATCHES: dict[str, tuple[str, ...]] = {
    "train": tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test": ("test_batch",),
}
_EXTRACTED_DIR = "cifar-10-batches-py"
_IMAGE_SHAPE = (3, 32, 32)
_N_CLASSES = 10


def _batch_dir(path: Path, split: str) -> Path:
    """Return ``path`` or ``path/cifar-10-batches-py``, whichever holds the split."""
    names = _SPLIT_BATCHES[split]
    candidates = (path, path / _EXTRACTED_DIR)
    for directory in candidates:
        if all((directory / name).is_file() for name in names):
            return directory
    raise FileNotFoundError(
        f"CIFAR-10 {split} batches ({', '.join(names)}) not found in "
        f"{candidates[0]} or {candidates[1]}. Download cifar-10-python.tar.gz from "
        "https://www.cs.toronto.edu/~kriz/cifar.html, extract it, and pass the "
        f"extracted {_EXTRACTED_DIR} directory (or its parent) as path=<directory>."
    )


def _read_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    """Unpickle one batch into uint8 images (n, 3, 32, 32) and int64 labels (n,)."""
    with file.open("rb") as f:
        try:
            batch = pickle.load(f, encoding="bytes")
        except (pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise EvsimValueError(f"{file}: not a readable CIFAR-10 batch pickle ({exc})") from exc
    if not isinstance(batch, dict):
        raise EvsimValueError(f"{file}: expected a pickled dict, got {type(batch).__name__}")
    missing = [key for key in (b"data", b"labels") if key not in batch]
    if missing:
        raise EvsimValueError(
            f"{file}: batch dict lacks key(s) {missing} (has {list(batch)}); "
            "this is not a CIFAR-10 python-version batch (CIFAR-100 uses b'fine_labels')"
        )

    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    n_pixels = math.prod(_IMAGE_SHAPE)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != n_pixels:
        raise EvsimValueError(
            f"{file}: b'data' must be uint8 of shape (N, {n_pixels}), "
            f"got {data.dtype} {data.shape}"
        )
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise EvsimValueError(
            f"{file}: b'labels' must be {len(data)} integers (one per row of b'data'), "
            f"got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= _N_CLASSES):
        raise EvsimValueError(
            f"{file}: labels must lie in 0..{_N_CLASSES - 1}, "
            f"found {labels.min()}..{labels.max()}"
        )
    return data.reshape((-1, *_IMAGE_SHAPE)), labels.astype(np.int64)


def load_cifar10(
    path: str | os.PathLike,
    split: str = "test",
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load CIFAR-10 from the extracted "python version" batch files.

    The batches are Python pickles, and unpickling can run arbitrary code: only load
    files from a trusted source (the official archive, checked against its
    published MD5).

    Parameters
    ----------
    path:
        The ``cifar-10-batches-py`` directory, or the directory that contains it.
    split:
        ``"test"`` (``test_batch``, 10 000 images) or ``"train"``
        (``data_batch_1`` .. ``data_batch_5``, 50 000 images).
    limit:
        Return only the first ``limit`` examples, in batch order; ``None`` returns
        all. Batches past the limit are not read.

    Returns
    -------
    images:
        float32, shape ``(N, 3, 32, 32)`` (channels R, G, B), scaled to [0, 1].
    labels:
        int64, shape ``(N,)``, class indices 0..9.

    Raises
    ------
    FileNotFoundError
        If the split's batch files are in neither ``path`` nor
        ``path/cifar-10-batches-py``.
    ValueError
        If ``split`` or ``limit`` is invalid, or a batch is not a CIFAR-10 batch
        (unreadable pickle, missing ``b"data"``/``b"labels"``, wrong shape or dtype).
    """
    check_split(split, "load_cifar10")
    check_limit(limit, "load_cifar10")
    directory = _batch_dir(Path(path).expanduser(), split)

    images, labels = [], []
    n_read = 0
    for name in _SPLIT_BATCHES[split]:
        if limit is not None and n_read >= limit:
            break
        batch_images, batch_labels = _read_batch(directory / name)
        images.append(batch_images)
        labels.append(batch_labels)
        n_read += len(batch_labels)

    if not images:  # limit == 0
        return np.empty((0, *_IMAGE_SHAPE), np.float32), np.empty(0, np.int64)
    all_images = np.concatenate(images)[:limit]
    all_labels = np.concatenate(labels)[:limit]
    return to_unit_float(all_images), all_labels
