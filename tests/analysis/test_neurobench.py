"""NeuroBench metrics: hand-computed on tiny networks, and against NeuroBench itself."""

import numpy as np
import pytest
from dyadic import dyadic, dyadic_threshold

import evsim
from evsim.analysis.neurobench import neurobench_metrics, neurobench_static_metrics


def _tiny():
    """conv 2×2 (two zero taps, no bias) -> IF (θ = 1) -> flatten -> dense 4→2 (5 zero weights)."""
    net = evsim.Network.sequential(
        (1, 3, 3), [evsim.Conv2d(np.array([[[[1.0, 0.0], [0.5, 0.0]]]])), evsim.ReLU(),
                    evsim.Flatten(), evsim.Dense(np.array([[1.0, 0, 0.5, 0], [0, 0, 0, 0.25]]),
                                                 np.array([0.5, 0.0]))],
        names=["conv", "relu", "flat", "fc"])
    snn = evsim.SpikingNetwork(net, {"relu": evsim.NeuronSpec(threshold=1.0)})
    image = np.array([[[[1, 0, 0.5], [0, 0.5, 0], [0, 0, 1]]]], np.float32)
    return snn, image


# By hand, T = 4. Input currents of relu (2×2): 1.0, 0.25, 0, 0.5.
#   neuron (0,0): I = θ, fires every step, v stays 0        -> 4 spikes, membrane changes 0
#   neuron (0,1): v .25 .5 .75 0 (fires at 4)               -> 1 spike, changes 3
#   neuron (1,0): I = 0, v stays 0                          -> 0 spikes, changes 0
#   neuron (1,1): v .5 0 .5 0 (fires at 2, 4)               -> 2 spikes, changes 3
# conv, analog input at every step: non-zero pixels (0,0) reach 1 output over a non-zero
#   weight, (1,1) reaches 2, (0,2) and (2,2) none: 3 MACs per step, 12 over T = 4;
#   Dense: 4 outputs × 4 taps = 16 synapses per step.
# fc reads spikes: non-zero-weight targets of inputs 0..3 are 1, 0, 1, 1:
#   4·1 + 1·0 + 0·1 + 2·1 = 6 ACs; Dense 8 synapses per step.
TINY = {"ParameterCount": 4 + 8 + 2, "Footprint": (14 + 2) * 4, "ConnectionSparsity": 0.5833,
        "SynapticOperations": {"Effective_MACs": 12.0, "Effective_ACs": 6.0,
                               "Dense": 4 * (16 + 8.0)},
        "ActivationSparsity": 1 - 7 / 16, "ActivationSparsityByLayer": {"relu": 1 - 7 / 16},
        "MembraneUpdates": 4 + 0 + 3 + 0 + 3.0}


def test_hand_computed_metrics_of_a_tiny_network():
    snn, image = _tiny()
    recorded = evsim.simulate(snn, image, T=4, engine="dense", record=["relu"])
    assert neurobench_metrics(snn, recorded, image) == TINY
    # from spike counts alone (event engine): the same, but no membrane traces
    counted = evsim.simulate(snn, image, T=4, engine="event")
    assert neurobench_metrics(snn, counted, image) == {**TINY, "MembraneUpdates": None}
    # evsim's own SOPs count zero weights: 7 spikes × 2 targets
    assert counted.total_sops() == 14


def test_static_metrics_and_the_simulation_dtype():
    snn, _ = _tiny()
    assert neurobench_static_metrics(snn, np.float64)["Footprint"] == 16 * 8


def _bursting():
    """conv 1×1 -> IF (θ = 1, Γ = 2) -> avgpool 2 -> flatten -> dense 1→1: pooling is folded."""
    net = evsim.Network.sequential(
        (1, 2, 2), [evsim.Conv2d(np.ones((1, 1, 1, 1))), evsim.ReLU(), evsim.AvgPool2d(2),
                    evsim.Flatten(), evsim.Dense(np.ones((1, 1)))],
        names=["conv", "relu", "pool", "flat", "fc"])
    snn = evsim.SpikingNetwork(net, {"relu": evsim.NeuronSpec(threshold=1.0, burst=2)})
    return snn, np.array([[[[2.5, 1.0], [0.0, 0.5]]]], np.float32)


@pytest.mark.filterwarnings("ignore::evsim.UnscaledInputWarning")  # 2.5: a hand-made input
def test_bursts_count_once_and_make_the_step_a_mac():
    # T = 2. Spikes per step: (0,0) 2, 2 (v .5, 1.0); (0,1) 1, 1 (v 0, 0); (1,0) none
    # (v 0, 0); (1,1) 0, 1 (v .5, 0). Each source reaches fc's one input (the pool folded):
    # step 1 has 2 non-zero sources, step 2 has 3, and both hold a 2: 5 MACs in all.
    # conv: 3 non-zero pixels × 1 weight × 2 steps = 6 MACs; Dense 4 + 4 synapses per step.
    snn, image = _bursting()
    recorded = evsim.simulate(snn, image, T=2, engine="dense", record=["relu"])
    metrics = neurobench_metrics(snn, recorded, image)
    assert metrics["SynapticOperations"] == {"Effective_MACs": 6 + 5.0, "Effective_ACs": 0.0,
                                             "Dense": 2 * (4 + 4.0)}
    assert metrics["ActivationSparsity"] == 1 - 5 / 8
    assert metrics["MembraneUpdates"] == 4 + 2
    assert recorded.total_sops() == 3 + 4                     # evsim counts each burst k times
    counted = evsim.simulate(snn, image, T=2, engine="event")
    with pytest.raises(ValueError, match=r"layer 'relu' can emit bursts \(Γ = 2\).*"
                                         r"record=list\(snn.neurons\)"):
        neurobench_metrics(snn, counted, image)


def test_effective_acs_are_evsims_sops_without_zero_weights_bursts_or_skips():
    from evsim.data import load_bundled_sample
    from evsim.models import load_model

    calibration, _ = load_bundled_sample("train")
    images = load_bundled_sample("test")[0][:8]
    snn = evsim.convert(load_model("fashion_cnn"), calibration[:200])
    result = evsim.simulate(snn, images, T=8)
    metrics = neurobench_metrics(snn, result, images)
    assert metrics["ConnectionSparsity"] == 0.0
    assert metrics["SynapticOperations"]["Effective_ACs"] * len(images) == result.total_sops()
    # all existing synapses every step: the first layer's MACs and the other layers' fan-outs
    dense = 8 * (sum(result.macs.values())
                 + sum(int(p.fanout.sum()) for p in evsim.signals.plan(snn.network).paths))
    assert metrics["SynapticOperations"]["Dense"] == dense


def test_inputs_are_needed_for_the_analog_layer_and_must_match():
    snn, image = _tiny()
    result = evsim.simulate(snn, image, T=2)
    with pytest.raises(ValueError, match="pass inputs="):
        neurobench_metrics(snn, result)
    with pytest.raises(ValueError, match="inputs have shape"):
        neurobench_metrics(snn, result, np.concatenate([image, image]))


def test_rate_coded_input_is_redrawn_from_the_seed():
    snn, image = _tiny()
    image = image / image.max()
    recorded = evsim.simulate(snn, image, T=8, engine="dense", encoding="rate", seed=3,
                              record=["relu"])
    counted = evsim.simulate(snn, image, T=8, engine="event", encoding="rate", seed=3)
    a = neurobench_metrics(snn, recorded, image, seed=3)
    b = neurobench_metrics(snn, counted, image, seed=3)
    assert a["SynapticOperations"] == b["SynapticOperations"]
    assert a["SynapticOperations"]["Effective_MACs"] == 0     # input spikes: all ACs


# --- NeuroBench itself -------------------------------------------------------------------

def _dyadic_network(seed: int):
    rng = np.random.default_rng(seed)
    w1 = dyadic(rng, (4, 1, 3, 3), bits=2, kmax=3)
    w2 = dyadic(rng, (3, 4, 3, 3), bits=2, kmax=3)
    w3 = dyadic(rng, (5, 3 * 6 * 6), bits=2, kmax=3)
    net = evsim.Network.sequential(
        (1, 6, 6), [evsim.Conv2d(w1, dyadic(rng, 4, kmax=3), padding=1), evsim.ReLU(),
                    evsim.Conv2d(w2, dyadic(rng, 3, kmax=3), padding=1), evsim.ReLU(),
                    evsim.Flatten(), evsim.Dense(w3, dyadic(rng, 5, kmax=3))],
        names=["conv1", "relu1", "conv2", "relu2", "flat", "fc"])
    neurons = {name: evsim.NeuronSpec(threshold=dyadic_threshold(rng),
                                      v_init=dyadic(rng, (), kmax=2, low=0))
               for name in ("relu1", "relu2")}
    images = dyadic(rng, (3, 1, 6, 6), kmax=8, low=0)
    images[images < 0.3] = 0                                    # zero pixels count no MACs
    return evsim.SpikingNetwork(net, neurons), images.astype(np.float32)


def _torch_equivalent(snn, torch):
    """The network as NeuroBench sees it: neuron modules emit spikes (0/1), θ is folded into the
    next layer's weights, the neurons store θ and v(0) as buffers."""
    import snntorch

    class IF(snntorch.SpikingNeuron):
        def __init__(self, spec):
            torch.nn.Module.__init__(self)
            self.init_hidden, self.output = False, False
            self.register_buffer("threshold", torch.tensor(spec.threshold, dtype=torch.float32))
            self.register_buffer("v_init", torch.tensor(spec.v_init, dtype=torch.float32))
            self.mem = None

        def forward(self, current):
            v = self.v_init.expand_as(current) if self.mem is None else self.mem
            m = v + current
            spikes = (m >= self.threshold).to(m.dtype)
            self.mem = m - self.threshold * spikes
            return spikes, self.mem

    net = snn.network
    conv1, conv2, fc = (net[name].layer for name in ("conv1", "conv2", "fc"))
    theta = {name: float(spec.threshold) for name, spec in snn.neurons.items()}

    def module(layer, scale, cls, **kw):
        m = cls(*kw.pop("shape"), **kw)
        m.weight.data = torch.tensor(layer.weight * scale, dtype=torch.float32)
        m.bias.data = torch.tensor(layer.bias, dtype=torch.float32)
        return m

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = module(conv1, 1.0, torch.nn.Conv2d, shape=(1, 4, 3), padding=1)
            self.relu1 = IF(snn.neurons["relu1"])
            self.conv2 = module(conv2, theta["relu1"], torch.nn.Conv2d, shape=(4, 3, 3),
                                padding=1)
            self.relu2 = IF(snn.neurons["relu2"])
            self.fc = module(fc, theta["relu2"], torch.nn.Linear, shape=(108, 5))

        def reset(self):
            self.relu1.mem = self.relu2.mem = None

        def forward(self, x):
            s1, _ = self.relu1(self.conv1(x))
            s2, _ = self.relu2(self.conv2(s1))
            return self.fc(s2.flatten(1)), None

    return Net()


@pytest.mark.torch
def test_neurobench_itself_gives_the_same_numbers():
    torch = pytest.importorskip("torch")
    pytest.importorskip("snntorch")
    pytest.importorskip("neurobench")
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint, ParameterCount
    from neurobench.metrics.workload import (ActivationSparsity, ActivationSparsityByLayer,
                                             MembraneUpdates, SynapticOperations)
    from neurobench.models import SNNTorchModel

    T = 6
    snn, images = _dyadic_network(4)
    recorded = evsim.simulate(snn, images, T=T, engine="dense", record=list(snn.neurons))
    ours = neurobench_metrics(snn, recorded, images)

    torch_net = _torch_equivalent(snn, torch)
    data = torch.tensor(images)[:, None].expand(-1, T, -1, -1, -1).contiguous()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data, torch.zeros(len(images))), batch_size=len(images))
    benchmark = Benchmark(SNNTorchModel(torch_net), loader, [], [],
                          [[Footprint, ConnectionSparsity, ParameterCount],
                           [SynapticOperations, ActivationSparsity, ActivationSparsityByLayer,
                            MembraneUpdates]])
    theirs = benchmark.run(quiet=True)
    # the same spikes first: evsim's outputs equal the torch network's summed readout
    torch_net.reset()
    with torch.no_grad():
        readout = sum(torch_net(data[:, t])[0] for t in range(T)).numpy()
    assert np.array_equal(recorded.outputs[-1], readout)

    for key in ("ParameterCount", "Footprint", "ConnectionSparsity", "MembraneUpdates"):
        assert ours[key] == theirs[key], key
    assert ours["SynapticOperations"] == pytest.approx(theirs["SynapticOperations"], rel=1e-12)
    assert ours["SynapticOperations"]["Effective_ACs"] > 0
    assert ours["SynapticOperations"]["Effective_MACs"] > 0
    assert ours["ActivationSparsity"] == pytest.approx(theirs["ActivationSparsity"], rel=1e-12)
    assert ours["ActivationSparsityByLayer"] == pytest.approx(
        theirs["ActivationSparsityByLayer"], rel=1e-12)
    # and from spike counts alone (the event engine), everything but the membrane updates
    counted = neurobench_metrics(snn, evsim.simulate(snn, images, T=T, engine="event"), images)
    assert counted == {**ours, "MembraneUpdates": None}


# --- spiking max pooling, from the event engine's counts -----------------------------------

def _dyadic_maxpool_network(seed: int, mode: str):
    """conv 3×3 -> IF -> max pool 2 -> conv 3×3 -> IF -> flatten -> dense (dyadic)."""
    rng = np.random.default_rng(seed)
    net = evsim.Network.sequential(
        (1, 6, 6), [evsim.Conv2d(dyadic(rng, (3, 1, 3, 3), bits=2, kmax=3), padding=1),
                    evsim.ReLU(), evsim.MaxPool2d(2),
                    evsim.Conv2d(dyadic(rng, (2, 3, 3, 3), bits=2, kmax=3), padding=1),
                    evsim.ReLU(), evsim.Flatten(), evsim.Dense(dyadic(rng, (4, 18), kmax=3))],
        names=["conv1", "relu1", "pool", "conv2", "relu2", "flat", "fc"])
    neurons = {name: evsim.NeuronSpec(threshold=dyadic_threshold(rng))
               for name in ("relu1", "relu2")}
    images = dyadic(rng, (3, 1, 6, 6), kmax=8, low=0).astype(np.float32)
    return evsim.SpikingNetwork(net, neurons, max_pool=mode), images


def _brute_force_acs(snn, recorded) -> float:
    """Effective ACs per image recounted from recorded spikes: each step, each non-zero
    input of a layer reading spikes times its non-zero weights to existing targets."""
    from evsim.pooling import spiking_maxpool

    net, T = snn.network, recorded.T
    w2, w3 = net["conv2"].layer.weight, net["fc"].layer.weight
    total = 0
    for image in range(recorded.n_images):
        spikes = {}
        for name in ("relu1", "relu2"):
            train = recorded.spike_trains[name]
            dense = np.zeros((T,) + net.shape(name), np.int64)
            keep = train.images == image
            flat = dense.reshape(T, -1)
            flat[train.steps[keep] - 1, recorded.recorded[name][train.neurons[keep]]] = (
                train.counts[keep])
            spikes[name] = dense
        c_in = np.zeros((1,) + net.shape("relu1"), np.int64)
        c_out = np.zeros((1,) + net.shape("pool"), np.int64)
        for t in range(T):
            pooled = spiking_maxpool(snn.max_pool, net["pool"].layer, spikes["relu1"][t][None],
                                     c_in, c_out)[0]
            for c, i, j in zip(*np.nonzero(pooled)):       # conv2, padding 1, 3×3 taps
                for o in range(w2.shape[0]):
                    for di in range(3):
                        for dj in range(3):
                            y, x = i - di + 1, j - dj + 1
                            if 0 <= y < 3 and 0 <= x < 3 and w2[o, c, di, dj] != 0:
                                total += 1
            for k in np.flatnonzero(spikes["relu2"][t].reshape(-1)):
                total += int(np.count_nonzero(w3[:, k]))
    return total / recorded.n_images


@pytest.mark.parametrize("mode", ["lipooling", "gate"])
def test_max_pool_networks_get_synaptic_operations_from_the_event_engine(mode):
    snn, images = _dyadic_maxpool_network(5, mode)
    recorded = evsim.simulate(snn, images, T=12, engine="dense", record=list(snn.neurons))
    counted = evsim.simulate(snn, images, T=12, engine="event")
    assert counted.pool_spike_counts["pool"].shape == snn.network.shape("pool")
    assert np.array_equal(counted.pool_spike_counts["pool"], recorded.pool_spike_counts["pool"])
    expected = neurobench_metrics(snn, recorded, images)
    got = neurobench_metrics(snn, counted, images)
    assert got == {**expected, "MembraneUpdates": None}
    assert got["SynapticOperations"]["Effective_ACs"] == _brute_force_acs(snn, recorded) > 0


def test_pool_spike_counts_survive_saving_merging_and_per_image_counts(tmp_path):
    snn, images = _dyadic_maxpool_network(6, "lipooling")
    whole = evsim.simulate(snn, images, T=8)
    evsim.save(whole, tmp_path / "r.npz")
    assert np.array_equal(evsim.load(tmp_path / "r.npz").pool_spike_counts["pool"],
                          whole.pool_spike_counts["pool"])
    shards = [evsim.simulate(snn, images[i:i + 1], T=8, first_image=i, per_image_counts=True)
              for i in range(len(images))]
    merged = evsim.merge(shards)
    assert merged.pool_spike_counts["pool"].shape == (3,) + snn.network.shape("pool")
    assert np.array_equal(merged.pool_spike_counts["pool"].sum(axis=0),
                          whole.pool_spike_counts["pool"])
    assert neurobench_metrics(snn, merged, images) == neurobench_metrics(snn, whole, images)
