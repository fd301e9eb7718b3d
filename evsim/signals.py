"""What each layer of a spiking network carries, and where synaptic operations happen.

Every layer's output is one of four signal classes:

``analog``
    constant every step: the input and the layers computed from it alone
    (evaluated once per image; their Dense/Conv2d cost MACs, not SOPs);
``events``
    integer spike multiplicities × an amplitude: spiking activations,
    MaxPool of events, Flatten of events, and the rate-coded input;
``pooled``
    events passed through AvgPool/GlobalAvgPool, Pad or Upsample (weighted events), and
    Concats of events or pooled events;
``current``
    Dense/Conv2d outputs of events and Add outputs: values that only a
    spiking layer, an Add or the readout may consume.

A *synaptic path* runs from an ``events`` layer through any pooling/flatten
layers to the layer that accumulates it: a Dense/Conv2d (its SOPs, the
pooling folded in), an Add or activation (one SOP per target), or a MaxPool
(pooling operations, not SOPs). :func:`plan` lists them with exact fan-outs.

A layer's class follows from its kind's role (:mod:`evsim.kinds`: input,
synapse, sum, neuron, max_pool, average, reshape) and its inputs' classes,
so a new kind that plays an existing role needs no rule here.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from . import kinds
from . import layers as L
from .errors import ConversionError, EvsimValueError
from .fanout import path_fanout
from .kinds import role_of
from .network import Network

ANALOG, EVENTS, POOLED, CURRENT = "analog", "events", "pooled", "current"
ENCODINGS = ("analog", "rate")


@dataclass(frozen=True, eq=False)
class SynapticPath:
    """Accumulates caused by the events of ``source`` in layer ``layer``.

    ``fanout`` has the per-image shape of ``source``: the number of
    accumulates one unit of multiplicity at that neuron causes.
    ``counts`` is ``"sops"`` or ``"pool_ops"`` (MaxPool accumulator updates).
    """

    layer: str
    source: str
    fanout: np.ndarray
    counts: str = "sops"


@dataclass(frozen=True, eq=False)
class SignalPlan:
    """Signal class of every layer, the synaptic paths, and the analog head's MACs per image."""

    classes: dict[str, str]
    paths: tuple[SynapticPath, ...]
    macs: dict[str, int]


def _classify(network: Network, encoding: str) -> dict[str, str]:
    """The signal class of every layer, from its role (:mod:`evsim.kinds`) and its inputs'."""
    classes: dict[str, str] = {}
    for node in network:
        layer, ins = node.layer, [classes[s] for s in node.inputs]
        role = role_of(layer)
        where = f"layer '{node.name}' ({type(layer).__name__})"
        if role == kinds.INPUT:
            cls = EVENTS if encoding == "rate" else ANALOG
        elif role == kinds.FOLD:
            raise ConversionError(f"{where} is still in the graph; fold it first "
                                  "(evsim.convert does this with evsim.fold_batchnorm)")
        elif role == kinds.HEAD:
            raise ConversionError(f"{where} is in the spiking graph; a spiking network cannot "
                                  "carry it: convert the ANN (evsim.convert drops an output "
                                  "head, and a head elsewhere is refused)")
        elif role == kinds.NEURON:
            cls = EVENTS
        elif all(c == ANALOG for c in ins):
            cls = ANALOG
        elif role == kinds.SUM:
            cls = CURRENT
        elif role == kinds.RESHAPE:
            cls = ins[0]
        elif role == kinds.CONCAT:
            cls = _concat_class(node, ins, where)
        elif ins[0] == CURRENT:
            hint = ("put the activation before the max pooling (they commute)"
                    if role == kinds.MAX_POOL else
                    "a spiking layer needs an activation (ReLU, Clip or QCFS) between two "
                    "synapse layers (evsim.convert puts signed identity neurons at such "
                    "linear bottlenecks)")
            raise ConversionError(f"{where} reads '{node.inputs[0]}', which carries currents, "
                                  f"not spikes: {hint}")
        elif role == kinds.SYNAPSE:
            cls = CURRENT
        elif role == kinds.AVERAGE:
            cls = POOLED
        else:  # MAX_POOL
            if ins[0] != EVENTS:
                raise ConversionError(f"{where} reads average-pooled, padded, upsampled or "
                                      f"concatenated spikes from '{node.inputs[0]}'; spiking "
                                      "max pooling needs spikes: pool before those layers")
            cls = EVENTS
        classes[node.name] = cls
    return classes


def _concat_class(node, ins: list[str], where: str) -> str:
    """The class of a Concat that reads spikes: weighted events (its readers take each
    input's events at its channel offset), or an error for currents or analog values among
    its inputs (a Concat of analog values only is analog, classified before)."""
    if CURRENT in ins:
        src = node.inputs[ins.index(CURRENT)]
        raise ConversionError(f"{where} reads '{src}', which carries currents, not spikes: put "
                              "an activation (ReLU, Clip or QCFS) before the Concat")
    if ANALOG in ins:
        src = node.inputs[ins.index(ANALOG)]
        raise ConversionError(f"{where} joins the analog values of '{src}' with spikes; "
                              "concatenate layers that all spike, or all analog ones")
    return POOLED


def trace_sources(network: Network, classes: dict[str, str], name: str) -> list[tuple]:
    """Walk up from ``name`` through pooling, flatten and Concat layers to its events sources.

    Returns ``[(source name, [(layer, input shape), ...], channel offset), ...]``, the chain
    in data-flow order and the offset of the source's channels in the channels of ``name``'s
    reader (non-zero only after a Concat). A path through a Concat has the Concat (an
    identity map) in its chain.
    """
    node = network[name]
    if classes[name] == EVENTS and role_of(node.layer) != kinds.RESHAPE:
        return [(name, [], 0)]
    found, offset = [], 0
    inputs = node.inputs if role_of(node.layer) == kinds.CONCAT else node.inputs[:1]
    for src in inputs:
        step = (node.layer, network.shape(src))
        found += [(source, chain + [step], offset + inner)
                  for source, chain, inner in trace_sources(network, classes, src)]
        offset += network.shape(src)[0]
    return found


def trace_source(network: Network, classes: dict[str, str], name: str):
    """Walk up from ``name`` through pooling/flatten to its events source.

    Returns ``(source name, [(layer, input shape), ...])`` in data-flow order. A path through
    a Concat has several sources: :func:`trace_sources` gives them.
    """
    sources = trace_sources(network, classes, name)
    if len(sources) > 1:
        raise ConversionError(f"'{name}' reads a Concat, which joins several sources; walk "
                              "them with evsim.signals.trace_sources")
    source, chain, _ = sources[0]
    return source, chain


def _macs(layer: L.Layer, in_shape) -> int:
    fan = path_fanout(in_shape, [], layer, in_shape)
    return int(fan.sum())


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plan(network: Network, encoding: str = "analog") -> SignalPlan:
    """Classify every layer and list the synaptic paths with exact fan-outs.

    Raises :class:`ConversionError`, naming the layer, when the graph has no
    spiking interpretation (e.g. a convolution reading another convolution's
    currents with no activation between them). The plan is made once per network and
    encoding (networks are immutable; every simulation needs it, and on a MobileNet it cost
    a few per cent of a 64-image run) and shared: its fan-outs are read-only.
    """
    if encoding not in ENCODINGS:
        raise EvsimValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    plans = _PLANS.setdefault(network, {})
    if encoding not in plans:
        plans[encoding] = _plan(network, encoding)
    return plans[encoding]


def _plan(network: Network, encoding: str) -> SignalPlan:
    """:func:`plan`, made afresh."""
    classes = _classify(network, encoding)
    paths, macs = [], {}
    for node in network:
        layer, role = node.layer, role_of(node.layer)
        if role == kinds.SYNAPSE and classes[node.name] == ANALOG:
            macs[node.name] = _macs(layer, network.shape(node.inputs[0]))
            continue
        if role == kinds.SYNAPSE:
            consumer = layer
        elif role in (kinds.SUM, kinds.NEURON):
            consumer = None
        elif role == kinds.MAX_POOL and classes[node.name] == EVENTS:
            source, _ = trace_source(network, classes, node.inputs[0])
            fan = path_fanout(network.shape(source), [(layer, network.shape(source))], None, None)
            paths.append(SynapticPath(node.name, source, fan, "pool_ops"))
            continue
        else:
            continue
        for src in node.inputs:
            if classes[src] not in (EVENTS, POOLED):
                continue
            for source, chain, _ in trace_sources(network, classes, src):
                fan = path_fanout(network.shape(source), chain, consumer, network.shape(src))
                paths.append(SynapticPath(node.name, source, fan))
    for path in paths:
        path.fanout.flags.writeable = False
    return SignalPlan(classes, tuple(paths), macs)


def check_spiking_graph(snn) -> None:
    """Raise :class:`ConversionError` if ``snn`` cannot be simulated with analog input.

    Besides the wiring rules, a spiking MaxPool needs one threshold per
    channel in the layer it pools, so that comparing spike counts compares values.
    """
    network = snn.network
    plan(network, "analog")
    for node in network:
        src = node.inputs[0] if node.inputs else None
        if role_of(node.layer) == kinds.MAX_POOL and src in snn.neurons and (
                snn.neurons[src].signed):
            raise ConversionError(f"layer '{node.name}' (MaxPool2d) pools '{src}', whose "
                                  "signed neurons fire negative spikes; spiking max pooling "
                                  "needs non-negative ones: pool before the activation")
        if role_of(node.layer) == kinds.MAX_POOL and src in snn.neurons:
            theta = np.broadcast_to(snn.neurons[src].threshold, network.shape(src))
            if not np.all(theta == theta[:, :1, :1]):
                raise ConversionError(f"layer '{node.name}' (MaxPool2d) pools '{src}', whose "
                                      "thresholds vary within a channel; use one threshold per "
                                      "layer or per channel")


def analog_head(network: Network, classes: dict[str, str], x: np.ndarray,
                threads: int = 1) -> dict[str, np.ndarray]:
    """Values ``(B, *shape)`` of the analog layers for input ``x``, computed once per image
    (convolutions on ``threads``), one GEMM per image: so an image's values, and its
    simulation, do not depend on the images that share its chunk (``batch_size``)."""
    values = {network.input_name: x}
    for node in network.nodes[1:]:
        if classes[node.name] == ANALOG:
            values[node.name] = kinds.apply(node.layer, [values[s] for s in node.inputs],
                                            threads, per_image=True)
    return values


__all__ = ["plan", "check_spiking_graph", "trace_source", "trace_sources", "analog_head",
           "SignalPlan", "SynapticPath", "ConversionError", "ANALOG", "EVENTS", "POOLED",
           "CURRENT", "ENCODINGS"]
