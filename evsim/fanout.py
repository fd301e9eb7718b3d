"""Exact, border-aware synapse counts: how many accumulates one input unit causes.

Pooling acts on each channel alike and convolutions connect channels by
groups, so the counts factor into a channel part and a spatial part. The
spatial part is a boolean sparse matrix ``(H_out*W_out, H_in*W_in)`` per
layer; products of them give the exact targets of composite paths (e.g. an
AvgPool folded into the next Conv2d), counting each distinct target once.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from . import layers as L
from .errors import EvsimTypeError, EvsimValueError
from .kinds import RESHAPE, SYNAPSE, rules_of, targets_per_input
from .layers import Shape


def spatial_map(layer: L.Layer, in_shape: Shape) -> sp.csr_matrix:
    """Boolean connectivity ``(H_out*W_out, H_in*W_in)`` of a spatial layer on one channel.

    Defined for the kinds whose rules have a ``spatial`` map (:mod:`evsim.kinds`): Conv2d,
    AvgPool2d, MaxPool2d, GlobalAvgPool and Flatten (identity).
    """
    spatial = rules_of(layer).spatial
    if spatial is None:
        raise EvsimTypeError(f"{type(layer).__name__} has no spatial map")
    return spatial(layer, in_shape)


def path_fanout(source_shape: Shape, chain: list[tuple[L.Layer, Shape]],
                consumer: L.Layer | None, consumer_shape: Shape | None) -> np.ndarray:
    """Accumulates per unit of multiplicity for every source neuron, shape ``source_shape``.

    ``chain`` lists the (layer, input shape) pairs of the pooling/flatten
    layers between the source and the consumer; ``consumer`` is the synapse
    (Dense, Conv2d) at the end (with its input shape), whose rules' ``fanout``
    counts its targets, or None when the path ends in a layer that takes one
    value per target (Add, an activation, MaxPool's accumulators): then the
    count is the number of distinct targets.
    """
    if len(source_shape) == 1:
        if any(rules_of(layer).role != RESHAPE for layer, _ in chain):
            raise EvsimValueError("pooling a 1-D layer is not possible")
        composite = sp.identity(source_shape[0], dtype=bool, format="csr")
    else:
        _, h, w = source_shape
        composite = sp.identity(h * w, dtype=bool, format="csr")
        for layer, in_shape in chain:
            composite = (spatial_map(layer, in_shape) @ composite).astype(bool)
    per_channel = 1
    if consumer is not None:
        rules = rules_of(consumer)
        if rules.role != SYNAPSE:
            raise EvsimTypeError(f"no fan-out rule for {type(consumer).__name__}")
        composite, per_channel = rules.fanout(consumer, composite, consumer_shape)
    spatial = targets_per_input(composite) * per_channel
    if len(source_shape) == 1:
        return spatial
    return np.broadcast_to(spatial.reshape(source_shape[1:]), source_shape).copy()


__all__ = ["spatial_map", "targets_per_input", "path_fanout"]
