"""Deprecated alias of :mod:`evsim.ann_ops` (renamed so as not to be confused with the event
program's operation rows); :func:`apply` is now :func:`evsim.kinds.apply`. Kept for one
release."""

from __future__ import annotations

import warnings

import numpy as np

from . import layers as L
from .ann_ops import *  # noqa: F401,F403
from .ann_ops import __all__ as _ann_ops_all
from .kinds import apply, rules_of

#: Layers :func:`apply` can write into a given ``out`` (now ``rules_of(layer).writes_out``).
WRITES_OUT = tuple(cls for cls in (L.Add, L.Conv2d, L.Dense) if rules_of(cls).writes_out)


def activation(layer: L.Activation, x: np.ndarray) -> np.ndarray:
    """ReLU, Clip or QCFS, element-wise (now ``evsim.kinds.apply(layer, [x])``)."""
    return apply(layer, [x])


warnings.warn("evsim.ops is deprecated: use evsim.ann_ops for the arithmetic and "
              "evsim.kinds.apply to run a layer", DeprecationWarning, stacklevel=2)

__all__ = list(_ann_ops_all) + ["apply", "activation", "WRITES_OUT"]
