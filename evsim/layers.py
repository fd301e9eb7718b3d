"""Layer records of the ANN graph.

Each record is a small frozen dataclass holding one operation's parameters as
NumPy arrays, checked at construction. Records know nothing about the graph;
:mod:`evsim.network` wires them together and infers shapes.

Conventions (as in PyTorch and ONNX): per-image shapes without the batch
axis, channel-first ``(C, H, W)`` for images, dense weights ``(out, in)``,
convolution weights ``(C_out, C_in / groups, KH, KW)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

import numpy as np

from .errors import EvsimError, EvsimTypeError, EvsimValueError

Shape = tuple[int, ...]


class ShapeError(EvsimError, ValueError):
    """A layer's parameters or inputs have incompatible shapes."""


def _pair(value: int | tuple[int, int], what: str) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        pair = (int(value), int(value))
    else:
        pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise EvsimValueError(f"{what} must be an int or a pair of ints, got {value!r}")
    return pair  # type: ignore[return-value]


def _array(value, what: str, ndim: int | None = None) -> np.ndarray:
    array = np.asarray(value)
    if array.dtype.kind not in "fiu":
        raise EvsimTypeError(f"{what} must be numeric, got dtype {array.dtype}")
    if array.dtype.kind != "f":
        array = array.astype(np.float32)
    if ndim is not None and array.ndim != ndim:
        raise ShapeError(f"{what} must have {ndim} dimensions, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise EvsimValueError(f"{what} contains NaN or infinite values")
    array = array.copy()
    array.flags.writeable = False
    return array


def _window_out(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil: bool) -> int:
    span = dilation * (kernel - 1) + 1
    room = size + 2 * pad - span
    if room < 0:
        return 0
    if not ceil:
        return room // stride + 1
    out = -(-room // stride) + 1
    # PyTorch/ONNX rule: the last window must start inside the input or left padding.
    if (out - 1) * stride >= size + pad:
        out -= 1
    return out


@dataclass(frozen=True, eq=False)
class Layer:
    """Base class: a layer record. ``kind`` is the name used in saved files."""

    kind: ClassVar[str] = "layer"
    arity: ClassVar[int] = 1  # number of inputs; -1 for "two or more"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        """Per-image output shape for the given per-image input shapes."""
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """The record's NumPy parameters by field name (for saving)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)}

    def attributes(self) -> dict:
        """The record's non-array fields, JSON-serialisable (for saving)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or not isinstance(value, np.ndarray):
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def replace(self, **changes) -> Layer:
        """A copy with some fields changed (validated again)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return type(self)(**values)


@dataclass(frozen=True, eq=False)
class Input(Layer):
    """The network input; ``shape`` is per image, e.g. ``(1, 28, 28)`` or ``(64,)``."""

    shape: Shape
    kind: ClassVar[str] = "input"
    arity: ClassVar[int] = 0

    def __post_init__(self):
        shape = tuple(int(s) for s in self.shape)
        if not shape or any(s <= 0 for s in shape):
            raise ShapeError(f"input shape must be non-empty and positive, got {self.shape}")
        object.__setattr__(self, "shape", shape)

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        return self.shape


@dataclass(frozen=True, eq=False)
class Dense(Layer):
    """Fully connected layer ``y = W x + b``; ``weight`` (out, in), ``bias`` (out,) or None."""

    weight: np.ndarray
    bias: np.ndarray | None = None
    kind: ClassVar[str] = "dense"

    def __post_init__(self):
        object.__setattr__(self, "weight", _array(self.weight, "Dense weight", ndim=2))
        if self.bias is not None:
            bias = _array(self.bias, "Dense bias", ndim=1)
            if bias.shape[0] != self.weight.shape[0]:
                raise ShapeError(f"Dense bias has {bias.shape[0]} entries but weight has "
                                 f"{self.weight.shape[0]} outputs")
            object.__setattr__(self, "bias", bias.astype(self.weight.dtype))

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        (shape,) = input_shapes
        if len(shape) != 1 or shape[0] != self.in_features:
            raise ShapeError(f"expects input of shape ({self.in_features},), got {shape}"
                             + ("; add a Flatten before it" if len(shape) > 1 else ""))
        return (self.out_features,)


@dataclass(frozen=True, eq=False)
class Conv2d(Layer):
    """2-D convolution (cross-correlation, as PyTorch) with zero padding.

    ``weight`` (C_out, C_in / groups, KH, KW), ``bias`` (C_out,) or None;
    ``padding`` is symmetric per axis, ``(pad_h, pad_w)``.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    kind: ClassVar[str] = "conv2d"

    def __post_init__(self):
        weight = _array(self.weight, "Conv2d weight", ndim=4)
        object.__setattr__(self, "weight", weight)
        for name in ("stride", "padding", "dilation"):
            pair = _pair(getattr(self, name), f"Conv2d {name}")
            if min(pair) < (0 if name == "padding" else 1):
                raise EvsimValueError(
                    f"Conv2d {name} must be {'>= 0' if name == 'padding' else '>= 1'}"
                    f", got {pair}")
            object.__setattr__(self, name, pair)
        groups = int(self.groups)
        if groups < 1 or weight.shape[0] % groups:
            raise ShapeError(f"Conv2d groups={groups} must divide the {weight.shape[0]} "
                             "output channels")
        object.__setattr__(self, "groups", groups)
        if self.bias is not None:
            bias = _array(self.bias, "Conv2d bias", ndim=1)
            if bias.shape[0] != weight.shape[0]:
                raise ShapeError(f"Conv2d bias has {bias.shape[0]} entries but weight has "
                                 f"{weight.shape[0]} output channels")
            object.__setattr__(self, "bias", bias.astype(weight.dtype))

    @property
    def in_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    @property
    def out_channels(self) -> int:
        return self.weight.shape[0]

    @property
    def kernel_size(self) -> tuple[int, int]:
        return self.weight.shape[2], self.weight.shape[3]

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        (shape,) = input_shapes
        if len(shape) != 3 or shape[0] != self.in_channels:
            raise ShapeError(f"expects input of shape ({self.in_channels}, H, W), got {shape}")
        ho, wo = (_window_out(shape[1 + a], self.kernel_size[a], self.stride[a],
                              self.padding[a], self.dilation[a], False) for a in (0, 1))
        if ho <= 0 or wo <= 0:
            raise ShapeError(f"kernel {self.kernel_size} (dilation {self.dilation}) does not fit "
                             f"input {shape} with padding {self.padding}")
        return (self.out_channels, ho, wo)


def _transposed_out(size: int, kernel: int, stride: int, pad: int, dilation: int,
                    output_padding: int) -> int:
    return (size - 1) * stride - 2 * pad + dilation * (kernel - 1) + output_padding + 1


@dataclass(frozen=True, eq=False)
class ConvTranspose2d(Layer):
    """2-D transposed convolution (the gradient of :class:`Conv2d`, as PyTorch and ONNX).

    ``weight`` (C_in, C_out / groups, KH, KW), ``bias`` (C_out,) or None. Input
    position ``i`` reaches output ``i·stride − padding + k·dilation`` through kernel
    tap ``k``; the output has ``(H − 1)·stride − 2·padding + dilation·(KH − 1) +
    output_padding + 1`` rows (likewise columns). ``output_padding`` adds rows and
    columns at the bottom and right and must be smaller than the stride or the dilation.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    output_padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    kind: ClassVar[str] = "conv_transpose2d"

    def __post_init__(self):
        weight = _array(self.weight, "ConvTranspose2d weight", ndim=4)
        object.__setattr__(self, "weight", weight)
        for name in ("stride", "padding", "output_padding", "dilation"):
            pair = _pair(getattr(self, name), f"ConvTranspose2d {name}")
            low = 1 if name in ("stride", "dilation") else 0
            if min(pair) < low:
                raise EvsimValueError(f"ConvTranspose2d {name} must be >= {low}, got {pair}")
            object.__setattr__(self, name, pair)
        for axis in (0, 1):
            if self.output_padding[axis] >= max(self.stride[axis], self.dilation[axis]):
                raise EvsimValueError(
                    f"ConvTranspose2d output_padding {self.output_padding} must be smaller "
                    f"than the stride {self.stride} or the dilation {self.dilation} per axis")
        groups = int(self.groups)
        if groups < 1 or weight.shape[0] % groups:
            raise ShapeError(f"ConvTranspose2d groups={groups} must divide the "
                             f"{weight.shape[0]} input channels")
        object.__setattr__(self, "groups", groups)
        if self.bias is not None:
            bias = _array(self.bias, "ConvTranspose2d bias", ndim=1)
            if bias.shape[0] != self.out_channels:
                raise ShapeError(f"ConvTranspose2d bias has {bias.shape[0]} entries but the "
                                 f"layer has {self.out_channels} output channels")
            object.__setattr__(self, "bias", bias.astype(weight.dtype))

    @property
    def in_channels(self) -> int:
        return self.weight.shape[0]

    @property
    def out_channels(self) -> int:
        return self.weight.shape[1] * self.groups

    @property
    def kernel_size(self) -> tuple[int, int]:
        return self.weight.shape[2], self.weight.shape[3]

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        (shape,) = input_shapes
        if len(shape) != 3 or shape[0] != self.in_channels:
            raise ShapeError(f"expects input of shape ({self.in_channels}, H, W), got {shape}")
        ho, wo = (_transposed_out(shape[1 + a], self.kernel_size[a], self.stride[a],
                                  self.padding[a], self.dilation[a], self.output_padding[a])
                  for a in (0, 1))
        if ho <= 0 or wo <= 0:
            raise ShapeError(f"padding {self.padding} leaves no output of input {shape} "
                             f"(kernel {self.kernel_size}, stride {self.stride})")
        return (self.out_channels, ho, wo)


@dataclass(frozen=True, eq=False)
class _Pool2d(Layer):
    kernel_size: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)
    ceil_mode: bool = False

    def __post_init__(self):
        kernel = _pair(self.kernel_size, f"{type(self).__name__} kernel_size")
        stride = kernel if self.stride is None else _pair(self.stride, "stride")
        padding = _pair(self.padding, "padding")
        if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
            raise EvsimValueError(f"{type(self).__name__}: kernel and stride must be >= 1 and "
                                  f"padding >= 0, got {kernel}, {stride}, {padding}")
        if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
            raise EvsimValueError(f"{type(self).__name__}: padding {padding} must be at most half "
                                  f"the kernel {kernel}")
        object.__setattr__(self, "kernel_size", kernel)
        object.__setattr__(self, "stride", stride)
        object.__setattr__(self, "padding", padding)
        object.__setattr__(self, "ceil_mode", bool(self.ceil_mode))

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        (shape,) = input_shapes
        if len(shape) != 3:
            raise ShapeError(f"expects input of shape (C, H, W), got {shape}")
        ho, wo = (_window_out(shape[1 + a], self.kernel_size[a], self.stride[a],
                              self.padding[a], 1, self.ceil_mode) for a in (0, 1))
        if ho <= 0 or wo <= 0:
            raise ShapeError(f"window {self.kernel_size} does not fit input {shape}")
        return (shape[0], ho, wo)


@dataclass(frozen=True, eq=False)
class AvgPool2d(_Pool2d):
    """Average pooling. ``count_include_pad`` as in PyTorch/ONNX."""

    count_include_pad: bool = True
    kind: ClassVar[str] = "avgpool2d"


@dataclass(frozen=True, eq=False)
class MaxPool2d(_Pool2d):
    """Max pooling (padding never wins: it is -inf)."""

    kind: ClassVar[str] = "maxpool2d"


@dataclass(frozen=True, eq=False)
class GlobalAvgPool(Layer):
    """Mean over the spatial axes: (C, H, W) -> (C, 1, 1), as ONNX GlobalAveragePool."""

    kind: ClassVar[str] = "globalavgpool"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        (shape,) = input_shapes
        if len(shape) != 3:
            raise ShapeError(f"expects input of shape (C, H, W), got {shape}")
        return (shape[0], 1, 1)


@dataclass(frozen=True, eq=False)
class Flatten(Layer):
    """Flattens a per-image tensor in C order (channel-first), as ``torch.flatten(x, 1)``."""

    kind: ClassVar[str] = "flatten"

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        (shape,) = input_shapes
        return (math.prod(shape),)


@dataclass(frozen=True, eq=False)
class Add(Layer):
    """Element-wise sum of two or more inputs of identical shape (residual connection)."""

    kind: ClassVar[str] = "add"
    arity: ClassVar[int] = -1

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        if len(input_shapes) < 2:
            raise ShapeError(f"needs at least two inputs, got {len(input_shapes)}")
        first = input_shapes[0]
        for other in input_shapes[1:]:
            if other != first:
                raise ShapeError(f"inputs have different shapes {first} and {other}")
        return first


@dataclass(frozen=True, eq=False)
class Concat(Layer):
    """Two or more ``(C_i, H, W)`` inputs laid side by side along the channel axis,
    as ``torch.cat(xs, dim=1)`` and ONNX Concat with ``axis=1``."""

    kind: ClassVar[str] = "concat"
    arity: ClassVar[int] = -1

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        if len(input_shapes) < 2:
            raise ShapeError(f"needs at least two inputs, got {len(input_shapes)}")
        first = input_shapes[0]
        for other in input_shapes:
            if len(other) != 3 or other[1:] != first[1:]:
                raise ShapeError(f"concatenates channels of (C, H, W) inputs with equal H and "
                                 f"W, got shapes {list(input_shapes)}")
        return (sum(s[0] for s in input_shapes),) + tuple(first[1:])


@dataclass(frozen=True, eq=False)
class Pad(Layer):
    """Zero padding of the spatial axes: ``padding`` is ``(top, bottom, left, right)`` >= 0,
    as ONNX Pad (mode constant, value 0) and ``nn.ZeroPad2d``."""

    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    kind: ClassVar[str] = "pad"

    def __post_init__(self):
        padding = tuple(int(p) for p in self.padding)
        if len(padding) != 4 or min(padding) < 0:
            raise EvsimValueError(f"Pad padding must be four ints >= 0 (top, bottom, left, "
                                  f"right), got {self.padding!r}")
        object.__setattr__(self, "padding", padding)

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        (shape,) = input_shapes
        if len(shape) != 3:
            raise ShapeError(f"expects input of shape (C, H, W), got {shape}")
        top, bottom, left, right = self.padding
        return (shape[0], shape[1] + top + bottom, shape[2] + left + right)


@dataclass(frozen=True, eq=False)
class Upsample(Layer):
    """Upsampling of the spatial axes by integer ``scale`` ``(s_h, s_w)``: ``mode`` "nearest"
    or "bilinear" (with ``align_corners`` as in ``F.interpolate``), as ONNX Resize."""

    scale: tuple[int, int] = (2, 2)
    mode: str = "nearest"
    align_corners: bool = False
    kind: ClassVar[str] = "upsample"

    def __post_init__(self):
        scale = _pair(self.scale, "Upsample scale")
        if min(scale) < 1:
            raise EvsimValueError(f"Upsample scale must be integers >= 1, got {self.scale!r}")
        if self.mode not in ("nearest", "bilinear"):
            raise EvsimValueError(f"Upsample mode must be 'nearest' or 'bilinear', got "
                                  f"{self.mode!r}")
        if self.mode == "nearest" and self.align_corners:
            raise EvsimValueError("Upsample align_corners applies to mode 'bilinear' only")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "align_corners", bool(self.align_corners))

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        (shape,) = input_shapes
        if len(shape) != 3:
            raise ShapeError(f"expects input of shape (C, H, W), got {shape}")
        return (shape[0], shape[1] * self.scale[0], shape[2] * self.scale[1])


@dataclass(frozen=True, eq=False)
class BatchNorm(Layer):
    """Batch normalisation in inference mode over axis 0 (channels or features).

    ``y = (x - mean) / sqrt(var + eps) * gamma + beta``, each parameter (C,).
    """

    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    eps: float = 1e-5
    kind: ClassVar[str] = "batchnorm"

    def __post_init__(self):
        arrays = {}
        for name in ("gamma", "beta", "mean", "var"):
            arrays[name] = _array(getattr(self, name), f"BatchNorm {name}", ndim=1)
        sizes = {a.shape[0] for a in arrays.values()}
        if len(sizes) != 1:
            raise ShapeError("BatchNorm gamma, beta, mean and var must have the same length, got "
                             + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))
        if np.any(arrays["var"] < 0):
            raise EvsimValueError("BatchNorm var must be non-negative")
        for name, array in arrays.items():
            object.__setattr__(self, name, array)
        object.__setattr__(self, "eps", float(self.eps))

    @property
    def num_features(self) -> int:
        return self.gamma.shape[0]

    def scale_shift(self) -> tuple[np.ndarray, np.ndarray]:
        """(scale, shift) with ``y = scale * x + shift``, in float64."""
        scale = self.gamma.astype(np.float64) / np.sqrt(self.var.astype(np.float64) + self.eps)
        shift = self.beta.astype(np.float64) - self.mean.astype(np.float64) * scale
        return scale, shift

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        (shape,) = input_shapes
        if shape[0] != self.num_features:
            raise ShapeError(f"has {self.num_features} features but input has shape {shape}")
        return shape


@dataclass(frozen=True, eq=False)
class Activation(Layer):
    """Base of the element-wise activations that become spiking neurons."""

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        (shape,) = input_shapes
        return shape

    @property
    def bound(self) -> float | None:
        """The trained upper bound λ, or None for an unbounded ReLU."""
        return None

    @property
    def negative_slope(self) -> float:
        """α, the slope below 0: 0 for the ReLU family; a layer with α > 0 becomes signed
        IF neurons (methods.md §5b) with negative threshold θ⁻ = θ / α."""
        return 0.0


@dataclass(frozen=True, eq=False)
class ReLU(Activation):
    """``max(x, 0)``."""

    kind: ClassVar[str] = "relu"


@dataclass(frozen=True, eq=False)
class Clip(Activation):
    """Clipped ReLU ``clip(x, 0, max_value)``; a trained max_value is OPI's λ."""

    max_value: float = 1.0
    kind: ClassVar[str] = "clip"

    def __post_init__(self):
        value = float(self.max_value)
        if not (value > 0 and math.isfinite(value)):
            raise EvsimValueError(
                f"Clip max_value must be positive and finite, got {self.max_value}")
        object.__setattr__(self, "max_value", value)

    @property
    def bound(self) -> float:
        return self.max_value


@dataclass(frozen=True, eq=False)
class QCFS(Activation):
    """Quantisation-clip-floor-shift: ``λ clip(floor(x L / λ + shift) / L, 0, 1)``.

    ``lam`` is the trained bound λ, ``levels`` is L, ``shift`` is 1/2 in QCFS.
    """

    lam: float = 8.0
    levels: int = 4
    shift: float = 0.5
    kind: ClassVar[str] = "qcfs"

    def __post_init__(self):
        lam = float(self.lam)
        if not (lam > 0 and math.isfinite(lam)):
            raise EvsimValueError(f"QCFS lam must be positive and finite, got {self.lam}")
        if int(self.levels) < 1:
            raise EvsimValueError(f"QCFS levels must be >= 1, got {self.levels}")
        object.__setattr__(self, "lam", lam)
        object.__setattr__(self, "levels", int(self.levels))
        object.__setattr__(self, "shift", float(self.shift))

    @property
    def bound(self) -> float:
        return self.lam


@dataclass(frozen=True, eq=False)
class LeakyReLU(Activation):
    """``x`` for ``x ≥ 0``, ``alpha · x`` below, with slope ``0 < alpha ≤ 1``."""

    alpha: float = 0.01
    kind: ClassVar[str] = "leaky_relu"

    def __post_init__(self):
        alpha = float(self.alpha)
        if not 0 < alpha <= 1:
            raise EvsimValueError(f"LeakyReLU alpha must be in (0, 1], got {self.alpha}; a "
                                  "slope of 0 is a ReLU")
        object.__setattr__(self, "alpha", alpha)

    @property
    def negative_slope(self) -> float:
        return self.alpha


@dataclass(frozen=True, eq=False)
class Identity(Activation):
    """The identity activation ``x`` (a linear bottleneck's output, methods.md §5b).

    No importer reads it from a model: conversion inserts it where a synapse layer reads
    another one's currents with no activation between them (MobileNet-v2's linear
    bottlenecks), so that signed IF neurons with θ⁻ = θ carry the values as spikes.
    """

    kind: ClassVar[str] = "identity"

    @property
    def negative_slope(self) -> float:
        return 1.0


@dataclass(frozen=True, eq=False)
class OutputHead(Layer):
    """Base of the normalising maps a network may end with (Sigmoid, Softmax): allowed only
    as the network's output, which the spiking network reads before the head (its
    readout); see ``docs/conventions.md``."""

    def output_shape(self, input_shapes: list[Shape]) -> Shape:
        (shape,) = input_shapes
        return shape


@dataclass(frozen=True, eq=False)
class Sigmoid(OutputHead):
    """``1 / (1 + exp(−x))``, element-wise; only as the network's output."""

    kind: ClassVar[str] = "sigmoid"


@dataclass(frozen=True, eq=False)
class Softmax(OutputHead):
    """Softmax over the channels or features (per-image axis 0, PyTorch's ``dim=1``), at
    every spatial position; only as the network's output."""

    kind: ClassVar[str] = "softmax"


LAYER_KINDS: dict[str, type[Layer]] = {
    cls.kind: cls for cls in (Input, Dense, Conv2d, AvgPool2d, MaxPool2d, GlobalAvgPool, Flatten,
                              Add, BatchNorm, ReLU, Clip, QCFS)
}
LAYER_KINDS.update({cls.kind: cls for cls in (Concat, Pad, Upsample)})
LAYER_KINDS.update({cls.kind: cls for cls in (LeakyReLU, Identity)})
LAYER_KINDS[ConvTranspose2d.kind] = ConvTranspose2d
LAYER_KINDS.update({cls.kind: cls for cls in (Sigmoid, Softmax)})

__all__ = ["Layer", "Input", "Dense", "Conv2d", "AvgPool2d", "MaxPool2d", "GlobalAvgPool",
           "Flatten", "Add", "BatchNorm", "Activation", "ReLU", "Clip", "QCFS", "ShapeError",
           "LAYER_KINDS", "Shape"]
__all__ += ["Concat", "Pad", "Upsample"]
__all__ += ["LeakyReLU", "Identity"]
__all__ += ["ConvTranspose2d", "OutputHead", "Sigmoid", "Softmax"]
