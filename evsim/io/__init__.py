"""Reading and writing networks.

``load(path)`` picks the reader from the file suffix: evsim's own ``.npz``
format, or ``.onnx`` (:func:`load_onnx`; onnx is a core dependency).
One module per frontend: :mod:`~evsim.io.onnx`, :mod:`~evsim.io.torch`
(:func:`from_torch`, a traced ``nn.Module``) and :mod:`~evsim.io.nir`
(:func:`to_nir` / :func:`from_nir`: spiking networks in the neuromorphic
exchange format). Each imports its framework only when called, and each raises a
subclass of :class:`UnsupportedModelError` naming what it cannot represent.
"""

from __future__ import annotations

import os

from .errors import UnsupportedModelError
from .native import load as load_native
from .native import save
from .nir import (NIRExportError, NIRExportWarning, NIRImportError, from_nir, load_nir,
                  save_nir, to_nir)
from .onnx import UnsupportedOperatorError, load_onnx
from .torch import UnsupportedModuleError, from_torch


def load(path: str | os.PathLike):
    """Load a network from ``path`` (evsim ``.npz``, or an ``.onnx`` model)."""
    suffix = os.fspath(path).lower().rsplit(".", 1)[-1]
    if suffix == "npz":
        return load_native(path)
    if suffix == "onnx":
        return load_onnx(path)
    raise ValueError(f"{path}: unknown file type '.{suffix}'; evsim reads .npz files it wrote "
                     "and .onnx models")


__all__ = ["load", "save", "load_onnx", "UnsupportedModelError", "UnsupportedOperatorError",
           "from_torch",
           "UnsupportedModuleError", "to_nir", "from_nir", "save_nir", "load_nir",
           "NIRExportError", "NIRImportError", "NIRExportWarning"]
