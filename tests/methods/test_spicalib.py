"""SpiCalib (methods.md §3): negative calibration spikes, never a negative net output."""

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from netgen import random_network

import evsim
from evsim.neuron import spicalib_state, spicalib_step


def _reference(train, allowance):
    """The published rule (BrainCog's SpiCalib: its clock starts at 0, the first step, with
    the last spike at 0) with methods.md's corrected clamp of the net count, literally:
    recursive mean interval, exact fractions."""
    t_last, n, mean, net, out = 0, 0, Fraction(0), 0, []
    for t, x in enumerate(train):
        if x > 0:
            n += 1
            mean = ((t - t_last) + mean * (n - 1)) / n
            t_last = t
        if (t - t_last) > mean + Fraction(allowance):
            x = x - 1
        if net + x < 0:
            x = -net
        net += x
        out.append(x)
    return out


def _run(train, allowance):
    state = spicalib_state((1,))
    out = []
    for t, x in enumerate(train, start=1):
        y, state = spicalib_step(np.array([x], np.int32), t, state, allowance)
        out.append(int(y[0]))
    return out


def test_hand_worked_example():
    # spikes at steps 1 and 2: on the published clock (0 = step 1) the intervals are 0 and 1,
    # mean 1/2; with A = 2 a gap above 2.5 steps is late, from step 5 (gap 3): two negative
    # spikes take the net count back to 0, then nothing.
    assert _run([1, 1, 0, 0, 0, 0, 0, 0, 0], 2.0) == [1, 1, 0, 0, -1, -1, 0, 0, 0]
    # a neuron that never fires has been silent t - 1 steps: with A = 1.5 the first late
    # step is 3, and a zero net count stays zero
    assert _run([0, 0, 0, 1, 0, 0], 1.5) == [0, 0, 0, 1, 0, 0]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(train=st.lists(st.integers(0, 3), min_size=1, max_size=40),
       allowance=st.sampled_from([0.25, 0.5, 1.0, 2.0, 3.5, 8.0]))
def test_matches_the_recursive_definition(train, allowance):
    assert _run(train, allowance) == _reference(train, allowance)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(train=st.lists(st.integers(0, 2), min_size=1, max_size=40),
       allowance=st.sampled_from([0.5, 1.0, 3.0]))
def test_net_output_never_negative_and_calibration_only_removes(train, allowance):
    out = _run(train, allowance)
    assert min(np.cumsum(out)) >= 0
    assert all(y in (x, x - 1) or (y == 0 and x == 0) for x, y in zip(train, out))


def _calibrated_networks(seeds: int = 40):
    """(snn, images, calibrated layer names) of the random dyadic networks with SpiCalib."""
    for seed in range(seeds):
        snn, x = random_network(seed)
        calibrated = [k for k, v in snn.neurons.items() if v.allowance > 0]
        if calibrated:
            yield snn, x, calibrated


def test_networks_with_calibration_emit_negative_spikes_and_stay_non_negative():
    seen_negative = False
    for snn, x, calibrated in _calibrated_networks():
        r = evsim.simulate(snn, x, T=24, engine="dense", record=calibrated)
        for name in calibrated:
            train = r.spike_trains[name]
            seen_negative |= bool((train.counts < 0).any())
            net = np.zeros((len(x), r.recorded[name].size), np.int64)
            for step in range(1, 25):
                now = train.steps == step
                np.add.at(net, (train.images[now], train.neurons[now]), train.counts[now])
                assert net.min() >= 0
    assert seen_negative


def test_allowance_passes_through_conversion():
    net = evsim.Network.sequential((3,), [evsim.Dense(np.eye(3)), evsim.ReLU(),
                                          evsim.Dense(np.eye(3))])
    snn = evsim.convert(net, np.ones((4, 3)), burst=5, allowance=12.0)
    assert snn.neurons["relu1"].allowance == 12.0 and snn.neurons["relu1"].burst == 5


def test_the_spicalib_preset_takes_lambda_by_braincogs_rule():
    """θ of every layer is BrainCog's λ (p = 99 % of all values of 100-image batches of a pass
    clipped at Γ = 5, largest over batches), which the calibration tests compute by hand."""
    from evsim.calibrate import braincog_scales
    from evsim.convert import prepare
    from evsim.data import load_bundled_sample
    from evsim.models import load_model
    network = load_model("resnet")
    calibration = load_bundled_sample("train")[0][:300]
    snn = evsim.convert(network, calibration, method="spicalib", T=32)
    expected = braincog_scales(prepare(network), calibration, p=0.99, clip=5.0, batch_size=100)
    for name, spec in snn.neurons.items():
        assert spec.threshold == np.float32(expected[name]) and spec.threshold <= 5
        assert spec.burst == 5 and spec.allowance == 8.0  # Γ = 5, A = T/4
    assert snn.options["normalization"] == "braincog" and snn.options["percentile"] == 99.0


def test_results_count_the_calibration_spikes_and_both_engines_agree():
    """negative_spikes holds each layer's negative spikes; net counts + 2 × negatives are the
    spikes sent (each negative spike is one SOP per target, like a positive one)."""
    seen = 0
    for snn, x, calibrated in _calibrated_networks():
        dense = evsim.simulate(snn, x, T=24, engine="dense", record=calibrated)
        event = evsim.simulate(snn, x, T=24, engine="event")
        assert dense.negative_spikes == event.negative_spikes
        for name in snn.neurons:
            expected = (int(-dense.spike_trains[name].counts[
                dense.spike_trains[name].counts < 0].sum()) if name in calibrated else 0)
            assert dense.negative_spikes[name] == expected
            seen += expected
    assert seen > 0
