"""Reading and writing networks.

``load(path)`` picks the reader from the file: evsim's own ``.npz`` format
now; importers for other formats (one module per frontend) plug in here.
"""

from __future__ import annotations

import os

from .native import load as load_native
from .native import save


def load(path: str | os.PathLike):
    """Load a network from ``path`` (evsim ``.npz``)."""
    suffix = os.fspath(path).lower().rsplit(".", 1)[-1]
    if suffix == "npz":
        return load_native(path)
    raise ValueError(f"{path}: unknown file type '.{suffix}'; evsim reads .npz files it wrote")


__all__ = ["load", "save"]
