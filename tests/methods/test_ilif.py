"""Inverse-leaky binary firing (time scheme "ilif", methods.md §4): K bits per window."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netgen import random_network

import evsim
from evsim import layers as L
from evsim import kinds
from evsim.timescheme import MAX_BITS, spiking_depth

EXAMPLES = settings(max_examples=30, deadline=None, derandomize=True)


def _ilif(snn, v0_fraction=0.0):
    """The same network with inverse-leaky binary firing, θ powers of two per neuron."""
    rng = np.random.default_rng(1)
    neurons = {}
    for name, spec in snn.neurons.items():
        theta = 2.0 ** rng.integers(-2, 2, size=np.shape(spec.threshold))
        neurons[name] = evsim.NeuronSpec(theta, theta * v0_fraction)
    return evsim.SpikingNetwork(snn.network, neurons, max_pool=snn.max_pool, time_scheme="ilif")


def _truncated_ann(snn, x, bits):
    """Reference: every activation sends V/θ truncated to K bits in [0, 2 − 2^(1−K)] (as θ
    times that); returns the output and each layer's K-bit codes."""
    values, codes = {}, {}
    for node in snn.network:
        name, layer = node.name, node.layer
        if isinstance(layer, L.Input):
            values[name] = x
        elif name in snn.neurons:
            spec = snn.neurons[name]
            step = spec.threshold * 2.0 ** (1 - bits)
            code = np.clip(np.floor((values[node.inputs[0]] + spec.v_init) / step),
                           0, 2 ** bits - 1)
            values[name], codes[name] = code * step, code.astype(np.int64)
        else:
            values[name] = kinds.apply(layer, [values[s] for s in node.inputs])
    return values[snn.network.output_name], codes


@EXAMPLES
@given(seed=st.integers(0, 2**31), bits=st.sampled_from([1, 2, 3, 4, 8]))
def test_the_decoded_values_are_the_activations_truncated_to_k_bits(seed, bits):
    base, x = random_network(seed)
    snn = _ilif(base)
    result = evsim.simulate(snn, x, T=bits, per_image_counts=True, dtype=np.float64)
    out, codes = _truncated_ann(snn, x.astype(np.float64), bits)
    for name, code in codes.items():  # spikes sent = the set bits of each code
        np.testing.assert_array_equal(result.spike_counts[name], np.bitwise_count(code),
                                      err_msg=name)
    np.testing.assert_array_equal(result.mean_output(bits), out)
    assert result.checkpoints.tolist() == [bits]
    assert result.latency == (spiking_depth(snn.network) + 1) * bits


@EXAMPLES
@given(seed=st.integers(0, 2**31), bits=st.sampled_from([1, 2, 4]),
       dtype=st.sampled_from([np.float32, np.float64]), v0=st.sampled_from([0.0, 0.25]),
       max_pool=st.sampled_from(["lipooling", "gate"]))
def test_engines_agree_spike_for_spike_and_sop_for_sop(seed, bits, dtype, v0, max_pool):
    base, x = random_network(seed, max_pool=max_pool)
    snn = _ilif(base, v0)
    kwargs = dict(T=bits, dtype=dtype, per_image_counts=True)
    dense = evsim.simulate(snn, x, engine="dense", **kwargs)
    event = evsim.simulate(snn, x, engine="event", **kwargs)
    assert evsim.results_equal(dense, event), evsim.difference(dense, event)


@pytest.mark.filterwarnings("ignore::evsim.UnscaledInputWarning")  # currents, not images
def test_a_hand_computed_chain():
    # x = 0.8125 = 0.1101b, θ = 1, K = 4: the code is floor(0.8125 · 8) = 6 = 0110b, two
    # spikes (bits 2 and 3), decoded 0.75; each reaches 3 synapses of the next Dense.
    net = evsim.Network.sequential((1,), [L.Dense(np.ones((1, 1))), L.ReLU(),
                                          L.Dense(np.array([[1.0], [2.0], [-1.0]]))])
    snn = evsim.SpikingNetwork(net, {"relu1": evsim.NeuronSpec(1.0)}, time_scheme="ilif")
    for engine in ("dense", "event"):
        r = evsim.simulate(snn, np.array([[0.8125]]), T=4, engine=engine, dtype=np.float64)
        assert int(r.spike_counts["relu1"][0]) == 2
        assert r.total_sops() == 2 * 3
        np.testing.assert_array_equal(r.mean_output(4), [[0.75, 1.5, -0.75]])
    # saturation: V/θ ≥ 2 sends all K ones, decoded 2 − 2^(1−K)
    r = evsim.simulate(snn, np.array([[5.0]]), T=4, dtype=np.float64)
    assert int(r.spike_counts["relu1"][0]) == 4
    np.testing.assert_array_equal(r.mean_output(4)[0, 0], 1.875)


def test_spikeconverter_with_ilif_and_errors():
    net = evsim.Network.sequential((3,), [L.Dense(np.eye(3)), L.ReLU(), L.Dense(np.eye(3))])
    snn = evsim.convert(net, np.ones((4, 3)), method="spikeconverter", time_scheme="ilif")
    assert snn.time_scheme == "ilif" and float(snn.neurons["relu1"].v_init) == 0.0
    with pytest.raises(ValueError, match="encoding='analog'"):
        evsim.simulate(snn, np.ones((1, 3)) / 2, T=4, encoding="rate")
    with pytest.raises(ValueError, match=f"K must be in \\[1, {MAX_BITS}\\]"):
        evsim.simulate(snn, np.ones((1, 3)), T=MAX_BITS + 1)
    with pytest.raises(ValueError, match="one checkpoint"):
        evsim.simulate(snn, np.ones((1, 3)), T=4, checkpoints=[2, 4])
    with pytest.raises(ValueError, match="burst must be 1"):
        evsim.convert(net, np.ones((4, 3)), method="spikeconverter", time_scheme="ilif",
                      burst=2)
