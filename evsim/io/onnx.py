"""ONNX import: read an ONNX model into an evsim :class:`~evsim.network.Network`.

Needs only the ``onnx`` package, a core dependency of evsim. Nodes are read
in graph order and mapped onto evsim layers; every node is either mapped,
folded or rejected with :class:`UnsupportedOperatorError` — nothing is
skipped silently.

=====================================  ========================================
ONNX                                   evsim
=====================================  ========================================
Conv (2-D, pads symmetric per axis)    Conv2d
ConvTranspose (2-D; pads, output_pad-  ConvTranspose2d (an end crop smaller
ding, auto_pad, output_shape)          than the begin one is output padding)
Sigmoid; Softmax (axis 1)              Sigmoid, Softmax: as the output only
Gemm; MatMul [+ Add/Sub of a constant] Dense (alpha, beta, transB, bias folded)
BatchNormalization                     BatchNorm (folded by ``evsim.convert``)
MaxPool, AveragePool (2-D)             MaxPool2d, AvgPool2d
GlobalAveragePool; ReduceMean over     GlobalAvgPool [+ Flatten if not keepdims]
(H, W)
Flatten (axis 1); Reshape to           Flatten
(batch, features)
Add / Sum of tensors                   Add (residual connection)
element-wise chain with constants      one ReLU, Clip, QCFS or LeakyReLU
(Relu, LeakyRelu, Clip, Mul, Div, Add,
Sub, Floor, Ceil, Round, Neg, Min, Max)
Concat (axis 1, of tensors)            Concat
Pad (constant 0, H and W, >= 0)        Pad
Resize / Upsample: nearest             Upsample (integer scales from the scales
(asymmetric, floor) or linear          input, or sizes, e.g. computed from
(half_pixel, pytorch_half_pixel,       Shape: folded to constants)
align_corners), integer scales
Identity; Dropout (inference)          nothing: they pass their input on
any node whose inputs are constants    evaluated at import (constant folding)
any node no graph output depends on    nothing: skipped, as ONNX runtimes skip it
=====================================  ========================================

An element-wise chain such as PyTorch's export of the QCFS activation
``lam * clamp(floor(x * L / lam + 0.5) / L, 0, 1)`` is recognised by what it
computes, not by how it is written: the chain is evaluated as a scalar
function f of its input, λ (and L and the shift) are read off f's values,
and the candidate activation is accepted only if it equals f on a dense grid
of inputs, up to float32 rounding of the chain's constants (relative 1e-6, in
values and in the positions of jumps). Tensor operands computed from the same
layer join one chain, so a straight-through floor ``(floor(t) - t) + t`` is
read as ``floor(t)``; ``relu(c) + c`` stays a residual Add.

The model's first axis is the batch (free or fixed); per-image shapes are
``(C, H, W)`` or ``(features,)``. ``Shape`` of a tensor is known at import, so
``x.view(x.size(0), -1)`` folds into a Flatten like ``torch.flatten(x, 1)``.
Pooling with ``ceil_mode`` follows PyTorch and onnxruntime (a last window that
would start in the right padding is dropped); ONNX's own shape inference
keeps it, and onnxruntime then rejects such a model if a Gemm follows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .. import layers as L
from ..network import Network, NetworkBuilder
from ..kinds import apply
from ..errors import EvsimFileError, EvsimValueError
from .errors import UnsupportedModelError, reading

if TYPE_CHECKING:
    import onnx

SUPPORTED = ("Conv", "ConvTranspose", "Sigmoid", "Softmax", "Gemm", "MatMul",
             "BatchNormalization", "MaxPool", "AveragePool",
             "GlobalAveragePool", "ReduceMean", "Flatten", "Reshape", "Shape", "Add", "Sum",
             "Sub", "Mul", "Div", "Min", "Max", "Relu", "Clip", "Floor", "Ceil", "Round", "Neg",
             "Identity", "Dropout", "Constant", "Concat", "Pad", "Resize", "Upsample",
             "LeakyRelu")


class UnsupportedOperatorError(UnsupportedModelError):
    """An ONNX node that evsim cannot express (operator or configuration).

    ``op_type``, ``node_name`` and ``node_index`` (position in the graph's
    node list) identify the node; the message also says what to do.
    """

    def __init__(self, op_type: str, node_name: str, node_index: int, reason: str):
        self.op_type, self.node_name, self.node_index = op_type, node_name, node_index
        super().__init__(f"ONNX node {node_index} '{node_name}' ({op_type}): {reason}")


def _node_error(index: int, node: onnx.NodeProto, reason: str) -> UnsupportedOperatorError:
    name = node.name or f"<unnamed, output '{node.output[0] if node.output else ''}'>"
    return UnsupportedOperatorError(node.op_type, name, index, reason)


# -- values flowing along the graph's edges ---------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Const:
    """A value known at import: one array, or one per probe batch size if it depends on it."""

    values: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, arrays: tuple[np.ndarray, ...]) -> _Const:
        """One array when the probes agree, else one per probe."""
        same = all(np.array_equal(a, arrays[0]) for a in arrays[1:])
        return cls(arrays[:1] if same else arrays)


@dataclass(frozen=True, eq=False)
class _Layer:
    """The output of evsim layer ``name``."""

    name: str


@dataclass(frozen=True, eq=False)
class _Elementwise:
    """``fn`` (float64 -> float64, element-wise) applied to layer ``source``; not yet a layer."""

    source: str
    fn: Callable[[np.ndarray], np.ndarray]
    nodes: tuple[int, ...]
    constants: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class _Linear:
    """A Dense layer on ``source`` whose bias may still be completed by a following Add."""

    source: str
    weight: np.ndarray  # (out, in)
    bias: np.ndarray | None  # (out,)
    nodes: tuple[int, ...]


_Value = _Const | _Layer | _Elementwise | _Linear

_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Relu": lambda x: np.maximum(x, 0.0), "Floor": np.floor, "Ceil": np.ceil,
    "Round": np.round, "Neg": np.negative}  # np.round rounds half to even, as ONNX Round
_NARY: dict[str, Callable] = {"Add": np.add, "Sum": np.add, "Sub": np.subtract,
                              "Mul": np.multiply, "Div": np.divide, "Min": np.minimum,
                              "Max": np.maximum}


# -- recognising an element-wise chain ------------------------------------------------------
_HUGE = 1e30
_RELATIVE = 1e-6  # a few float32 ulps


def _grid(scale: float) -> np.ndarray:
    """Dense probe points around the activation's interesting range, plus far-out ones."""
    far = np.logspace(-6, 6, 241) * scale
    return np.concatenate([np.linspace(-2 * scale, 3 * scale, 100_001), far, -far, [0.0]])


def _matches(fn: Callable, candidate: L.Activation) -> bool:
    """Whether ``fn`` equals ``candidate`` on a dense grid, up to float32 rounding.

    The chain's constants are float32, so its values and the positions of its
    jumps may differ from the candidate's by a few float32 ulps (relative
    ``_RELATIVE``): a point that close to a jump may land on either side.
    """
    scale = candidate.bound or 1.0
    x = _grid(scale)
    got, want = fn(x), apply(candidate, [x])
    tol = _RELATIVE * (np.abs(x) + scale)
    bad = ~(np.abs(got - want) <= tol)
    if not bad.any():
        return True
    left = apply(candidate, [x[bad] - tol[bad]])
    right = apply(candidate, [x[bad] + tol[bad]])
    at_jump = np.abs(left - right) > tol[bad]
    near = (np.abs(got[bad] - left) <= tol[bad]) | (np.abs(got[bad] - right) <= tol[bad])
    return bool(np.all(at_jump & near))


def _qcfs_candidate(fn: Callable, lam: float, constants: tuple[float, ...]) -> L.QCFS | None:
    """Read L and the shift off a staircase f with top value ``lam``; None if f is no staircase."""
    x = np.linspace(-2 * lam, 3 * lam, 100_001)
    y = fn(x)
    positive = y[y > 0]
    if positive.size == 0 or y[0] > 0:
        return None
    levels = round(lam / positive.min())
    if levels < 1 or abs(lam / positive.min() - levels) > 1e-6 * levels:
        return None
    first = int(np.argmax(y > 0))
    low, high = x[first - 1], x[first]
    for _ in range(200):  # bisect the first jump to float64 precision
        mid = 0.5 * (low + high)
        if mid in (low, high):
            break
        low, high = (low, mid) if fn(np.array([mid]))[0] > 0 else (mid, high)
    shift = 1.0 - high * levels / lam
    snaps = [*constants, round(shift * 2**20) / 2**20]
    nearest = min(snaps, key=lambda c: abs(c - shift))
    return L.QCFS(lam=lam, levels=levels, shift=nearest if abs(nearest - shift) <= 1e-6 else shift)


def _recognise(fn: Callable, constants: tuple[float, ...]) -> L.Activation | None:
    """The evsim activation equal to the scalar function ``fn``, or None."""
    with np.errstate(all="ignore"):
        low, high = fn(np.array([-_HUGE, _HUGE]))
        if low < 0 and high >= _HUGE / 2:  # a slope below zero: LeakyReLU (α = 1: identity)
            alpha = float(-fn(np.array([-1.0]))[0])
            return L.LeakyReLU(alpha) if 0 < alpha <= 1 and _matches(
                fn, L.LeakyReLU(alpha)) else None
        if low != 0 or not high > 0:
            return None
        if high >= _HUGE / 2:
            candidates = [L.ReLU()]
        elif math.isfinite(high):
            candidates = [L.Clip(high), _qcfs_candidate(fn, float(high), constants)]
        else:
            return None
        for candidate in candidates:
            if candidate is not None and _matches(fn, candidate):
                return candidate
    return None


def _describe(fn: Callable) -> str:
    with np.errstate(all="ignore"):
        points = np.array([-_HUGE, -1.0, 0.0, 0.5, 1.0, 2.0, _HUGE])
        return ", ".join(f"f({p:g}) = {v:g}" for p, v in zip(points, fn(points)))


# -- the importer --------------------------------------------------------------------------
def _layer_name(raw: str) -> str:
    return raw.strip("/").replace("/", ".") or "node"


def _live_nodes(graph: onnx.GraphProto) -> set[int]:
    """Indices of the nodes the graph outputs depend on."""
    producer = {name: i for i, node in enumerate(graph.node) for name in node.output if name}
    live: set[int] = set()
    stack = [o.name for o in graph.output]
    while stack:
        index = producer.get(stack.pop())
        if index is not None and index not in live:
            live.add(index)
            stack.extend(graph.node[index].input)
    return live


class _Importer:
    """Walks one ONNX graph in order and builds the evsim network (nodes no output depends
    on are skipped, as an ONNX runtime skips them)."""

    def __init__(self, model: onnx.ModelProto, input_name: str | None):
        self.model = model
        self.graph = model.graph
        self.values: dict[str, _Value] = {}
        self.built: dict[_Value, str] = {}  # a value turned into an evsim layer, by identity
        self.names: set[str] = set()
        self.live = _live_nodes(self.graph)
        self.used = {name for i in self.live for name in self.graph.node[i].input}
        self.used |= {o.name for o in self.graph.output}
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                          1)
        self._read_initializers()
        self._read_input(input_name)

    # -- graph boundary -------------------------------------------------------------------
    def _read_initializers(self) -> None:
        from onnx import numpy_helper

        if len(self.graph.sparse_initializer):
            names = [t.values.name for t in self.graph.sparse_initializer]
            raise EvsimValueError(f"sparse initializers {names} are not supported; densify them")
        for tensor in self.graph.initializer:
            try:
                self.values[tensor.name] = _Const((numpy_helper.to_array(tensor),))
            except (OSError, ValueError) as err:
                raise EvsimValueError(
                    f"initializer '{tensor.name}' cannot be read ({err}); a model "
                    "with external data must be loaded from its file path, or "
                    "with onnx.load(path, load_external_data=True)") from None

    def _read_input(self, input_name: str | None) -> None:
        from onnx import TensorProto

        inputs = [i for i in self.graph.input if i.name not in self.values]
        if len(inputs) != 1:
            raise EvsimValueError(f"the model has {len(inputs)} graph inputs "
                                  f"{[i.name for i in inputs]}; evsim networks have exactly one")
        (graph_input,) = inputs
        tensor = graph_input.type.tensor_type
        floats = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16)
        if not graph_input.type.HasField("tensor_type") or tensor.elem_type not in floats:
            raise EvsimValueError(f"graph input '{graph_input.name}' must be a float tensor")
        dims = list(tensor.shape.dim)
        per_image = [d.dim_value for d in dims[1:]]
        if len(dims) not in (2, 4) or any(d <= 0 for d in per_image):
            shown = [d.dim_value or d.dim_param or "?" for d in dims]
            raise EvsimValueError(
                f"graph input '{graph_input.name}' has shape {shown}; evsim needs "
                "(batch, C, H, W) or (batch, features) with every axis but the "
                "batch fixed")
        batch = dims[0].dim_value
        # Shape-derived constants are evaluated at two batch sizes to tell batch-dependent
        # entries (x.size(0)) from fixed ones; a fixed batch needs only itself.
        self.probes = (batch,) if batch > 0 else (2, 3)
        name = input_name or _layer_name(graph_input.name)
        self.builder = NetworkBuilder(per_image, input_name=name)
        self.names.add(name)
        self.values[graph_input.name] = _Layer(name)

    def run(self) -> Network:
        for index, node in enumerate(self.graph.node):
            if index not in self.live:  # the output does not depend on it: ONNX skips it too
                continue
            try:
                self._visit(index, node)
            except UnsupportedOperatorError:
                raise
            except ValueError as err:  # evsim's layer and shape checks
                raise _node_error(index, node, str(err)) from None
            except (IndexError, KeyError, TypeError, AttributeError) as err:
                raise _node_error(index, node, f"malformed node ({type(err).__name__}: "
                                  f"{err})") from None
        outputs = [o.name for o in self.graph.output]
        if len(outputs) != 1:
            raise EvsimValueError(f"the model has {len(outputs)} graph outputs {outputs}; "
                                  "evsim networks have exactly one")
        value = self.values.get(outputs[0])
        if value is None or isinstance(value, _Const):
            raise EvsimValueError(f"graph output '{outputs[0]}' does not depend on the input")
        return self.builder.build(output=self._layer(value, len(self.graph.node), None))

    # -- helpers --------------------------------------------------------------------------
    def _name(self, nodes: tuple[int, ...], layer: L.Layer) -> str:
        """An unused layer name: the ONNX module path the nodes share, else the first node's;
        a path of numbers only (a Sequential's module index, an exporter's numbered output)
        follows the layer's kind (``relu_2``)."""
        raws = [self.graph.node[i].name or self.graph.node[i].output[0] for i in nodes]
        parts = [r.strip("/").split("/") for r in raws]
        common = []
        if len(parts) > 1:
            for column in zip(*(p[:-1] for p in parts)):
                if len(set(column)) > 1:
                    break
                common.append(column[0])
        base = ".".join(common) if common else _layer_name(raws[0])
        if base.replace(".", "").isdigit():
            base = f"{type(layer).__name__.lower()}_{base.replace('.', '_')}"
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def _add(self, layer: L.Layer, inputs: list[str], nodes: tuple[int, ...]) -> str:
        return self.builder.add_layer(layer, *inputs, name=self._name(nodes, layer))

    def _layer(self, value: _Value, index: int, node: onnx.NodeProto | None) -> str:
        """The evsim layer computing ``value``, adding it on first use."""
        if isinstance(value, _Layer):
            return value.name
        if isinstance(value, _Const):
            raise _node_error(index, node, "reads a constant where it needs a tensor computed "
                                           "from the network input")
        if value not in self.built:
            if isinstance(value, _Linear):
                layer = L.Dense(value.weight, value.bias)
            else:
                layer = _recognise(value.fn, value.constants)
                if layer is None:
                    raise self._chain_error(value)
            self.built[value] = self._add(layer, [value.source], value.nodes)
        return self.built[value]

    def _chain_error(self, value: _Elementwise) -> UnsupportedOperatorError:
        listed = ", ".join(f"{i} '{self.graph.node[i].name}' ({self.graph.node[i].op_type})"
                           for i in value.nodes)
        last = value.nodes[-1]
        return _node_error(last, self.graph.node[last],
                           f"the element-wise chain of nodes {listed} computes "
                           f"{_describe(value.fn)}, which is none of evsim's activations "
                           "ReLU, Clip(0, λ) or QCFS(λ, L, shift); evsim can express element-wise "
                           "arithmetic only as one of these activations (or as a bias right "
                           "after MatMul)")

    def _shape(self, value: _Value) -> tuple[int, ...]:
        """Per-image shape of a tensor value."""
        if isinstance(value, _Linear):
            return (value.weight.shape[0],)
        return self.builder.shape(value.source if isinstance(value, _Elementwise) else value.name)

    def _constant(self, inputs: list, position: int, what: str, index: int,
                  node: onnx.NodeProto) -> np.ndarray:
        value = inputs[position] if position < len(inputs) else None
        if not isinstance(value, _Const) or len(value.values) > 1:
            raise _node_error(index, node, f"its {what} (input {position}) must be a constant: an "
                                           "initializer, or computed from initializers only")
        return value.values[0]

    @staticmethod
    def _attributes(node: onnx.NodeProto) -> dict:
        from onnx import helper

        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        return {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}

    def _require_unused(self, node: onnx.NodeProto, index: int, first: int, why: str) -> None:
        used = [o for o in node.output[first:] if o and o in self.used]
        if used:
            raise _node_error(index, node, f"its output(s) {used} are read by other nodes; {why}")

    def _padding(self, node: onnx.NodeProto, index: int, attrs: dict, size: tuple[int, ...],
                 kernel: tuple[int, int], strides: tuple[int, int],
                 dilations: tuple[int, int]) -> tuple[int, int]:
        """Symmetric (pad_h, pad_w) from ``pads`` or ``auto_pad``, else an error."""
        auto = attrs.get("auto_pad", "NOTSET")
        if auto in ("NOTSET", ""):
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            begin, end = pads[:2], pads[2:]
        elif auto == "VALID":
            begin, end = [0, 0], [0, 0]
        elif auto in ("SAME_UPPER", "SAME_LOWER"):
            total = [max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
                     for n, k, s, d in zip(size, kernel, strides, dilations)]
            small = [t // 2 for t in total]
            big = [t - t // 2 for t in total]
            begin, end = (small, big) if auto == "SAME_UPPER" else (big, small)
        else:
            raise _node_error(index, node, f"unknown auto_pad '{auto}'")
        if list(begin) != list(end):
            raise _node_error(index, node, f"pads are asymmetric (begin {list(begin)}, end "
                                           f"{list(end)} for (H, W)); evsim pads both sides of an "
                                           "axis equally: re-export with symmetric padding, or "
                                           "use an input size for which auto_pad is symmetric")
        return int(begin[0]), int(begin[1])

    # -- dispatch -------------------------------------------------------------------------
    def _visit(self, index: int, node: onnx.NodeProto) -> None:
        if node.domain not in ("", "ai.onnx"):
            raise _node_error(index, node, f"operators of domain '{node.domain}' are not "
                                           "supported; export with standard ONNX operators")
        inputs = []
        for name in node.input:
            if name and name not in self.values:
                raise _node_error(index, node, f"reads '{name}', which no earlier node produces "
                                               "(the graph must be topologically sorted)")
            inputs.append(self.values[name] if name else None)
        if all(v is None or isinstance(v, _Const) for v in inputs):
            self._fold(index, node, inputs)
            return
        handler = self._HANDLERS.get(node.op_type)
        if handler is None:
            raise _node_error(index, node, "evsim has no equivalent operator; supported are "
                                           + ", ".join(SUPPORTED))
        handler(self, index, node, inputs)

    def _set(self, node: onnx.NodeProto, value: _Value) -> None:
        self.values[node.output[0]] = value

    def _fold(self, index: int, node: onnx.NodeProto, inputs: list) -> None:
        """Evaluate a node whose inputs are all constants (once per probe batch if needed)."""
        runs = max((len(v.values) for v in inputs if v is not None), default=1)
        results = []
        for run in range(runs):
            feeds = {name: v.values[min(run, len(v.values) - 1)]
                     for name, v in zip(node.input, inputs) if v is not None}
            results.append(self._evaluate(index, node, feeds))
        for k, name in enumerate(node.output):
            if name:
                self.values[name] = _Const.of(tuple(np.asarray(r[k]) for r in results))

    def _evaluate(self, index: int, node: onnx.NodeProto, feeds: dict) -> list:
        from onnx import helper
        from onnx.reference import ReferenceEvaluator

        graph = helper.make_graph(
            [node], "fold",
            [helper.make_tensor_value_info(k, helper.np_dtype_to_tensor_dtype(v.dtype), None)
             for k, v in feeds.items()],
            [helper.make_empty_tensor_value_info(o) for o in node.output if o])
        model = helper.make_model(graph, opset_imports=self.model.opset_import,
                                  ir_version=self.model.ir_version)
        try:
            outputs = ReferenceEvaluator(model).run(None, feeds)
        except Exception as err:  # the reference runtime raises many exception types
            raise _node_error(index, node, f"its inputs are all constants, but evaluating it at "
                                           f"import failed ({type(err).__name__}: {err})") from None
        full = iter(outputs)
        return [next(full) if o else None for o in node.output]

    # -- operators ------------------------------------------------------------------------
    def _conv_parts(self, index, node, inputs, what: str):
        """What Conv and ConvTranspose share: ``(attributes, weight, bias or None, kernel
        size, source layer, strides, dilations)``, the weight checked against the kernel."""
        attrs = self._attributes(node)
        weight = self._constant(inputs, 1, "weight", index, node)
        has_bias = len(inputs) > 2 and inputs[2] is not None
        bias = self._constant(inputs, 2, "bias", index, node) if has_bias else None
        if weight.ndim != 4:
            raise _node_error(index, node, f"only 2-D {what} are supported (weight shape "
                                           f"{weight.shape})")
        kernel = tuple(weight.shape[2:])
        if tuple(attrs.get("kernel_shape", kernel)) != kernel:
            raise _node_error(index, node, f"kernel_shape {attrs['kernel_shape']} disagrees with "
                                           f"the weight shape {weight.shape}")
        source = self._layer(inputs[0], index, node)
        strides = tuple(attrs.get("strides", (1, 1)))
        dilations = tuple(attrs.get("dilations", (1, 1)))
        return attrs, weight, bias, kernel, source, strides, dilations

    def _conv(self, index, node, inputs) -> None:
        attrs, weight, bias, kernel, source, strides, dilations = self._conv_parts(
            index, node, inputs, "convolutions")
        padding = self._padding(node, index, attrs, self.builder.shape(source)[1:], kernel,
                                strides, dilations)
        layer = L.Conv2d(weight, bias, stride=strides, padding=padding, dilation=dilations,
                         groups=attrs.get("group", 1))
        self._set(node, _Layer(self._add(layer, [source], (index,))))

    def _conv_transpose(self, index, node, inputs) -> None:
        attrs, weight, bias, kernel, source, strides, dilations = self._conv_parts(
            index, node, inputs, "transposed convolutions")
        extra = tuple(attrs.get("output_padding", (0, 0)))
        begin, end = self._transposed_pads(node, index, attrs, self.builder.shape(source)[1:],
                                           kernel, strides, dilations, extra)
        # evsim crops `padding` on both sides and adds `output_padding` at the end: an end
        # crop smaller than the begin one is output padding
        output_padding = tuple(e + b - f for e, b, f in zip(extra, begin, end))
        try:
            layer = L.ConvTranspose2d(weight, bias, stride=strides, padding=begin,
                                      output_padding=output_padding, dilation=dilations,
                                      groups=attrs.get("group", 1))
        except EvsimValueError as err:
            raise _node_error(index, node, f"pads (begin {list(begin)}, end {list(end)}) and "
                                           f"output_padding {list(extra)} have no evsim "
                                           f"equivalent: {err}") from None
        self._set(node, _Layer(self._add(layer, [source], (index,))))

    def _transposed_pads(self, node, index: int, attrs: dict, size: tuple[int, ...], kernel,
                         strides, dilations, extra) -> tuple[tuple[int, int], tuple[int, int]]:
        """ConvTranspose's (begin, end) crops of (H, W), from ``pads``, ``auto_pad`` or
        ``output_shape`` (the ONNX rules)."""
        auto = attrs.get("auto_pad", "NOTSET")
        if "output_shape" in attrs or auto in ("SAME_UPPER", "SAME_LOWER"):
            wanted = (list(attrs["output_shape"])[-2:] if "output_shape" in attrs
                      else [n * s for n, s in zip(size, strides)])
            total = [s * (n - 1) + e + (k - 1) * d + 1 - o for n, k, s, d, e, o
                     in zip(size, kernel, strides, dilations, extra, wanted)]
            if min(total) < 0:
                raise _node_error(index, node, f"output_shape {wanted} is larger than the "
                                               "transposed convolution makes")
            half, rest = [t // 2 for t in total], [t - t // 2 for t in total]
            begin, end = (half, rest) if auto == "SAME_UPPER" else (rest, half)
        elif auto in ("NOTSET", ""):
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            begin, end = pads[:2], pads[2:]
        elif auto == "VALID":
            begin, end = [0, 0], [0, 0]
        else:
            raise _node_error(index, node, f"unknown auto_pad '{auto}'")
        return tuple(int(b) for b in begin), tuple(int(e) for e in end)

    def _output_head(self, index, node, inputs) -> None:
        """Sigmoid, or Softmax over the channels/features (axis 1): an output head."""
        source = self._layer(inputs[0], index, node)
        if node.op_type == "Sigmoid":
            layer = L.Sigmoid()
        else:
            rank = len(self.builder.shape(source)) + 1
            default = -1 if self.opset >= 13 else 1
            axis = self._attributes(node).get("axis", default)
            if axis % rank != 1 or (self.opset < 13 and rank > 2):
                raise _node_error(index, node, f"softmax over axis {axis} of a rank-{rank} "
                                               "tensor; evsim has Softmax over the channels or "
                                               "features only (axis 1, torch's dim=1)")
            layer = L.Softmax()
        self._set(node, _Layer(self._add(layer, [source], (index,))))

    def _linear(self, index, node, inputs, weight: np.ndarray, bias) -> None:
        source = self._layer(inputs[0], index, node)
        shape = self.builder.shape(source)
        if shape != (weight.shape[1],):
            raise _node_error(index, node, f"multiplies a per-image tensor of shape {shape} by "
                                           f"a ({weight.shape[1]} -> {weight.shape[0]}) matrix; "
                                           "flatten it first (torch.flatten(x, 1))")
        self._set(node, _Linear(source, weight, bias, (index,)))

    def _gemm(self, index, node, inputs) -> None:
        attrs = self._attributes(node)
        if attrs.get("transA", 0):
            raise _node_error(index, node, "transA=1 would transpose the batch; only transA=0 "
                                           "is supported")
        b = self._constant(inputs, 1, "B (the weight)", index, node)
        alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
        weight = b if attrs.get("transB", 0) else b.T
        weight = weight * weight.dtype.type(alpha) if alpha != 1.0 else weight
        bias = None
        if len(inputs) > 2 and inputs[2] is not None:
            c = self._constant(inputs, 2, "C (the bias)", index, node)
            if np.broadcast_shapes(c.shape, (1, weight.shape[0])) != (1, weight.shape[0]):
                raise _node_error(index, node, f"bias C of shape {c.shape} is not one value per "
                                               "output")
            bias = np.broadcast_to(c, (1, weight.shape[0]))[0] * c.dtype.type(beta)
        self._linear(index, node, inputs, weight, bias)

    def _matmul(self, index, node, inputs) -> None:
        if isinstance(inputs[0], _Const):
            raise _node_error(index, node, "only tensor @ constant is supported (the network "
                                           "input must be the left operand)")
        b = self._constant(inputs, 1, "right operand (the weight)", index, node)
        if b.ndim != 2:
            raise _node_error(index, node, f"the weight must be a matrix, got shape {b.shape}")
        self._linear(index, node, inputs, b.T, None)

    def _batchnorm(self, index, node, inputs) -> None:
        attrs = self._attributes(node)
        if attrs.get("training_mode", 0) or not attrs.get("spatial", 1):
            raise _node_error(index, node, "only inference-mode, spatial BatchNormalization is "
                                           "supported; export the model in eval() mode")
        self._require_unused(node, index, 1, "the running statistics exist only in training")
        params = [self._constant(inputs, k, what, index, node)
                  for k, what in enumerate(("scale", "bias", "mean", "var"), start=1)]
        layer = L.BatchNorm(*params, eps=attrs.get("epsilon", 1e-5))
        self._set(node, _Layer(self._add(layer, [self._layer(inputs[0], index, node)], (index,))))

    def _pool(self, index, node, inputs) -> None:
        attrs = self._attributes(node)
        kernel = tuple(attrs.get("kernel_shape", ()))
        if len(kernel) != 2:
            raise _node_error(index, node, f"only 2-D pooling is supported (kernel_shape {kernel})")
        if any(d != 1 for d in attrs.get("dilations", (1, 1))):
            raise _node_error(index, node, f"dilations {attrs['dilations']} are not supported; "
                                           "evsim pools contiguous windows")
        source = self._layer(inputs[0], index, node)
        strides = tuple(attrs.get("strides", (1, 1)))
        padding = self._padding(node, index, attrs, self.builder.shape(source)[1:], kernel,
                                strides, (1, 1))
        ceil = bool(attrs.get("ceil_mode", 0))
        if node.op_type == "MaxPool":
            self._require_unused(node, index, 1, "evsim's MaxPool has no Indices output")
            layer = L.MaxPool2d(kernel, strides, padding, ceil)
        else:
            layer = L.AvgPool2d(kernel, strides, padding, ceil,
                                count_include_pad=bool(attrs.get("count_include_pad", 0)))
        self._set(node, _Layer(self._add(layer, [source], (index,))))

    def _global_avgpool(self, index, node, inputs) -> None:
        source = self._layer(inputs[0], index, node)
        self._set(node, _Layer(self._add(L.GlobalAvgPool(), [source], (index,))))

    def _reduce_mean(self, index, node, inputs) -> None:
        attrs = self._attributes(node)
        shape = self._shape(inputs[0])
        axes = attrs.get("axes")
        if len(inputs) > 1 and inputs[1] is not None:
            axes = self._constant(inputs, 1, "axes", index, node)
        axes = sorted(int(a) + (1 + len(shape) if a < 0 else 0) for a in
                      ([] if axes is None else axes))
        if len(shape) != 3 or axes != [2, 3]:
            raise _node_error(index, node, f"only the mean over the spatial axes [2, 3] of a "
                                           f"(batch, C, H, W) tensor (a global average pool) is "
                                           f"supported, not axes {axes} of (batch, {shape})")
        source = self._layer(inputs[0], index, node)
        pooled = self._add(L.GlobalAvgPool(), [source], (index,))
        if not attrs.get("keepdims", 1):
            pooled = self._add(L.Flatten(), [pooled], (index,))
        self._set(node, _Layer(pooled))

    def _flatten_to(self, index, node, value: _Value) -> None:
        """Output a flat (batch, features) view of ``value``: a Flatten unless already flat."""
        if len(self._shape(value)) == 1:
            self._set(node, value)
        else:
            source = self._layer(value, index, node)
            self._set(node, _Layer(self._add(L.Flatten(), [source], (index,))))

    def _flatten(self, index, node, inputs) -> None:
        axis = self._attributes(node).get("axis", 1)
        rank = 1 + len(self._shape(inputs[0]))
        if axis + (rank if axis < 0 else 0) != 1:
            raise _node_error(index, node, f"axis={axis} would mix the batch with features; only "
                                           "axis=1 (torch.flatten(x, 1)) is supported")
        self._flatten_to(index, node, inputs[0])

    def _reshape(self, index, node, inputs) -> None:
        shape_value = inputs[1]
        if not isinstance(shape_value, _Const):
            raise _node_error(index, node, "its target shape must be computable at import")
        per_image = self._shape(inputs[0])
        features = math.prod(per_image)
        allow_zero = self._attributes(node).get("allowzero", 0)
        for k, batch in enumerate(self.probes):
            target = [int(d) for d in shape_value.values[min(k, len(shape_value.values) - 1)]]
            full = (batch, *per_image)
            resolved = [full[i] if d == 0 and not allow_zero and i < len(full) else d
                        for i, d in enumerate(target)]
            if resolved.count(-1) == 1:
                known = math.prod(d for d in resolved if d != -1)
                resolved[resolved.index(-1)] = batch * features // known if known else -1
            if resolved != [batch, features]:
                shown = ", ".join(map(str, per_image))
                raise _node_error(index, node, f"reshapes (batch, {shown}) to {target} at batch "
                                               f"size {batch}; evsim supports Reshape only as a "
                                               "flatten to (batch, -1): use torch.flatten(x, 1) "
                                               "or x.view(x.size(0), -1)")
        self._flatten_to(index, node, inputs[0])

    def _shape_of(self, index, node, inputs) -> None:
        attrs = self._attributes(node)
        per_image = self._shape(inputs[0])
        start, end = attrs.get("start", 0), attrs.get("end", None)
        self._set(node, _Const.of(tuple(np.array((b, *per_image), dtype=np.int64)[start:end]
                                        for b in self.probes)))

    def _passthrough(self, index, node, inputs) -> None:
        if node.op_type == "Dropout":
            mode = inputs[2] if len(inputs) > 2 else None
            if mode is not None and (not isinstance(mode, _Const) or mode.values[0].any()):
                raise _node_error(index, node, "Dropout in training mode is not supported; export "
                                               "the model in eval() mode")
            self._require_unused(node, index, 1, "the dropout mask exists only in training")
        self._set(node, inputs[0])

    def _elementwise(self, index, node, inputs) -> None:
        tensors = [k for k, v in enumerate(inputs) if not isinstance(v, _Const)]
        op = node.op_type
        if len(tensors) > 1 and not self._one_expression([inputs[k] for k in tensors], op):
            if op not in ("Add", "Sum") or len(tensors) != len(inputs):
                raise _node_error(index, node, f"{op} of {len(tensors)} tensors"
                                               + (" and constants" if len(tensors) < len(inputs)
                                                  else "")
                                               + " is not supported; evsim adds tensors "
                                               "(residual connections) but has no other "
                                               "operation between them")
            sources = [self._layer(v, index, node) for v in inputs]
            self._set(node, _Layer(self._add(L.Add(), sources, (index,))))
            return
        value = inputs[tensors[0]]
        if isinstance(value, _Linear) and op in ("Add", "Sum", "Sub") and len(inputs) == 2 \
                and (tensors == [0] or op != "Sub"):
            constant = inputs[1 - tensors[0]].values
            out = value.weight.shape[0]
            if len(constant) == 1 and np.broadcast_shapes(constant[0].shape, (1, out)) == (1, out):
                extra = np.broadcast_to(constant[0], (1, out))[0].astype(value.weight.dtype)
                extra = -extra if op == "Sub" else extra
                bias = extra if value.bias is None else value.bias + extra
                self._set(node, _Linear(value.source, value.weight, bias, value.nodes + (index,)))
                return
        self._combine(index, node, inputs)

    def _one_expression(self, tensors: list[_Value], op: str) -> bool:
        """Whether tensor operands are parts of one element-wise expression of one layer.

        Their sources must agree. For Add, one part must also be no activation by
        itself (``(floor(x) - x) + x``, a straight-through estimator); otherwise
        the Add is a residual connection (``relu(y) + y``).
        """
        sources = {v.source if isinstance(v, _Elementwise) else
                   v.name if isinstance(v, _Layer) else self.built.get(v) for v in tensors}
        if len(sources) != 1 or None in sources:
            return False
        return op not in ("Add", "Sum") or any(
            isinstance(v, _Elementwise) and _recognise(v.fn, v.constants) is None
            for v in tensors)

    def _combine(self, index, node, inputs) -> None:
        """The element-wise expression ``op(inputs...)`` of the inputs' one source layer."""
        op = _NARY[node.op_type]
        parts, nodes, constants, source = [], {index}, [], None
        tensor = next(v for v in inputs if not isinstance(v, _Const))
        for value in inputs:
            if isinstance(value, _Const):
                constant = self._scalar(index, node, value, tensor)
                parts.append(lambda x, c=constant: c)
                constants.append(constant)
            elif isinstance(value, _Elementwise):
                parts.append(value.fn)
                nodes.update(value.nodes)
                constants.extend(value.constants)
                source = value.source
            else:
                parts.append(lambda x: x)
                source = self._layer(value, index, node)

        def fn(x: np.ndarray) -> np.ndarray:
            result = parts[0](x)
            for part in parts[1:]:
                result = op(result, part(x))
            return result

        self._set(node, _Elementwise(source, fn, tuple(sorted(nodes)), tuple(constants)))

    def _scalar(self, index, node, const: _Const, tensor: _Value) -> float:
        """The one value of a constant operand of an element-wise op on ``tensor``."""
        shape = (1, *self._shape(tensor))
        if not isinstance(const, _Const):
            raise _node_error(index, node, "its bounds must be constants")
        if len(const.values) > 1:
            raise _node_error(index, node, "an operand depends on the batch size")
        array = const.values[0]
        if array.size == 0 or np.broadcast_shapes(array.shape, shape) != shape:
            raise _node_error(index, node, f"its constant of shape {array.shape} does not "
                                           f"broadcast to the tensor's shape {shape}")
        if not np.all(array == array.flat[0]):
            raise _node_error(index, node, f"its constant of shape {array.shape} holds different "
                                           "values; evsim activations apply the same function to "
                                           "every neuron")
        return float(array.flat[0])

    def _chain(self, index, node, value: _Value, step: Callable[[np.ndarray], np.ndarray],
               constants: tuple[float, ...]) -> None:
        """Extend (or start) the element-wise chain on ``value`` by ``step``."""
        if not isinstance(value, _Elementwise):
            value = _Elementwise(self._layer(value, index, node), lambda x: x, (), ())
        before = value.fn
        self._set(node, _Elementwise(value.source, lambda x: step(before(x)),
                                     value.nodes + (index,), value.constants + constants))

    def _unary(self, index, node, inputs) -> None:
        self._chain(index, node, inputs[0], _UNARY[node.op_type], ())

    def _clip(self, index, node, inputs) -> None:
        if self.opset < 11:
            attrs = self._attributes(node)
            low, high = attrs.get("min", -np.inf), attrs.get("max", np.inf)
        else:
            low, high = (default if v is None else self._scalar(index, node, v, inputs[0])
                         for v, default in zip((inputs[1:] + [None, None])[:2],
                                               (-np.inf, np.inf)))
        self._chain(index, node, inputs[0], lambda y: np.minimum(np.maximum(y, low), high),
                    (low, high))

    def _leaky_relu(self, index, node, inputs) -> None:
        """``LeakyRelu(alpha)`` (default 0.01), in the chain's float32 arithmetic."""
        alpha = np.float32(self._attributes(node).get("alpha", 0.01))
        self._chain(index, node, inputs[0],
                    lambda y: np.where(y >= 0, y, y * np.float64(alpha)), (float(alpha),))

    def _concat(self, index, node, inputs) -> None:
        axis = self._attributes(node).get("axis")
        ranks = {len(self._shape(v)) + 1 for v in inputs if not isinstance(v, _Const)}
        if ranks != {4} or axis not in (1, -3):
            raise _node_error(index, node, f"concatenates along axis {axis} of rank-{ranks} "
                                           "tensors; evsim concatenates (batch, C, H, W) tensors "
                                           "along the channels (axis 1) only")
        sources = [self._layer(v, index, node) for v in inputs]
        self._set(node, _Layer(self._add(L.Concat(), sources, (index,))))

    def _pad(self, index, node, inputs) -> None:
        attrs = self._attributes(node)
        if self.opset < 11:
            pads, value = attrs.get("pads", ()), attrs.get("value", 0.0)
        else:
            pads = self._constant(inputs, 1, "pads", index, node)
            value = (0.0 if len(inputs) < 3 or inputs[2] is None else
                     self._constant(inputs, 2, "constant_value", index, node))
            if len(inputs) > 3 and inputs[3] is not None:
                raise _node_error(index, node, "its axes input is not supported; give pads for "
                                               "every axis")
        pads = [int(p) for p in np.asarray(pads).ravel()]
        mode = attrs.get("mode", "constant")
        if mode != "constant" or np.any(np.asarray(value) != 0):
            raise _node_error(index, node, f"pads with mode '{mode}' and value "
                                           f"{np.asarray(value).tolist()}; evsim pads with zeros "
                                           "only (mode 'constant', value 0)")
        if len(pads) != 8 or any(pads[k] for k in (0, 1, 4, 5)) or min(pads) < 0:
            raise _node_error(index, node, f"pads {pads}; evsim pads H and W of a (batch, C, H, "
                                           "W) tensor by >= 0 only (no cropping)")
        layer = L.Pad((pads[2], pads[6], pads[3], pads[7]))
        self._set(node, _Layer(self._add(layer, [self._layer(inputs[0], index, node)],
                                         (index,))))

    def _resize_scale(self, index, node, inputs, size: tuple) -> tuple[int, int]:
        """The integer (H, W) scales of a Resize/Upsample from its scales or sizes input."""
        if node.op_type == "Upsample" and self.opset < 9:
            scales = np.asarray(self._attributes(node).get("scales", ()), np.float64)
        elif node.op_type == "Upsample":
            scales = self._constant(inputs, 1, "scales", index, node).astype(np.float64)
        elif len(inputs) > 3 and inputs[3] is not None:
            scales = self._sizes_scale(index, node, inputs[3], size)
        else:
            scales = self._constant(inputs, 2, "scales", index, node).astype(np.float64)
        scales = scales.ravel()
        if (len(scales) != 4 or scales[0] != 1 or scales[1] != 1
                or np.any(scales[2:] != np.round(scales[2:])) or np.any(scales[2:] < 1)):
            raise _node_error(index, node, f"resizes by scales {scales.tolist()}; evsim "
                                           "upsamples H and W of a (batch, C, H, W) tensor by "
                                           "integer scales >= 1 only")
        return int(scales[2]), int(scales[3])

    def _sizes_scale(self, index, node, value: _Value, size: tuple) -> np.ndarray:
        """Scales from a Resize's sizes input, which may hold the batch size (computed from
        Shape): then one per probe batch size, each (batch, C, H', W')."""
        if not isinstance(value, _Const):
            raise _node_error(index, node, "its sizes (input 3) must be computable at import")
        found = set()
        for k, sizes in enumerate(value.values):
            sizes = np.asarray(sizes, np.float64).ravel()
            batch = self.probes[min(k, len(self.probes) - 1)] if len(value.values) > 1 else \
                sizes[0]
            found.add(tuple(sizes / np.array((batch, *size), np.float64)) if len(sizes) == 4
                      else tuple(sizes))
        if len(found) != 1:
            raise _node_error(index, node, f"its sizes {sorted(found)} depend on the batch size")
        return np.array(found.pop())

    def _resize(self, index, node, inputs) -> None:
        attrs = self._attributes(node)
        source = self._layer(inputs[0], index, node)
        size = self.builder.shape(source)
        if len(size) != 3:
            raise _node_error(index, node, f"resizes a tensor of per-image shape {size}; evsim "
                                           "upsamples (batch, C, H, W) tensors only")
        scale = self._resize_scale(index, node, inputs, size)
        mode = attrs.get("mode", "nearest")
        transform = attrs.get("coordinate_transformation_mode",
                              "asymmetric" if node.op_type == "Upsample" else "half_pixel")
        unsupported = [k for k in ("antialias", "exclude_outside") if attrs.get(k, 0)]
        layer = None
        nearest_mode = attrs.get("nearest_mode",
                                 "round_prefer_floor" if node.op_type == "Resize" else "floor")
        if unsupported:
            pass  # refused below
        elif mode == "nearest" and transform == "asymmetric" and nearest_mode == "floor":
            layer = L.Upsample(scale, "nearest")
        elif mode in ("linear", "bilinear") and transform in ("align_corners", "half_pixel",
                                                              "pytorch_half_pixel"):
            # at integer scales >= 1 half_pixel and pytorch_half_pixel agree with PyTorch
            layer = L.Upsample(scale, "bilinear", align_corners=transform == "align_corners")
        if layer is None:
            raise _node_error(index, node, f"mode '{mode}' with coordinate_transformation_mode "
                                           f"'{transform}', nearest_mode '{nearest_mode}'"
                                           + (f" and {unsupported}" if unsupported else "")
                                           + " is not supported; evsim upsamples nearest "
                                           "(asymmetric, floor: PyTorch's 'nearest') or "
                                           "bilinear (half_pixel or align_corners)")
        self._set(node, _Layer(self._add(layer, [source], (index,))))

    _HANDLERS: dict[str, Callable] = {
        "Conv": _conv, "ConvTranspose": _conv_transpose, "Sigmoid": _output_head,
        "Softmax": _output_head, "Gemm": _gemm, "MatMul": _matmul, "BatchNormalization": _batchnorm,
        "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_avgpool,
        "ReduceMean": _reduce_mean,
        "Flatten": _flatten, "Reshape": _reshape, "Shape": _shape_of, "Identity": _passthrough,
        "Dropout": _passthrough, "Clip": _clip, "Concat": _concat, "Pad": _pad,
        "Resize": _resize, "Upsample": _resize, "LeakyRelu": _leaky_relu,
        **dict.fromkeys(_NARY, _elementwise), **dict.fromkeys(_UNARY, _unary),
    }


def load_onnx(path_or_model: str | os.PathLike | onnx.ModelProto, *,
              input_name: str | None = None) -> Network:
    """Read an ONNX model into an evsim :class:`~evsim.network.Network`.

    Parameters
    ----------
    path_or_model:
        A ``.onnx`` file (external data files are read from its folder) or an
        ``onnx.ModelProto`` with its data loaded.
    input_name:
        Name of the network's Input layer; default: the ONNX graph input's name.

    Returns
    -------
    The ANN, per-image shapes channel-first. Layers are named after the ONNX
    nodes (``/`` becomes ``.``); an activation written as a chain of nodes is
    named after the module path they share.

    Raises
    ------
    UnsupportedOperatorError
        For a node evsim cannot express, naming its op type, name and index.
    ValueError
        For a file that is not an ONNX model, or a graph without exactly one
        float input ``(batch, C, H, W)`` / ``(batch, features)`` and one output.
    """
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError as err:
        raise ImportError("evsim.io.load_onnx needs the onnx package: pip install evsim[onnx]"
                          ) from err
    if isinstance(path_or_model, onnx.ModelProto):
        return _import(path_or_model, "ONNX model", input_name)
    origin = os.fspath(path_or_model)
    with reading(origin, "ONNX model"):
        try:
            model = onnx.load(origin, load_external_data=True)
        except onnx.checker.ValidationError as err:  # external data missing or misplaced
            raise EvsimFileError(origin, f"its external tensor data cannot be read ({err}); "
                                 "keep the data files where the model names them") from None
        except (DecodeError, ValueError, UnicodeDecodeError) as err:
            raise EvsimFileError(origin, f"not a readable ONNX model ({err})") from None
        return _import(model, origin, input_name)


#: The oldest ONNX opset the importer reads (older operator versions differ in attributes).
OLDEST_OPSET = 7


def _check_model(model: onnx.ModelProto) -> None:
    """Raise, saying what is odd, for a model whose opset evsim cannot read or that the ONNX
    checker refuses (two nodes writing one name, a dangling input, ...)."""
    import onnx

    opsets = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not opsets:
        raise EvsimValueError("declares no ONNX opset (opset_import), so its operators' "
                              "versions are unknown; re-export it with an opset")
    newest = onnx.defs.onnx_opset_version()
    if opsets[0] > newest:
        raise EvsimValueError(f"uses opset {opsets[0]}, newer than the installed onnx package "
                              f"knows ({newest}); update onnx or export with opset <= {newest}")
    if opsets[0] < OLDEST_OPSET:
        raise EvsimValueError(
            f"uses opset {opsets[0]}, older than the oldest evsim reads ({OLDEST_OPSET}); "
            "upgrade it with onnx.version_converter.convert_version(model, 13)")
    if any(node.domain not in ("", "ai.onnx") for node in model.graph.node):
        return  # the checker would refuse the foreign operator; the importer names it
    unshaped = [value.type.tensor_type for value in
                (*model.graph.input, *model.graph.output, *model.graph.value_info)
                if value.type.HasField("tensor_type")
                and not value.type.tensor_type.HasField("shape")]
    try:  # the checker wants every shape declared; runtimes, and evsim, infer them
        for tensor in unshaped:
            tensor.shape.SetInParent()
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise EvsimValueError(f"the ONNX checker refuses it: {first}") from None
    except ValueError:  # a model of over 2 GB in memory, which the checker cannot take
        pass
    finally:
        for tensor in unshaped:
            tensor.ClearField("shape")


def _import(model: onnx.ModelProto, origin: str, input_name: str | None) -> Network:
    if not model.HasField("graph") or not model.graph.output:
        raise EvsimValueError(f"{origin}: not an ONNX model (it has no graph with an output)")
    try:
        _check_model(model)
        return _Importer(model, input_name).run()
    except UnsupportedOperatorError:
        raise
    except ValueError as err:
        raise EvsimValueError(f"{origin}: {err}") from None


__all__ = ["load_onnx", "UnsupportedOperatorError", "SUPPORTED"]
