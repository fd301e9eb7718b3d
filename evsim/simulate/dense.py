"""The dense reference engine: every neuron, every step, in plain batched NumPy.

This is the readable specification of the spiking semantics: per step, the
layers update in topological order with no synaptic delay; the analog head
is computed once per image; spikes carry amplitude θ; synaptic operations
are Σ |multiplicity| × exact fan-out along every synaptic path
(:mod:`evsim.signals`). The event engine must reproduce it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import layers as L
from .. import ops
from ..encoding import rate_spikes
from ..neuron import IFParameters, IFState, if_step, spicalib_state, spicalib_step
from ..signals import ANALOG, EVENTS, SignalPlan, analog_head
from ..spiking import SpikingNetwork
from ..timescheme import popcount, window_spikes
from .result import SpikeTrain


@dataclass
class _Recorder:
    """Accumulates the spike trains and membrane traces of requested neurons for one chunk."""

    selection: dict[str, np.ndarray]
    trains: dict[str, list]
    traces: dict[str, list]


def amplitudes(snn: SpikingNetwork, plan: SignalPlan, dtype) -> dict[str, np.ndarray]:
    """The value one spike carries, per events layer, broadcastable to its per-image shape."""
    net, amp = snn.network, {}
    for node in net:
        if plan.classes[node.name] != EVENTS:
            continue
        if isinstance(node.layer, L.Input):
            amp[node.name] = np.ones((), dtype)
        elif isinstance(node.layer, L.Activation):
            amp[node.name] = snn.neurons[node.name].threshold.astype(dtype)
        elif isinstance(node.layer, L.Flatten):
            src = node.inputs[0]
            amp[node.name] = np.broadcast_to(amp[src], net.shape(src)).reshape(-1)
        else:  # MaxPool: one amplitude per channel, checked by check_spiking_graph
            src = node.inputs[0]
            a = np.broadcast_to(amp[src], net.shape(src))
            amp[node.name] = np.ascontiguousarray(a[:, :1, :1])
    return amp


def run_chunk(snn: SpikingNetwork, plan: SignalPlan, x: np.ndarray, first_image: int, *, T: int,
              checkpoints: np.ndarray, encoding: str, seed: int, per_image: bool,
              record: dict[str, np.ndarray], sops: dict, pool_ops: dict,
              counts: dict, window: int = 0, binary: bool = False, tick=None):
    """Simulate one chunk ``x`` (B, *input_shape); add its SOPs and counts in place.

    ``window`` > 0 simulates one window of the temporal scheme as one step
    (:mod:`evsim.timescheme`; ``snn`` and ``x`` already scaled to a window);
    with ``binary`` the spikes are K-bit codes (the ilif scheme) whose set bits
    are the spikes and SOPs counted.

    Returns ``(outputs (K, B, *out_shape), spike_trains, membrane)``.
    """
    net, dtype, batch = snn.network, x.dtype, len(x)
    amp = amplitudes(snn, plan, dtype)
    params = {name: IFParameters(spec.threshold.astype(dtype), spec.reset == "zero", spec.burst)
              for name, spec in snn.neurons.items()}
    states = {name: IFState(np.broadcast_to(spec.v_init.astype(dtype),
                                            (batch,) + net.shape(name)).copy())
              for name, spec in snn.neurons.items()}
    calibration = {name: spicalib_state((batch,) + net.shape(name))
                   for name, spec in snn.neurons.items() if spec.allowance > 0}
    pool_in = {n.name: np.zeros((batch,) + net.shape(n.inputs[0]), np.int64)
               for n in net if isinstance(n.layer, L.MaxPool2d) and plan.classes[n.name] == EVENTS}
    pool_out = {name: np.zeros((batch,) + net.shape(name), np.int64) for name in pool_in}

    analog = analog_head(net, plan.classes, x) if encoding == "analog" else {}
    dynamic = [n for n in net if plan.classes[n.name] != ANALOG]
    images = np.arange(first_image, first_image + batch)
    fanouts = [(p, p.fanout.reshape(-1)) for p in plan.paths]
    rec = _Recorder(record, {k: [] for k in record}, {k: [] for k in record})
    total = np.zeros((batch,) + net.output_shape, dtype)
    outputs = np.zeros((len(checkpoints), batch) + net.output_shape, dtype)
    k = 0

    for t in range(1, T + 1):
        values = dict(analog)
        spikes: dict[str, np.ndarray] = {}
        for node in dynamic:
            layer, name = node.layer, node.name
            if isinstance(layer, L.Input):
                spikes[name] = (sum(rate_spikes(x, seed, images, u) for u in range(1, window + 1))
                                if window else rate_spikes(x, seed, images, t))
                values[name] = spikes[name].astype(dtype)
            elif isinstance(layer, L.Activation) and window:
                m = states[name].v + values[node.inputs[0]]
                s = window_spikes(m, params[name].threshold, window)
                states[name] = IFState((m - s * params[name].threshold).astype(dtype))
                spikes[name], values[name] = s, s.astype(dtype) * amp[name]
                sent = popcount(s) if binary else s
                counts[name] += sent if per_image else sent.sum(axis=0)
            elif isinstance(layer, L.Activation):
                s, states[name] = if_step(values[node.inputs[0]], states[name], params[name])
                if name in calibration:
                    s, calibration[name] = spicalib_step(s, t, calibration[name],
                                                         snn.neurons[name].allowance)
                spikes[name], values[name] = s, s.astype(dtype) * amp[name]
                counts[name] += s if per_image else s.sum(axis=0)
                if name in record:
                    _record(rec, name, t, s, states[name].v)
            elif isinstance(layer, L.MaxPool2d):
                spikes[name] = _spiking_maxpool(snn.max_pool, layer, spikes[node.inputs[0]],
                                                pool_in[name], pool_out[name])
                values[name] = spikes[name].astype(dtype) * amp[name]
            elif isinstance(layer, L.Flatten) and plan.classes[name] == EVENTS:
                spikes[name] = spikes[node.inputs[0]].reshape(batch, -1)
                values[name] = values[node.inputs[0]].reshape(batch, -1)
            else:
                values[name] = ops.apply(layer, [values[s] for s in node.inputs])
        for path, fan in fanouts:
            target = sops if path.counts == "sops" else pool_ops
            multiplicity = np.abs(spikes[path.source]).reshape(batch, -1).astype(np.int64)
            if binary:
                multiplicity = popcount(multiplicity)
            target[path.layer][t - 1] += int((multiplicity @ fan).sum())
        total += values[net.output_name]
        if k < len(checkpoints) and t == checkpoints[k]:
            outputs[k] = total
            k += 1
        if tick is not None:
            tick()

    trains = {name: _concat_train(rec.trains[name]) for name in record}
    traces = {name: np.stack(rec.traces[name]) for name in record}
    return outputs, trains, traces


def _spiking_maxpool(mode: str, layer: L.MaxPool2d, incoming: np.ndarray,
                     cumulative_in: np.ndarray, cumulative_out: np.ndarray) -> np.ndarray:
    """One step of spiking max pooling on spike multiplicities; updates the state in place.

    LIPooling: emit ``maxpool(C_in) − C_out`` so the cumulative output equals
    the max-pool of the cumulative inputs. Gate: pass the current spikes of
    each window's member with the largest cumulative count (first on ties).
    """
    cumulative_in += incoming
    if mode == "lipooling":
        peak = ops.maxpool2d(layer, cumulative_in)
        out = peak - cumulative_out
        cumulative_out[...] = peak
    else:
        winner = ops.maxpool2d_argmax(layer, cumulative_in)
        out = ops.gather_windows(layer, incoming, winner)
    return out.astype(np.int32)


def _record(rec: _Recorder, name: str, t: int, s: np.ndarray, v: np.ndarray) -> None:
    chosen = rec.selection[name]
    flat_s = s.reshape(len(s), -1)[:, chosen]
    img, neuron = np.nonzero(flat_s)
    rec.trains[name].append((np.full(img.size, t), img, neuron, flat_s[img, neuron]))
    rec.traces[name].append(v.reshape(len(v), -1)[:, chosen].copy())


def _concat_train(parts: list) -> SpikeTrain:
    if not parts:
        empty = np.zeros(0, np.int64)
        return SpikeTrain(empty, empty, empty, empty)
    steps, images, neurons, counts = (np.concatenate([p[i] for p in parts]).astype(np.int64)
                                      for i in range(4))
    return SpikeTrain(steps, images, neurons, counts)


__all__ = ["run_chunk", "amplitudes"]
