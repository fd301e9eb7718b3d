"""Baseline conversion: normalisation, presets, components, and clear errors."""

import numpy as np
import pytest

import evsim
from evsim.convert import prepare
from evsim import (QCFS, BatchNorm, Clip, Conv2d, Dense, Flatten, MaxPool2d, NetworkBuilder,
                   ReLU, convert)


def _cnn(rng, act=ReLU, bn=True, pool_first=False):
    b = NetworkBuilder((2, 8, 8))
    b.add_layer(Conv2d(rng.normal(size=(4, 2, 3, 3)), rng.normal(size=4) * 0.1, padding=1),
                name="conv1")
    if bn:
        b.add_layer(BatchNorm(rng.uniform(0.5, 2, 4), rng.normal(size=4) * 0.1,
                              rng.normal(size=4) * 0.1, rng.uniform(0.5, 2, 4)), name="bn1")
    if pool_first:
        b.add_layer(MaxPool2d(2), name="pool1")
        b.add_layer(act(), name="act1")
    else:
        b.add_layer(act(), name="act1")
        b.add_layer(MaxPool2d(2), name="pool1")
    b.add_layer(Flatten(), name="flat")
    b.add_layer(Dense(rng.normal(size=(6, 64)) * 0.3, rng.normal(size=6) * 0.1), name="fc1")
    b.add_layer(act(), name="act2")
    b.add_layer(Dense(rng.normal(size=(3, 6))), name="out")
    return b.build()


def _activations(net, x):
    folded = prepare(net)
    _, acts = evsim.forward(folded, x, activations=folded.activations, dtype=np.float64)
    return acts


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng, rng.random((64, 2, 8, 8))


def test_max_and_percentile_thresholds_come_from_the_activations(data):
    """max: the largest activation; percentile: p of all activations, zeros included (as
    SpikingJelly and BrainCog take it) by default, or of the positive ones (as the SNN
    Conversion Toolbox does)."""
    rng, x = data
    net = _cnn(rng)
    acts = _activations(net, x)
    snn_max = convert(net, x, method="max")
    snn_pct = convert(net, x, method="percentile", percentile=95.0)
    snn_pos = convert(net, x, method="percentile", percentile=95.0, percentile_of="positive")
    for name, a in acts.items():
        positive = a[a > 0]
        assert 0.05 < (a == 0).mean() < 0.95  # the two definitions differ on these layers
        assert snn_max.neurons[name].threshold == pytest.approx(positive.max(), rel=1e-6)
        assert snn_pct.neurons[name].threshold == pytest.approx(np.percentile(a, 95.0),
                                                                rel=1e-5)
        assert snn_pos.neurons[name].threshold == pytest.approx(np.percentile(positive, 95.0),
                                                                rel=1e-5)
        assert snn_max.neurons[name].reset == "zero"
        assert snn_pct.neurons[name].reset == "subtract"
    assert snn_pct.options["percentile"] == 95.0 and snn_pct.method == "percentile"
    assert snn_pct.options["percentile_of"] == "all"


@pytest.mark.filterwarnings("ignore:layer 'act2'.*never activate")
def test_channelwise_gives_one_threshold_per_channel(data):
    rng, x = data
    net = _cnn(rng)
    snn = convert(net, x, method="channelwise")
    acts = _activations(net, x)
    theta = snn.neurons["act1"].threshold
    assert theta.shape == (4, 1, 1)
    for c in range(4):
        channel = acts["act1"][:, c]
        assert theta[c, 0, 0] == pytest.approx(np.percentile(channel, 99.9), rel=1e-5)
    assert snn.neurons["act2"].threshold.shape == (6,)


def test_conversion_folds_batchnorm_and_moves_maxpool_after_activation(data):
    rng, x = data
    net = _cnn(rng, pool_first=True)
    snn = convert(net, x)
    layers = [n.name for n in snn.network]
    assert "bn1" not in layers
    assert layers.index("act1") < layers.index("pool1")
    np.testing.assert_allclose(evsim.forward(snn.network, x, dtype=np.float64),
                               evsim.forward(net, x, dtype=np.float64), rtol=1e-9, atol=1e-9)


def test_components_override_presets_and_compose(data):
    rng, x = data
    net = _cnn(rng)
    snn = convert(net, x, method="percentile", initial_potential=0.5, burst=3, max_pool="gate")
    for spec in snn.neurons.values():
        np.testing.assert_array_equal(spec.v_init, spec.threshold * np.float32(0.5))
        assert spec.burst == 3
    assert snn.max_pool == "gate"
    absolute = convert(net, x, initial_potential=0.25, initial_potential_unit="absolute")
    assert all(float(s.v_init) == 0.25 for s in absolute.neurons.values())


def test_trained_bounds_become_thresholds(data):
    rng, x = data
    net = _cnn(rng, act=lambda: Clip(1.5), bn=False)
    snn = convert(net, method="opi")
    for spec in snn.neurons.values():
        assert float(spec.threshold) == 1.5 and float(spec.v_init) == 0.75
    qnet = _cnn(rng, act=lambda: QCFS(2.0, 4), bn=False)
    qsnn = convert(qnet, method="qcfs")
    assert all(float(s.threshold) == 2.0 and float(s.v_init) == 1.0
               for s in qsnn.neurons.values())


def test_errors_name_the_layer_or_option(data):
    rng, x = data
    relu_net = _cnn(rng)
    with pytest.raises(ValueError, match="layer 'act1' is ReLU"):
        convert(relu_net, method="qcfs")
    with pytest.raises(ValueError, match="layer 'act1' is ReLU"):
        convert(relu_net, method="opi")
    with pytest.raises(ValueError, match="'act1' is an unbounded ReLU"):
        convert(relu_net, normalization="trained")
    with pytest.raises(ValueError, match="calibration_inputs are needed by method 'percentile'"):
        convert(relu_net)
    with pytest.raises(ValueError, match="method 'magic' is unknown"):
        convert(relu_net, x, method="magic")
    with pytest.raises(TypeError, match="unknown conversion option"):
        convert(relu_net, x, treshold=1.0)
    with pytest.raises(ValueError, match="reset must be one of"):
        convert(relu_net, x, reset="soft")
    no_act = evsim.Network.sequential((4,), [Dense(np.eye(4))])
    with pytest.raises(ValueError, match="no activation layer"):
        convert(no_act, np.ones((2, 4)))
    two_convs = evsim.Network.sequential((1, 4, 4), [Conv2d(np.ones((2, 1, 3, 3))), ReLU(),
                                                     Conv2d(np.ones((2, 2, 1, 1))),
                                                     Conv2d(np.ones((2, 2, 1, 1))), ReLU()],
                                         names=["c1", "r1", "c2", "c3", "r2"])
    with pytest.raises(evsim.ConversionError, match="layer 'c3' .* reads 'c2', which carries "
                                                    "currents"):
        evsim.signals.plan(two_convs)  # the graph alone: a linear bottleneck has no spikes


def test_silent_layer_warns_and_gets_unit_threshold():
    net = evsim.Network.sequential((3,), [Dense(-np.ones((2, 3))), ReLU(), Dense(np.ones((1, 2)))],
                                   names=["fc", "dead", "out"])
    with pytest.warns(UserWarning, match="'dead' never activates"):
        snn = convert(net, np.ones((4, 3)))
    assert float(snn.neurons["dead"].threshold) == 1.0


def test_bursts_of_a_clip_trained_model_saturate_at_the_trained_bound():
    """A Clip(b) layer never exceeds b, so one step may carry at most ⌊b/θ⌋ spikes: driven far
    above b, the spiking layer's rate stays at or below b (with Γ = 5 it would reach 5θ)."""
    b = NetworkBuilder((3,))
    b.add_layer(Dense(np.eye(3) * 8.0, np.zeros(3)), name="fc1")
    b.add_layer(Clip(2.0), name="clip")
    b.add_layer(Dense(np.eye(3)), name="out")
    net = b.build()
    drive = np.ones((1, 3))  # pre-activation 8: four times the bound
    calibration = np.full((4, 3), 0.1)  # activation 0.8: max normalisation gives θ = 0.8
    for snn, theta, burst in ((convert(net, calibration, method="max", reset="subtract",
                                       burst=5), 0.8, 2),
                              (convert(net, None, method="opi", burst=5), 2.0, 1)):
        spec = snn.neurons["clip"]
        assert spec.threshold == np.float32(theta) and spec.burst == burst
        counts = evsim.simulate(snn, drive, T=40).spike_counts["clip"]
        rate = counts * np.float64(spec.threshold) / 40
        np.testing.assert_allclose(rate, burst * theta, rtol=1e-6)
        assert np.all(rate <= 2.0)
    relu = NetworkBuilder((3,))
    relu.add_layer(Dense(np.eye(3) * 8.0, np.zeros(3)), name="fc1")
    relu.add_layer(ReLU(), name="relu")
    relu.add_layer(Dense(np.eye(3)), name="out")
    assert convert(relu.build(), calibration, method="max", burst=5).neurons["relu"].burst == 5


def test_ilif_codes_above_a_trained_bound_are_warned_about():
    from evsim import Clip
    from evsim.errors import ClipBoundWarning
    b = NetworkBuilder((3,))
    b.add_layer(Dense(np.eye(3), np.zeros(3)), name="fc1")
    b.add_layer(Clip(2.0), name="clip")
    b.add_layer(Dense(np.eye(3)), name="out")
    net = b.build()
    with pytest.warns(ClipBoundWarning, match="layer 'clip'.*above the trained bound 2"):
        convert(net, None, method="opi", time_scheme="ilif", initial_potential=0.0)


def test_linear_bottleneck_gets_signed_identity_neurons():
    """Conv → Conv with no activation converts: an Identity layer 'c2_linear' between them
    becomes signed neurons with θ⁻ = θ, λ from the percentile of |values|; the ANN's
    function is unchanged."""
    rng = np.random.default_rng(0)
    two_convs = evsim.Network.sequential((1, 4, 4), [Conv2d(rng.normal(size=(2, 1, 3, 3))),
                                                     ReLU(), Conv2d(rng.normal(size=(2, 2, 1, 1))),
                                                     Conv2d(rng.normal(size=(2, 2, 1, 1))), ReLU()],
                                         names=["c1", "r1", "c2", "c3", "r2"])
    x = rng.random((8, 1, 4, 4))
    snn = convert(two_convs, x, percentile=100.0)
    assert snn.network["c3"].inputs == ("c2_linear",)
    assert snn.network["c2_linear"].inputs == ("c2",)
    assert isinstance(snn.network["c2_linear"].layer, evsim.layers.Identity)
    spec = snn.neurons["c2_linear"]
    np.testing.assert_array_equal(spec.negative_threshold, spec.threshold)
    c2 = evsim.forward(snn.network, x, activations=["c2_linear"])[1]["c2_linear"]
    assert np.float32(np.abs(c2).max()) == spec.threshold  # p = 100 of the magnitudes
    assert c2.min() < 0  # the negative side is what θ⁻ carries
    np.testing.assert_allclose(evsim.forward(snn.network, x), evsim.forward(two_convs, x),
                               rtol=1e-6)
    assert not any(s.signed for n, s in snn.neurons.items() if n != "c2_linear")


def test_leaky_relu_gets_theta_over_alpha_and_refuses_spicalib():
    rng = np.random.default_rng(1)
    net = evsim.Network.sequential((4,), [Dense(rng.normal(size=(5, 4))),
                                          evsim.LeakyReLU(0.25), Dense(rng.normal(size=(2, 5)))],
                                   names=["fc", "act", "out"])
    x = rng.random((16, 4))
    snn = convert(net, x)
    spec = snn.neurons["act"]
    np.testing.assert_array_equal(spec.negative_threshold, spec.threshold * np.float32(4))
    channelwise = convert(net, x, method="channelwise")
    assert channelwise.neurons["act"].negative_threshold.shape == (5,)
    with pytest.raises(ValueError, match="allowance.*'act' \\(LeakyReLU\\)"):
        convert(net, x, method="spicalib", T=32)
    for scheme in ("temporal", "ilif"):
        windows = convert(net, x, method="spikeconverter", time_scheme=scheme)
        assert windows.time_scheme == scheme and windows.neurons["act"].signed
