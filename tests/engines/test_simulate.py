"""The dense engine's bookkeeping: SOPs against brute force, chunking, recording, errors."""

import re

import numpy as np
import pytest
from dyadic import dyadic, dyadic_threshold

import evsim
from evsim import (Add, AvgPool2d, Conv2d, Dense, Flatten, NetworkBuilder, NeuronSpec, ReLU,
                   SpikingNetwork, ann_ops, kinds)


def _residual_snn(seed=0):
    rng = np.random.default_rng(seed)
    b = NetworkBuilder((1, 6, 6))
    b.add_layer(Conv2d(dyadic(rng, (3, 1, 3, 3), low=-2), dyadic(rng, 3), padding=1), name="c1")
    b.add_layer(ReLU(), name="r1")
    b.add_layer(Conv2d(dyadic(rng, (3, 3, 3, 3)), padding=1), name="c2")
    b.add_layer(Add(), "c2", "r1", name="add")
    b.add_layer(ReLU(), name="r2")
    b.add_layer(Conv2d(dyadic(rng, (4, 3, 3, 3)), stride=2, padding=1), name="c3")
    b.add_layer(ReLU(), name="r3")
    b.add_layer(AvgPool2d(2, 2, ceil_mode=True), name="pool")
    b.add_layer(Flatten(), name="flat")
    b.add_layer(Dense(dyadic(rng, (5, 16))), name="fc")
    net = b.build()
    neurons = {name: NeuronSpec(dyadic_threshold(rng, (net.shape(name)[0], 1, 1)))
               for name in net.activations}
    return SpikingNetwork(net, neurons), rng


def _impulse_targets(path_layers, shape, index):
    """Brute force: outputs reached from one source neuron through layers with positive weights."""
    x = np.zeros((1,) + shape)
    x.reshape(-1)[index] = 1.0
    for layer in path_layers:
        if isinstance(layer, (Conv2d, Dense)):
            layer = layer.replace(weight=np.abs(layer.weight) + 1.0, bias=None)
        x = kinds.apply(layer, [x])
    return int(np.count_nonzero(x))


def test_sops_equal_brute_force_count_of_every_spike():
    snn, rng = _residual_snn()
    net = snn.network
    x = dyadic(rng, (3, 1, 6, 6), low=0, kmax=8)
    T = 12
    r = evsim.simulate(snn, x, T=T, engine="dense", record=["r1", "r2", "r3"])
    paths = {"c2": ("r1", ["c2"]), "add": ("r1", []), "c3": ("r2", ["c3"]),
             "fc": ("r3", ["pool", "flat", "fc"])}
    assert set(r.sops) == set(paths)
    for layer, (source, through) in paths.items():
        shape = net.shape(source)
        train = r.spike_trains[source]
        expected = np.zeros(T, np.int64)
        for step, neuron, count in zip(train.steps, train.neurons, train.counts):
            targets = (_impulse_targets([net[n].layer for n in through], shape, neuron)
                       if through else 1)
            expected[step - 1] += abs(count) * targets
        np.testing.assert_array_equal(r.sops[layer], expected, err_msg=layer)
    assert r.total_sops() == sum(int(v.sum()) for v in r.sops.values()) > 0
    # the analog head: c1 is computed once per image, its cost is MACs over existing synapses
    ones = np.ones((1, 1, 6, 6))
    c1 = net["c1"].layer
    macs = ann_ops.conv2d(c1.replace(weight=np.ones_like(c1.weight), bias=None), ones).sum()
    assert r.macs == {"c1": int(macs)}


def test_chunking_does_not_change_results():
    snn, rng = _residual_snn(1)
    x = dyadic(rng, (9, 1, 6, 6), low=0)
    for encoding in ("analog", "rate"):
        whole = evsim.simulate(snn, x, T=10, encoding=encoding, per_image_counts=True,
                               batch_size=64, engine="dense", record="r2")
        parts = evsim.simulate(snn, x, T=10, encoding=encoding, per_image_counts=True,
                               batch_size=4, engine="dense", record="r2")
        assert evsim.results_equal(whole, parts)
        for name in whole.spike_counts:
            np.testing.assert_array_equal(whole.spike_counts[name], parts.spike_counts[name])
        np.testing.assert_array_equal(whole.membrane["r2"], parts.membrane["r2"])
        np.testing.assert_array_equal(whole.membrane_before_reset["r2"],
                                      parts.membrane_before_reset["r2"])
        for field in ("steps", "images", "neurons", "counts"):
            a = getattr(whole.spike_trains["r2"], field)
            b = getattr(parts.spike_trains["r2"], field)
            assert sorted(a.tolist()) == sorted(b.tolist())


def test_summed_counts_are_the_sum_of_per_image_counts():
    snn, rng = _residual_snn(2)
    x = dyadic(rng, (5, 1, 6, 6), low=0)
    summed = evsim.simulate(snn, x, T=8)
    per_image = evsim.simulate(snn, x, T=8, per_image_counts=True)
    for name in summed.spike_counts:
        assert per_image.spike_counts[name].shape == (5,) + snn.network.shape(name)
        np.testing.assert_array_equal(per_image.spike_counts[name].sum(axis=0),
                                      summed.spike_counts[name])


def test_checkpoints_hold_running_sums():
    snn, rng = _residual_snn(3)
    x = dyadic(rng, (2, 1, 6, 6), low=0)
    every = evsim.simulate(snn, x, T=9, checkpoints=range(1, 10))
    default = evsim.simulate(snn, x, T=9)
    assert default.checkpoints.tolist() == [1, 2, 4, 8, 9]
    np.testing.assert_array_equal(default.outputs, every.outputs[[0, 1, 3, 7, 8]])
    np.testing.assert_array_equal(every.mean_output(4), every.outputs[3] / 4)
    with pytest.raises(ValueError, match="not a checkpoint"):
        default.mean_output(3)


def test_rate_encoding_depends_on_seed_not_on_batching():
    snn, rng = _residual_snn(4)
    x = rng.random((6, 1, 6, 6))
    a = evsim.simulate(snn, x, T=6, encoding="rate", seed=3, batch_size=2)
    b = evsim.simulate(snn, x, T=6, encoding="rate", seed=3, batch_size=6)
    c = evsim.simulate(snn, x, T=6, encoding="rate", seed=4)
    assert evsim.results_equal(a, b)
    assert not evsim.results_equal(a, c)
    assert "c1" in a.sops and a.macs == {}  # rate-coded input spikes: layer 1 costs SOPs


def test_memory_does_not_grow_with_T_unless_recording():
    snn, rng = _residual_snn(5)
    x = dyadic(rng, (2, 1, 6, 6), low=0)
    short, long = evsim.simulate(snn, x, T=4), evsim.simulate(snn, x, T=1024)
    assert long.outputs.shape[1:] == short.outputs.shape[1:]
    assert len(long.checkpoints) == 11  # 1, 2, 4, ..., 1024
    assert all(long.spike_counts[k].shape == short.spike_counts[k].shape
               for k in short.spike_counts)
    assert long.membrane == {} and long.spike_trains == {}


def test_spiking_network_save_load_round_trip(tmp_path):
    snn, rng = _residual_snn(6)
    snn = SpikingNetwork(snn.network, {k: NeuronSpec(v.threshold, v.threshold / 2, "zero", 2)
                                       for k, v in snn.neurons.items()},
                         max_pool="gate", method="custom", options={"note": [1, 2.5]})
    evsim.save(snn, tmp_path / "snn.npz")
    loaded = evsim.load(tmp_path / "snn.npz")
    assert isinstance(loaded, SpikingNetwork) and loaded.equals(snn)
    x = dyadic(rng, (2, 1, 6, 6), low=0)
    assert evsim.results_equal(evsim.simulate(snn, x, T=5), evsim.simulate(loaded, x, T=5))


def test_bad_arguments_name_what_is_wrong():
    snn, rng = _residual_snn(7)
    x = dyadic(rng, (2, 1, 6, 6), low=0)
    with pytest.raises(ValueError, match="T must be a positive integer"):
        evsim.simulate(snn, x, T=0)
    with pytest.raises(ValueError, match="engine must be one of"):
        evsim.simulate(snn, x, engine="gpu")
    with pytest.raises(ValueError, match=r"\(batch, 1, 6, 6\)"):
        evsim.simulate(snn, x[:, 0])
    with pytest.raises(ValueError, match="add a batch axis"):
        evsim.simulate(snn, x[0])
    with pytest.raises(ValueError, match="rate encoding needs inputs in"):
        evsim.simulate(snn, x * 4 + 1, encoding="rate")
    with pytest.raises(ValueError, match="only spiking layers are recorded"):
        evsim.simulate(snn, x, engine="dense", record="c1")
    with pytest.raises(ValueError, match=r"record\['r1'\]"):
        evsim.simulate(snn, x, engine="dense", record={"r1": [10_000]})
    with pytest.raises(ValueError, match="checkpoints"):
        evsim.simulate(snn, x, T=4, checkpoints=[5])
    with pytest.raises(TypeError, match="SpikingNetwork"):
        evsim.simulate(snn.network, x)
    with pytest.raises(ValueError, match="thresholds must be positive"):
        NeuronSpec(np.zeros(3))
    with pytest.raises(ValueError, match="layer 'r1'.*does not broadcast"):
        SpikingNetwork(snn.network, {**snn.neurons, "r1": NeuronSpec(np.ones(5))})


def test_difference_sums_per_image_counts_before_comparing_with_summed_ones():
    snn, rng = _residual_snn()
    x = dyadic(rng, (3, 1, 6, 6), low=0)
    summed = evsim.simulate(snn, x, T=6, engine="dense")
    kept = evsim.simulate(snn, x, T=6, engine="dense", per_image_counts=True)
    assert kept.spike_counts["r1"].shape[0] == 3 and summed.total_sops() > 0
    assert evsim.difference(summed, kept)["spikes"] == 0
    assert evsim.results_equal(kept, summed)
    shifted = evsim.simulate(snn, x[::-1], T=6, engine="dense", per_image_counts=True)
    # the same images in another order: equal totals, but per image the spikes moved
    assert evsim.difference(summed, shifted)["spikes"] == 0
    assert evsim.difference(kept, shifted)["spikes"] > 0


def test_difference_is_a_read_only_mapping_and_compare_its_deprecated_alias():
    snn, rng = _residual_snn()
    x = dyadic(rng, (3, 1, 6, 6), low=0)
    event = evsim.simulate(snn, x, T=6, per_image_counts=True)
    shifted = evsim.simulate(snn, x[::-1], T=6, engine="dense", per_image_counts=True)
    diff = evsim.difference(event, shifted)
    assert isinstance(diff, evsim.ResultDifference)
    assert diff.spikes == diff["spikes"] > 0
    assert list(diff) == ["spikes", "sops", "pool_ops", "outputs", "predictions"]
    with pytest.raises(KeyError):
        diff["missing"]
    with pytest.raises(AttributeError):
        diff.spikes = 0
    with pytest.warns(DeprecationWarning, match="evsim.difference"):
        old = evsim.compare(event, shifted)
    # labelled: the deprecated alias returns the record (still a mapping equal to the dict)
    assert isinstance(old, evsim.ResultDifference) and old == diff and dict(old) == dict(diff)
    assert repr(old).startswith("ResultDifference(spikes=")


def test_a_network_without_synapses_between_spiking_layers_reports_zero_sops_at_every_step():
    b = NetworkBuilder((4,))
    b.add_layer(Dense(np.eye(3, 4, dtype=np.float32)), name="fc")
    b.add_layer(ReLU(), name="relu")
    snn = evsim.convert(b.build(), np.full((2, 4), 0.5, np.float32), method="max")
    result = evsim.simulate(snn, np.full((2, 4), 0.25, np.float32), T=8, engine="dense")
    assert result.total_sops() == 0
    assert result.cumulative_sops().tolist() == [0] * len(result.checkpoints)
    assert "| 8 |" in result.accuracy_table(np.array([0, 1]))


def test_the_progress_bar_counts_whole_images(capfd):
    snn, rng = _residual_snn()
    images = rng.random((7,) + snn.network.input_shape).astype(np.float32)
    evsim.simulate(snn, images, T=13, batch_size=3, progress=True)
    bar = capfd.readouterr().err
    counts = re.findall(r"(\d+(?:\.\d+)?)/7\b", bar)
    assert counts and counts[-1] == "7"
    assert all("." not in c for c in counts), counts


@pytest.mark.parametrize("to_zero", [True, False])
def test_dense_scan_without_kept_spikes_gives_the_same_values_sent_and_membranes(to_zero):
    """The compiled neuron scan with no spikes array (no later layer reads the spikes) writes
    the same values, spikes sent and membranes as with one, over two image ranges."""
    from evsim.simulate import kernels

    rng = np.random.default_rng(7)
    steps, b, n = 4, 5, 33
    theta = dyadic_threshold(rng, n).astype(np.float32)
    current = dyadic(rng, (steps, b, n), kmax=16).astype(np.float32)
    runs = []
    for spikes in (np.zeros((steps, b, n), np.int32), np.zeros((0, b, n), np.int32)):
        v = dyadic(np.random.default_rng(8), (b, n), kmax=8).astype(np.float32)
        values, sent = np.full((steps, b, n), np.nan, np.float32), np.zeros((steps, n), np.int64)
        for lo, hi in ((0, 2), (2, b)):
            kernels.neuron_scan(current, v, theta, np.empty(0, np.float32), 1, to_zero, 0,
                                False, spikes, values, sent, np.zeros(0, np.int64), lo, hi)
        runs.append((values, sent, v, spikes))
    (values, sent, v, spikes), (values2, sent2, v2, _) = runs
    assert spikes.any() and not spikes.all()
    np.testing.assert_array_equal(values, spikes * theta)
    np.testing.assert_array_equal(sent, spikes.sum(axis=1))
    for a, b_ in ((values, values2), (sent, sent2), (v, v2)):
        np.testing.assert_array_equal(a, b_)
