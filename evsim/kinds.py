"""Layer kinds and their rules: what evsim needs to know about each kind of layer record.

A record (:mod:`evsim.layers`) holds one kind's parameters and its shape rule
(``output_shape``). Everything else about the kind is its :class:`KindRules`,
registered here under the record class, and looked up with :func:`rules_of`,
which walks the record's class hierarchy (a subclass without rules of its own
uses its base's):

``role``
    what the layer does in a spiking network (:data:`ROLES`). The signal class
    of its output follows from the role (:mod:`evsim.signals`), and each engine
    runs a role one way; a new kind that plays an existing role needs no change
    there.
``forward``
    its ANN computation on batched inputs (the arithmetic is in
    :mod:`evsim.ann_ops`); :func:`apply` runs it, sharing images among threads
    when ``per_image`` says that the layer computes image by image, and into a
    given array when ``writes_out`` says it can.
``spatial``
    its per-channel connectivity, a boolean ``(H_out*W_out, H_in*W_in)``
    matrix: where one input position's values go (pooling, flatten,
    convolution). :func:`evsim.fanout.path_fanout` composes these into exact
    fan-outs.
``weights``
    for an ``average`` layer, the same map with the weight each input
    carries to each output; the event engine folds it into its readers.
``fanout``
    for a ``synapse``, how its targets compose with the spatial map that
    reaches it: ``(composite map, targets per channel)``, the SOP count rule.
``nonzero_fanout``
    for a ``synapse``, targets per source neuron over its non-zero weights
    only, given the pooling map before it (NeuroBench's synaptic operations,
    :func:`evsim.analysis.neurobench.nonzero_fanout`).

ConvTranspose2d is a synapse with its own ``spatial``, ``fanout`` and
``nonzero_fanout`` (and its runs in the event compiler); depthwise and grouped
convolutions with a channel multiplier are Conv2d's. Sigmoid and Softmax are
``head``s: an ANN may end with one, which conversion drops (the spiking
network's readout is its input, :func:`evsim.passes.drop_output_head`); no
engine runs a head. The kinds planned next fit these roles: nearest and bilinear
upsampling and Pad are averages (fixed per-channel linear maps whose
``weights`` fold into their readers, as AvgPool's do); signed neurons are
neurons. Concat, which lays several inputs side by side, has a role of its own (``concat``):
its readers take each input's values at that input's channel offset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from . import ann_ops
from . import layers as L
from .errors import EvsimTypeError, EvsimValueError
from .layers import Shape
from .threads import on_threads, shares

#: The roles a layer plays in a spiking network.
INPUT = "input"        # the network input: analog values, or rate-coded spikes
SYNAPSE = "synapse"    # weights on one input (Dense, Conv2d; has .weight, .bias): SOPs
SUM = "sum"            # element-wise sum of inputs (Add): one SOP per target per event
NEURON = "neuron"      # an activation, which becomes a layer of spiking neurons
MAX_POOL = "max_pool"  # max pooling: spiking max pooling of spikes (pooling operations)
AVERAGE = "average"    # a fixed per-channel average: weighted spikes, folded into readers
RESHAPE = "reshape"    # flattens in C order, values unchanged (Flatten)
FOLD = "fold"          # must be folded into a synapse before conversion (BatchNorm)
CONCAT = "concat"      # lays its inputs side by side along the channels: routing, no SOPs
HEAD = "head"          # a normalising map of the output (Sigmoid, Softmax): the readout's
                       # decoding, dropped at conversion (evsim.passes.drop_output_head)
ROLES = (INPUT, SYNAPSE, SUM, NEURON, MAX_POOL, AVERAGE, RESHAPE, FOLD, CONCAT, HEAD)

#: ``forward(layer, inputs, threads, out, per_image) -> output`` on batch-first arrays.
Forward = Callable[[L.Layer, list[np.ndarray], int, "np.ndarray | None", bool], np.ndarray]


@dataclass(frozen=True)
class KindRules:
    """The rules of one layer kind (see the module docstring)."""

    role: str
    forward: Forward | None = None
    per_image: bool = False
    writes_out: bool = False
    spatial: Callable[[L.Layer, Shape], sp.csr_matrix] | None = None
    weights: Callable[[L.Layer, Shape], sp.spmatrix] | None = None
    fanout: Callable[[L.Layer, sp.spmatrix, Shape], tuple[sp.spmatrix, int]] | None = None
    nonzero_fanout: (Callable[[L.Layer, Shape, sp.spmatrix | None, Shape], np.ndarray]
                     | None) = None

    def __post_init__(self):
        if self.role not in ROLES:
            raise EvsimValueError(f"role must be one of {ROLES}, got {self.role!r}")
        needs = {SYNAPSE: ("forward", "fanout", "nonzero_fanout"),
                 AVERAGE: ("forward", "spatial", "weights"), MAX_POOL: ("forward", "spatial"),
                 SUM: ("forward",), NEURON: ("forward",),
                 CONCAT: ("forward", "spatial", "weights")}
        missing = [name for name in needs.get(self.role, ()) if getattr(self, name) is None]
        if missing:
            raise EvsimValueError(f"a {self.role} kind needs {', '.join(missing)} rules")


_RULES: dict[type, KindRules] = {}


def register(record: type[L.Layer], rules: KindRules) -> None:
    """Give the layer record class ``record`` its rules (replacing any it had)."""
    if not (isinstance(record, type) and issubclass(record, L.Layer)):
        raise EvsimTypeError(f"rules are registered for a Layer subclass, got {record!r}")
    if not isinstance(rules, KindRules):
        raise EvsimTypeError(f"rules must be a KindRules, got {type(rules).__name__}")
    _RULES[record] = rules


def rules_of(layer: L.Layer | type[L.Layer]) -> KindRules:
    """The rules of ``layer``'s kind (of the nearest registered class in its hierarchy)."""
    cls = layer if isinstance(layer, type) else type(layer)
    for base in cls.__mro__:
        if base in _RULES:
            return _RULES[base]
    raise EvsimTypeError(f"{cls.__name__} is not a layer kind evsim knows; give it rules with "
                         "evsim.kinds.register")


def role_of(layer: L.Layer) -> str:
    """The role (:data:`ROLES`) ``layer`` plays in a spiking network."""
    return rules_of(layer).role


def apply(layer: L.Layer, inputs: list[np.ndarray], threads: int = 1,
          out: np.ndarray | None = None, per_image: bool = False) -> np.ndarray:
    """Apply any non-input layer to its batched inputs, on ``threads``: a convolution shares
    its GEMM groups, a per-image layer its images; a dense layer is one GEMM (BLAS rounds a
    GEMM by its shape, so it is not split). A layer whose rules say ``writes_out`` writes
    into ``out`` if given (C-contiguous, the result's shape and dtype). With ``per_image``,
    convolutions and dense layers run one GEMM per image, so that each image's result is
    the same in any batch (every other layer computes image by image anyway)."""
    rules = rules_of(layer)
    if rules.forward is None:
        raise EvsimTypeError(f"no forward rule for {type(layer).__name__}")
    if out is not None and not rules.writes_out:
        raise EvsimTypeError(f"{type(layer).__name__} cannot write into a given out array")
    if threads > 1 and rules.per_image:
        first = inputs[0]
        parts = on_threads(lambda lo, hi: apply(layer, [v[lo:hi] for v in inputs]),
                           shares(len(first), threads, item_size=first[:1].size))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    return rules.forward(layer, inputs, threads, out, per_image)


def _elementwise(function: Callable[[L.Layer, np.ndarray], np.ndarray]) -> Forward:
    """A forward rule of a one-input layer that computes ``function(layer, x)``."""
    return lambda layer, inputs, threads, out, per_image: function(layer, inputs[0])


# --- spatial maps ------------------------------------------------------------------------

def _axis_pairs(size: int, n_out: int, kernel: int, stride: int, pad: int, dilation: int):
    """(output index, input index) pairs of one axis that a window/kernel connects."""
    out = np.repeat(np.arange(n_out), kernel)
    tap = np.tile(np.arange(kernel), n_out)
    inp = out * stride - pad + tap * dilation
    keep = (inp >= 0) & (inp < size)
    return out[keep], inp[keep]


def _window_map(layer: L.Layer, in_shape: Shape, dilation: tuple[int, int]) -> sp.csr_matrix:
    """Boolean map of a sliding window (``layer``'s kernel, stride and padding) on one channel."""
    _, h, w = in_shape
    _, ho, wo = layer.output_shape([in_shape])
    kernel, stride, pad = layer.kernel_size, layer.stride, layer.padding
    oy, iy = _axis_pairs(h, ho, kernel[0], stride[0], pad[0], dilation[0])
    ox, ix = _axis_pairs(w, wo, kernel[1], stride[1], pad[1], dilation[1])
    rows = (oy[:, None] * wo + ox[None, :]).ravel()
    cols = (iy[:, None] * w + ix[None, :]).ravel()
    matrix = sp.csr_matrix((np.ones(rows.size, dtype=bool), (rows, cols)), shape=(ho * wo, h * w))
    matrix.sum_duplicates()
    return matrix


def _identity_map(layer: L.Layer, in_shape: Shape) -> sp.csr_matrix:
    _, h, w = in_shape
    return sp.identity(h * w, dtype=bool, format="csr")


def _global_map(layer: L.Layer, in_shape: Shape) -> sp.csr_matrix:
    _, h, w = in_shape
    return sp.csr_matrix(np.ones((1, h * w), dtype=bool))


def _avgpool_weights(layer: L.AvgPool2d, in_shape: Shape) -> sp.spmatrix:
    divisor = ann_ops.avgpool_divisor(layer, in_shape[1], in_shape[2]).ravel()
    return sp.diags(1.0 / divisor) @ _window_map(layer, in_shape, (1, 1)).astype(np.float64)


def _global_weights(layer: L.GlobalAvgPool, in_shape: Shape) -> sp.spmatrix:
    return _global_map(layer, in_shape).astype(np.float64) / float(in_shape[1] * in_shape[2])


# --- synapse fan-outs --------------------------------------------------------------------

def _conv_fanout(layer: L.Conv2d, composite: sp.spmatrix, in_shape: Shape):
    if len(in_shape) != 3:
        raise EvsimTypeError("Conv2d cannot read a 1-D layer")
    spatial = _window_map(layer, in_shape, layer.dilation)
    return (spatial @ composite).astype(bool), layer.out_channels // layer.groups


def _dense_fanout(layer: L.Dense, composite: sp.spmatrix, in_shape: Shape):
    # every input of a dense layer reaches all its outputs
    return sp.csr_matrix(composite.sum(axis=0) > 0), layer.out_features


def _dense_forward(layer: L.Dense, inputs, threads: int, out, per_image: bool) -> np.ndarray:
    return ann_ops.dense(layer, inputs[0], out, per_image)  # one GEMM: not split among threads


def _conv_forward(layer: L.Conv2d, inputs, threads: int, out, per_image: bool) -> np.ndarray:
    return ann_ops.conv2d(layer, inputs[0], threads, out, per_image)


def _add_forward(layer: L.Add, inputs, threads: int, out, per_image: bool) -> np.ndarray:
    return ann_ops.add(inputs, threads, out)


def _flatten(layer: L.Flatten, x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


def _unknown_activation(layer: L.Activation, x: np.ndarray) -> np.ndarray:
    raise EvsimTypeError(f"unknown activation {type(layer).__name__}: give it rules with "
                         "evsim.kinds.register")


# --- fan-outs over non-zero weights (NeuroBench's synaptic operations) -------------------

def targets_per_input(matrix: sp.spmatrix) -> np.ndarray:
    """Distinct targets of each input column of a boolean connectivity matrix."""
    matrix = sp.csc_matrix(matrix, dtype=bool)
    matrix.eliminate_zeros()
    return np.diff(matrix.indptr).astype(np.int64)


def _dense_nonzero_fanout(layer: L.Dense, source_shape: Shape, pooled: sp.spmatrix | None,
                          in_shape: Shape) -> np.ndarray:
    nonzero = sp.csr_matrix(layer.weight != 0)
    if len(source_shape) == 1:
        return targets_per_input(nonzero).reshape(source_shape)
    channels, h, w = source_shape
    size = h * w if pooled is None else pooled.shape[0]
    out = np.zeros((channels, h * w), np.int64)
    for c in range(channels):
        block = nonzero[:, c * size:(c + 1) * size]
        out[c] = targets_per_input(block if pooled is None else block @ pooled)
    return out.reshape(source_shape)


def _masked_conv_map(layer: L.Conv2d, in_shape: Shape, taps: np.ndarray) -> sp.csr_matrix:
    """Boolean map (H_out*W_out, H*W) of a convolution using only the kernel taps in ``taps``."""
    _, h, w = in_shape
    _, ho, wo = layer.output_shape([in_shape])
    (sy, sx), (py, px), (dy, dx) = layer.stride, layer.padding, layer.dilation
    oy, ox = np.arange(ho), np.arange(wo)
    rows, cols = [], []
    for ky, kx in zip(*np.nonzero(taps)):
        iy, ix = oy * sy - py + ky * dy, ox * sx - px + kx * dx
        vy, vx = (iy >= 0) & (iy < h), (ix >= 0) & (ix < w)
        rows.append((oy[vy][:, None] * wo + ox[vx][None, :]).ravel())
        cols.append((iy[vy][:, None] * w + ix[vx][None, :]).ravel())
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    matrix = sp.csr_matrix((np.ones(rows.size, bool), (rows, cols)), shape=(ho * wo, h * w))
    matrix.sum_duplicates()
    return matrix


def _masked_targets(cache: dict, taps: np.ndarray, pooled: sp.spmatrix | None,
                    spatial: Callable[[np.ndarray], sp.spmatrix]) -> np.ndarray:
    """Targets per input position of one channel pair whose non-zero kernel taps are the
    boolean ``taps``: ``spatial(taps)`` (through the pooling map before it, if any), kept in
    ``cache`` by tap pattern (channels share a few patterns)."""
    key = taps.tobytes()
    if key not in cache:
        matrix = spatial(taps)
        cache[key] = targets_per_input(matrix if pooled is None else
                                       (matrix @ pooled).astype(bool))
    return cache[key]


def _conv_nonzero_fanout(layer: L.Conv2d, source_shape: Shape, pooled: sp.spmatrix | None,
                         in_shape: Shape) -> np.ndarray:
    channels, h, w = source_shape
    per_group_in = layer.weight.shape[1]
    per_group_out = layer.weight.shape[0] // layer.groups
    cache: dict[bytes, np.ndarray] = {}
    out = np.zeros((channels, h * w), np.int64)
    for c in range(channels):
        group, local = divmod(c, per_group_in)
        for co in range(group * per_group_out, (group + 1) * per_group_out):
            out[c] += _masked_targets(cache, layer.weight[co, local] != 0, pooled,
                                      lambda taps: _masked_conv_map(layer, in_shape, taps))
    return out.reshape(source_shape)


# --- zero padding, upsampling and concatenation: fixed per-channel linear maps -----------

def _pad_weights(layer: L.Pad, in_shape: Shape) -> sp.csr_matrix:
    """Each input position to its place in the padded grid, weight 1."""
    _, h, w = in_shape
    top, _, left, _ = layer.padding
    _, ho, wo = layer.output_shape([in_shape])
    y, x = np.divmod(np.arange(h * w), w)
    rows = (y + top) * wo + x + left
    return sp.csr_matrix((np.ones(h * w), (rows, np.arange(h * w))), shape=(ho * wo, h * w))


def _upsample_weights(layer: L.Upsample, in_shape: Shape) -> sp.csr_matrix:
    """``kron(rows, cols)`` of the per-axis weights (:func:`evsim.ann_ops.upsample_matrix`),
    its exact zeros dropped."""
    _, h, w = in_shape
    rows = ann_ops.upsample_matrix(h, layer.scale[0], layer.mode, layer.align_corners)
    cols = ann_ops.upsample_matrix(w, layer.scale[1], layer.mode, layer.align_corners)
    matrix = sp.csr_matrix(sp.kron(sp.csr_matrix(rows), sp.csr_matrix(cols)))
    matrix.eliminate_zeros()
    return matrix


def _nonzero(weights: Callable[[L.Layer, Shape], sp.spmatrix]):
    """The boolean spatial map of a weighted one: where a weight is non-zero."""
    return lambda layer, shape: sp.csr_matrix(weights(layer, shape) != 0)


def _identity_weights(layer: L.Layer, in_shape: Shape) -> sp.csr_matrix:
    return _identity_map(layer, in_shape).astype(np.float64)


def _concat_forward(layer: L.Concat, inputs, threads: int, out, per_image: bool) -> np.ndarray:
    return ann_ops.concat(inputs, out)


def _register_routing() -> None:
    """Pad and Upsample are averages (their weights fold into their readers, as AvgPool's);
    a Concat routes each input's values to its channels (the same map on every channel, the
    identity: :func:`evsim.signals.trace_sources` gives each input its channel offset)."""
    register(L.Pad, KindRules(AVERAGE, _elementwise(ann_ops.pad), per_image=True,
                              spatial=_nonzero(_pad_weights), weights=_pad_weights))
    register(L.Upsample, KindRules(AVERAGE, _elementwise(ann_ops.upsample), per_image=True,
                                   spatial=_nonzero(_upsample_weights),
                                   weights=_upsample_weights))
    register(L.Concat, KindRules(CONCAT, _concat_forward, writes_out=True, spatial=_identity_map,
                                 weights=_identity_weights))


# --- transposed convolution ---------------------------------------------------------------

def _transpose_axis(size: int, n_out: int, stride: int, offset: int):
    """(output index, input index) pairs of one axis of one kernel tap of a transposed
    convolution: input ``i`` reaches output ``i·stride + offset`` if it lies inside."""
    inp = np.arange(size)
    out = inp * stride + offset
    keep = (out >= 0) & (out < n_out)
    return out[keep], inp[keep]


def _transpose_map(layer: L.ConvTranspose2d, in_shape: Shape,
                   taps: np.ndarray | None = None) -> sp.csr_matrix:
    """Boolean map (H_out*W_out, H*W) of a transposed convolution on one channel, using only
    the kernel taps where the boolean (KH, KW) ``taps`` is set (all if None)."""
    _, h, w = in_shape
    _, ho, wo = layer.output_shape([in_shape])
    (sy, sx), (py, px), (dy, dx) = layer.stride, layer.padding, layer.dilation
    taps = np.ones(layer.kernel_size, bool) if taps is None else taps
    rows, cols = [], []
    for ky, kx in zip(*np.nonzero(taps)):
        oy, iy = _transpose_axis(h, ho, sy, ky * dy - py)
        ox, ix = _transpose_axis(w, wo, sx, kx * dx - px)
        rows.append((oy[:, None] * wo + ox[None, :]).ravel())
        cols.append((iy[:, None] * w + ix[None, :]).ravel())
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    matrix = sp.csr_matrix((np.ones(rows.size, bool), (rows, cols)), shape=(ho * wo, h * w))
    matrix.sum_duplicates()
    return matrix


def _conv_transpose_fanout(layer: L.ConvTranspose2d, composite: sp.spmatrix, in_shape: Shape):
    if len(in_shape) != 3:
        raise EvsimTypeError("ConvTranspose2d cannot read a 1-D layer")
    return (_transpose_map(layer, in_shape) @ composite).astype(bool), layer.weight.shape[1]


def _conv_transpose_forward(layer: L.ConvTranspose2d, inputs, threads: int, out,
                            per_image: bool) -> np.ndarray:
    return ann_ops.conv_transpose2d(layer, inputs[0], threads, out, per_image)


def _conv_transpose_nonzero_fanout(layer: L.ConvTranspose2d, source_shape: Shape,
                                   pooled: sp.spmatrix | None, in_shape: Shape) -> np.ndarray:
    channels, h, w = source_shape
    cache: dict[bytes, np.ndarray] = {}
    out = np.zeros((channels, h * w), np.int64)
    for c in range(channels):  # weight[c] (C_out/g, KH, KW): channel c's outputs in its group
        for taps in layer.weight[c] != 0:
            out[c] += _masked_targets(cache, taps, pooled,
                                      lambda taps: _transpose_map(layer, in_shape, taps))
    return out.reshape(source_shape)


def _register_builtin() -> None:
    register(L.Input, KindRules(INPUT))
    register(L.Dense, KindRules(SYNAPSE, _dense_forward, writes_out=True, fanout=_dense_fanout,
                                nonzero_fanout=_dense_nonzero_fanout))
    register(L.Conv2d, KindRules(
        SYNAPSE, _conv_forward, writes_out=True,
        spatial=lambda layer, shape: _window_map(layer, shape, layer.dilation),
        fanout=_conv_fanout, nonzero_fanout=_conv_nonzero_fanout))
    register(L.ConvTranspose2d, KindRules(
        SYNAPSE, _conv_transpose_forward, writes_out=True,
        spatial=lambda layer, shape: _transpose_map(layer, shape),
        fanout=_conv_transpose_fanout, nonzero_fanout=_conv_transpose_nonzero_fanout))
    register(L.Add, KindRules(SUM, _add_forward, writes_out=True))
    register(L.Sigmoid, KindRules(HEAD, _elementwise(ann_ops.sigmoid), per_image=True))
    register(L.Softmax, KindRules(HEAD, _elementwise(ann_ops.softmax), per_image=True))
    register(L.AvgPool2d, KindRules(
        AVERAGE, _elementwise(ann_ops.avgpool2d), per_image=True,
        spatial=lambda layer, shape: _window_map(layer, shape, (1, 1)), weights=_avgpool_weights))
    register(L.GlobalAvgPool, KindRules(
        AVERAGE, _elementwise(lambda layer, x: ann_ops.global_avgpool(x)), per_image=True,
        spatial=_global_map, weights=_global_weights))
    register(L.MaxPool2d, KindRules(
        MAX_POOL, _elementwise(ann_ops.maxpool2d), per_image=True,
        spatial=lambda layer, shape: _window_map(layer, shape, (1, 1))))
    register(L.Flatten, KindRules(RESHAPE, _elementwise(_flatten), spatial=_identity_map))
    register(L.BatchNorm, KindRules(FOLD, _elementwise(ann_ops.batchnorm), per_image=True))
    register(L.Activation, KindRules(NEURON, _elementwise(_unknown_activation), per_image=True))
    for record, function in ((L.ReLU, ann_ops.relu), (L.Clip, ann_ops.clip),
                             (L.QCFS, ann_ops.qcfs), (L.LeakyReLU, ann_ops.leaky_relu),
                             (L.Identity, ann_ops.identity)):
        register(record, KindRules(NEURON, _elementwise(function), per_image=True))


_register_builtin()
_register_routing()

__all__ = ["KindRules", "register", "rules_of", "role_of", "apply", "ROLES", "INPUT", "SYNAPSE",
           "SUM", "NEURON", "MAX_POOL", "AVERAGE", "RESHAPE", "FOLD", "CONCAT", "HEAD"]
