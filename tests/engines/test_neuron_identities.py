"""Exact identities of the IF neuron (methods.md §0 and §2), on dyadic-grid networks."""

from fractions import Fraction

import numpy as np
import pytest
from dyadic import dyadic, dyadic_threshold
from hypothesis import given, settings
from hypothesis import strategies as st

import evsim
from evsim import Conv2d, Dense, Flatten, NetworkBuilder, NeuronSpec, ReLU, SpikingNetwork

FAST = settings(max_examples=25, deadline=None, derandomize=True)


def _mlp(rng, sizes):
    b = NetworkBuilder((sizes[0],))
    params = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w, bias = dyadic(rng, (n_out, n_in)), dyadic(rng, n_out, kmax=4)
        params.append((w, bias))
        b.add_layer(Dense(w, bias), name=f"fc{i + 1}")
        if i < len(sizes) - 2:
            b.add_layer(ReLU(), name=f"relu{i + 1}")
    return b.build(), params


# The inputs are constant currents, not images: values above 1 are meant.
CURRENTS_ABOVE_ONE = pytest.mark.filterwarnings("ignore::evsim.UnscaledInputWarning")


@FAST
@given(seed=st.integers(0, 2**31), T=st.integers(1, 40), burst=st.integers(1, 3),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_conservation_identity(seed, T, burst, dtype):
    """θ N(T) = v(0) + Σ_t I(t) − v(T) for every neuron with subtractive reset."""
    rng = np.random.default_rng(seed)
    net, ((w1, b1), (w2, b2), _) = _mlp(rng, [5, 6, 4, 3])
    th1, th2 = dyadic_threshold(rng, 6), dyadic_threshold(rng)
    v01, v02 = dyadic(rng, 6, kmax=4), dyadic(rng, (), kmax=4)
    snn = SpikingNetwork(net, {"relu1": NeuronSpec(th1, v01, burst=burst),
                               "relu2": NeuronSpec(th2, v02, burst=burst)})
    x = dyadic(rng, (7, 5), low=0)
    r = evsim.simulate(snn, x, T=T, engine="dense", record=["relu1", "relu2"],
                       per_image_counts=True, dtype=dtype)
    n1, n2 = r.spike_counts["relu1"], r.spike_counts["relu2"]
    vT1, vT2 = r.membrane["relu1"][-1], r.membrane["relu2"][-1]
    input1 = T * (x @ w1.T + b1)  # the analog input is the same current every step
    np.testing.assert_array_equal(th1 * n1, v01 + input1 - vT1)
    input2 = (th1 * n1) @ w2.T + T * b2  # layer 2's total input: spikes of amplitude θ1
    np.testing.assert_array_equal(th2 * n2, v02 + input2 - vT2)
    assert n1.max() <= burst * T


@CURRENTS_ABOVE_ONE
@FAST
@given(seed=st.integers(0, 2**31), T=st.integers(1, 64))
def test_opi_constant_input_formula(seed, T):
    """With v(0) = θ/2 and constant input z: N = clip(floor(T z/θ + 1/2), 0, T) exactly."""
    rng = np.random.default_rng(seed)
    n = 12
    theta = dyadic_threshold(rng, n)
    z = dyadic(rng, n, kmax=24)  # spans negative, sub- and super-threshold inputs
    net = evsim.Network.sequential((n,), [Dense(np.eye(n)), ReLU(), Dense(np.eye(n))])
    snn = SpikingNetwork(net, {"relu1": NeuronSpec(theta, theta / 2)})
    r = evsim.simulate(snn, z[None], T=T, per_image_counts=True)
    expected = [min(max((Fraction(T) * Fraction(zi) / Fraction(ti) + Fraction(1, 2)).__floor__(),
                        0), T) for zi, ti in zip(z, theta)]
    assert r.spike_counts["relu1"][0].tolist() == expected


@CURRENTS_ABOVE_ONE
@FAST
@given(seed=st.integers(0, 2**31), T=st.integers(1, 50))
def test_reset_to_zero_constant_input(seed, T):
    """Reset to zero loses the surplus: a neuron with input z > 0 fires every ceil(θ/z) steps."""
    rng = np.random.default_rng(seed)
    n = 10
    theta = dyadic_threshold(rng, n)
    z = dyadic(rng, n, kmax=12, low=1)
    net = evsim.Network.sequential((n,), [Dense(np.eye(n)), ReLU(), Dense(np.eye(n))])
    snn = SpikingNetwork(net, {"relu1": NeuronSpec(theta, reset="zero")})
    r = evsim.simulate(snn, z[None], T=T, per_image_counts=True)
    period = [-(-Fraction(ti) // Fraction(zi)) for zi, ti in zip(z, theta)]
    assert r.spike_counts["relu1"][0].tolist() == [T // p for p in period]


def _power_of_two(rng, shape):
    return 2.0 ** rng.integers(-2, 3, size=shape)


@FAST
@given(seed=st.integers(0, 2**31), T=st.integers(1, 24))
def test_threshold_scaling_equals_weight_normalisation(seed, T):
    """θ_l with amplitude-θ spikes ≡ θ = 1 with W θ_{l-1}/θ_l, b/θ_l, v(0)/θ_l (spike for spike)."""
    rng = np.random.default_rng(seed)
    w1, b1 = dyadic(rng, (3, 2, 3, 3)), dyadic(rng, 3, kmax=4)
    w2, b2 = dyadic(rng, (4, 3, 3, 3)), dyadic(rng, 4, kmax=4)
    w3, b3 = dyadic(rng, (5, 4 * 3 * 3)), dyadic(rng, 5, kmax=4)
    th1, th2 = _power_of_two(rng, (3, 1, 1)), _power_of_two(rng, (4, 1, 1))
    v1, v2 = th1 * dyadic(rng, (3, 1, 1), low=0), th2 * dyadic(rng, (4, 1, 1), low=0)

    def network(c1, d1, c2, d2, fc, fb):
        return evsim.Network.sequential((2, 6, 6), [
            Conv2d(c1, d1, padding=1), ReLU(), Conv2d(c2, d2, stride=2, padding=1), ReLU(),
            Flatten(), Dense(fc, fb)], names=["c1", "r1", "c2", "r2", "flat", "fc"])

    scaled = SpikingNetwork(network(w1, b1, w2, b2, w3, b3),
                            {"r1": NeuronSpec(th1, v1), "r2": NeuronSpec(th2, v2)})
    th2_flat = np.broadcast_to(th2, (4, 3, 3)).reshape(-1)
    unit = SpikingNetwork(
        network(w1 / th1.reshape(3, 1, 1, 1), b1 / th1.ravel(),
                w2 * th1.reshape(1, 3, 1, 1) / th2.reshape(4, 1, 1, 1), b2 / th2.ravel(),
                w3 * th2_flat[None, :], b3),
        {"r1": NeuronSpec(np.ones(()), v1 / th1), "r2": NeuronSpec(np.ones(()), v2 / th2)})
    x = dyadic(rng, (4, 2, 6, 6), low=0)
    a = evsim.simulate(scaled, x, T=T, per_image_counts=True)
    b = evsim.simulate(unit, x, T=T, per_image_counts=True)
    for name in ("r1", "r2"):
        np.testing.assert_array_equal(a.spike_counts[name], b.spike_counts[name])
    np.testing.assert_array_equal(a.outputs, b.outputs)
    assert a.sops.keys() == b.sops.keys()
    for name in a.sops:
        np.testing.assert_array_equal(a.sops[name], b.sops[name])


def test_burst_caps_spikes_per_step():
    """Γ caps the spikes of one step; the rest stays in the membrane (subtractive reset)."""
    net = evsim.Network.sequential((1,), [Dense(np.eye(1)), ReLU(), Dense(np.eye(1))])
    snn = SpikingNetwork(net, {"relu1": NeuronSpec(np.float64(0.25), burst=3)})
    r = evsim.simulate(snn, np.array([[1.0]]), T=4, engine="dense", record="relu1")
    # input 1.0 = 4 θ per step: 3 spikes per step, and 1 θ of surplus accumulates each step.
    assert r.spike_trains["relu1"].counts.tolist() == [3, 3, 3, 3]
    np.testing.assert_array_equal(r.membrane["relu1"][:, 0, 0], [0.25, 0.5, 0.75, 1.0])
    # before each reset: what the step added (4 θ) on top of the surplus left before it
    np.testing.assert_array_equal(r.membrane_before_reset["relu1"][:, 0, 0],
                                  [1.0, 1.25, 1.5, 1.75])


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_membrane_before_reset_is_what_crosses_theta(reset):
    """The pre-reset potential is v(t-1) + input, ≥ θ exactly at the spiking steps, and the
    reset takes it to the recorded potential after the step."""
    net = evsim.Network.sequential((1,), [Dense(np.eye(1)), ReLU(), Dense(np.eye(1))])
    snn = SpikingNetwork(net, {"relu1": NeuronSpec(np.float64(1.0), v_init=np.float64(0.5),
                                                   reset=reset)})
    r = evsim.simulate(snn, np.array([[0.375]]), T=8, engine="dense", record="relu1")
    before, after = r.membrane_before_reset["relu1"][:, 0, 0], r.membrane["relu1"][:, 0, 0]
    previous = np.concatenate([[0.5], after[:-1]])
    np.testing.assert_array_equal(before, previous + 0.375)
    fired = np.zeros(8, bool)
    fired[r.spike_trains["relu1"].steps - 1] = True
    np.testing.assert_array_equal(fired, before >= 1.0)
    np.testing.assert_array_equal(after, np.where(fired, 0.0 if reset == "zero" else before - 1,
                                                  before))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_layer_sums_currents(dtype):
    """The readout never spikes: its accumulated value is Σ_t of its input currents."""
    net = evsim.Network.sequential((2,), [Dense(np.eye(2)), ReLU(), Dense([[1.0, -2.0]], [0.5])])
    snn = SpikingNetwork(net, {"relu1": NeuronSpec(np.float64(1.0))})
    r = evsim.simulate(snn, np.array([[0.5, 0.25]]), T=8, dtype=dtype)
    # relu1 fires 4 and 2 times in 8 steps: output sum = 4 - 2*2 + 8*0.5
    assert r.outputs[-1, 0, 0] == 4.0
    assert r.mean_output()[0, 0] == 0.5


@FAST
@given(st.lists(st.floats(-8, 8, width=32), min_size=1, max_size=16),
       st.floats(0.0625, 4, width=32), st.integers(1, 8), st.booleans())
def test_array_neuron_rules_equal_their_scalar_twins_in_the_kernels(values, theta, n, to_zero):
    """Both engines' neuron arithmetic: evsim.neuron (arrays) against evsim.simulate.kernels
    (scalars), element by element, bit for bit."""
    from evsim import neuron
    from evsim.simulate import kernels

    m, th = np.array(values, np.float32), np.float32(theta)
    spikes = neuron.fire(m, th, n)
    assert spikes.tolist() == [kernels.fire(x, th, n) for x in m]
    after = neuron.reset(m, spikes, th, to_zero, n)
    twins = np.array([kernels.reset(x, s, th, to_zero) for x, s in zip(m, spikes)], np.float32)
    assert after.dtype == np.float32 and after.tobytes() == twins.tobytes()
    assert neuron.window_fire(m, th, n).tolist() == [kernels.window_fire(x, th, n) for x in m]
