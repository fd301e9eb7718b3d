"""NIR interchange: spiking networks to and from the Neuromorphic Intermediate Representation.

Needs the ``nir`` extra (``pip install evsim[nir]``: nir, numpy, h5py).

Conventions (NIR graphs are per sample, channel first, without a batch axis):

- Each spiking layer is a ``nir.IF`` with ``r = 1/dt`` (so a reader stepping
  with ``dt`` integrates ``dt·r·I = I`` per step, as evsim does), full
  per-neuron ``v_threshold = θ`` and ``v_reset = 0``.
- NIR spikes have amplitude 1 while evsim's carry θ: the exporter multiplies
  the next weight layer's input columns (Dense) or input channels (Conv2d) by
  the θ of the spikes it reads, and the importer divides them out again,
  taking θ from ``v_threshold``. A convolution or pooling layer therefore
  needs spikes whose θ is the same across each channel.
- Average pooling is exported as ``nir.SumPool2d``; its 1/k² (the per-window
  divisor) is folded into the next weights the same way. Where a spike
  amplitude other than 1 reaches a node without weights — an identity skip
  into a residual sum, the graph output, or pooled spikes read by neurons — a
  ``nir.Scale`` node carries it explicitly (readers without ``Scale``, such
  as Norse, then cannot load the graph). NIR 1.0 has no max pooling: exporting
  MaxPool is an error naming the layer, unless ``extensions=True`` asks for
  evsim's ``EvsimMaxPool2d`` node (:mod:`evsim.io.nir_extensions`), which
  other NIR readers reject rather than misread.
- A residual ``Add`` is not a node: its inputs are edges into the node that
  reads it (NIR sums multiple inputs). Flatten is ``nir.Flatten(start_dim=0)``.
  The output layer is the graph output; evsim sums it over steps.
- What NIR's IF cannot say goes into ``metadata`` and a warning on export:
  reset by subtraction, the initial potential ``v_init``, burst Γ (per IF
  node), dt, the synchronous time scheme and the firing rule (graph). evsim
  fires at ``v ≥ θ`` where NIR's IF fires at ``v > v_threshold``: the two
  differ only when a membrane lands exactly on θ.

Import reads graphs from other tools (Norse, hand-written, ...): IF, Affine,
Linear, Conv2d, Flatten, SumPool2d, AvgPool2d, Scale, evsim's EvsimMaxPool2d,
and an integrator ``I`` right before the output (evsim sums the output anyway). Nodes with leak,
synaptic dynamics or delays (LIF, CubaLIF, LI, CubaLI, Delay, Threshold,
Conv1d, subgraphs) have no evsim equivalent and raise :class:`NIRImportError`
naming the node. A leading axis of size 1 on a 2-D or 4-D ``Input`` is read
as a batch axis (nirtorch-based exporters write one).
"""

from __future__ import annotations

import errno
import io
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import ann_ops
from .._version import __version__
from ..extras import require
from .. import layers as L
from ..errors import EvsimError, EvsimTypeError, EvsimValueError
from ..network import NetworkBuilder
from ..signals import check_spiking_graph
from ..spiking import NeuronSpec, SpikingNetwork
from .atomic import atomic_file
from .errors import UnsupportedModelError, reading
from .nir_extensions import MAX_POOL_TYPE, max_pool_node, read_graph

_FIRING_RULE = "v >= v_threshold"


class NIRExportError(EvsimError, ValueError):
    """The spiking network uses something NIR cannot express; the message names the layer."""


class NIRImportError(UnsupportedModelError):
    """The NIR graph has a node or wiring evsim cannot represent; the message names the node."""


class NIRExportWarning(UserWarning):
    """The exported graph relies on metadata that NIR readers may ignore."""


#: The kinds NIR 1.x cannot express, and what it lacks for them.
_NO_NODE = {L.Concat: "concatenation", L.Pad: "zero-padding", L.Upsample: "upsampling"}

def _require_nir():
    return require("nir", "evsim.io.nir (NIR export and import)")


def _channel_values(values: np.ndarray) -> np.ndarray:
    """``values`` (C, H, W) -> (C,); ValueError when they vary within a channel."""
    flat = values.reshape(values.shape[0], -1)
    if not np.all(flat == flat[:, :1]):
        raise EvsimValueError(
            "it reads values whose scale varies within a channel (spike "
            "amplitudes θ, or an average pool's divisor with count_include_pad="
            "False); a shared kernel needs one θ per channel and uniform divisors")
    return flat[:, 0]


def _conv_scale(channel: np.ndarray, weight_shape: tuple, groups: int) -> np.ndarray:
    """Per-input-channel factors (C_in,) as a grouped kernel's (C_out, C_in/groups, 1, 1)."""
    per_group = channel.reshape(groups, -1)
    return np.repeat(per_group, weight_shape[0] // groups, axis=0)[:, :, None, None]


# -- export ------------------------------------------------------------------------------------

def to_nir(snn: SpikingNetwork, dt: float = 1.0, *, extensions: bool = False):
    """Export ``snn`` as a ``nir.NIRGraph`` (see the module docstring for the conventions).

    Parameters
    ----------
    snn:
        A converted network with the synchronous time scheme.
    dt:
        Duration of one evsim step in the reader's time unit (> 0); the IF
        nodes get ``r = 1/dt`` and the graph metadata records it.
    extensions:
        Write MaxPool as evsim's ``EvsimMaxPool2d`` extension node (and the
        max-pool mode in the graph metadata). evsim reads it back; other NIR
        readers reject the graph. Without it, MaxPool is an error.

    Warns
    -----
    NIRExportWarning
        Always: it lists what the graph keeps only in metadata (subtractive
        reset, initial potentials, bursts, dt, the firing rule).

    Raises
    ------
    NIRExportError
        For MaxPool (without ``extensions``), SpiCalib, temporal separation, a
        ceil_mode window NIR's SumPool2d lacks, or per-neuron θ read by a
        convolution or pooling.
    """
    nir = _require_nir()
    dt = float(dt)
    if not (dt > 0 and np.isfinite(dt)):
        raise EvsimValueError(f"dt must be positive and finite, got {dt}")
    if snn.time_scheme != "synchronous":
        raise NIRExportError(f"time scheme '{snn.time_scheme}' has no NIR equivalent; NIR "
                             "graphs run synchronously")
    return _Exporter(nir, snn, dt, extensions).graph()


class _Exporter:
    """Walks the evsim graph once, tracking for each layer the NIR nodes whose summed output
    carries its value and the amplitude ``amp`` with evsim value = amp × NIR value."""

    def __init__(self, nir, snn: SpikingNetwork, dt: float, extensions: bool):
        self.nir, self.snn, self.dt, self.extensions = nir, snn, dt, extensions
        self.extension_nodes: list[str] = []
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        self.sources: dict[str, list[str]] = {}
        self.amp: dict[str, np.ndarray] = {}
        self.unit: dict[str, list[str]] = {}

    def graph(self):
        net = self.snn.network
        for node in net:
            try:
                self._export(node)
            except ValueError as err:
                raise NIRExportError(f"layer '{node.name}' ({type(node.layer).__name__}): "
                                     f"{err}") from None
        output = self._fresh("output")
        self.nodes[output] = self.nir.Output(output_type=np.array(net.output_shape))
        self._connect(self._unit_sources(net.output_name), output)
        metadata = {"generator": f"evsim {__version__}", "dt": self.dt,
                    "time_scheme": self.snn.time_scheme, "firing_rule": _FIRING_RULE,
                    "method": self.snn.method}
        if self.extension_nodes:
            metadata["max_pool"] = self.snn.max_pool
        self._warn()
        return self.nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=metadata)

    def _warn(self) -> None:
        notes = []
        for what, names in (
                ("reset by subtraction", [n for n, s in self.snn.neurons.items()
                                          if s.reset == "subtract"]),
                ("a nonzero initial potential", [n for n, s in self.snn.neurons.items()
                                                 if np.any(s.v_init != 0)]),
                ("bursts (Γ > 1)", [n for n, s in self.snn.neurons.items() if s.burst > 1])):
            if names:
                notes.append(f"{what} in {', '.join(names)}")
        if self.extension_nodes:
            notes.append(f"evsim's {MAX_POOL_TYPE} extension in "
                         f"{', '.join(self.extension_nodes)} (other NIR readers reject it)")
        notes.append(f"one step per dt = {self.dt} (IF r = 1/dt)")
        notes.append(f"firing at {_FIRING_RULE} (NIR's IF: v > v_threshold)")
        warnings.warn("NIR readers may ignore the metadata this graph relies on: "
                      + "; ".join(notes), NIRExportWarning, stacklevel=3)

    def _fresh(self, base: str) -> str:
        name, i = base, 1
        while name in self.nodes or name in self.snn.network:
            name, i = f"{base}_{i}", i + 1
        return name

    def _connect(self, sources: list[str], target: str) -> None:
        self.edges.extend((s, target) for s in sources)

    def _add(self, name: str, nir_node, sources: list[str], amp: np.ndarray) -> None:
        self.nodes[name] = nir_node
        self._connect(sources, name)
        self.sources[name], self.amp[name] = [name], amp

    def _unit_sources(self, name: str) -> list[str]:
        """NIR nodes that carry layer ``name``'s evsim value unscaled (adds a Scale if needed)."""
        if np.all(self.amp[name] == 1):
            return self.sources[name]
        if name not in self.unit:
            scale = self._fresh(f"{name}_scale")
            self.nodes[scale] = self.nir.Scale(scale=self.amp[name].copy())
            self._connect(self.sources[name], scale)
            self.unit[name] = [scale]
        return self.unit[name]

    def _export(self, node) -> None:
        nir, layer, name = self.nir, node.layer, node.name
        net = self.snn.network
        shape = net.shape(name)
        src = node.inputs[0] if node.inputs else None
        if isinstance(layer, L.Input):
            self._add(name, nir.Input(input_type=np.array(shape)), [], np.ones(shape))
        elif isinstance(layer, L.Add):
            self.sources[name] = [s for i in node.inputs for s in self._unit_sources(i)]
            self.amp[name] = np.ones(shape)
        elif isinstance(layer, L.Activation):
            self._neuron(name, shape, self._unit_sources(src))
        elif isinstance(layer, L.Dense):
            weight = layer.weight.astype(np.float64) * self.amp[src][None, :]
            weight = weight.astype(layer.weight.dtype)
            nir_node = (nir.Linear(weight=weight) if layer.bias is None
                        else nir.Affine(weight=weight, bias=layer.bias.copy()))
            self._add(name, nir_node, self.sources[src], np.ones(shape))
        elif isinstance(layer, L.Conv2d):
            channel = _channel_values(self.amp[src])
            weight = layer.weight.astype(np.float64) * _conv_scale(
                channel, layer.weight.shape, layer.groups)
            bias = (np.zeros(layer.out_channels, layer.weight.dtype) if layer.bias is None
                    else layer.bias.copy())
            in_shape = net.shape(src)
            conv = nir.Conv2d(input_shape=in_shape[1:], weight=weight.astype(layer.weight.dtype),
                              stride=layer.stride, padding=layer.padding,
                              dilation=layer.dilation, groups=layer.groups, bias=bias)
            # nir 1.0 infers these types for groups = 1 and square kernels only
            conv.input_type = {"input": np.array(in_shape)}
            conv.output_type = {"output": np.array(shape)}
            self._add(name, conv, self.sources[src], np.ones(shape))
        elif isinstance(layer, L.ConvTranspose2d):
            raise EvsimValueError("NIR 1.0 has no transposed convolution (its graph nodes are "
                                  "Conv1d and Conv2d); evsim cannot export this layer")
        elif isinstance(layer, L.Flatten):
            flat = nir.Flatten(input_type={"input": np.array(net.shape(src))}, start_dim=0)
            self._add(name, flat, self.sources[src], self.amp[src].reshape(-1))
        elif isinstance(layer, (L.AvgPool2d, L.GlobalAvgPool)):
            self._pool(name, layer, src)
        elif isinstance(layer, L.MaxPool2d):
            if not self.extensions:
                raise EvsimValueError(
                    "NIR 1.0 has no max pooling; pass extensions=True to write "
                    f"evsim's {MAX_POOL_TYPE} node (other NIR readers reject it), "
                    "or convert an average-pooling network")
            channel = _channel_values(self.amp[src])
            node = max_pool_node(nir)(
                input_shape=np.array(net.shape(src)), kernel_size=np.array(layer.kernel_size),
                stride=np.array(layer.stride), padding=np.array(layer.padding),
                ceil_mode=layer.ceil_mode, mode=self.snn.max_pool)
            self.extension_nodes.append(name)
            self._add(name, node, self.sources[src], channel[:, None, None] * np.ones(shape))
        elif isinstance(layer, (L.Concat, L.Pad, L.Upsample)):
            raise EvsimValueError(f"has no NIR equivalent: NIR 1.x has no {_NO_NODE[type(layer)]} "
                                  "node; export a network without it")
        else:
            raise EvsimValueError("has no NIR equivalent"
                                  + ("; fold it first (evsim.fold_batchnorm)"
                                if isinstance(layer, L.BatchNorm) else ""))

    def _neuron(self, name: str, shape: tuple, sources: list[str]) -> None:
        spec = self.snn.neurons[name]
        if spec.allowance > 0:
            raise EvsimValueError("SpiCalib (allowance > 0) emits negative calibration spikes, "
                                  "which NIR cannot express")
        if spec.signed:
            raise EvsimValueError("is signed IF neurons (θ⁻ set), whose negative spikes NIR's "
                                  "IF cannot express; export a network without LeakyReLU or "
                                  "linear bottlenecks")
        theta = np.broadcast_to(spec.threshold, shape).copy()
        layer = self.snn.network[name].layer
        metadata = {"reset": spec.reset, "v_init": np.broadcast_to(spec.v_init, shape).copy(),
                    "burst": spec.burst, "activation": {"kind": layer.kind,
                                                        **layer.attributes()}}
        node = self.nir.IF(r=np.full(shape, 1 / self.dt, theta.dtype), v_threshold=theta,
                           v_reset=np.zeros(shape, theta.dtype), metadata=metadata)
        self._add(name, node, sources, theta.astype(np.float64))

    def _pool(self, name: str, layer, src: str) -> None:
        channel_shape = self.snn.network.shape(src)
        _, height, width = channel_shape
        channel = _channel_values(self.amp[src])
        if isinstance(layer, L.GlobalAvgPool):
            kernel = stride = (height, width)
            padding, divisor, metadata = (0, 0), np.full((1, 1), height * width), {}
        else:
            kernel, stride, padding = layer.kernel_size, layer.stride, layer.padding
            floor = layer.replace(ceil_mode=False).output_shape([channel_shape])
            if floor != self.snn.network.shape(name):
                raise EvsimValueError(
                    "ceil_mode adds windows that NIR's SumPool2d (floor) does not "
                    "have; pad the input or use ceil_mode=False")
            divisor = ann_ops.avgpool_divisor(layer, height, width)
            metadata = {"count_include_pad": layer.count_include_pad}
        node = self.nir.SumPool2d(kernel_size=np.array(kernel), stride=np.array(stride),
                                  padding=np.array(padding), metadata=metadata)
        self._add(name, node, self.sources[src], channel[:, None, None] / divisor[None])


def save_nir(snn: SpikingNetwork, path: str | os.PathLike, dt: float = 1.0, *,
             extensions: bool = False) -> None:
    """Write ``snn`` to an HDF5 NIR file (:func:`to_nir`, then ``nir.write``), atomically: an
    interrupted write leaves the old file or none."""
    nir = _require_nir()
    buffer = io.BytesIO()  # h5py needs a file it can read back and seek, not a stream
    nir.write(buffer, to_nir(snn, dt, extensions=extensions))
    with atomic_file(path) as stream:
        stream.write(buffer.getbuffer())


# -- import ------------------------------------------------------------------------------------

def from_nir(graph) -> SpikingNetwork:
    """Build an evsim :class:`SpikingNetwork` from a ``nir.NIRGraph``.

    The graph needs one ``Input`` and one ``Output``. θ of each IF is its
    ``v_threshold`` scaled by ``1/(r·dt)`` (dt from the graph metadata,
    default 1) and by the amplitude of what it reads; evsim metadata written
    by :func:`to_nir` (reset, v_init, Γ, the ANN activation) is restored.
    Without it, neurons reset to zero (``v_reset`` must be 0) from v(0) = 0.

    Raises
    ------
    NIRImportError
        Naming the node, for nodes evsim cannot represent (LIF, CubaLIF, LI,
        Delay, ...), nonzero ``v_reset``, cycles, or wiring without a
        spiking interpretation.
    """
    nir = _require_nir()
    if not isinstance(graph, nir.NIRGraph):
        raise EvsimTypeError(f"from_nir needs a nir.NIRGraph, got {type(graph).__name__}")
    return _Importer(nir, graph).network()


class _Importer:
    """Walks the NIR graph in topological order, tracking for each NIR node the evsim layer
    carrying its value and the amplitude ``amp`` with evsim value = amp × NIR value."""

    def __init__(self, nir, graph):
        self.nir, self.graph = nir, graph
        metadata = graph.metadata if isinstance(graph.metadata, Mapping) else {}
        self.dt = float(metadata.get("dt", 1.0))
        self.method = str(metadata.get("method", "nir"))
        self.max_pool = str(metadata.get("max_pool", "lipooling"))
        self.max_pool_node = max_pool_node(nir)
        self.preds: dict[str, list[str]] = {name: [] for name in graph.nodes}
        self.succs: dict[str, list[str]] = {name: [] for name in graph.nodes}
        for a, b in graph.edges:
            for end in (a, b):
                if end not in graph.nodes:
                    raise NIRImportError(f"edge ({a!r}, {b!r}) names '{end}', which is not a "
                                         "node of the graph")
            self.preds[b].append(a)
            self.succs[a].append(b)
        self.builder: NetworkBuilder | None = None
        self.signal: dict[str, tuple[str, np.ndarray]] = {}
        self.neurons: dict[str, NeuronSpec] = {}
        self.output: str | None = None
        self.sums: set[str] = set()

    def network(self) -> SpikingNetwork:
        for name in self._order():
            node = self.graph.nodes[name]
            try:
                self._import(name, node)
            except NIRImportError:
                raise
            except (ValueError, TypeError) as err:
                raise NIRImportError(f"NIR node '{name}' ({type(node).__name__}): {err}"
                                     ) from None
        if self.output is None:
            raise NIRImportError("the graph has no Output node")
        try:
            snn = SpikingNetwork(self.builder.build(output=self.output), self.neurons,
                                 method=self.method, max_pool=self.max_pool)
            check_spiking_graph(snn)
        except ValueError as err:
            raise NIRImportError(f"the imported network cannot be simulated: {err}") from None
        return snn

    def _order(self) -> list[str]:
        pending = {name: len(p) for name, p in self.preds.items()}
        roots = [n for n, k in pending.items() if k == 0]
        inputs = [n for n, node in self.graph.nodes.items() if isinstance(node, self.nir.Input)]
        if len(inputs) != 1 or roots != inputs:
            raise NIRImportError(f"the graph needs exactly one Input and no other node without "
                                 f"inputs; Input nodes {inputs}, nodes without inputs {roots}")
        outputs = [n for n, node in self.graph.nodes.items() if isinstance(node, self.nir.Output)]
        if len(outputs) != 1:
            raise NIRImportError(f"the graph needs exactly one Output node, found {outputs}")
        order, ready = [], list(roots)
        while ready:
            name = ready.pop()
            order.append(name)
            for nxt in self.succs[name]:
                pending[nxt] -= 1
                if pending[nxt] == 0:
                    ready.append(nxt)
        if len(order) != len(pending):
            stuck = sorted(set(pending) - set(order))
            raise NIRImportError(f"the graph has a cycle (recurrence) through {stuck}; evsim "
                                 "networks are feed-forward")
        return order

    def _gather(self, name: str) -> tuple[str, np.ndarray]:
        """The evsim layer and amplitude of the sum of ``name``'s inputs (an Add for several)."""
        signals = [self.signal[p] for p in self.preds[name]]
        if len(signals) == 1:
            return signals[0]
        amp = signals[0][1]
        if any(a.shape != amp.shape or not np.array_equal(a, amp) for _, a in signals[1:]):
            raise EvsimValueError(f"sums inputs {self.preds[name]} that carry different spike "
                                  "amplitudes; evsim's Add has no weights, so scale the inputs "
                                  "with weight layers or a Scale equal to the IF's v_threshold")
        add, i = f"{name}_sum", 1
        while add in self.graph.nodes or add in self.sums:
            add, i = f"{name}_sum_{i}", i + 1
        self.sums.add(add)
        self.builder.add_layer(L.Add(), *[s for s, _ in signals], name=add)
        return add, amp

    def _import(self, name: str, node) -> None:
        nir = self.nir
        if isinstance(node, nir.Input):
            shape = tuple(int(s) for s in np.asarray(node.input_type["input"]))
            if len(shape) in (2, 4) and shape[0] == 1:
                shape = shape[1:]  # a batch axis written by nirtorch-based exporters
            self.builder = NetworkBuilder(shape, input_name=name)
            self.signal[name] = (name, np.ones(shape))
            return
        if not isinstance(node, (nir.Output, nir.I, nir.IF, nir.Affine, nir.Linear, nir.Conv2d,
                                 nir.Flatten, nir.SumPool2d, nir.AvgPool2d, nir.Scale,
                                 self.max_pool_node)):
            raise NIRImportError(
                f"NIR node '{name}' ({type(node).__name__}) has no evsim equivalent: evsim "
                "simulates integrate-and-fire neurons without leak, synaptic dynamics, delays "
                "or recurrent subgraphs, with Affine/Linear/Conv2d/SumPool2d/AvgPool2d/Flatten/"
                f"Scale/{MAX_POOL_TYPE} between them")
        src, amp = self._gather(name)
        shape = self.builder.shape(src)
        if isinstance(node, nir.Output):
            if not np.all(amp == 1):
                raise EvsimValueError(f"reads '{src}' scaled by spike amplitudes (θ ≠ 1); evsim's "
                                      "output must be a weight layer or carry amplitude 1")
            self.output = src
        elif isinstance(node, nir.I):
            if any(not isinstance(self.graph.nodes[n], nir.Output) for n in self.succs[name]):
                raise EvsimValueError("an integrator is read only as evsim's summed readout, right "
                                      "before the Output")
            if not np.all(self._rdt(node.r, shape) == 1):
                raise EvsimValueError("integrates with r·dt ≠ 1; evsim's readout sums the output "
                                      "unscaled")
            self.signal[name] = (src, amp)
        elif isinstance(node, nir.IF):
            self._neuron(name, node, src, amp, shape)
        elif isinstance(node, (nir.Affine, nir.Linear)):
            weight = np.asarray(node.weight)
            if weight.ndim != 2 or len(shape) != 1 or weight.shape[1] != shape[0]:
                raise EvsimValueError(
                    f"weight {weight.shape} on input {shape}: evsim's Dense maps a "
                    "flat vector (add a Flatten before it)")
            bias = np.asarray(node.bias) if isinstance(node, nir.Affine) else None
            dense = L.Dense((weight / amp[None, :]).astype(weight.dtype), bias)
            self._layer(name, dense, src, np.ones(dense.output_shape([shape])))
        elif isinstance(node, nir.Conv2d):
            self._conv(name, node, src, amp, shape)
        elif isinstance(node, nir.Flatten):
            self._flatten(name, node, src, amp, shape)
        elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            self._pool(name, node, src, amp, shape)
        elif isinstance(node, self.max_pool_node):
            if node.mode != self.max_pool:
                raise EvsimValueError(f"max-pool mode {node.mode!r} differs from the graph's "
                                      f"{self.max_pool!r}; evsim uses one mode per network")
            if tuple(int(s) for s in node.input_shape) != shape:
                raise EvsimValueError(f"declares input {tuple(node.input_shape)} but reads {shape}")
            layer = node.layer()
            channel = _channel_values(np.broadcast_to(amp, shape))
            out = layer.output_shape([shape])
            self._layer(name, layer, src, channel[:, None, None] * np.ones(out))
        else:  # Scale
            scale = np.broadcast_to(np.asarray(node.scale, np.float64), shape)
            if np.any(scale == 0):
                raise EvsimValueError("scales by 0")
            self.signal[name] = (src, amp / scale)

    def _layer(self, name: str, layer: L.Layer, src: str, amp: np.ndarray) -> None:
        self.builder.add_layer(layer, src, name=name)
        self.signal[name] = (name, amp)

    def _rdt(self, r, shape: tuple) -> np.ndarray:
        """r·dt per neuron: what one step of input current adds to the membrane."""
        rdt = np.broadcast_to(np.asarray(r, np.float64), shape) * self.dt
        # r = 1/dt rounds, so r·dt may miss 1 by an ulp; read it as 1 to keep θ bit-exact.
        rdt = np.where(np.isclose(rdt, 1.0, rtol=4 * np.finfo(np.float64).eps, atol=0), 1.0,
                       rdt)
        if not np.all(rdt > 0):
            raise EvsimValueError(f"r·dt must be positive (r {np.min(r)}, dt {self.dt})")
        return rdt

    def _neuron(self, name: str, node, src: str, amp: np.ndarray, shape: tuple) -> None:
        metadata = node.metadata if isinstance(node.metadata, Mapping) else {}
        gain = amp / self._rdt(node.r, shape)
        v_threshold = np.asarray(node.v_threshold)
        dtype = v_threshold.dtype if v_threshold.dtype.kind == "f" else np.dtype(np.float32)
        theta = (gain * np.broadcast_to(v_threshold, shape)).astype(dtype)
        reset = str(metadata.get("reset", "zero"))
        v_reset = np.zeros(()) if node.v_reset is None else np.asarray(node.v_reset)
        if reset == "zero" and np.any(v_reset != 0):
            raise EvsimValueError("resets to v_reset ≠ 0; evsim's neurons reset to 0 or by "
                                  "subtraction")
        v_init = np.asarray(metadata.get("v_init", np.zeros((), dtype)))
        v0 = (gain * np.broadcast_to(v_init, shape)).astype(
            v_init.dtype if v_init.dtype.kind == "f" else dtype)
        spec = NeuronSpec(threshold=_compact(theta), v_init=_compact(v0), reset=reset,
                          burst=int(metadata.get("burst", 1)))
        self._layer(name, _activation(metadata.get("activation")), src,
                    theta.astype(np.float64))
        self.neurons[name] = spec

    def _conv(self, name: str, node, src: str, amp: np.ndarray, shape: tuple) -> None:
        if len(shape) != 3:
            raise EvsimValueError(f"reads input of shape {shape}; Conv2d needs (C, H, W)")
        weight = np.asarray(node.weight)
        groups = int(node.groups)
        if weight.ndim != 4 or weight.shape[1] * groups != shape[0]:
            raise EvsimValueError(f"weight {weight.shape} with groups={groups} does not read input "
                                  f"of shape {shape}")
        padding = node.padding
        if isinstance(padding, str):
            if padding == "same" and np.any(np.asarray(node.stride) != 1):
                raise EvsimValueError("padding='same' with stride > 1 is not defined")
            span = (np.asarray(node.dilation) * (np.array(weight.shape[2:]) - 1)
                    * np.ones(2, int))
            if padding == "same" and np.any(span % 2):
                raise EvsimValueError(
                    "padding='same' with an even kernel span pads asymmetrically; "
                    "evsim pads symmetrically")
            padding = (0, 0) if padding == "valid" else tuple(int(s) // 2 for s in span)
        channel = _channel_values(np.broadcast_to(amp, shape))
        scaled = weight / _conv_scale(channel, weight.shape, groups)
        conv = L.Conv2d(scaled.astype(weight.dtype),
                        None if node.bias is None else np.asarray(node.bias),
                        stride=_ints(node.stride), padding=_ints(padding),
                        dilation=_ints(node.dilation), groups=groups)
        self._layer(name, conv, src, np.ones(conv.output_shape([shape])))

    def _flatten(self, name: str, node, src: str, amp: np.ndarray, shape: tuple) -> None:
        declared = node.input_type.get("input") if isinstance(node.input_type, dict) else None
        n = len(shape)
        batch = 1 if declared is not None and len(np.atleast_1d(declared)) == n + 1 else 0
        start, end = int(node.start_dim), int(node.end_dim)
        start = start + n if start < 0 else start - batch
        end = end + n if end < 0 else end - batch
        if (start, end) != (0, n - 1) and n > 1:
            raise EvsimValueError(f"flattens dims {start}..{end} of the per-sample shape {shape}; "
                                  "evsim flattens whole samples (start_dim=0 in NIR's per-sample "
                                  "convention)")
        self._layer(name, L.Flatten(), src, amp.reshape(-1))

    def _pool(self, name: str, node, src: str, amp: np.ndarray, shape: tuple) -> None:
        if len(shape) != 3:
            raise EvsimValueError(f"reads input of shape {shape}; pooling needs (C, H, W)")
        kernel, stride, padding = _ints(node.kernel_size), _ints(node.stride), _ints(node.padding)
        channel = _channel_values(np.broadcast_to(amp, shape))
        metadata = node.metadata if isinstance(node.metadata, Mapping) else {}
        if kernel == shape[1:] and padding == (0, 0):
            layer, divisor = L.GlobalAvgPool(), np.full((1, 1), kernel[0] * kernel[1])
        else:
            layer = L.AvgPool2d(kernel, stride, padding,
                                count_include_pad=bool(metadata.get("count_include_pad", True)))
            divisor = ann_ops.avgpool_divisor(layer, shape[1], shape[2])
        if isinstance(node, self.nir.AvgPool2d):
            out = channel[:, None, None] * np.ones(divisor.shape)[None]
        else:
            out = channel[:, None, None] / divisor[None]
        self._layer(name, layer, src, out)


def _ints(value) -> tuple[int, int]:
    array = np.asarray(value).reshape(-1)
    pair = (array[0], array[0]) if array.size == 1 else tuple(array)
    return tuple(int(v) for v in pair)  # type: ignore[return-value]


def _compact(values: np.ndarray) -> np.ndarray:
    """A per-neuron array as a scalar or (C, 1, 1) when it is constant per layer or channel."""
    if np.all(values == values.flat[0]):
        return np.array(values.flat[0], values.dtype)
    if values.ndim == 3:
        flat = values.reshape(values.shape[0], -1)
        if np.all(flat == flat[:, :1]):
            return values[:, :1, :1].copy()
    return values


def _activation(metadata) -> L.Activation:
    """The ANN activation recorded by :func:`to_nir`, or ReLU."""
    if isinstance(metadata, Mapping):
        kind = str(metadata.get("kind", ""))
        cls = L.LAYER_KINDS.get(kind)
        if cls is not None and issubclass(cls, L.Activation):
            return cls(**{k: v for k, v in metadata.items() if k != "kind"})
    return L.ReLU()


def load_nir(path: str | os.PathLike) -> SpikingNetwork:
    """Read an HDF5 NIR file and import it with :func:`from_nir`.

    Reads what ``nir.read`` reads plus evsim's extension nodes
    (:mod:`evsim.io.nir_extensions`). Errors name the file: an unreadable or
    corrupt file raises NIRImportError, a missing one
    :class:`~evsim.errors.EvsimFileError`.
    """
    nir = _require_nir()
    with reading(path, "NIR file"):
        if not os.path.exists(path):
            raise FileNotFoundError(errno.ENOENT, "no such file", os.fspath(path))
        try:
            # Without type checking: nir's own check rejects valid grouped convolutions.
            graph = read_graph(nir, path)
        except (OSError, KeyError, ValueError, AssertionError, TypeError, AttributeError) as err:
            raise NIRImportError(f"{os.fspath(path)}: not a readable NIR file "
                                 f"({type(err).__name__}: {err})") from err
        return from_nir(graph)


__all__ = ["to_nir", "from_nir", "save_nir", "load_nir", "NIRExportError", "NIRImportError",
           "NIRExportWarning"]
