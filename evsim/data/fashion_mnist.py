"""Fashion-MNIST loader that reads the official IDX files from a local directory.

Nothing is downloaded. A ``path`` argument (a directory) is the only place
looked when given; otherwise the files are looked up, in order, in

1. the directory named by the ``EVSIM_DATA`` environment variable, and its
   ``fashion-mnist`` subdirectory,
2. :data:`DEBIAN_DIR`, where ``apt-get install dataset-fashion-mnist`` puts them.

Each file may be plain or gzipped (``name`` or ``name.gz``); the plain one wins when
both exist. For a small real sample that ships with evsim, see
:func:`evsim.data.load_bundled_sample`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .idx import read_idx
from ..errors import EvsimTypeError, EvsimValueError

__all__ = [
    "CLASS_NAMES",
    "DEBIAN_DIR",
    "ENV_VAR",
    "find_fashion_mnist",
    "load_fashion_mnist",
]

#: Label ``i`` of Fashion-MNIST names class ``CLASS_NAMES[i]``.
CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: Where Debian's ``dataset-fashion-mnist`` package installs the gzipped IDX files.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

#: Environment variable naming a data directory searched after ``path``.
ENV_VAR = "EVSIM_DATA"

# split -> (images file, labels file), without the optional ".gz".
_SPLIT_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_IMAGE_SHAPE = (28, 28)


def check_split(split: str, dataset: str) -> None:
    """Raise ``ValueError`` unless ``split`` is ``"train"`` or ``"test"``."""
    if split not in ("train", "test"):
        raise EvsimValueError(f"{dataset}: split must be 'train' or 'test', got {split!r}")


def check_limit(limit: int | None, dataset: str) -> None:
    """Raise unless ``limit`` is ``None`` or a non-negative integer (``bool`` rejected)."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)):
        raise EvsimTypeError(
            f"{dataset}: limit must be a non-negative int or None, got {type(limit).__name__}"
        )
    if limit < 0:
        raise EvsimValueError(f"{dataset}: limit must be >= 0 (or None for all), got {limit}")


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """Map uint8 pixels 0..255 to float32 in [0, 1]; the shape is unchanged."""
    return images.astype(np.float32) / np.float32(255.0)


def _candidate_dirs(path: str | os.PathLike | None) -> list[tuple[Path, str]]:
    """Directories to search, in order, each with a description for error messages."""
    if path is not None:
        # An explicit directory is the only place looked: falling back would hide a typo.
        return [(Path(path).expanduser(), "path= argument")]
    candidates = []
    env = os.environ.get(ENV_VAR)
    if env:
        root = Path(env).expanduser()
        candidates.append((root, f"${ENV_VAR}"))
        candidates.append((root / "fashion-mnist", f"${ENV_VAR}/fashion-mnist"))
    candidates.append((DEBIAN_DIR, "Debian package dataset-fashion-mnist"))
    return candidates


def _locate(directory: Path, name: str) -> Path | None:
    """Return ``directory/name`` or ``directory/name.gz``, whichever exists first."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _split_files(directory: Path, split: str) -> tuple[Path, Path] | None:
    """Return the (images, labels) files of ``split`` in ``directory``, or None."""
    images_name, labels_name = _SPLIT_FILES[split]
    images = _locate(directory, images_name)
    labels = _locate(directory, labels_name)
    if images is None or labels is None:
        return None
    return images, labels


def find_fashion_mnist(
    path: str | os.PathLike | None = None, split: str | None = None
) -> Path | None:
    """Return the first directory in the search order that holds Fashion-MNIST.

    Parameters
    ----------
    path:
        Directory searched first; see the module docstring for the full order.
    split:
        ``"train"`` or ``"test"``: the directory only needs that split's two files.
        ``None`` (default): it needs all four files.

    Returns
    -------
    pathlib.Path or None
        The directory, or ``None`` when no searched directory has the files.
    """
    splits = tuple(_SPLIT_FILES)
    if split is not None:
        check_split(split, "find_fashion_mnist")
        splits = (split,)
    for directory, _ in _candidate_dirs(path):
        if all(_split_files(directory, s) is not None for s in splits):
            return directory
    return None


def _not_found_message(path: str | os.PathLike | None, split: str) -> str:
    images_name, labels_name = _SPLIT_FILES[split]
    searched = [f"  - {d} ({why})" for d, why in _candidate_dirs(path)]
    if not os.environ.get(ENV_VAR):
        searched.append(f"  ({ENV_VAR} is not set)")
    return (
        f"Fashion-MNIST {split} files ({images_name}[.gz], {labels_name}[.gz]) not found. "
        "Searched:\n" + "\n".join(searched) + "\n"
        "To fix: run `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put the "
        f"IDX files in a directory and set {ENV_VAR} to it, or pass path=<that directory>. "
        "For a 1000-image sample without any download, use "
        "evsim.data.load_bundled_sample()."
    )


def load_fashion_mnist(
    split: str = "test",
    path: str | os.PathLike | None = None,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load Fashion-MNIST from local IDX files.

    Parameters
    ----------
    split:
        ``"test"`` (10 000 images, the ``t10k-*`` files) or ``"train"`` (60 000).
    path:
        Directory holding the IDX files; searched before ``$EVSIM_DATA`` and
        :data:`DEBIAN_DIR` (see the module docstring).
    limit:
        Return only the first ``limit`` examples, in file order; ``None`` returns all.

    Returns
    -------
    images:
        float32, shape ``(N, 1, 28, 28)``, pixel intensities scaled to [0, 1].
    labels:
        int64, shape ``(N,)``, class indices 0..9 into :data:`CLASS_NAMES`.

    Raises
    ------
    FileNotFoundError
        If no searched directory holds the split's files; the message lists every
        directory searched and how to install the data.
    ValueError
        If ``split`` or ``limit`` is invalid, or the files are corrupt or do not look
        like Fashion-MNIST (shape, dtype, label range, count mismatch).
    """
    check_split(split, "load_fashion_mnist")
    check_limit(limit, "load_fashion_mnist")
    directory = find_fashion_mnist(path, split=split)
    if directory is None:
        raise FileNotFoundError(_not_found_message(path, split))
    images_file, labels_file = _split_files(directory, split)

    images = read_idx(images_file)
    labels = read_idx(labels_file)
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != _IMAGE_SHAPE:
        raise EvsimValueError(
            f"{images_file}: expected uint8 images of shape (N, 28, 28), "
            f"got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise EvsimValueError(
            f"{labels_file}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}"
        )
    if len(images) != len(labels):
        raise EvsimValueError(
            f"{images_file} has {len(images)} images but {labels_file} has {len(labels)} "
            "labels; the two files come from different downloads"
        )
    if labels.size and labels.max() >= len(CLASS_NAMES):
        raise EvsimValueError(
            f"{labels_file}: label {labels.max()} out of range 0..{len(CLASS_NAMES) - 1}"
        )

    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return to_unit_float(images)[:, np.newaxis], labels.astype(np.int64)
