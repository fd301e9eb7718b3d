"""Import a PyTorch module as an evsim :class:`~evsim.network.Network` (needs the ``torch`` extra).

:func:`from_torch` traces the module with ``torch.fx`` (custom blocks and
nested ``Sequential`` are traced through) and maps every node of the traced
graph to an evsim layer, with inference-mode semantics (BatchNorm uses its
running statistics, Dropout is the identity). Every node is either mapped or
raises :class:`UnsupportedModuleError` naming it: nothing is skipped.

Mapped (modules, functions and tensor methods):

- ``nn.Conv2d`` (zero padding, ``"same"`` when symmetric), ``nn.Linear``,
  ``nn.BatchNorm1d`` / ``nn.BatchNorm2d`` (running statistics);
- ReLU: ``nn.ReLU``, ``F.relu``, ``torch.relu``, ``x.relu()``,
  ``torch.clamp(x, min=0)``;
- Clip(λ): ``nn.Hardtanh(0, λ)``, ``nn.ReLU6``, ``F.hardtanh``, ``F.relu6``,
  ``torch.clamp(x, 0, λ)`` / ``x.clamp(0, λ)``, :class:`evsim.training.ClipReLU`;
- QCFS: :class:`evsim.training.QCFS` (learned λ, levels, shift);
- LeakyReLU(α), 0 < α ≤ 1: ``nn.LeakyReLU``, ``F.leaky_relu`` (α = 0: ReLU);
- ``nn.MaxPool2d`` / ``F.max_pool2d``, ``nn.AvgPool2d`` / ``F.avg_pool2d``
  (``ceil_mode``, ``count_include_pad``), ``nn.AdaptiveAvgPool2d(1)`` /
  ``F.adaptive_avg_pool2d(x, 1)`` → GlobalAvgPool;
- Flatten: ``nn.Flatten()``, ``torch.flatten(x, 1)``, ``x.flatten(1)``,
  ``x.view(x.size(0), -1)``, ``x.reshape(x.shape[0], -1)``;
- Add: ``a + b``, ``torch.add(a, b)``, ``a.add(b)`` between two tensors;
- ``torch.cat(xs, dim=1)`` → Concat; ``nn.ZeroPad2d`` / ``F.pad`` (constant 0) → Pad;
  ``nn.Upsample`` / ``F.interpolate`` (nearest or bilinear, integer scales) → Upsample;
- ``nn.ConvTranspose2d`` (zero padding; stride, padding, output_padding, dilation, groups);
- output heads, as the network's output only: ``nn.Sigmoid``, ``torch.sigmoid``,
  ``F.sigmoid``, ``x.sigmoid()``; ``nn.Softmax(dim=1)``, ``F.softmax(x, dim=1)``,
  ``torch.softmax(x, 1)``, ``x.softmax(1)`` (over the channels or features);
- no-ops: ``nn.Identity``, ``nn.Dropout`` / ``Dropout1d`` / ``Dropout2d``, ``F.dropout``.
"""

from __future__ import annotations

import inspect
import math
import operator
import os
import re
from collections.abc import Sequence

import numpy as np

from .. import layers as L
from ..network import Network, NetworkBuilder
from ..extras import require
from .errors import UnsupportedModelError


class UnsupportedModuleError(UnsupportedModelError):
    """A traced node has no evsim equivalent; the message names the fx node and where it is."""


def _require_torch():
    return require("torch", "evsim.io.from_torch")


# Reference signatures, used only to bind a traced call's positional and keyword arguments.
def _sig_unary(input, inplace=False): ...
def _sig_hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False): ...
def _sig_leaky_relu(input, negative_slope=0.01, inplace=False): ...
def _sig_clamp(input, min=None, max=None): ...
def _sig_max_pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                  return_indices=False): ...
def _sig_avg_pool(input, kernel_size, stride=None, padding=0, ceil_mode=False,
                  count_include_pad=True, divisor_override=None): ...
def _sig_adaptive(input, output_size): ...
def _sig_flatten(input, start_dim=0, end_dim=-1): ...
def _sig_add(input, other, alpha=1): ...
def _sig_dropout(input, p=0.5, training=True, inplace=False): ...
def _sig_size(input, dim=None): ...
def _sig_getattr(input, name): ...
def _sig_getitem(input, index): ...
def _sig_cat(tensors, dim=0): ...
def _sig_pad(input, pad, mode="constant", value=None): ...
def _sig_interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                     recompute_scale_factor=None, antialias=False): ...
def _sig_softmax(input, dim=None, _stacklevel=3, dtype=None): ...


class _Marker:
    """A traced non-tensor value: the whole shape, or the batch size."""

    def __init__(self, what: str):
        self.what = what

    def __repr__(self) -> str:
        return f"<{self.what}>"


_SHAPE, _BATCH = _Marker("shape"), _Marker("batch size")
_UNMAPPED = ("has no evsim equivalent; evsim maps the modules and functions listed in "
             "help(evsim.io.torch)")


def _pair(value) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return tuple(int(v) for v in value)  # type: ignore[return-value]


def from_torch(module, input_shape: Sequence[int]) -> Network:
    """Trace ``module`` with ``torch.fx`` and return the equivalent evsim network.

    Parameters
    ----------
    module:
        A ``torch.nn.Module`` built from the operations listed in this
        module's docstring. It is read with inference semantics (BatchNorm
        running statistics, Dropout off) whatever its ``training`` flag;
        parameters are copied as NumPy arrays of their dtype.
    input_shape:
        Per-image input shape without the batch axis, e.g. ``(1, 28, 28)``.

    Returns
    -------
    The :class:`~evsim.network.Network`; layer names are the fx node names
    (``conv1``, ``layer1_0_relu``, ``add``, ...). ``evsim.forward`` on it
    matches ``module.eval()(x)`` up to float rounding.

    Raises
    ------
    UnsupportedModuleError
        For a node with no evsim equivalent (e.g. ``nn.Tanh``, ``torch.cat``)
        or a module ``torch.fx`` cannot trace; the message names the node, its
        module path or function, and the source line when known.
    """
    torch = _require_torch()
    return _Importer(torch, module, input_shape).network()


def module_layer_names(module, input_shape: Sequence[int]) -> dict[str, str]:
    """``{module path: evsim layer name}`` for the submodules :func:`from_torch` maps to layers."""
    torch = _require_torch()
    importer = _Importer(torch, module, input_shape)
    return {node.target: node.name for node in importer.graph.nodes
            if node.op == "call_module"}


class _Importer:
    def __init__(self, torch, module, input_shape: Sequence[int]):
        from torch import fx, nn
        from torch.nn import functional as F

        from .. import torch_activations as training

        self.torch, self.nn = torch, nn
        self.torch_dir = os.path.dirname(torch.__file__)
        self.builder = NetworkBuilder(tuple(input_shape))
        self.values: dict = {}
        leaves = (training.ClipReLU, training.QCFS)

        class Tracer(fx.Tracer):
            def is_leaf_module(self, m, qualified_name: str) -> bool:
                return isinstance(m, leaves) or super().is_leaf_module(m, qualified_name)

        tracer = Tracer()
        tracer.record_stack_traces = True
        if tracer.is_leaf_module(module, ""):  # fx traces into a root; keep it one layer
            wrapper = nn.Sequential()
            wrapper.add_module(type(module).__name__.lower(), module)
            module = wrapper
        try:
            self.graph = tracer.trace(module)
        except Exception as err:  # fx raises many kinds (TraceError, TypeError, ...)
            raise UnsupportedModuleError(
                f"torch.fx cannot trace {type(module).__name__}: {err}. Data-dependent control "
                "flow cannot be traced; rewrite forward() without it") from err
        fx.GraphModule(module, self.graph).graph.eliminate_dead_code()
        self.modules = dict(module.named_modules())
        self.training = training
        self.module_types = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Conv2d,
                             nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.Hardtanh,
                             training.ClipReLU, training.QCFS, nn.MaxPool2d, nn.AvgPool2d,
                             nn.AdaptiveAvgPool2d, nn.Flatten, nn.ZeroPad2d, nn.Upsample,
                             nn.LeakyReLU, nn.ConvTranspose2d, nn.Sigmoid, nn.Softmax)
        relu = ("relu", _sig_unary)
        clip = ("clamp", _sig_clamp)
        self.functions = {
            F.relu: relu, torch.relu: relu, torch.relu_: relu,
            F.relu6: ("relu6", _sig_unary), F.hardtanh: ("hardtanh", _sig_hardtanh),
            F.leaky_relu: ("leaky_relu", _sig_leaky_relu),
            torch.clamp: clip, torch.clip: clip,
            F.max_pool2d: ("max_pool", _sig_max_pool), F.avg_pool2d: ("avg_pool", _sig_avg_pool),
            F.adaptive_avg_pool2d: ("adaptive", _sig_adaptive),
            torch.flatten: ("flatten", _sig_flatten),
            operator.add: ("add", _sig_add), torch.add: ("add", _sig_add),
            F.dropout: ("identity", _sig_dropout),
            getattr: ("getattr", _sig_getattr), operator.getitem: ("getitem", _sig_getitem),
            torch.cat: ("cat", _sig_cat), torch.concat: ("cat", _sig_cat),
            F.pad: ("pad", _sig_pad), F.interpolate: ("interpolate", _sig_interpolate),
            torch.sigmoid: ("sigmoid", _sig_unary), F.sigmoid: ("sigmoid", _sig_unary),
            torch.softmax: ("softmax", _sig_softmax), F.softmax: ("softmax", _sig_softmax),
        }
        self.methods = {"relu": relu, "relu_": relu, "clamp": clip, "clip": clip,
                        "flatten": ("flatten", _sig_flatten), "add": ("add", _sig_add),
                        "size": ("size", _sig_size), "sigmoid": ("sigmoid", _sig_unary),
                        "softmax": ("softmax", _sig_softmax)}

    # -- driver ------------------------------------------------------------------
    def network(self) -> Network:
        output = None
        for node in self.graph.nodes:
            if node.op == "placeholder":
                if self.values:
                    raise self._error(node, "is a second input; evsim networks have one input")
                self.values[node] = self.builder.input
            elif node.op == "output":
                (result,) = node.args
                if not isinstance(self.values.get(result), str):
                    raise self._error(node, "returns something other than one tensor; return "
                                      "a single output tensor")
                output = self.values[result]
            elif node.op == "get_attr":
                raise self._error(node, "reads a parameter or buffer directly; use a module "
                                  "(nn.Conv2d, nn.Linear, ...) that owns it")
            elif node.op == "call_module":
                self.values[node] = self._module(node, self.modules[node.target])
            elif node.op == "call_function" and node.target in self.functions:
                self._call(node, *self.functions[node.target])
            elif node.op == "call_method" and node.target in self.methods:
                self._call(node, *self.methods[node.target])
            elif node.op == "call_method" and node.target in ("view", "reshape"):
                self.values[node] = self._reshape(node, node.args[0], node.args[1:])
            else:
                raise self._error(node, _UNMAPPED)
        return self.builder.build(output=output)

    def _error(self, node, why: str) -> UnsupportedModuleError:
        if node.op == "call_module":
            m = self.modules[node.target]
            what = f"call_module '{node.target}': {type(m).__module__}.{type(m).__name__}"
        elif node.op == "call_function":
            t = node.target
            name = getattr(t, "__name__", repr(t))
            what = f"call_function {getattr(t, '__module__', None) or ''}.{name}"
        else:
            what = f"{node.op} '{node.target}'"
        return UnsupportedModuleError(f"fx node '{node.name}' ({what}){self._where(node)} {why}")

    def _where(self, node) -> str:
        """' at file:line (code)' of the innermost frame outside torch, when traced."""
        frames = re.findall(r'File "([^"]+)", line (\d+), in \S+\n\s*(.*)',
                            node.meta.get("stack_trace") or "")
        frames = [f for f in frames if not f[0].startswith(self.torch_dir)]
        if not frames:
            return ""
        path, line, code = frames[-1]
        return f" at {path}:{line} ({code.strip()})"

    def _layer(self, node, layer: L.Layer, *inputs) -> str:
        names = [self._tensor(node, x) for x in inputs]
        return self.builder.add_layer(layer, *names, name=node.name)

    def _tensor(self, node, value) -> str:
        name = self.values.get(value) if isinstance(value, self.torch.fx.Node) else None
        if not isinstance(name, str):
            raise self._error(node, f"takes {value!r} where evsim needs a tensor computed from "
                              "the input")
        return name

    # -- modules ------------------------------------------------------------------
    def _module(self, node, m) -> str:
        nn = self.nn
        if not isinstance(m, self.module_types):
            raise self._error(node, _UNMAPPED)
        if len(node.args) != 1 or node.kwargs:
            raise self._error(node, "is called with several arguments; evsim layers take one "
                              "tensor")
        (x,) = node.args
        if isinstance(m, (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)):
            return self._tensor(node, x)
        if isinstance(m, nn.Conv2d):
            return self._layer(node, self._conv(node, m), x)
        if isinstance(m, nn.ConvTranspose2d):
            return self._layer(node, self._conv_transpose(node, m), x)
        if isinstance(m, nn.Sigmoid):
            return self._layer(node, L.Sigmoid(), x)
        if isinstance(m, nn.Softmax):
            return self._softmax(node, x, m.dim, None)
        if isinstance(m, nn.Linear):
            return self._layer(node, L.Dense(self._numpy(m.weight), self._numpy(m.bias)), x)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.running_mean is None:
                raise self._error(node, "has no running statistics (track_running_stats="
                                  "False); evsim needs inference-mode BatchNorm")
            mean, var = self._numpy(m.running_mean), self._numpy(m.running_var)
            gamma = self._numpy(m.weight) if m.affine else np.ones_like(mean)
            beta = self._numpy(m.bias) if m.affine else np.zeros_like(mean)
            return self._layer(node, L.BatchNorm(gamma, beta, mean, var, eps=m.eps), x)
        if isinstance(m, nn.ReLU):
            return self._layer(node, L.ReLU(), x)
        if isinstance(m, nn.LeakyReLU):
            return self._leaky_relu(node, x, m.negative_slope)
        if isinstance(m, (nn.ReLU6, nn.Hardtanh)):  # ReLU6 is a Hardtanh(0, 6)
            return self._clip(node, x, m.min_val, m.max_val)
        if isinstance(m, self.training.ClipReLU):
            return self._layer(node, L.Clip(float(m.lam.detach())), x)
        if isinstance(m, self.training.QCFS):
            return self._layer(node, L.QCFS(float(m.lam.detach()), m.levels, m.shift), x)
        if isinstance(m, nn.MaxPool2d):
            return self._max_pool(node, x, m.kernel_size, m.stride, m.padding, m.dilation,
                                  m.ceil_mode, m.return_indices)
        if isinstance(m, nn.AvgPool2d):
            return self._avg_pool(node, x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                  m.count_include_pad, m.divisor_override)
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return self._adaptive(node, x, m.output_size)
        if isinstance(m, nn.ZeroPad2d):
            return self._pad(node, x, m.padding, "constant", 0.0)
        if isinstance(m, nn.Upsample):
            return self._interpolate(node, x, m.size, m.scale_factor, m.mode, m.align_corners)
        return self._flatten(node, x, m.start_dim, m.end_dim)

    def _numpy(self, tensor):
        return None if tensor is None else tensor.detach().cpu().numpy()

    def _conv(self, node, m) -> L.Conv2d:
        if m.padding_mode != "zeros":
            raise self._error(node, f"pads with '{m.padding_mode}'; evsim convolutions pad "
                              "with zeros")
        padding = m.padding
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
            if any(t % 2 for t in total):
                raise self._error(node, "uses padding='same' with an even kernel span, which "
                                  "pads asymmetrically; evsim pads symmetrically")
            padding = tuple(t // 2 for t in total)
        return L.Conv2d(self._numpy(m.weight), self._numpy(m.bias), stride=m.stride,
                        padding=padding, dilation=m.dilation, groups=m.groups)

    def _conv_transpose(self, node, m) -> L.ConvTranspose2d:
        if m.padding_mode != "zeros":
            raise self._error(node, f"pads with '{m.padding_mode}'; evsim's ConvTranspose2d "
                              "pads with zeros")
        return L.ConvTranspose2d(self._numpy(m.weight), self._numpy(m.bias), stride=m.stride,
                                 padding=m.padding, output_padding=m.output_padding,
                                 dilation=m.dilation, groups=m.groups)

    def _softmax(self, node, x, dim, dtype) -> str:
        rank = len(self.builder.shape(self._tensor(node, x))) + 1  # with the batch axis
        if dim is None or dtype is not None or not -rank <= dim < rank or dim % rank != 1:
            raise self._error(node, f"takes a softmax over dim={dim}"
                              + (f" in dtype {dtype}" if dtype is not None else "")
                              + "; evsim has Softmax over the channels or features only "
                              "(dim=1, no dtype)")
        return self._layer(node, L.Softmax(), x)

    # -- functions and methods ------------------------------------------------------
    def _call(self, node, kind: str, signature) -> None:
        try:
            bound = inspect.signature(signature).bind(*node.args, **node.kwargs)
        except TypeError as err:
            raise self._error(node, f"has arguments evsim does not understand: {err}") from None
        bound.apply_defaults()
        a = bound.arguments
        if kind == "cat":
            self.values[node] = self._cat(node, a["tensors"], a["dim"])
            return
        x = a["input"]
        if kind == "relu":
            value = self._layer(node, L.ReLU(), x)
        elif kind == "relu6":
            value = self._clip(node, x, 0.0, 6.0)
        elif kind == "hardtanh":
            value = self._clip(node, x, a["min_val"], a["max_val"])
        elif kind == "leaky_relu":
            value = self._leaky_relu(node, x, a["negative_slope"])
        elif kind == "clamp":
            value = self._clip(node, x, a["min"], a["max"])
        elif kind == "max_pool":
            value = self._max_pool(node, x, a["kernel_size"], a["stride"], a["padding"],
                                   a["dilation"], a["ceil_mode"], a["return_indices"])
        elif kind == "avg_pool":
            value = self._avg_pool(node, x, a["kernel_size"], a["stride"], a["padding"],
                                   a["ceil_mode"], a["count_include_pad"], a["divisor_override"])
        elif kind == "adaptive":
            value = self._adaptive(node, x, a["output_size"])
        elif kind == "flatten":
            value = self._flatten(node, x, a["start_dim"], a["end_dim"])
        elif kind == "add":
            if a["alpha"] != 1:
                raise self._error(node, f"adds with alpha={a['alpha']}; evsim's Add has no "
                                  "weights")
            value = self._layer(node, L.Add(), x, a["other"])
        elif kind == "sigmoid":
            value = self._layer(node, L.Sigmoid(), x)
        elif kind == "softmax":
            value = self._softmax(node, x, a["dim"], a["dtype"])
        elif kind == "identity":
            value = self._tensor(node, x)
        elif kind in ("pad", "interpolate"):
            value = (self._pad(node, x, a["pad"], a["mode"], a["value"]) if kind == "pad" else
                     self._interpolate(node, x, a["size"], a["scale_factor"], a["mode"],
                                       a["align_corners"], a["antialias"]))
        elif kind == "getattr":
            if a["name"] != "shape":
                raise self._error(node, f"reads the attribute '{a['name']}'")
            self._tensor(node, x)
            value = _SHAPE
        elif kind == "getitem":
            if self.values.get(x) is not _SHAPE or a["index"] != 0:
                raise self._error(node, "indexes something other than x.shape[0]")
            value = _BATCH
        else:  # size
            self._tensor(node, x)
            if a["dim"] not in (None, 0):
                raise self._error(node, "reads a size other than the batch size x.size(0)")
            value = _SHAPE if a["dim"] is None else _BATCH
        self.values[node] = value

    def _leaky_relu(self, node, x, slope) -> str:
        """LeakyReLU(α) for 0 < α ≤ 1 (signed neurons, θ⁻ = θ/α), ReLU for α = 0."""
        if not isinstance(slope, (int, float)) or not 0 <= slope <= 1:
            raise self._error(node, f"has negative_slope {slope!r}; evsim's LeakyReLU needs a "
                              "constant slope in [0, 1]")
        return self._layer(node, L.LeakyReLU(float(slope)) if slope > 0 else L.ReLU(), x)

    def _clip(self, node, x, low, high) -> str:
        for bound in (low, high):
            if bound is not None and not isinstance(bound, (int, float)):
                raise self._error(node, "clamps to a tensor; evsim needs constant bounds "
                                  "(or evsim.training.ClipReLU for a trainable one)")
        if low is None or low != 0:
            raise self._error(node, f"clamps to [{low}, {high}]; evsim's ReLU and Clip clamp "
                              "from 0")
        if high is None:
            return self._layer(node, L.ReLU(), x)
        return self._layer(node, L.Clip(float(high)), x)

    def _max_pool(self, node, x, kernel, stride, padding, dilation, ceil_mode,
                  return_indices) -> str:
        if _pair(dilation) != (1, 1) or return_indices:
            raise self._error(node, "uses dilation or return_indices, which evsim's MaxPool2d "
                              "does not have")
        return self._layer(node, L.MaxPool2d(kernel, stride or None, padding, ceil_mode), x)

    def _avg_pool(self, node, x, kernel, stride, padding, ceil_mode, count_include_pad,
                  divisor_override) -> str:
        if divisor_override is not None:
            raise self._error(node, "uses divisor_override, which evsim's AvgPool2d does not "
                              "have")
        return self._layer(node, L.AvgPool2d(kernel, stride or None, padding, ceil_mode,
                                             count_include_pad), x)

    def _adaptive(self, node, x, output_size) -> str:
        if output_size not in (1, (1, 1), [1, 1]):
            raise self._error(node, f"pools adaptively to {output_size}; evsim maps only "
                              "output size 1 (GlobalAvgPool); use AvgPool2d for the rest")
        return self._layer(node, L.GlobalAvgPool(), x)

    def _cat(self, node, tensors, dim) -> str:
        if not isinstance(tensors, (list, tuple)) or len(tensors) < 2:
            raise self._error(node, "concatenates fewer than two tensors")
        ranks = {len(self.builder.shape(self._tensor(node, t))) for t in tensors}
        if ranks != {3} or dim not in (1, -3):
            raise self._error(node, f"concatenates along dim {dim}; evsim concatenates "
                              "(batch, C, H, W) tensors along the channels only: dim=1")
        return self._layer(node, L.Concat(), *tensors)

    def _pad(self, node, x, pad, mode, value) -> str:
        pad = (pad,) * 4 if isinstance(pad, int) else tuple(pad)
        if mode != "constant" or value not in (None, 0, 0.0):
            raise self._error(node, f"pads with mode '{mode}' and value {value}; evsim pads "
                              "with zeros only (mode 'constant', value 0)")
        if len(pad) != 4 or min(pad) < 0:
            raise self._error(node, f"pads by {pad}; evsim pads the last two dims (left, "
                              "right, top, bottom) by >= 0 only")
        left, right, top, bottom = pad
        return self._layer(node, L.Pad((top, bottom, left, right)), x)

    def _interpolate(self, node, x, size, scale_factor, mode, align_corners,
                     antialias=False) -> str:
        shape = self.builder.shape(self._tensor(node, x))
        if size is not None and len(shape) == 3:
            size = _pair(size)
            scale = tuple(s / n for s, n in zip(size, shape[1:]))
        else:
            scale = scale_factor if isinstance(scale_factor, (tuple, list)) else \
                (scale_factor, scale_factor)
        if (len(shape) != 3 or None in scale or any(float(s) != int(s) or s < 1 for s in scale)
                or mode not in ("nearest", "bilinear") or antialias):
            raise self._error(node, f"resizes with mode '{mode}', scale {scale}"
                              + (", antialias" if antialias else "") + "; evsim upsamples "
                              "(batch, C, H, W) tensors by integer scales, nearest or bilinear")
        return self._layer(node, L.Upsample(tuple(int(s) for s in scale), mode,
                                            bool(align_corners) and mode == "bilinear"), x)

    def _flatten(self, node, x, start_dim, end_dim) -> str:
        last = len(self.builder.shape(self._tensor(node, x)))  # batched index of the last dim
        if start_dim != 1 or end_dim not in (-1, last):
            raise self._error(node, f"flattens dims {start_dim}..{end_dim}; evsim flattens "
                              "each image whole: flatten(x, 1)")
        return self._layer(node, L.Flatten(), x)

    def _reshape(self, node, x, shape) -> str:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        name = self._tensor(node, x)
        size = math.prod(self.builder.shape(name))
        batch = [self.values.get(s, s) if isinstance(s, self.torch.fx.Node) else s
                 for s in shape]
        if len(batch) == 2 and ((batch[0] is _BATCH and batch[1] in (-1, size))
                                or (batch[0] == -1 and batch[1] == size)):
            return self._layer(node, L.Flatten(), x)
        raise self._error(node, f"reshapes to {tuple(shape)}; evsim maps only a flatten per "
                          "image: x.view(x.size(0), -1)")


__all__ = ["from_torch", "UnsupportedModuleError"]
