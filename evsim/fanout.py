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
from .layers import Shape
from .errors import EvsimTypeError, EvsimValueError


def _axis_pairs(size: int, n_out: int, kernel: int, stride: int, pad: int, dilation: int):
    """(output index, input index) pairs of one axis that a window/kernel connects."""
    out = np.repeat(np.arange(n_out), kernel)
    tap = np.tile(np.arange(kernel), n_out)
    inp = out * stride - pad + tap * dilation
    keep = (inp >= 0) & (inp < size)
    return out[keep], inp[keep]


def spatial_map(layer: L.Layer, in_shape: Shape) -> sp.csr_matrix:
    """Boolean connectivity ``(H_out*W_out, H_in*W_in)`` of a spatial layer on one channel.

    Defined for Conv2d, AvgPool2d, MaxPool2d, GlobalAvgPool and Flatten (identity).
    """
    _, h, w = in_shape
    if isinstance(layer, L.Flatten):
        return sp.identity(h * w, dtype=bool, format="csr")
    if isinstance(layer, L.GlobalAvgPool):
        return sp.csr_matrix(np.ones((1, h * w), dtype=bool))
    if isinstance(layer, L.Conv2d):
        kernel, stride, pad, dil = layer.kernel_size, layer.stride, layer.padding, layer.dilation
    elif isinstance(layer, (L.AvgPool2d, L.MaxPool2d)):
        kernel, stride, pad, dil = layer.kernel_size, layer.stride, layer.padding, (1, 1)
    else:
        raise EvsimTypeError(f"{type(layer).__name__} has no spatial map")
    _, ho, wo = layer.output_shape([in_shape])
    oy, iy = _axis_pairs(h, ho, kernel[0], stride[0], pad[0], dil[0])
    ox, ix = _axis_pairs(w, wo, kernel[1], stride[1], pad[1], dil[1])
    rows = (oy[:, None] * wo + ox[None, :]).ravel()
    cols = (iy[:, None] * w + ix[None, :]).ravel()
    matrix = sp.csr_matrix((np.ones(rows.size, dtype=bool), (rows, cols)), shape=(ho * wo, h * w))
    matrix.sum_duplicates()
    return matrix


def targets_per_input(matrix: sp.spmatrix) -> np.ndarray:
    """Distinct targets of each input column of a boolean connectivity matrix."""
    matrix = sp.csc_matrix(matrix, dtype=bool)
    matrix.eliminate_zeros()
    return np.diff(matrix.indptr).astype(np.int64)


def path_fanout(source_shape: Shape, chain: list[tuple[L.Layer, Shape]],
                consumer: L.Layer | None, consumer_shape: Shape | None) -> np.ndarray:
    """Accumulates per unit of multiplicity for every source neuron, shape ``source_shape``.

    ``chain`` lists the (layer, input shape) pairs of the pooling/flatten
    layers between the source and the consumer; ``consumer`` is the Dense or
    Conv2d at the end (with its input shape), or None when the path ends in
    a layer that takes one value per target (Add, an activation, MaxPool's
    accumulators): then the count is the number of distinct targets.
    """
    if len(source_shape) == 1:
        if chain and any(not isinstance(layer, L.Flatten) for layer, _ in chain):
            raise EvsimValueError("pooling a 1-D layer is not possible")
        per_unit = 1
        if isinstance(consumer, L.Dense):
            per_unit = consumer.out_features
        elif consumer is not None:
            raise EvsimTypeError(f"{type(consumer).__name__} cannot read a 1-D layer")
        return np.full(source_shape, per_unit, dtype=np.int64)

    channels, h, w = source_shape
    composite = sp.identity(h * w, dtype=bool, format="csr")
    for layer, in_shape in chain:
        composite = (spatial_map(layer, in_shape) @ composite).astype(bool)
    if isinstance(consumer, L.Conv2d):
        composite = (spatial_map(consumer, consumer_shape) @ composite).astype(bool)
        per_channel = consumer.out_channels // consumer.groups
    elif isinstance(consumer, L.Dense):
        # Every input of a dense layer reaches all its outputs.
        composite = sp.csr_matrix(composite.sum(axis=0) > 0)
        per_channel = consumer.out_features
    elif consumer is None:
        per_channel = 1
    else:
        raise EvsimTypeError(f"no fan-out rule for {type(consumer).__name__}")
    spatial = targets_per_input(composite).reshape(h, w) * per_channel
    return np.broadcast_to(spatial, (channels, h, w)).copy()


__all__ = ["spatial_map", "targets_per_input", "path_fanout"]
