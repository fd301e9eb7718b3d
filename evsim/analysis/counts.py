"""What the energy models share: the ANN's operations per image, the analog head's charging
conventions and a readable energy unit."""

from __future__ import annotations

import numpy as np

from .. import kinds
from ..fanout import path_fanout
from ..network import Network

#: How the analog head (layers computed from the image) is charged: computed once and its
#: current re-injected every step, or recomputed every step.
CONVENTIONS = ("reinject", "recompute")


def ann_macs(network: Network) -> dict[str, int]:
    """MACs per image of every Dense/Conv2d layer: one per existing synapse (border-aware)."""
    out = {}
    for node in network:
        if kinds.role_of(node.layer) == kinds.SYNAPSE:
            in_shape = network.shape(node.inputs[0])
            out[node.name] = int(path_fanout(in_shape, [], node.layer, in_shape).sum())
    return out


def ann_adds(network: Network) -> dict[str, int]:
    """Adds per image of every Add layer: one per element per input beyond the first."""
    return {node.name: (len(node.inputs) - 1) * int(np.prod(network.shape(node.name)))
            for node in network if kinds.role_of(node.layer) == kinds.SUM}


def energy_unit(pj: float) -> tuple[str, float]:
    """A readable unit for an energy of ``pj`` picojoules: ``(name, picojoules per unit)``."""
    for name, scale in (("mJ", 1e9), ("µJ", 1e6), ("nJ", 1e3)):
        if pj >= scale:
            return name, scale
    return "pJ", 1.0


__all__ = ["CONVENTIONS", "ann_macs", "ann_adds", "energy_unit"]
