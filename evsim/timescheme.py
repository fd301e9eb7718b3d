"""Temporal separation (SpikeConverter-style, methods.md §4): integrate a window, then fire.

In this time scheme ``T`` is the window length W. Every spiking layer
integrates its whole input window without firing, ``V = v(0) + Σ_window
I(t)``, then emits ``N = clip(floor(V / θ), 0, W)`` spikes during the next
window (one per step). Layers are pipelined: the readout has its window's
sum after ``(D + 1) W`` steps, D being the most spiking layers on a path from
the input to the output. A residual skip is delayed to its Add's window (a
delay buffer), which the counts below already assume.

Within one window only totals matter, so both engines simulate a window as
one step of a transformed network: every bias and the analog input scaled by
W (a window's worth of current), neurons firing by the window rule, the
rate-coded input counting its spikes over W steps.

Inverse-leaky binary firing (time scheme ``"ilif"``, methods.md §4,
[unverified] reading of SpikeConverter's neuron): in its firing window a
layer sends the binary expansion of V/θ, most significant bit first, one bit
per step, so T = K steps carry K bits: ``s_k = [V ≥ θ]``, ``V ← 2(V − θ s_k)``.
The receiver decodes ``Σ_k s_k 2^(1−k)`` and adds its bias once. The
decoded value is V/θ truncated to K bits and clipped to [0, 2 − 2^(1−K)],
i.e. the integer code ``c = clip(floor(V / (θ 2^(1−K))), 0, 2^K − 1)`` times
``θ 2^(1−K)``. Both engines simulate it as the window rule on a network
whose thresholds are ``θ 2^(1−K)`` with the code as the event multiplicity;
spikes and SOPs count the code's set bits (the binary spikes actually sent). A signed
neuron below zero sends the code of −V/θ⁻ as a negative code (θ⁻ scaled alike): its set
bits are negative spikes.
Analog input only; K ≤ :data:`MAX_BITS` keeps every code exact in float32.
"""

from __future__ import annotations

import numpy as np

import dataclasses

from . import kinds
from .network import Network, Node
from .spiking import SpikingNetwork, check_temporal  # re-exported: check_temporal was here
from .errors import EvsimValueError

#: The most bits (T) a window of inverse-leaky binary firing may carry.
MAX_BITS = 24


def window_network(snn: SpikingNetwork, window: int) -> SpikingNetwork:
    """``snn`` with every Dense/Conv2d bias multiplied by ``window`` (a window's total)."""
    nodes = []
    for node in snn.network:
        layer = node.layer
        if kinds.role_of(layer) == kinds.SYNAPSE and layer.bias is not None:
            layer = layer.replace(bias=layer.bias * layer.bias.dtype.type(window))
        nodes.append(Node(node.name, layer, node.inputs))
    return SpikingNetwork(Network(nodes, output=snn.network.output_name), snn.neurons,
                          max_pool=snn.max_pool, time_scheme=snn.time_scheme,
                          method=snn.method, options=snn.options)


def binary_network(snn: SpikingNetwork, bits: int) -> SpikingNetwork:
    """``snn`` with every θ scaled by ``2^(1−bits)``: the value one unit of a K-bit code
    carries. Biases and initial potentials are unchanged (the receiver adds them once)."""
    if not 1 <= bits <= MAX_BITS:
        raise EvsimValueError(f"the ilif scheme carries T = K bits per window; K must be in "
                              f"[1, {MAX_BITS}] (codes exact in float32), got {bits}")
    neurons = {}
    for name, spec in snn.neurons.items():
        scale = spec.threshold.dtype.type(2.0 ** (1 - bits))
        negative = (None if not spec.signed else
                    spec.negative_threshold * spec.negative_threshold.dtype.type(scale))
        neurons[name] = dataclasses.replace(spec, threshold=spec.threshold * scale,
                                            negative_threshold=negative)
    return SpikingNetwork(snn.network, neurons, max_pool=snn.max_pool,
                          time_scheme=snn.time_scheme, method=snn.method, options=snn.options)


def popcount(codes: np.ndarray) -> np.ndarray:
    """Set bits of integer codes, with the code's sign (a signed neuron's negative code):
    the net binary spikes a code is sent as (int64)."""
    codes = np.asarray(codes).astype(np.int64)
    return np.sign(codes) * np.bitwise_count(np.abs(codes)).astype(np.int64)


def spiking_depth(network: Network) -> int:
    """D: the most spiking (activation) layers on any path from the input to the output."""
    depth: dict[str, int] = {}
    for node in network:
        below = max((depth[s] for s in node.inputs), default=0)
        depth[node.name] = below + (kinds.role_of(node.layer) == kinds.NEURON)
    return depth[network.output_name]


def latency(network: Network, window: int) -> int:
    """Steps until the output window is complete: ``(D + 1) W``."""
    return (spiking_depth(network) + 1) * window


__all__ = ["window_network", "binary_network", "popcount", "MAX_BITS",
           "spiking_depth", "latency", "check_temporal"]
