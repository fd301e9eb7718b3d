"""Temporal separation (methods.md §4): spike counts equal a W-level quantised ANN exactly."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netgen import random_network

import evsim
from evsim import QCFS, Network, Node, NeuronSpec, SpikingNetwork
from evsim.timescheme import latency, spiking_depth

EXAMPLES = settings(max_examples=40, deadline=None, derandomize=True)


def _temporal(snn, v0_fraction):
    """The same network in the temporal scheme, thresholds powers of two, v(0) = fraction·θ."""
    rng = np.random.default_rng(0)
    neurons = {}
    for name, spec in snn.neurons.items():
        theta = 2.0 ** rng.integers(-2, 2, size=np.shape(spec.threshold))
        neurons[name] = NeuronSpec(theta, theta * v0_fraction)
    return SpikingNetwork(snn.network, neurons, max_pool=snn.max_pool, time_scheme="temporal")


def _quantised_ann(snn, window):
    """Every activation replaced by QCFS(λ = θ, L = W, shift = v(0)/θ): the W-level ANN."""
    nodes = []
    for node in snn.network:
        layer = node.layer
        if node.name in snn.neurons:
            spec = snn.neurons[node.name]  # one threshold per layer
            layer = QCFS(float(spec.threshold), window, float(spec.v_init) / float(spec.threshold))
        nodes.append(Node(node.name, layer, node.inputs))
    return Network(nodes, output=snn.network.output_name)


@EXAMPLES
@given(seed=st.integers(0, 2**31), window=st.sampled_from([1, 2, 4, 8, 16]),
       v0=st.sampled_from([0.0, 0.5]))
def test_counts_equal_the_quantised_ann(seed, window, v0):
    base, x = random_network(seed)
    snn = _temporal(base, v0)
    # one threshold per layer so the per-layer QCFS is the same function
    snn = SpikingNetwork(snn.network, {k: NeuronSpec(np.float64(np.max(v.threshold)),
                                                     np.float64(np.max(v.v_init)))
                                       for k, v in snn.neurons.items()},
                         max_pool=snn.max_pool, time_scheme="temporal")
    r = evsim.simulate(snn, x, T=window, per_image_counts=True, dtype=np.float64)
    ann = _quantised_ann(snn, window)
    out, acts = evsim.forward(ann, x, activations=list(snn.neurons), dtype=np.float64)
    for name, spec in snn.neurons.items():
        expected = acts[name] * window / spec.threshold  # a = θ N / W
        np.testing.assert_array_equal(r.spike_counts[name], expected, err_msg=name)
    np.testing.assert_array_equal(r.mean_output(window), out)
    assert r.checkpoints.tolist() == [window]
    assert r.latency == (spiking_depth(snn.network) + 1) * window


@EXAMPLES
@given(seed=st.integers(0, 2**31), window=st.sampled_from([1, 3, 8]),
       encoding=st.sampled_from(["analog", "rate"]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_engines_agree_in_the_temporal_scheme(seed, window, encoding, dtype):
    base, x = random_network(seed)
    snn = _temporal(base, 0.5)
    kwargs = dict(T=window, encoding=encoding, dtype=dtype, per_image_counts=True)
    dense = evsim.simulate(snn, x, engine="dense", **kwargs)
    event = evsim.simulate(snn, x, engine="event", **kwargs)
    assert evsim.results_equal(dense, event), evsim.difference(dense, event)
    for name in dense.spike_counts:
        np.testing.assert_array_equal(dense.spike_counts[name], event.spike_counts[name])
        assert dense.spike_counts[name].max() <= window


def test_latency_counts_spiking_layers_on_the_longest_path():
    snn, _ = random_network(5)
    depth = spiking_depth(snn.network)
    assert 1 <= depth <= len(snn.neurons)
    assert latency(snn.network, 8) == (depth + 1) * 8
    chain = evsim.Network.sequential((2,), [evsim.Dense(np.eye(2)), evsim.ReLU(),
                                            evsim.Dense(np.eye(2)), evsim.ReLU(),
                                            evsim.Dense(np.eye(2))])
    assert spiking_depth(chain) == 2 and latency(chain, 4) == 12


def test_spikeconverter_preset_and_errors():
    net = evsim.Network.sequential((3,), [evsim.Dense(np.eye(3)), evsim.ReLU(),
                                          evsim.Dense(np.eye(3))])
    snn = evsim.convert(net, np.ones((4, 3)), method="spikeconverter")
    assert snn.time_scheme == "temporal"
    assert float(snn.neurons["relu1"].v_init) == float(snn.neurons["relu1"].threshold) / 2
    with pytest.raises(ValueError, match="burst must be 1"):
        evsim.convert(net, np.ones((4, 3)), method="spikeconverter", burst=2)
    with pytest.raises(ValueError, match="one checkpoint"):
        evsim.simulate(snn, np.ones((1, 3)), T=4, checkpoints=[2, 4])


def test_the_bundled_mobilenet_converts_spikeconverter_style_on_both_engines():
    """SpikeConverter-style conversion of the MobileNet-v2 (signed identity neurons at its
    linear bottlenecks fire negative windows): both engines send the same spikes, negative
    ones included, and SOPs, and their outputs differ only by float rounding (float sums in
    another order: not a dyadic network)."""
    from evsim.data import load_bundled_sample
    from evsim.models import load_model

    x, _ = load_bundled_sample("test")
    calibration, _ = load_bundled_sample("train")
    snn = evsim.convert(load_model("mobilenet"), calibration[:100], method="spikeconverter")
    signed = [name for name, spec in snn.neurons.items() if spec.signed]
    assert snn.time_scheme == "temporal" and signed
    window = 8
    dense, event = (evsim.simulate(snn, x[:6], T=window, engine=engine, per_image_counts=True)
                    for engine in ("dense", "event"))
    assert evsim.difference(dense, event).spikes == 0
    assert dense.negative_spikes == event.negative_spikes
    assert all(dense.negative_spikes[name] > 0 for name in signed)
    for name, counts in dense.spike_counts.items():
        assert np.abs(counts).max() <= window, name
    for name in dense.sops:
        np.testing.assert_array_equal(dense.sops[name], event.sops[name], err_msg=name)
    np.testing.assert_allclose(dense.outputs, event.outputs, rtol=1e-5, atol=1e-3)
    assert dense.latency == (spiking_depth(snn.network) + 1) * window
