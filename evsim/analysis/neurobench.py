"""NeuroBench metrics of a simulated spiking network, computed from a :class:`SimResult`.

The definitions and key names are those of the NeuroBench harness, version
2.3.0 (``neurobench.metrics``), applied to the network evsim simulates, as
a torch model would present it to NeuroBench: each spiking layer a neuron
module emitting its spike multiplicities (θ folded into the next weights),
called once per time step with the whole input, average pooling folded
into the Dense/Conv2d that follows it (as evsim's event engine does), the
output layer's currents summed. ``docs/neurobench.md`` sets each definition
beside evsim's own SOP convention and says where they differ.

Static (from the network alone):

``ParameterCount``
    weights and biases of every Dense/Conv2d (BatchNorm folded).
``Footprint``
    bytes of those parameters plus every neuron's threshold and initial
    potential as stored, at the simulation dtype.
``ConnectionSparsity``
    zero weights / all weights of the Dense/Conv2d layers, rounded to 4
    decimals as NeuroBench rounds it.

Workload (per image, over all T steps):

``SynapticOperations``
    ``Effective_MACs`` and ``Effective_ACs``: at every step, each
    Dense/Conv2d counts one operation per (non-zero input, non-zero weight)
    pair it connects; biases and pooling are not counted, and a burst of k
    spikes counts once. The step counts as ACs when all of that layer's
    inputs lie in {−1, 0, 1} (spikes), as MACs otherwise: the analog input
    layer counts MACs at every step, NeuroBench recomputing it each step.
    ``Dense``: the same with every input and weight counted, i.e. all
    existing synapses (border-aware) at every step.
``ActivationSparsity``, ``ActivationSparsityByLayer``
    the fraction of (neuron, step, image) outputs of the spiking layers that
    are zero, over all layers and per layer.
``MembraneUpdates``
    per spiking layer, all neurons at the first step, then at each later
    step the neurons whose membrane potential (after reset) changed.

What a result must hold: ``MembraneUpdates`` needs membrane traces, and
the other workload metrics need per-step spikes unless every layer feeding
a Dense/Conv2d emits at most one spike per step (Γ = 1, no SpiCalib, no
signed neurons; a spiking max pooling then does too, and both engines count
its output spikes); both come from
``simulate(..., engine="dense", record=list(snn.neurons))``. Without traces
``MembraneUpdates`` is None; without the spikes it needs,
:func:`neurobench_metrics` raises and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .. import kinds
from .. import layers as L
from ..encoding import rate_spikes
from ..fanout import path_fanout, spatial_map
from ..kinds import role_of, rules_of
from ..network import Network
from ..pooling import spiking_maxpool
from ..signals import ANALOG, EVENTS, analog_head, plan, trace_sources
from ..result import SimResult
from ..spiking import WINDOWED, SpikingNetwork
from ..threads import one_blas_thread
from ..errors import EvsimTypeError, EvsimValueError

#: The NeuroBench release whose definitions this module follows.
NEUROBENCH_VERSION = "2.3.0"


def _synapse_layers(network: Network):
    return [n for n in network if role_of(n.layer) == kinds.SYNAPSE]


def neurobench_static_metrics(snn: SpikingNetwork, dtype=np.float32) -> dict:
    """``ParameterCount``, ``Footprint`` (bytes at ``dtype``) and ``ConnectionSparsity``."""
    itemsize = np.dtype(dtype).itemsize
    weights = zeros = parameters = 0
    for node in _synapse_layers(snn.network):
        layer = node.layer
        weights += layer.weight.size
        zeros += int(np.count_nonzero(layer.weight == 0))
        parameters += layer.weight.size + (0 if layer.bias is None else layer.bias.size)
    neuron_values = sum(spec.threshold.size + spec.v_init.size for spec in snn.neurons.values())
    return {"ParameterCount": int(parameters),
            "Footprint": int((parameters + neuron_values) * itemsize),
            "ConnectionSparsity": round(zeros / weights, 4) if weights else 0.0}


# --- fan-outs over non-zero weights ------------------------------------------------------

def _chain_map(chain) -> sp.csr_matrix | None:
    """Boolean spatial map of the pooling in ``chain`` (None when it is only Flatten)."""
    composite = None
    for layer, in_shape in chain:
        if role_of(layer) == kinds.RESHAPE:
            continue
        step = spatial_map(layer, in_shape)
        composite = step if composite is None else (step @ composite).astype(bool)
    return composite


def nonzero_fanout(source_shape, chain, consumer: L.Layer, consumer_shape) -> np.ndarray:
    """Targets per source neuron through ``chain`` and ``consumer`` over non-zero weights only.

    Like :func:`evsim.fanout.path_fanout` (the same ``chain`` of pooling and
    flatten layers), but a target counts only when a non-zero weight reaches
    it. Where overlapping pooling windows sum several weights into one
    composite weight, a target counts when any of them is non-zero. The
    count is the synapse kind's ``nonzero_fanout`` rule (:mod:`evsim.kinds`).
    """
    rules = rules_of(consumer)
    if rules.role != kinds.SYNAPSE:
        raise EvsimTypeError(f"no fan-out rule for {type(consumer).__name__}")
    return rules.nonzero_fanout(consumer, source_shape, _chain_map(chain), consumer_shape)


def _channel_view(node, chain, offset: int, source_shape) -> L.Layer:
    """The synapse of ``node`` restricted to the input channels one source reaches it by:
    all of them, or after a Concat the source's channels from ``offset`` on (the weights
    of those channels, as if the source were its only input)."""
    layer = node.layer
    if not any(role_of(step) == kinds.CONCAT for step, _ in chain):
        return layer
    channels = source_shape[0]
    if isinstance(layer, L.Dense):
        positions = _chain_map(chain)
        size = (source_shape[1] * source_shape[2] if positions is None
                else positions.shape[0])
        return layer.replace(weight=layer.weight[:, offset * size:(offset + channels) * size])
    if isinstance(layer, L.Conv2d) and layer.groups == 1:
        return layer.replace(weight=layer.weight[:, offset:offset + channels])
    if isinstance(layer, L.Conv2d):
        per_group_in = layer.weight.shape[1]
        per_group_out = layer.out_channels // layer.groups
        if offset % per_group_in or channels % per_group_in:
            raise EvsimValueError(f"layer '{node.name}' (Conv2d): its groups of "
                                  f"{per_group_in} input channels straddle the inputs of a "
                                  "Concat; NeuroBench counts need each group within one input")
        first, last = offset // per_group_in, (offset + channels) // per_group_in
        rows = slice(first * per_group_out, last * per_group_out)
        return layer.replace(weight=layer.weight[rows], groups=last - first,
                             bias=None if layer.bias is None else layer.bias[rows])
    raise EvsimTypeError(f"layer '{node.name}' ({type(layer).__name__}) reads a Concat; "
                         "its NeuroBench fan-out has no channel view")


# --- workload ---------------------------------------------------------------------------

def _is_spike_valued(values: np.ndarray) -> bool:
    """NeuroBench's test: every value in {−1, 0, 1}."""
    return bool(np.all((values == 0) | (values == 1) | (values == -1)))


def _fully_recorded(snn: SpikingNetwork, result: SimResult) -> bool:
    return all(name in result.recorded and result.recorded[name].size == result.neurons[name]
               for name in snn.neurons)


def _check_single_spikes(snn: SpikingNetwork, result: SimResult, paths) -> None:
    """Raise unless spike counts equal per-step events wherever NeuroBench counts them.

    A spiking max pooling whose inputs are single spikes emits at most one spike per step
    (its output so far follows the count of one member, which rises by at most one a
    step), so its output counts (:attr:`SimResult.pool_spike_counts`) serve."""
    advice = "; simulate with engine='dense' and record=list(snn.neurons) to record them"
    for path in paths:
        if (role_of(snn.network[path.source].layer) == kinds.MAX_POOL
                and path.source not in result.pool_spike_counts):
            raise EvsimValueError(
                f"NeuroBench's synaptic operations need per-step spikes here: layer "
                f"'{path.layer}' reads the spiking max pooling '{path.source}', "
                "whose output spikes this result does not hold (made by an older evsim or "
                "another engine)" + advice)
    for name, spec in snn.neurons.items():
        if spec.burst > 1 or spec.allowance > 0 or spec.signed:
            what = (f"bursts (Γ = {spec.burst})" if spec.burst > 1
                    else "negative spikes (signed neurons; their counts are net)"
                    if spec.signed else "negative calibration spikes")
            raise EvsimValueError(f"NeuroBench's metrics need per-step spikes here: layer '{name}' "
                                  f"can emit {what}, and a result's spike counts do not say in how "
                                  "many steps" + advice)


def _rate_input_counts(x: np.ndarray, seed: int, T: int) -> np.ndarray:
    """Input spikes per pixel summed over steps and images, as the rate encoder drew them."""
    images = np.arange(len(x))
    return sum(rate_spikes(x, seed, images, t).sum(axis=0) for t in range(1, T + 1))


def _per_step_spikes(snn: SpikingNetwork, result: SimResult, classes, image: int,
                     x: np.ndarray | None, seed: int) -> dict[str, np.ndarray]:
    """``{events layer: (T, *shape) int}`` of one image, rebuilt from full recordings."""
    net, T = snn.network, result.T
    spikes: dict[str, np.ndarray] = {}
    for node in net:
        name, layer = node.name, node.layer
        if classes[name] != EVENTS:
            continue
        shape, role = net.shape(name), role_of(layer)
        if role == kinds.INPUT:
            spikes[name] = np.stack([rate_spikes(x[image:image + 1], seed, np.array([image]), t)[0]
                                     for t in range(1, T + 1)])
        elif role == kinds.NEURON:
            train = result.spike_trains[name]
            keep = train.images == image
            dense = np.zeros((T, int(np.prod(shape))), np.int64)
            dense[train.steps[keep] - 1, result.recorded[name][train.neurons[keep]]] = (
                train.counts[keep])
            spikes[name] = dense.reshape((T,) + shape)
        elif role == kinds.RESHAPE:
            spikes[name] = spikes[node.inputs[0]].reshape(T, -1)
        else:  # spiking max pooling, replayed step by step on the recorded input spikes
            incoming = spikes[node.inputs[0]]
            cumulative_in = np.zeros((1,) + incoming.shape[1:], np.int64)
            cumulative_out = np.zeros((1,) + shape, np.int64)
            out = np.zeros((T,) + shape, np.int64)
            for t in range(T):
                out[t] = spiking_maxpool(snn.max_pool, layer, incoming[t][None], cumulative_in,
                                         cumulative_out)[0]
            spikes[name] = out
    return spikes


def _membrane_updates(snn: SpikingNetwork, result: SimResult) -> float | None:
    if not all(name in result.membrane and result.recorded[name].size == result.neurons[name]
               for name in snn.neurons):
        return None
    total = 0
    for name in snn.neurons:
        v = result.membrane[name]                          # (T, images, neurons)
        total += v.shape[1] * v.shape[2] + int(np.count_nonzero(v[1:] != v[:-1]))
    return total / result.n_images


def neurobench_metrics(snn: SpikingNetwork, result: SimResult, inputs: np.ndarray | None = None,
                       *, seed: int = 0) -> dict:
    """NeuroBench 2.3.0's static and workload metrics of ``snn`` as simulated in ``result``.

    Parameters
    ----------
    snn:
        The simulated network.
    result:
        Its simulation (synchronous time scheme). With every spiking layer
        recorded (``engine="dense", record=list(snn.neurons)``) every metric
        is exact for any network; otherwise ``MembraneUpdates`` is None and
        the rest need single spikes (see the module docstring).
    inputs:
        The simulated images ``(n_images, *input_shape)``: needed for the
        analog input layer's effective MACs (zero pixels do not count) and
        for rate-coded input.
    seed:
        The seed of the simulation (rate-coded input only).

    Returns
    -------
    ``{"ParameterCount", "Footprint" (bytes), "ConnectionSparsity",
    "SynapticOperations": {"Effective_MACs", "Effective_ACs", "Dense"},
    "ActivationSparsity", "ActivationSparsityByLayer": {layer: fraction},
    "MembraneUpdates"}``, the workload ones per image.

    Raises
    ------
    ValueError
        For a temporal-scheme result, missing or mismatched ``inputs``, or a
        network whose counts need per-step spikes the result does not hold;
        the message says what to simulate instead.
    """
    _check_result(snn, result)
    net, T, n = snn.network, result.T, result.n_images
    signal_plan = plan(net, result.encoding)
    classes = signal_plan.classes
    paths = [p for p in signal_plan.paths if p.counts == "sops"
             and role_of(net[p.layer].layer) == kinds.SYNAPSE]
    analog_layers = [node for node in _synapse_layers(net) if classes[node.name] == ANALOG]
    x = _checked_inputs(net, result, inputs,
                        needed=bool(analog_layers) or result.encoding == "rate")
    ops = _Operations()
    _count_analog_head(ops, net, classes, analog_layers, x, T)
    fans = {}
    traced = {}  # the layer's sources in the order plan lists its paths
    for path in paths:
        src = net[path.layer].inputs[0]
        if path.layer not in traced:
            traced[path.layer] = iter(trace_sources(net, classes, src))
        source, chain, offset = next(traced[path.layer])
        consumer = _channel_view(net[path.layer], chain, offset, net.shape(source))
        shape = net.shape(src)
        if consumer is not net[path.layer].layer and len(shape) == 3:  # the source's channels
            shape = (net.shape(source)[0],) + shape[1:]
        fans[id(path)] = nonzero_fanout(net.shape(source), chain, consumer,
                                        shape).reshape(-1)
        ops.dense += n * T * float(path.fanout.sum())
    if _fully_recorded(snn, result):
        active = _count_recorded(ops, snn, result, classes, paths, fans, x, seed)
    else:
        active = _count_from_spike_counts(ops, snn, result, paths, fans, x, seed)

    layer_sizes = {name: result.neurons[name] * T * n for name in snn.neurons}
    total_active, total_size = sum(active.values()), sum(layer_sizes.values())
    return {
        **neurobench_static_metrics(snn, np.dtype(result.dtype)),
        "SynapticOperations": {"Effective_MACs": ops.macs / n, "Effective_ACs": ops.acs / n,
                               "Dense": ops.dense / n},
        "ActivationSparsity": 1.0 - total_active / total_size if total_size else 0.0,
        "ActivationSparsityByLayer": {name: 1.0 - active[name] / layer_sizes[name]
                                      for name in snn.neurons},
        "MembraneUpdates": _membrane_updates(snn, result),
    }


def _check_result(snn: SpikingNetwork, result: SimResult) -> None:
    """Raise unless ``result`` is a synchronous-scheme simulation of ``snn``."""
    if not isinstance(snn, SpikingNetwork) or not isinstance(result, SimResult):
        raise EvsimTypeError("neurobench_metrics needs a SpikingNetwork and its SimResult")
    if result.time_scheme in WINDOWED:
        raise EvsimValueError(
            f"NeuroBench counts per time step; a {result.time_scheme}-scheme result "
            "counts whole windows")
    if set(result.neurons) != set(snn.neurons):
        raise EvsimValueError(
            "the result's spiking layers are not this network's; was it simulated "
            "from it?")


def _checked_inputs(net: Network, result: SimResult, inputs: np.ndarray | None,
                    needed: bool) -> np.ndarray | None:
    """The simulated images at the result's dtype, or None where not ``needed``; raises
    when needed and missing or not of the simulated shape."""
    if not needed:
        return None
    if inputs is None:
        raise EvsimValueError(
            "pass inputs= (the simulated images): NeuroBench counts the input "
            "layer's operations on its non-zero inputs")
    x = np.asarray(inputs, dtype=np.dtype(result.dtype))
    n = result.n_images
    if x.shape != (n,) + net.input_shape:
        raise EvsimValueError(f"inputs have shape {x.shape}; the result simulated "
                              f"{(n,) + net.input_shape}")
    return x


@dataclass
class _Operations:
    """Synaptic operations over all images and steps, as NeuroBench counts them."""

    macs: float = 0.0
    acs: float = 0.0
    dense: float = 0.0

    def add(self, operations: np.ndarray, spiking: np.ndarray) -> None:
        """``operations`` per image or step: ACs where ``spiking`` (its inputs were spikes),
        MACs elsewhere."""
        self.acs += float(operations[spiking].sum())
        self.macs += float(operations[~spiking].sum())


def _count_analog_head(ops: _Operations, net: Network, classes, layers, x: np.ndarray,
                       T: int) -> None:
    """The operations of the Dense/Conv2d ``layers`` of the analog head: the same input at
    every step, recomputed by NeuroBench each step."""
    if not layers:
        return
    n = len(x)
    with one_blas_thread():  # as in the simulation, so the values round the same
        head = analog_head(net, classes, x)
    for node in layers:
        layer, in_shape = node.layer, net.shape(node.inputs[0])
        values = head[node.inputs[0]].reshape(n, -1)
        fan = nonzero_fanout(in_shape, [], layer, in_shape).reshape(-1)
        ops.add(T * ((values != 0) @ fan), np.array([_is_spike_valued(v) for v in values]))
        ops.dense += n * T * float(path_fanout(in_shape, [], layer, in_shape).sum())


def _count_recorded(ops: _Operations, snn: SpikingNetwork, result: SimResult, classes, paths,
                    fans: dict, x: np.ndarray | None, seed: int) -> dict[str, int]:
    """The synaptic operations of ``paths`` from every layer's recorded per-step spikes, one
    image at a time; returns the non-zero outputs of each spiking layer."""
    T = result.T
    active = dict.fromkeys(snn.neurons, 0)
    for image in range(result.n_images):
        spikes = _per_step_spikes(snn, result, classes, image, x, seed)
        for path in paths:
            events = spikes[path.source].reshape(T, -1)
            ops.add((events != 0) @ fans[id(path)],
                    np.array([_is_spike_valued(e) for e in events]))
        for name in snn.neurons:
            active[name] += int(np.count_nonzero(spikes[name]))
    return active


def _count_from_spike_counts(ops: _Operations, snn: SpikingNetwork, result: SimResult, paths,
                             fans: dict, x: np.ndarray | None, seed: int) -> dict[str, int]:
    """The synaptic operations of ``paths`` from the result's spike counts (every spike a
    single one, checked: all ACs); returns the non-zero outputs of each spiking layer."""
    net = snn.network
    _check_single_spikes(snn, result, paths)
    counts = {name: (c.sum(axis=0) if c.ndim > len(net.shape(name)) else c).reshape(-1)
              for name, c in {**result.spike_counts, **result.pool_spike_counts}.items()}
    if result.encoding == "rate":
        counts[net.input_name] = _rate_input_counts(x, seed, result.T).reshape(-1)
    for path in paths:
        ops.acs += float(counts[path.source] @ fans[id(path)])
    return {name: int(counts[name].sum()) for name in snn.neurons}


#: What each metric is, one line each, for reports and ``--json``.
DESCRIPTIONS = {
    "ParameterCount": "weights and biases of the Dense/Conv2d layers (BatchNorm folded)",
    "Footprint": "bytes of those parameters and of every neuron's θ and v(0), at the simulation "
                 "dtype",
    "ConnectionSparsity": "zero weights / all weights of the Dense/Conv2d layers (4 decimals)",
    "SynapticOperations": "per image over T steps: Effective_MACs/ACs count (non-zero input, "
                          "non-zero weight) pairs, ACs where the inputs are spikes; Dense counts "
                          "every synapse every step",
    "ActivationSparsity": "zero outputs / all outputs of the spiking layers over steps and "
                          "images",
    "MembraneUpdates": "per image: all neurons at step 1, then those whose membrane potential "
                       "changed",
}


__all__ = ["neurobench_metrics", "neurobench_static_metrics", "nonzero_fanout",
           "NEUROBENCH_VERSION", "DESCRIPTIONS"]
