"""Spike statistics and conversion error against values worked out by hand."""

import numpy as np
import pytest

import evsim
from evsim import Dense, NetworkBuilder, NeuronSpec, ReLU
from evsim.analysis import (conversion_error, first_spike_times, interspike_intervals, isi_cv,
                            layer_firing_rates, neuron_firing_rates, output_error,
                            rate_vs_activation, saturated_fraction, silent_fraction, snn_rates,
                            sparsity_per_step, spikes_per_step)
from evsim.result import SimResult, SpikeTrain


def _dense_net(theta=1.0, v0=0.0, burst=1):
    """input (4,) -> d1 (3) -> act (ReLU) -> out (2); weights chosen by hand."""
    w1 = np.array([[0.5, 0.25, 0.0, 0.0],      # act[0]: positive, below θ
                   [-1.0, 0.0, 0.0, 0.0],      # act[1]: negative -> silent
                   [2.0, 2.0, 2.0, 2.0]])      # act[2]: far above θ -> saturated
    w2 = np.array([[1.0, 0.5, -0.25], [0.25, 0.0, 1.0]])
    b = NetworkBuilder((4,))
    b.add_layer(Dense(w1), name="d1")
    b.add_layer(ReLU(), name="act")
    b.add_layer(Dense(w2), name="out")
    net = b.build()
    snn = evsim.SpikingNetwork(net, {"act": NeuronSpec(theta, v0, burst=burst)})
    return snn, w1, w2


X = np.array([[0.6, 0.4, 0.2, 0.1], [0.2, 0.9, 0.5, 0.3], [1.0, 0.0, 0.7, 0.0]], np.float32)


@pytest.fixture(scope="module")
def dense_run():
    snn, w1, w2 = _dense_net()
    result = evsim.simulate(snn, X, T=16, dtype=np.float64, per_image_counts=True,
                            engine="dense", record=["act"])
    return snn, w1, w2, result


def test_rates_and_silent_saturated_neurons_by_hand(dense_run):
    snn, w1, _, result = dense_run
    current = X.astype(np.float64) @ w1.T                 # constant input current per step
    # IF, subtractive reset, v(0) = 0, constant current I: N = clip(floor(T I / θ), 0, T).
    expected = np.clip(np.floor(16 * current / 1.0), 0, 16)
    assert np.array_equal(result.spike_counts["act"], expected)
    assert np.allclose(neuron_firing_rates(result)["act"], expected.mean(axis=0) / 16)
    assert layer_firing_rates(result)["act"] == pytest.approx(expected.sum() / (3 * 3 * 16))
    assert silent_fraction(result)["act"] == pytest.approx(1 / 3)       # neuron 1, every image
    assert silent_fraction(result, per_image=True)["act"] == pytest.approx(
        (expected == 0).mean())
    assert saturated_fraction(result, snn)["act"] == pytest.approx(1 / 3)   # neuron 2
    assert saturated_fraction(result, snn, per_image=True)["act"] == pytest.approx(
        (expected == 16).mean())


def test_saturation_counts_bursts():
    snn, _, _ = _dense_net(theta=0.5, burst=3)
    result = evsim.simulate(snn, X, T=8)
    # Neuron 2 gets ≥ 2.2 per step ≥ 3 θ: it emits Γ = 3 spikes every step on every image.
    assert result.spike_counts["act"][2] == 3 * 8 * len(X)
    assert saturated_fraction(result, snn)["act"] == pytest.approx(1 / 3)


def test_conversion_error_by_hand(dense_run):
    snn, w1, w2, result = dense_run
    activation = np.maximum(X.astype(np.float64) @ w1.T, 0)
    rate = result.spike_counts["act"] * 1.0 / 16
    diff = (rate - activation).ravel()
    error = conversion_error(snn, result, X)["act"]
    assert error.mean == pytest.approx(diff.mean(), abs=1e-12)
    assert error.rms == pytest.approx(np.sqrt((diff ** 2).mean()), abs=1e-12)
    assert error.max_abs == pytest.approx(np.abs(diff).max(), abs=1e-12)
    r, a = rate.ravel(), activation.ravel()
    corr = ((r - r.mean()) * (a - a.mean())).sum() / np.sqrt(((r - r.mean()) ** 2).sum()
                                                             * ((a - a.mean()) ** 2).sum())
    assert error.correlation == pytest.approx(corr, abs=1e-12) and error.n == 9
    got_rate, got_act = rate_vs_activation(snn, result, X)["act"]
    assert np.allclose(got_rate, rate) and np.allclose(got_act, activation)


def test_snn_rate_uses_each_neurons_threshold():
    snn, _, _ = _dense_net()
    theta = np.array([0.25, 1.0, 4.0])
    per_neuron = evsim.SpikingNetwork(snn.network, {"act": NeuronSpec(theta)})
    result = evsim.simulate(per_neuron, X, T=8, per_image_counts=True)
    assert np.allclose(snn_rates(per_neuron, result)["act"],
                       result.spike_counts["act"] * theta / 8)


def test_output_error_at_each_checkpoint(dense_run):
    snn, w1, w2, result = dense_run
    ann = np.maximum(X.astype(np.float64) @ w1.T, 0) @ w2.T
    got = output_error(snn, result, X)
    assert np.array_equal(got.checkpoints, [1, 2, 4, 8, 16])
    for k, t in enumerate(got.checkpoints):
        diff = result.outputs[k] / t - ann
        assert got.mse[k] == pytest.approx((diff ** 2).mean(), abs=1e-12)
        assert got.max_abs[k] == pytest.approx(np.abs(diff).max(), abs=1e-12)
    assert got.mse[-1] < got.mse[0]


def test_conversion_error_needs_per_image_counts_and_the_same_images():
    snn, _, _ = _dense_net()
    summed = evsim.simulate(snn, X, T=4)
    with pytest.raises(ValueError, match="per_image_counts=True"):
        conversion_error(snn, summed, X)
    with pytest.raises(ValueError, match="inputs hold 2 images but the result simulated 3"):
        output_error(snn, summed, X[:2])


def _synthetic(trains: dict, n_images: int, n_recorded: int, T: int) -> SimResult:
    """A result holding only hand-made spike trains of a layer 'L' with n_recorded neurons."""
    steps, images, neurons, counts = (np.array(v, np.int64) for v in zip(*trains))
    per_image = np.zeros((n_images, n_recorded), np.int64)
    np.add.at(per_image, (images, neurons), counts)
    return SimResult(T=T, checkpoints=np.array([T]), outputs=np.zeros((1, n_images, 1)),
                     spike_counts={"L": per_image}, sops={}, pool_ops={}, macs={},
                     neurons={"L": n_recorded}, n_images=n_images, engine="dense",
                     encoding="analog", dtype="float64",
                     recorded={"L": np.arange(n_recorded)},
                     spike_trains={"L": SpikeTrain(steps, images, neurons, counts)})


# (step, image, neuron, multiplicity): image 0 neuron 0 fires regularly every 3 steps;
# image 0 neuron 1 fires at 1, 2, 6 (intervals 1 and 4); image 1 neuron 0 once, a burst of 2;
# image 1 neuron 1 never. Listed out of order on purpose.
SPIKES = [(8, 0, 0, 1), (2, 0, 0, 1), (6, 0, 1, 1), (5, 0, 0, 1), (1, 0, 1, 1), (11, 0, 0, 1),
          (2, 0, 1, 1), (4, 1, 0, 2)]


def test_intervals_cv_and_first_spikes_from_trains():
    result = _synthetic(SPIKES, n_images=2, n_recorded=2, T=12)
    assert sorted(interspike_intervals(result, "L").tolist()) == [1, 3, 3, 3, 4]
    cv = isi_cv(result, "L")
    assert cv[0, 0] == 0.0
    assert cv[0, 1] == pytest.approx(np.std([1, 4]) / np.mean([1, 4]))   # 1.5 / 2.5
    assert np.isnan(cv[1]).all()                       # fewer than two intervals
    first = first_spike_times(result, "L")
    assert first[0].tolist() == [2, 1] and first[1, 0] == 4 and np.isnan(first[1, 1])


def test_spikes_and_sparsity_per_step_from_trains():
    result = _synthetic(SPIKES, n_images=2, n_recorded=2, T=12)
    per_step = np.zeros(12)
    active = np.zeros(12)
    for step, _, _, count in SPIKES:
        per_step[step - 1] += count
        active[step - 1] += 1
    assert spikes_per_step(result, "L").tolist() == per_step.tolist()
    assert np.allclose(sparsity_per_step(result, "L"), 1 - active / 4)
    assert sparsity_per_step(result, "L")[0] == 0.75   # one of four (image, neuron) pairs fired


def test_trains_of_a_real_run_agree_with_its_counts(dense_run):
    _, _, _, result = dense_run
    train = result.spike_trains["act"]
    by_hand = np.zeros((3, 3), np.int64)
    np.add.at(by_hand, (train.images, train.neurons), train.counts)
    assert np.array_equal(by_hand, result.spike_counts["act"])
    assert spikes_per_step(result, "act").sum() == by_hand.sum()
    saturated = isi_cv(result, "act")[:, 2]
    assert np.all(saturated == 0)                      # fires every step: perfectly regular
    assert np.all(first_spike_times(result, "act")[:, 2] == 1)


def test_trains_are_required_and_the_error_says_how():
    snn, _, _ = _dense_net()
    result = evsim.simulate(snn, X, T=4)
    for function in (spikes_per_step, sparsity_per_step, interspike_intervals, isi_cv,
                     first_spike_times):
        with pytest.raises(ValueError, match=r"layer 'act' needs its spike trains.*record="):
            function(result, "act")
    with pytest.raises(ValueError, match="'d1' is not a spiking layer"):
        isi_cv(result, "d1")
