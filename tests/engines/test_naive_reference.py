"""event == dense == naive: both engines equal an independent reference simulator.

``tests/naive_reference.py`` shares no code with the engines (only the network's data
records), so a wrong neuron, pooling, encoding or counting rule in code the two engines
share (the compiled scalar rules of ``evsim/simulate/kernels.py``) fails here even
though ``tests/engines/test_engine_equivalence.py`` compares the engines with each other.
Networks are on the dyadic grid (``tests/netgen.py``): every sum is exact, so the
reference's float64 and the engines' float32 or float64 must agree bit for bit.
"""

import ast
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from netgen import random_network, random_routing_network, random_signed_network

import evsim
import naive_reference as naive


def _assert_agree(reference, result):
    """Outputs, per-image spike counts, negative spikes, SOPs, pool ops, MACs, latency."""
    name = result.engine
    np.testing.assert_array_equal(result.checkpoints, reference.checkpoints)
    np.testing.assert_array_equal(result.outputs.astype(np.float64), reference.outputs,
                                  err_msg=f"{name}: outputs")
    assert result.spike_counts.keys() == reference.spike_counts.keys()
    for layer, counts in reference.spike_counts.items():
        np.testing.assert_array_equal(result.spike_counts[layer], counts,
                                      err_msg=f"{name}: spikes of {layer}")
    assert result.negative_spikes == reference.negative_spikes, name
    for kind in ("sops", "pool_ops"):
        ours, theirs = getattr(reference, kind), getattr(result, kind)
        assert theirs.keys() == ours.keys(), (name, kind)
        for layer in ours:
            np.testing.assert_array_equal(theirs[layer], ours[layer],
                                          err_msg=f"{name}: {kind} of {layer}")
    assert result.macs == reference.macs, name
    assert result.latency == reference.latency, name


def _all_agree(snn, x, T, **kwargs):
    """Simulate on both engines and the reference; return the reference's result."""
    options = {k: v for k, v in kwargs.items()
               if k in ("encoding", "checkpoints", "seed", "first_image")}
    reference = naive.simulate(snn, x, T, **options)
    for engine in ("event", "dense"):
        _assert_agree(reference, evsim.simulate(snn, x, T=T, engine=engine,
                                                per_image_counts=True, **kwargs))
    return reference


@settings(max_examples=150, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), T=st.integers(1, 16),
       max_pool=st.sampled_from(["lipooling", "gate"]),
       encoding=st.sampled_from(["analog", "rate"]),
       dtype=st.sampled_from([np.float32, np.float64]), every_step=st.booleans())
def test_engines_equal_the_naive_reference(seed, T, max_pool, encoding, dtype, every_step):
    """Synchronous scheme: convolutions (stride, padding, dilation, groups), residual adds,
    LIPooling and the gate, average pooling (folded or not), global average pooling,
    flatten, dense layers; IF neurons with both resets, initial potentials, bursts and
    SpiCalib; analog and rate-coded input (images numbered from an offset); default or
    every-step checkpoints."""
    snn, x = random_network(seed, max_pool=max_pool)
    _all_agree(snn, x, T, encoding=encoding, dtype=dtype, seed=seed % 1000,
               first_image=seed % 7, checkpoints=range(1, T + 1) if every_step else None)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), T=st.integers(1, 12),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_recorded_trains_and_membranes_equal_the_naive_reference(seed, T, dtype):
    """The dense engine's recording path (the NumPy neuron of evsim/neuron.py, step by
    step): every spike and every potential after each step's reset."""
    snn, x = random_network(seed)
    reference = naive.simulate(snn, x, T)
    result = evsim.simulate(snn, x, T=T, engine="dense", dtype=dtype, per_image_counts=True,
                            record=list(snn.neurons))
    _assert_agree(reference, result)
    for layer, spikes in reference.spikes.items():
        steps, images, neurons = np.nonzero(spikes)
        train = result.spike_trains[layer]
        for field, expected in (("steps", steps + 1), ("images", images),
                                ("neurons", neurons), ("counts", spikes[steps, images, neurons])):
            np.testing.assert_array_equal(getattr(train, field), expected,
                                          err_msg=f"{layer}: {field}")
        np.testing.assert_array_equal(result.membrane[layer].astype(np.float64),
                                      reference.membrane[layer], err_msg=f"{layer}: membrane")


def _plain_if(snn, seed):
    """``snn`` with Γ = 1 and no SpiCalib, thresholds and potentials drawn again so that
    membranes land exactly on θ: the engines' vectorised common neuron path."""
    rng = np.random.default_rng(seed)
    neurons = {}
    for name, spec in snn.neurons.items():
        theta = rng.integers(1, 5, size=np.shape(spec.threshold)) / 8
        neurons[name] = evsim.NeuronSpec(theta, theta * rng.integers(0, 2) / 2,
                                         reset=spec.reset)
    return evsim.SpikingNetwork(snn.network, neurons, max_pool=snn.max_pool)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), T=st.integers(4, 16),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_the_common_neuron_path_equals_the_naive_reference(seed, T, dtype):
    snn, x = random_network(seed)
    _all_agree(_plain_if(snn, seed), x, T, dtype=dtype)


def _windowed(snn, scheme, v0_fraction, seed):
    """The same network in a windowed scheme, θ powers of two, v(0) = fraction · θ."""
    rng = np.random.default_rng(seed)
    neurons = {}
    for name, spec in snn.neurons.items():
        theta = 2.0 ** rng.integers(-2, 2, size=np.shape(spec.threshold))
        neurons[name] = evsim.NeuronSpec(theta, theta * v0_fraction)
    return evsim.SpikingNetwork(snn.network, neurons, max_pool=snn.max_pool,
                                time_scheme=scheme)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), window=st.sampled_from([1, 3, 8]),
       encoding=st.sampled_from(["analog", "rate"]),
       dtype=st.sampled_from([np.float32, np.float64]), v0=st.sampled_from([0.0, 0.5]))
def test_the_temporal_scheme_equals_the_naive_reference(seed, window, encoding, dtype, v0):
    base, x = random_network(seed)
    _all_agree(_windowed(base, "temporal", v0, seed), x, window, encoding=encoding,
               dtype=dtype, seed=seed % 1000)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), bits=st.sampled_from([1, 2, 3, 5]),
       dtype=st.sampled_from([np.float32, np.float64]), v0=st.sampled_from([0.0, 0.25]),
       max_pool=st.sampled_from(["lipooling", "gate"]))
def test_the_ilif_scheme_equals_the_naive_reference(seed, bits, dtype, v0, max_pool):
    """The reference sends each code bit by bit (s_k = [V ≥ θ], V ← 2(V − θ s_k)); the
    engines compute it as one clip-floor code."""
    base, x = random_network(seed, max_pool=max_pool)
    _all_agree(_windowed(base, "ilif", v0, seed), x, bits, dtype=dtype)


def test_the_suite_exercises_every_neuron_feature():
    """Guard against a vacuous suite: on the generated networks the reference sees bursts
    of more than one spike, zero-reset neurons that fire, negative SpiCalib spikes, max
    pools that pool, and SOPs into convolutions, dense layers and residual adds."""
    bursts = zero_resets = negatives = pooling = 0
    consumers = set()
    for seed in range(12):
        snn, x = random_network(seed)
        r = naive.simulate(snn, x, 12)
        for name, spec in snn.neurons.items():
            fired = int(r.spike_counts[name].sum())
            bursts += fired * (spec.burst > 1)
            zero_resets += fired * (spec.reset == "zero")
            negatives += r.negative_spikes[name]
        pooling += int(sum(v.sum() for v in r.pool_ops.values()) > 0)
        consumers |= {type(snn.network[k].layer).__name__ for k, v in r.sops.items()
                      if v.sum() > 0}
    assert min(bursts, zero_resets, negatives, pooling) > 0
    assert {"Conv2d", "Dense", "Add"} <= consumers


def test_a_hand_computed_neuron():
    """The reference itself, by hand: a constant current 0.375 into θ = 0.25, v(0) = 0.125
    and Γ = 2 fires floor((0.125 + 0.375 t) / 0.25) − (spikes so far), capped at 2."""
    net = evsim.Network.sequential((1,), [evsim.Dense(np.ones((1, 1))), evsim.ReLU(),
                                          evsim.Dense(np.array([[2.0]]))])
    snn = evsim.SpikingNetwork(net, {"relu1": evsim.NeuronSpec(0.25, 0.125, burst=2)})
    r = naive.simulate(snn, np.array([[0.375]]), 4, checkpoints=[1, 2, 3, 4])
    # membranes 0.5 → 2 spikes (v 0), 0.375 → 1 (v 0.125), 0.5 → 2 (v 0), 0.375 → 1
    assert int(r.spike_counts["relu1"][0, 0]) == 6
    np.testing.assert_array_equal(r.outputs[:, 0, 0], 2 * 0.25 * np.array([2, 3, 5, 6]))
    np.testing.assert_array_equal(r.sops["dense2"], [2, 1, 2, 1])
    assert r.macs == {"dense1": 1}


def test_the_reference_imports_no_engine_code():
    """Only the layer records of evsim.layers (data) may be imported."""
    tree = ast.parse((Path(__file__).parents[1] / "naive_reference.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
    assert {name for name in imported if "evsim" in name} == {"evsim.layers"}, imported


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), T=st.integers(1, 10),
       encoding=st.sampled_from(["analog", "rate"]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_concat_pad_upsample_equal_the_naive_reference(seed, T, encoding, dtype):
    """Concats of spikes, of pooled spikes and of the input (analog or rate-coded), zero
    padding and nearest/bilinear upsampling folded into convolutions, read by neurons or by
    the readout: outputs, spikes and SOPs of both engines equal the reference's."""
    snn, x = random_routing_network(seed)
    assert any(isinstance(n.layer, evsim.layers.Concat) for n in snn.network)
    _all_agree(snn, x, T, encoding=encoding, dtype=dtype, seed=seed % 1000)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), scheme=st.sampled_from(["temporal", "ilif"]),
       length=st.sampled_from([1, 3, 4]), encoding=st.sampled_from(["analog", "rate"]),
       v0=st.sampled_from([0.0, 0.5]))
def test_concat_pad_upsample_in_the_windowed_schemes(seed, scheme, length, encoding, v0):
    """The same routing networks in the temporal scheme (window ``length``) and the ilif
    scheme (``length`` bits)."""
    base, x = random_routing_network(seed)
    if scheme == "ilif":
        encoding = "analog"
    _all_agree(_windowed(base, scheme, v0, seed), x, length, encoding=encoding,
               seed=seed % 1000)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), T=st.integers(1, 16),
       encoding=st.sampled_from(["analog", "rate"]),
       dtype=st.sampled_from([np.float32, np.float64]), every_step=st.booleans())
def test_signed_neurons_equal_the_naive_reference(seed, T, encoding, dtype, every_step):
    """Signed IF neurons (methods.md §5b: LeakyReLU, identity at linear bottlenecks, θ⁻ per
    layer or channel, both resets, bursts, negative v(0)), their negative spikes through
    convolutions, Adds, average pooling and dense layers: outputs, net counts, negative
    spike totals and SOPs (|multiplicity|) spike for spike."""
    snn, x = random_signed_network(seed)
    reference = _all_agree(snn, x, T, encoding=encoding, dtype=dtype, seed=seed % 1000,
                           checkpoints=range(1, T + 1) if every_step else None)
    assert set(reference.negative_spikes) == set(snn.neurons)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), T=st.integers(1, 12))
def test_recorded_signed_trains_and_membranes_equal_the_naive_reference(seed, T):
    """The dense engine's NumPy signed neuron (evsim.neuron.signed_fire/signed_reset): every
    spike, negative ones included, and every potential after the reset."""
    snn, x = random_signed_network(seed)
    reference = naive.simulate(snn, x, T)
    result = evsim.simulate(snn, x, T=T, engine="dense", per_image_counts=True,
                            record=list(snn.neurons))
    _assert_agree(reference, result)
    for layer, spikes in reference.spikes.items():
        steps, images, neurons = np.nonzero(spikes)
        np.testing.assert_array_equal(result.spike_trains[layer].counts,
                                      spikes[steps, images, neurons], err_msg=layer)
        np.testing.assert_array_equal(result.membrane[layer].astype(np.float64),
                                      reference.membrane[layer], err_msg=layer)


def _signed_windows(snn, scheme="temporal"):
    """A signed network in a windowed scheme: Γ = 1 (a window fires up to W spikes, or a
    K-bit code), the rest of each spec (θ, θ⁻, v(0) of either sign, both resets) kept."""
    neurons = {name: evsim.NeuronSpec(spec.threshold, spec.v_init, reset=spec.reset,
                                      negative_threshold=spec.negative_threshold)
               for name, spec in snn.neurons.items()}
    return evsim.SpikingNetwork(snn.network, neurons, time_scheme=scheme)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), window=st.sampled_from([1, 3, 8]),
       encoding=st.sampled_from(["analog", "rate"]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_signed_neurons_in_the_temporal_scheme_equal_the_naive_reference(seed, window,
                                                                        encoding, dtype):
    """Signed neurons firing a window's count, −clip(floor(−V/θ⁻), 0, W) below zero
    (methods.md, signed neurons), through linear bottlenecks, Adds, average pooling and
    dense layers: outputs, net counts, negative spike totals and SOPs (|multiplicity| per
    target) of both engines equal the reference's."""
    snn, x = random_signed_network(seed)
    _all_agree(_signed_windows(snn), x, window, encoding=encoding, dtype=dtype,
               seed=seed % 1000)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), bits=st.sampled_from([1, 2, 3, 5]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_signed_neurons_in_the_ilif_scheme_equal_the_naive_reference(seed, bits, dtype):
    """Signed neurons sending K-bit codes: below zero the code of −V/θ⁻ as negative spikes
    (the reference sends it bit by bit): outputs, net counts (set bits with the code's
    sign), negative spike totals and SOPs (set bits per target)."""
    snn, x = random_signed_network(seed)
    _all_agree(_signed_windows(snn, "ilif"), x, bits, dtype=dtype)


def test_the_signed_windowed_suite_fires_negative_windows():
    """The windowed signed networks do send negative counts above 1 (several spikes in one
    window or code) on identity and LeakyReLU layers, in both windowed schemes."""
    for scheme, length in (("temporal", 8), ("ilif", 4)):
        fired = {"leaky_relu": 0, "identity": 0}
        largest = 0
        for seed in range(12):
            snn, x = random_signed_network(seed)
            reference = naive.simulate(_signed_windows(snn, scheme), x, length)
            for name, total in reference.negative_spikes.items():
                kind = snn.network[name].layer.kind
                if kind in fired:
                    fired[kind] += total
                largest = max(largest, -int(reference.spike_counts[name].min()))
        assert min(fired.values()) > 0 and largest > 1, (scheme, fired, largest)


def test_the_signed_suite_fires_negative_spikes():
    """The random signed networks do exercise negative spikes on both kinds of layer, in
    bursts and with zero reset."""
    fired = {"leaky_relu": 0, "identity": 0, "burst": 0, "zero": 0}
    for seed in range(12):
        snn, x = random_signed_network(seed)
        reference = naive.simulate(snn, x, 8)
        for name, total in reference.negative_spikes.items():
            spec, kind = snn.neurons[name], snn.network[name].layer.kind
            if kind in fired:
                fired[kind] += total
            fired["burst"] += total * (spec.burst > 1)
            fired["zero"] += total * (spec.reset == "zero")
    assert min(fired.values()) > 0, fired
