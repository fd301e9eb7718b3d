"""Exact properties of signed IF neurons (methods.md §5b), on the dyadic grid."""

from fractions import Fraction

import numpy as np
import pytest
from dyadic import dyadic, dyadic_threshold
from hypothesis import given, settings
from hypothesis import strategies as st

import evsim
from evsim import Dense, NeuronSpec, SpikingNetwork
from evsim.layers import Identity, LeakyReLU

FAST = settings(max_examples=25, deadline=None, derandomize=True)
CURRENTS_ABOVE_ONE = pytest.mark.filterwarnings("ignore::evsim.UnscaledInputWarning")
ENGINES = ("event", "dense")


def _single_layer(n: int, activation) -> evsim.Network:
    """Input z → identity synapse → activation → identity readout: the neuron's input is z
    every step and the readout sums its spike values θ s."""
    return evsim.Network.sequential((n,), [Dense(np.eye(n)), activation, Dense(np.eye(n))],
                                    names=["fc", "act", "out"])


@CURRENTS_ABOVE_ONE
@FAST
@given(seed=st.integers(0, 2**31), T=st.integers(1, 64), alpha_exp=st.integers(0, 3),
       engine=st.sampled_from(ENGINES))
def test_constant_input_approaches_leaky_relu_within_theta_over_T(seed, T, alpha_exp, engine):
    """v(0) = 0, constant z, θ⁻ = θ/α: θ (N⁺ − N⁻) / T is within θ/T of clip(z, 0, θ) for
    z ≥ 0 and of clip(α z, −θ, 0) below; N⁺ and N⁻ are exactly the floors."""
    rng = np.random.default_rng(seed)
    n, alpha = 16, 2.0 ** -alpha_exp
    theta = dyadic_threshold(rng, n)
    z = dyadic(rng, n, kmax=24)  # both signs, sub- and super-threshold
    layer = LeakyReLU(alpha) if alpha < 1 else Identity()
    snn = SpikingNetwork(_single_layer(n, layer),
                         {"act": NeuronSpec(theta, negative_threshold=theta / alpha)})
    r = evsim.simulate(snn, z[None], T=T, per_image_counts=True, engine=engine)
    output = r.outputs[-1, 0].astype(np.float64) / T
    target = np.where(z >= 0, np.minimum(z, theta), np.maximum(alpha * z, -theta))
    assert np.all(np.abs(output - target) <= theta / T)
    exact = [min(T, (Fraction(T) * Fraction(zi) / Fraction(ti)).__floor__()) if zi >= 0 else
             -min(T, (Fraction(T) * Fraction(-zi) * Fraction(alpha) / Fraction(ti)).__floor__())
             for zi, ti in zip(z, theta)]
    assert r.spike_counts["act"][0].tolist() == exact
    assert r.negative_spikes["act"] == -sum(e for e in exact if e < 0)


@FAST
@given(seed=st.integers(0, 2**31), T=st.integers(1, 30), burst=st.integers(1, 3),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_signed_conservation_identity(seed, T, burst, dtype):
    """θ N⁺ − θ⁻ N⁻ = v(0) + Σ_t I(t) − v(T) with subtractive reset, for every neuron."""
    rng = np.random.default_rng(seed)
    n = 10
    w = dyadic(rng, (n, 6))
    net = evsim.Network.sequential((6,), [Dense(w), LeakyReLU(0.5), Dense(np.eye(n))],
                                   names=["fc", "act", "out"])
    theta, negative = dyadic_threshold(rng, n), dyadic_threshold(rng, n)
    v0 = dyadic(rng, n, kmax=4)
    snn = SpikingNetwork(net, {"act": NeuronSpec(theta, v0, burst=burst,
                                                 negative_threshold=negative)})
    x = dyadic(rng, (3, 6), low=0)
    r = evsim.simulate(snn, x, T=T, engine="dense", record=["act"], per_image_counts=True,
                       dtype=dtype)
    train = r.spike_trains["act"]
    up, down = np.zeros((3, n)), np.zeros((3, n))
    np.add.at(up, (train.images, train.neurons), np.maximum(train.counts, 0))
    np.add.at(down, (train.images, train.neurons), np.maximum(-train.counts, 0))
    np.testing.assert_array_equal(theta * up - negative * down,
                                  v0 + T * (x @ w.T) - r.membrane["act"][-1])
    assert np.abs(train.counts).max(initial=0) <= burst
    np.testing.assert_array_equal(r.spike_counts["act"], up - down)
    assert r.negative_spikes["act"] == down.sum()


@FAST
@given(seed=st.integers(0, 2**31), T=st.integers(1, 24), engine=st.sampled_from(ENGINES),
       reset=st.sampled_from(["subtract", "zero"]), burst=st.integers(1, 3))
def test_signed_neurons_equal_plain_ones_for_inputs_never_below_zero(seed, T, engine, reset,
                                                                      burst):
    """Non-negative weights, biases, inputs and v(0): the signed layers fire exactly the plain
    IF neuron's spikes, step by step, whatever θ⁻."""
    rng = np.random.default_rng(seed)
    layers = [Dense(dyadic(rng, (8, 5), low=0), dyadic(rng, 8, low=0)), LeakyReLU(0.25),
              Dense(dyadic(rng, (6, 8), low=0)), Identity(), Dense(dyadic(rng, (3, 6)))]
    net = evsim.Network.sequential((5,), layers, names=["fc1", "a1", "fc2", "a2", "out"])
    specs = {name: (dyadic_threshold(rng, net.shape(name)), dyadic(rng, (), low=0, kmax=4))
             for name in ("a1", "a2")}
    plain = SpikingNetwork(net, {k: NeuronSpec(th, v0, reset=reset, burst=burst)
                                 for k, (th, v0) in specs.items()})
    signed = SpikingNetwork(net, {k: NeuronSpec(th, v0, reset=reset, burst=burst,
                                                negative_threshold=dyadic_threshold(rng))
                                  for k, (th, v0) in specs.items()})
    x = dyadic(rng, (4, 5), low=0)
    record = ["a1", "a2"] if engine == "dense" else []
    a, b = (evsim.simulate(s, x, T=T, engine=engine, per_image_counts=True, record=record)
            for s in (plain, signed))
    np.testing.assert_array_equal(a.outputs, b.outputs)
    for name in ("a1", "a2"):
        np.testing.assert_array_equal(a.spike_counts[name], b.spike_counts[name])
        np.testing.assert_array_equal(a.sops[name] if name in a.sops else 0,
                                      b.sops[name] if name in b.sops else 0)
        assert b.negative_spikes[name] == 0
    for name in record:
        for field in ("steps", "images", "neurons", "counts"):
            np.testing.assert_array_equal(getattr(a.spike_trains[name], field),
                                          getattr(b.spike_trains[name], field))


def test_a_hand_computed_signed_neuron():
    """θ = 1, θ⁻ = 2 (α = 1/2), input −1.5, +1, −1.5 …: v = −1.5 → −3 fires −1 (v = −1) …"""
    net = _single_layer(1, LeakyReLU(0.5))
    snn = SpikingNetwork(net, {"act": NeuronSpec(np.ones(()), negative_threshold=2.0)})
    r = evsim.simulate(snn, np.array([[-1.5]]), T=4, engine="dense", record=["act"],
                       checkpoints=[1, 2, 3, 4])
    # v: -1.5, -3 → fire -1 → -1, -2.5 → fire -1 → -0.5, -2 → fire -1 → 0
    assert r.spike_trains["act"].steps.tolist() == [2, 3, 4]
    assert r.spike_trains["act"].counts.tolist() == [-1, -1, -1]
    assert r.membrane["act"][:, 0, 0].tolist() == [-1.5, -1.0, -0.5, 0.0]
    assert r.outputs[:, 0, 0].tolist() == [0.0, -1.0, -2.0, -3.0]  # each −1 carries θ = 1
    event = evsim.simulate(snn, np.array([[-1.5]]), T=4, engine="event",
                           checkpoints=[1, 2, 3, 4])
    np.testing.assert_array_equal(event.outputs, r.outputs)
    assert event.negative_spikes == {"act": 3}


@FAST
@given(st.lists(st.floats(-8, 8, width=32), min_size=1, max_size=16),
       st.floats(0.0625, 4, width=32), st.floats(0.0625, 4, width=32), st.integers(1, 8),
       st.booleans())
def test_signed_array_rules_equal_their_scalar_twins(values, theta, negative, n, to_zero):
    """evsim.neuron.signed_fire/signed_reset against the kernels' scalar signed_fire and
    reset, bit for bit."""
    from evsim import neuron
    from evsim.simulate import kernels

    m, th, neg = np.array(values, np.float32), np.float32(theta), np.float32(negative)
    spikes = neuron.signed_fire(m, th, neg, n)
    assert spikes.tolist() == [kernels.signed_fire(x, th, neg, n) for x in m]
    after = neuron.signed_reset(m, spikes, th, neg, to_zero, n)
    twins = np.array([kernels.reset(x, s, neg if s < 0 else th, to_zero)
                      for x, s in zip(m, spikes)], np.float32)
    assert after.dtype == np.float32 and after.tobytes() == twins.tobytes()


@CURRENTS_ABOVE_ONE
@FAST
@given(seed=st.integers(0, 2**31), W=st.integers(1, 40), alpha_exp=st.integers(0, 3),
       v0_half=st.integers(-2, 2), engine=st.sampled_from(ENGINES))
def test_a_signed_window_fires_the_clipped_floor_on_either_side(seed, W, alpha_exp, v0_half,
                                                               engine):
    """Temporal scheme, constant z over a window of W steps, V = v(0) + W z: the count is
    clip(floor(V/θ), 0, W) for V ≥ 0 and −clip(floor(−V/θ⁻), 0, W) below (exact fractions),
    θ⁻ = θ/α; every spike, either sign, carries θ to the readout."""
    rng = np.random.default_rng(seed)
    n, alpha = 16, 2.0 ** -alpha_exp
    theta = dyadic_threshold(rng, n)
    z, v0 = dyadic(rng, n, kmax=24), theta * v0_half / 4
    layer = LeakyReLU(alpha) if alpha < 1 else Identity()
    snn = SpikingNetwork(_single_layer(n, layer),
                         {"act": NeuronSpec(theta, v0, negative_threshold=theta / alpha)},
                         time_scheme="temporal")
    r = evsim.simulate(snn, z[None], T=W, per_image_counts=True, engine=engine)
    exact = []
    for zi, ti, vi in zip(z, theta, v0):
        V = Fraction(vi) + W * Fraction(zi)
        exact.append(min(W, max(0, (V / Fraction(ti)).__floor__())) if V >= 0 else
                     -min(W, max(0, (-V * Fraction(alpha) / Fraction(ti)).__floor__())))
    assert r.spike_counts["act"][0].tolist() == exact
    assert r.negative_spikes["act"] == -sum(e for e in exact if e < 0)
    np.testing.assert_array_equal(r.outputs[-1, 0], theta * np.array(exact))


@CURRENTS_ABOVE_ONE
def test_a_hand_computed_signed_window():
    """θ = 1, θ⁻ = 2 (α = 1/2), v(0) = 0.5, W = 4, z = (−2.25, −0.75, 0.875, 3): V = v(0) + 4z
    = (−8.5, −2.5, 4, 12.5) fires (−4, −1, 4, 4): −8.5/2 clipped at W, −2.5/2 floored,
    4/1 exactly on a multiple, 12.5 clipped. The readout gets θ per spike."""
    net = _single_layer(4, LeakyReLU(0.5))
    snn = SpikingNetwork(net, {"act": NeuronSpec(np.ones(()), 0.5, negative_threshold=2.0)},
                         time_scheme="temporal")
    z = np.array([[-2.25, -0.75, 0.875, 3.0]])
    for engine in ENGINES:
        r = evsim.simulate(snn, z, T=4, engine=engine, per_image_counts=True)
        assert r.spike_counts["act"][0].tolist() == [-4, -1, 4, 4]
        assert r.outputs[-1, 0].tolist() == [-4.0, -1.0, 4.0, 4.0]
        assert r.negative_spikes == {"act": 5}
        assert r.sops["out"].tolist() == [13 * 4]  # |s| per synapse, 4 each (dense)


@CURRENTS_ABOVE_ONE
def test_a_hand_computed_signed_ilif_code():
    """ilif, K = 3 bits, θ = 1, θ⁻ = 2 (α = 1/2), v(0) = 0, z = (−3, −1.25, 0.75, 5):
    V = z; codes in units of θ/4 are floor(4V/θ) = 3 (0b011), and below zero
    −floor(−4V/θ⁻) = −6 (0b110), −2 (0b010), clipped at 7 (0b111) above: net spikes are
    the set bits with the code's sign, (−2, −1, 2, 3); the decoded readout is the code's
    value θ c/4, reported as a sum over the T = 3 steps."""
    net = _single_layer(4, LeakyReLU(0.5))
    snn = SpikingNetwork(net, {"act": NeuronSpec(np.ones(()), negative_threshold=2.0)},
                         time_scheme="ilif")
    z = np.array([[-3.0, -1.25, 0.75, 5.0]])
    for engine in ENGINES:
        r = evsim.simulate(snn, z, T=3, engine=engine, per_image_counts=True)
        assert r.spike_counts["act"][0].tolist() == [-2, -1, 2, 3]
        assert r.negative_spikes == {"act": 3}
        assert (r.outputs[-1, 0] / 3).tolist() == [-1.5, -0.5, 0.75, 1.75]
        assert r.sops["out"].tolist() == [8 * 4]  # set bits per synapse, 4 each (dense)


@FAST
@given(seed=st.integers(0, 2**31), W=st.integers(1, 16), to_zero=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_signed_window_conservation_in_the_compiled_scan(seed, W, to_zero, dtype):
    """The compiled window scan of signed neurons (kernels.neuron_scan): θ N⁺ − θ⁻ N⁻ =
    v(0) + I − v after the window with subtractive reset (the remainder left on the side
    that fired), v = 0 after any spike with zero reset; values are s θ."""
    from evsim.simulate import kernels

    rng = np.random.default_rng(seed)
    b, n = 3, 12
    theta, negative = dyadic_threshold(rng, n), dyadic_threshold(rng, n)
    v0 = dyadic(rng, (b, n), kmax=8)
    current = W * dyadic(rng, (1, b, n), kmax=16)
    v = v0.astype(dtype)
    spikes = np.zeros((1, b, n), np.int32)
    values = np.zeros((1, b, n), dtype)
    sent = np.zeros((1, n), np.int64)
    kernels.neuron_scan(current.astype(dtype), v, theta.astype(dtype), negative.astype(dtype),
                        1, to_zero, W, False, spikes, values, sent, np.zeros(0, np.int64), 0, b)
    s = spikes[0].astype(np.float64)
    assert np.abs(s).max() <= W and np.all(s * (v0 + current[0]) >= 0)
    np.testing.assert_array_equal(values[0], s * theta)
    np.testing.assert_array_equal(sent[0], np.abs(s).sum(axis=0))
    if to_zero:
        np.testing.assert_array_equal(v, np.where(s != 0, 0.0, v0 + current[0]))
    else:
        up, down = np.maximum(s, 0), np.maximum(-s, 0)
        np.testing.assert_array_equal(theta * up - negative * down, v0 + current[0] - v)


@FAST
@given(st.lists(st.floats(-8, 8, width=32), min_size=1, max_size=16),
       st.integers(1, 64), st.integers(1, 64), st.integers(1, 64))
def test_signed_window_fire_equals_its_scalar_twin(values, theta, negative, window):
    """evsim.neuron.signed_window_fire against kernels.signed_window_fire, exact multiples of
    θ and θ⁻ (θ, θ⁻ multiples of 1/16) included."""
    from evsim import neuron
    from evsim.simulate import kernels

    th, neg = np.float32(theta / 16), np.float32(negative / 16)
    m = np.concatenate([np.array(values, np.float32), np.float32([3]) * th,
                        np.float32([-2]) * neg]).astype(np.float32)
    spikes = neuron.signed_window_fire(m, th, neg, window)
    assert spikes.dtype == np.int32
    assert spikes.tolist() == [kernels.signed_window_fire(x, th, neg, window) for x in m]
    assert spikes[-2] == min(3, window) and spikes[-1] == -min(2, window)


def test_signed_spec_validation_names_the_problem():
    with pytest.raises(evsim.EvsimValueError, match="negative thresholds"):
        NeuronSpec(1.0, negative_threshold=0.0)
    with pytest.raises(evsim.EvsimValueError, match="SpiCalib"):
        NeuronSpec(1.0, allowance=2.0, negative_threshold=1.0)
    net = _single_layer(3, Identity())
    with pytest.raises(evsim.EvsimValueError, match="negative_threshold of shape"):
        SpikingNetwork(net, {"act": NeuronSpec(1.0, negative_threshold=np.ones(2))})
    for scheme in ("temporal", "ilif"):
        SpikingNetwork(net, {"act": NeuronSpec(1.0, negative_threshold=1.0)},
                       time_scheme=scheme)
    with pytest.raises(evsim.EvsimValueError, match="layer 'act'.*burst must be 1"):
        SpikingNetwork(net, {"act": NeuronSpec(1.0, burst=2, negative_threshold=1.0)},
                       time_scheme="temporal")
    spec = NeuronSpec(1.0, negative_threshold=2.0)
    assert spec.signed and not NeuronSpec(1.0).signed
    assert not spec.equals(NeuronSpec(1.0)) and spec.equals(NeuronSpec(1.0, negative_threshold=2.0))


def test_signed_networks_save_load_and_hash_their_negative_thresholds(tmp_path):
    """θ⁻ is stored with the network (the LeakyReLU and Identity records too), comes back
    bit for bit, and the content hash sees it; an unsigned network stores no θ⁻."""
    from netgen import random_signed_network

    from evsim.io import content_hash

    snn, x = random_signed_network(5)
    assert any(spec.signed for spec in snn.neurons.values())
    evsim.save(snn, tmp_path / "signed")
    back = evsim.load(tmp_path / "signed.npz")
    assert back.equals(snn) and content_hash(back) == content_hash(snn)
    for name, spec in snn.neurons.items():
        assert type(back.network[name].layer) is type(snn.network[name].layer)
        assert back.neurons[name].signed == spec.signed
    np.testing.assert_array_equal(evsim.simulate(back, x, T=6).outputs,
                                  evsim.simulate(snn, x, T=6).outputs)
    name = next(n for n, s in snn.neurons.items() if s.signed)
    spec = snn.neurons[name]
    changed = dict(snn.neurons)
    changed[name] = NeuronSpec(spec.threshold, spec.v_init, spec.reset, spec.burst,
                               negative_threshold=spec.negative_threshold * 2)
    other = SpikingNetwork(snn.network, changed)
    assert not other.equals(snn) and content_hash(other) != content_hash(snn)
    with np.load(tmp_path / "signed.npz") as data:
        stored = {k for k in data.files if k.endswith("negative_threshold")}
    assert stored == {f"neuron/{n}/negative_threshold" for n, s in snn.neurons.items()
                      if s.signed}


def test_neurobench_refuses_net_counts_of_signed_neurons_and_counts_recorded_spikes():
    """A signed layer's spike counts are net (positive minus negative), so NeuroBench's
    operations cannot come from them: without recorded spikes it says what to do; with
    them, every spike sent counts."""
    from evsim.analysis.neurobench import neurobench_metrics

    net = evsim.Network.sequential((2,), [Dense(np.eye(2)), LeakyReLU(0.5), Dense(np.eye(2))])
    snn = SpikingNetwork(net, {"leaky_relu1": NeuronSpec(np.float64(1.0),
                                                        negative_threshold=np.float64(2.0))})
    x = np.array([[1.0, -1.0]], np.float32)
    counted = evsim.simulate(snn, x, T=8, engine="dense")
    assert counted.negative_spikes["leaky_relu1"] > 0
    with pytest.raises(evsim.EvsimValueError, match="leaky_relu1.*negative spikes.*record"):
        neurobench_metrics(snn, counted, x)
    recorded = evsim.simulate(snn, x, T=8, engine="dense", record=list(snn.neurons))
    sent = int(counted.spike_counts["leaky_relu1"].sum()) + 2 * counted.negative_spikes[
        "leaky_relu1"]
    # each spike sent, negative ones included, reaches its one target in the readout
    operations = neurobench_metrics(snn, recorded, x)["SynapticOperations"]
    assert operations["Effective_ACs"] >= sent > int(counted.spike_counts["leaky_relu1"].sum())


@FAST
@given(seed=st.integers(0, 2**31), to_zero=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]), one_row=st.booleans())
def test_the_compiled_signed_scan_equals_the_scalar_rule(seed, to_zero, dtype, one_row):
    """kernels.neuron_scan of signed neurons with Γ = 1 (its vectorised path) against the
    scalar signed_fire and reset, step by step, bit for bit, on values off the dyadic grid
    (every m ∓ θ rounds), with currents of both signs, images first..last − 1 only."""
    from evsim.simulate import kernels

    rng = np.random.default_rng(seed)
    steps, b, n, first, last = 6, 4, 37, 1, 3
    theta = rng.uniform(0.3, 2.0, n).astype(dtype)
    negative = rng.uniform(0.3, 2.0, n).astype(dtype)
    current = rng.normal(0, 1.5, (1 if one_row else steps, b, n)).astype(dtype)
    v = rng.normal(0, 1.0, (b, n)).astype(dtype)
    expected_v = v.copy()
    spikes = np.zeros((steps, b, n), np.int32)
    values = np.zeros((steps, b, n), dtype)
    sent = np.zeros((steps, n), np.int64)
    v_kept = v.copy()
    kernels.neuron_scan(current, v, theta, negative, 1, to_zero, 0, False, spikes, values,
                        sent, np.zeros(0, np.int64), first, last)
    # the same scan keeping no spikes: the same values, sent and membranes, their sum in net
    values_unkept, sent_unkept, net = np.zeros_like(values), np.zeros_like(sent), np.zeros(n,
                                                                                      np.int64)
    kernels.neuron_scan(current, v_kept, theta, negative, 1, to_zero, 0, False,
                        np.zeros((0, b, n), np.int32), values_unkept, sent_unkept, net, first,
                        last)
    assert v_kept.tobytes() == v.tobytes() and values_unkept.tobytes() == values.tobytes()
    np.testing.assert_array_equal(sent_unkept, sent)
    np.testing.assert_array_equal(net, spikes.sum(axis=(0, 1)))
    for k in range(steps):
        for j in range(first, last):
            for i in range(n):
                m = expected_v[j, i] + current[0 if one_row else k, j, i]
                s = kernels.signed_fire(m, theta[i], negative[i], 1)
                expected_v[j, i] = kernels.reset(m, s, negative[i] if s < 0 else theta[i],
                                                 to_zero)
                assert spikes[k, j, i] == s and values[k, j, i] == s * theta[i]
    assert v.tobytes() == expected_v.tobytes()
    assert not spikes[:, [0, 3]].any() and (spikes < 0).any() and (spikes > 0).any()
    np.testing.assert_array_equal(sent, np.abs(spikes).sum(axis=1))


@CURRENTS_ABOVE_ONE
@FAST
@given(seed=st.integers(0, 2**31), T=st.integers(1, 40), reset=st.sampled_from(["subtract",
                                                                               "zero"]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_the_event_engines_signed_kernel_equals_the_dense_engine(seed, T, reset, dtype):
    """Signed neurons with Γ = 1 (the event engine's vectorised signed kernel) on currents
    off the dyadic grid: outputs, net counts and negative spikes equal the dense engine's
    (whose signed scan is checked against the scalar rule above), bit for bit."""
    rng = np.random.default_rng(seed)
    n = 70  # more than 64: two words of flags, the second one partly padding
    net = evsim.Network.sequential(
        (n,), [Dense(rng.normal(0, 0.5, (n, n))), LeakyReLU(0.5), Dense(rng.normal(0, 1, (n, n))),
               Identity(), Dense(np.eye(n))], names=["fc", "act", "fc2", "act2", "out"])
    specs = {name: NeuronSpec(rng.uniform(0.3, 1.5, n), rng.uniform(-0.5, 0.5, n), reset=reset,
                              negative_threshold=rng.uniform(0.6, 3.0, n))
             for name in ("act", "act2")}  # the second layer's counts lie past the first's
    snn = SpikingNetwork(net, specs)
    x = rng.normal(0, 1.0, (3, n))
    a, b = (evsim.simulate(snn, x, T=T, engine=engine, per_image_counts=True, dtype=dtype)
            for engine in ENGINES)
    assert a.negative_spikes == b.negative_spikes and a.negative_spikes["act"] > 0
    np.testing.assert_array_equal(a.outputs, b.outputs)
    for name in specs:
        np.testing.assert_array_equal(a.spike_counts[name], b.spike_counts[name])
