"""Content hashes: SHA-256 digests that name a network or an array by its values.

A network's hash covers everything :func:`evsim.save` stores of it, so it survives a save
and load and changes with any value; results record it (``SimResult.network_hash``) and
:mod:`evsim.distributed` keys its cluster copies by it.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from ..network import Network
from ..spiking import SpikingNetwork
from .payload import payload


def content_hash(obj: Network | SpikingNetwork) -> str:
    """SHA-256 (hex) of everything :func:`save` stores of ``obj``: the same for a network
    and its saved-and-loaded copy, different as soon as one value differs."""
    header, arrays = payload(obj)
    digest = hashlib.sha256(json.dumps(header, sort_keys=True, default=repr).encode("utf-8"))
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"\0{key}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def array_digest(array: np.ndarray) -> str:
    """SHA-256 (hex) of an array's dtype, shape and values (e.g. to recognise a data set)."""
    x = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{x.dtype.str}\0{x.shape}\0".encode())
    digest.update(x.tobytes())
    return digest.hexdigest()


__all__ = ["content_hash", "array_digest"]
