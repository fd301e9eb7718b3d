"""Reading and writing networks and simulation results.

``load(path)`` picks the reader from the file suffix: evsim's own ``.npz``
format (networks, spiking networks and simulation results), or ``.onnx``
(:func:`load_onnx`; onnx is a core dependency). ``save`` writes atomically
(:mod:`~evsim.io.atomic`); every read error names the file.
One module per frontend: :mod:`~evsim.io.onnx`, :mod:`~evsim.io.torch`
(:func:`from_torch`, a traced ``nn.Module``) and :mod:`~evsim.io.nir`
(:func:`to_nir` / :func:`from_nir`: spiking networks in the neuromorphic
exchange format). Each imports its framework only when called, and each raises a
subclass of :class:`UnsupportedModelError` naming what it cannot represent.
"""

from __future__ import annotations

import os

from ..errors import EvsimFileError
from .errors import UnsupportedModelError
from .native import load as load_native
from .hashing import content_hash
from .native import save
from .nir import (NIRExportError, NIRExportWarning, NIRImportError, from_nir, load_nir,
                  save_nir, to_nir)
from .onnx import UnsupportedOperatorError, load_onnx
from .torch import UnsupportedModuleError, from_torch


def load(path: str | os.PathLike):
    """Load a network or result from ``path`` (evsim ``.npz``, or an ``.onnx`` model).

    Raises :class:`~evsim.errors.EvsimFileError` naming the file when it is
    missing, damaged or of an unknown type, and an
    :class:`UnsupportedModelError` subclass for a model evsim cannot represent.
    """
    suffix = os.fspath(path).lower().rsplit(".", 1)[-1]
    if suffix == "npz":
        return load_native(path)
    if suffix == "onnx":
        return load_onnx(path)
    raise EvsimFileError(path, f"unknown file type '.{suffix}'; evsim reads .npz files it "
                         "wrote and .onnx models" + _FOREIGN.get(suffix, ""))


#: What to call instead for files of another framework's own format.
_TORCH_ADVICE = ("; a PyTorch file is read by PyTorch: build the module, load its weights "
                 "(torch.load) and pass the module to evsim.io.from_torch(module, "
                 "input_shape), or export it to ONNX (torch.onnx.export)")
_FOREIGN = {"pt": _TORCH_ADVICE, "pth": _TORCH_ADVICE, "ckpt": _TORCH_ADVICE,
            "nir": "; a NIR graph (.nir) is read by evsim.io.load_nir"}


__all__ = ["load", "save", "content_hash", "load_onnx", "UnsupportedModelError",
           "UnsupportedOperatorError", "from_torch",
           "UnsupportedModuleError", "to_nir", "from_nir", "save_nir", "load_nir",
           "NIRExportError", "NIRImportError", "NIRExportWarning"]
