"""evsim.io.nir: NIR export/import round trips spike for spike, and another reader agrees."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from dyadic import dyadic
from hypothesis import given, settings
from hypothesis import strategies as st

nir = pytest.importorskip("nir")

import evsim  # noqa: E402
from evsim import (QCFS, Add, AvgPool2d, Clip, Conv2d, Dense, Flatten, GlobalAvgPool,  # noqa: E402
                   MaxPool2d, NetworkBuilder, NeuronSpec, ReLU, SpikingNetwork)
from evsim.io.nir import (NIRExportError, NIRExportWarning, NIRImportError,  # noqa: E402
                          from_nir, load_nir, save_nir, to_nir)

pytestmark = pytest.mark.filterwarnings("ignore::evsim.io.nir.NIRExportWarning")


def dyadic_snn(seed: int) -> tuple[SpikingNetwork, np.ndarray]:
    """A random NIR-expressible SNN on the dyadic grid (convs, residual, pooling, dense head)."""
    rng = np.random.default_rng(seed)
    c, size = int(rng.integers(1, 3)), int(rng.choice([4, 6, 8]))
    b = NetworkBuilder((c, size, size))
    b.add_layer(Conv2d(dyadic(rng, (4, c, 3, 3), bits=2, kmax=3), dyadic(rng, 4, kmax=3),
                       stride=int(rng.integers(1, 3)), padding=1))
    b.add_layer(ReLU())
    if rng.random() < 0.6:  # residual block: the identity skip becomes a Scale edge into the sum
        skip = b.last
        b.add_layer(Conv2d(dyadic(rng, (4, 4, 3, 3), bits=2, kmax=2), padding=1))
        b.add_layer(Clip(2.0))
        b.add_layer(Conv2d(dyadic(rng, (4, 2, 3, 1), bits=2, kmax=2), padding=(1, 0), groups=2))
        b.add_layer(Add(), b.last, skip)
        b.add_layer(QCFS(4.0, 4))
    _, h, w = b.shape(b.last)
    pool = rng.choice(["avg", "avg_conv", "global" if (h * w) & (h * w - 1) == 0 else "avg",
                       "padded"])
    if pool == "global":
        b.add_layer(GlobalAvgPool())
    elif pool == "padded":  # per-position divisors: fine before a Dense
        b.add_layer(AvgPool2d(2, 2, padding=1, count_include_pad=False))
    elif h >= 2:
        b.add_layer(AvgPool2d(2))
        if pool == "avg_conv":
            b.add_layer(Conv2d(dyadic(rng, (3, 4, 1, 1), bits=2, kmax=3), dyadic(rng, 3)))
            b.add_layer(ReLU())
    b.add_layer(Flatten())
    n = b.shape(b.last)[0]
    b.add_layer(Dense(dyadic(rng, (5, n), bits=2, kmax=2), dyadic(rng, 5, kmax=2)))
    b.add_layer(ReLU(), name="hidden")
    b.add_layer(Dense(dyadic(rng, (3, 5), bits=2, kmax=2), dyadic(rng, 3, kmax=2)))
    net = b.build()
    neurons = {}
    for name in net.activations:
        shape = net.shape(name)
        if name == "hidden":
            theta_shape = shape  # per neuron: read only by a Dense
        else:
            theta_shape = (shape[0], 1, 1) if rng.random() < 0.5 else ()
        theta = rng.integers(1, 9, size=theta_shape) / 4
        neurons[name] = NeuronSpec(theta, theta * rng.integers(0, 3, size=theta_shape) / 2,
                                   reset=str(rng.choice(["subtract", "zero"])),
                                   burst=int(rng.integers(1, 3)))
    x = dyadic(rng, (3, c, size, size), bits=3, low=0, kmax=8)
    return SpikingNetwork(net, neurons), x


def assert_same_spikes(a: SpikingNetwork, b: SpikingNetwork, x: np.ndarray, T: int = 10):
    ra, rb = evsim.simulate(a, x, T=T), evsim.simulate(b, x, T=T)
    assert ra.spike_counts.keys() == rb.spike_counts.keys()
    for name, counts in ra.spike_counts.items():
        np.testing.assert_array_equal(counts, rb.spike_counts[name], err_msg=name)
    np.testing.assert_array_equal(ra.outputs, rb.outputs)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**16))
def test_round_trip_gives_identical_spikes(seed):
    snn, x = dyadic_snn(seed)
    back = from_nir(to_nir(snn))
    for name, spec in snn.neurons.items():
        shape = snn.network.shape(name)
        got = back.neurons[name]
        assert (got.reset, got.burst) == (spec.reset, spec.burst)
        for field in ("threshold", "v_init"):
            np.testing.assert_array_equal(np.broadcast_to(getattr(got, field), shape),
                                          np.broadcast_to(getattr(spec, field), shape))
        assert type(back.network[name].layer) is type(snn.network[name].layer)
    assert_same_spikes(snn, back, x)


def residual_snn() -> SpikingNetwork:
    rng = np.random.default_rng(0)
    b = NetworkBuilder((1, 4, 4))
    b.add_layer(Conv2d(dyadic(rng, (2, 1, 3, 3)), padding=1), name="conv1")
    b.add_layer(ReLU(), name="relu1")
    b.add_layer(Conv2d(dyadic(rng, (2, 2, 3, 3)), padding=1), name="conv2")
    b.add_layer(Add(), "conv2", "relu1", name="res")
    b.add_layer(QCFS(2.5, 4), name="relu2")
    b.add_layer(AvgPool2d(2), name="pool")
    b.add_layer(Flatten(), name="flat")
    b.add_layer(Dense(dyadic(rng, (3, 8)), dyadic(rng, 3)), name="fc")
    theta1, theta2 = np.array([0.5, 0.75]).reshape(2, 1, 1), np.array(1.25)
    return SpikingNetwork(b.build(), {
        "relu1": NeuronSpec(theta1, theta1 / 2, reset="subtract"),
        "relu2": NeuronSpec(theta2, reset="zero", burst=2)})


def test_export_follows_the_nir_conventions():
    snn = residual_snn()
    net = snn.network
    graph = to_nir(snn, dt=0.5)
    nodes, edges = graph.nodes, set(graph.edges)
    if1 = nodes["relu1"]
    assert isinstance(if1, nir.IF) and if1.v_threshold.shape == (2, 4, 4)
    np.testing.assert_array_equal(if1.v_threshold, np.broadcast_to(snn.threshold("relu1"),
                                                                   (2, 4, 4)))
    np.testing.assert_array_equal(if1.r, np.full((2, 4, 4), 2.0))  # r = 1/dt
    np.testing.assert_array_equal(if1.v_reset, 0)
    # spikes of amplitude 1: θ of relu1 folded into conv2's input channels
    np.testing.assert_array_equal(nodes["conv2"].weight, net["conv2"].layer.weight
                                  * np.array([0.5, 0.75])[None, :, None, None])
    # the residual sum is two edges into relu2; the identity skip carries θ1 through a Scale
    into_relu2 = {a for a, b in edges if b == "relu2"}
    assert into_relu2 == {"conv2", "relu1_scale"} and ("relu1", "relu1_scale") in edges
    np.testing.assert_array_equal(nodes["relu1_scale"].scale, if1.v_threshold)
    # average pooling is a SumPool2d, its 1/k² folded with θ2 into the Dense
    assert isinstance(nodes["pool"], nir.SumPool2d)
    np.testing.assert_array_equal(nodes["pool"].kernel_size, [2, 2])
    assert isinstance(nodes["flat"], nir.Flatten) and nodes["flat"].start_dim == 0
    np.testing.assert_array_equal(nodes["fc"].weight, net["fc"].layer.weight * 1.25 / 4)
    assert isinstance(nodes["fc"], nir.Affine) and ("fc", "output") in edges
    assert {a for a, b in edges if b == "output"} == {"fc"}
    assert graph.metadata["dt"] == 0.5
    assert_same_spikes(snn, from_nir(graph), np.random.default_rng(1).random((2, 1, 4, 4)))


def test_export_warns_about_what_readers_may_ignore():
    with pytest.warns(NIRExportWarning, match=r"reset by subtraction in relu1.*initial "
                      r"potential in relu1.*Γ > 1\) in relu2.*dt = 1\.0.*v >= v_threshold"):
        to_nir(residual_snn())


def test_file_keeps_reset_initial_potential_and_dt_in_metadata(tmp_path):
    snn = residual_snn()
    path = tmp_path / "net.nir"
    save_nir(snn, path, dt=0.25)
    graph = nir.read(path)
    assert graph.metadata["dt"] == 0.25 and graph.metadata["time_scheme"] == "synchronous"
    meta = graph.nodes["relu1"].metadata
    assert meta["reset"] == "subtract" and int(graph.nodes["relu2"].metadata["burst"]) == 2
    np.testing.assert_array_equal(meta["v_init"], np.broadcast_to(snn.neurons["relu1"].v_init,
                                                                  (2, 4, 4)))
    back = load_nir(path)
    assert back.neurons["relu1"].reset == "subtract" and back.neurons["relu2"].burst == 2
    qcfs = back.network["relu2"].layer  # the ANN activation comes back too
    assert isinstance(qcfs, QCFS) and (qcfs.lam, qcfs.levels) == (2.5, 4)
    assert_same_spikes(snn, back, np.random.default_rng(2).random((3, 1, 4, 4)))


def _with_layer(layer, thresholds=None, allowance: float = 0.0) -> SpikingNetwork:
    rng = np.random.default_rng(0)
    b = NetworkBuilder((2, 6, 6))
    b.add_layer(Conv2d(dyadic(rng, (2, 2, 1, 1))), name="conv1")
    b.add_layer(ReLU(), name="relu1")
    b.add_layer(layer, name="layer")
    b.add_layer(Flatten(), name="flat")
    b.add_layer(Dense(dyadic(rng, (2, int(np.prod(b.shape("layer")))))), name="fc")
    theta = np.full((2, 6, 6), 0.5) if thresholds is None else thresholds
    return SpikingNetwork(b.build(), {"relu1": NeuronSpec(theta, allowance=allowance)})


@pytest.mark.parametrize("snn, expected", [
    (_with_layer(MaxPool2d(2)), r"layer 'layer' \(MaxPool2d\): NIR 1.0 has no max pooling; "
     r"pass extensions=True"),
    (_with_layer(AvgPool2d(3, 2, ceil_mode=True)), r"layer 'layer' \(AvgPool2d\): ceil_mode"),
    (_with_layer(Conv2d(np.ones((2, 2, 3, 3))), np.arange(1, 73).reshape(2, 6, 6) / 8),
     r"layer 'layer' \(Conv2d\): it reads values whose scale varies within a channel"),
    (_with_layer(GlobalAvgPool(), allowance=2.0), r"layer 'relu1' \(ReLU\): SpiCalib"),
])
def test_export_errors_name_the_layer(snn, expected):
    with pytest.raises(NIRExportError, match=expected):
        to_nir(snn)


def _graph(neuron, *, extra_nodes=None, extra_edges=()):
    nodes = {"input": nir.Input(input_type=np.array([3])),
             "fc1": nir.Affine(weight=np.eye(3), bias=np.zeros(3)), "neuron": neuron,
             "fc2": nir.Affine(weight=np.ones((2, 3)), bias=np.zeros(2)),
             "output": nir.Output(output_type=np.array([2])), **(extra_nodes or {})}
    edges = [("input", "fc1"), ("fc1", "neuron"), ("neuron", "fc2"), ("fc2", "output"),
             *extra_edges]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


ONES = np.ones(3)


@pytest.mark.parametrize("neuron, expected", [
    (nir.LIF(tau=ONES * 10, r=ONES, v_leak=0 * ONES, v_threshold=ONES),
     r"NIR node 'neuron' \(LIF\) has no evsim equivalent"),
    (nir.CubaLIF(tau_syn=ONES, tau_mem=ONES, r=ONES, v_leak=0 * ONES, v_threshold=ONES),
     r"'neuron' \(CubaLIF\)"),
    (nir.LI(tau=ONES, r=ONES, v_leak=0 * ONES), r"'neuron' \(LI\)"),
    (nir.Delay(delay=ONES), r"'neuron' \(Delay\)"),
    (nir.IF(r=ONES, v_threshold=ONES, v_reset=ONES * 0.5), r"'neuron' \(IF\): resets to v_reset"),
])
def test_import_rejects_what_evsim_cannot_represent(neuron, expected):
    with pytest.raises(NIRImportError, match=expected):
        from_nir(_graph(neuron))


def test_import_rejects_recurrence_and_reads_an_integrator_readout():
    if_node = nir.IF(r=ONES, v_threshold=ONES * 0.75)
    with pytest.raises(NIRImportError, match=r"cycle .*\['fc2', 'neuron', 'output'\]"):
        from_nir(_graph(if_node, extra_edges=[("fc2", "neuron")]))
    plain = from_nir(_graph(if_node))
    graph = _graph(if_node, extra_nodes={"sum": nir.I(r=np.ones(2))})
    graph.edges = [e for e in graph.edges if e != ("fc2", "output")] + [("fc2", "sum"),
                                                                          ("sum", "output")]
    summed = from_nir(graph)
    assert summed.network.output_name == "fc2" and float(summed.neurons["neuron"].threshold) == 0.75
    assert_same_spikes(plain, summed, np.random.default_rng(0).random((4, 3)))


def test_corrupt_file_error_names_the_file(tmp_path):
    garbage = tmp_path / "garbage.nir"
    garbage.write_bytes(b"this is not HDF5")
    with pytest.raises(NIRImportError, match="garbage.nir: not a readable NIR file"):
        load_nir(garbage)
    h5py = pytest.importorskip("h5py")
    empty = tmp_path / "empty.nir"
    with h5py.File(empty, "w") as f:
        f.create_dataset("version", data="1.0")
    with pytest.raises(NIRImportError, match="empty.nir: not a readable NIR file"):
        load_nir(empty)
    lif = tmp_path / "lif.nir"
    nir.write(lif, _graph(nir.LIF(tau=ONES, r=ONES, v_leak=0 * ONES, v_threshold=ONES)))
    with pytest.raises(NIRImportError, match=r"lif.nir: NIR node 'neuron' \(LIF\)"):
        load_nir(lif)


# -- another NIR reader: Norse (needs torch, norse and nirtorch) --------------------------------

def reader_snn() -> tuple[SpikingNetwork, np.ndarray]:
    """Reset to zero, v(0) = 0, Γ = 1; θ one bit below the membrane grid so that no membrane
    ever equals θ (evsim fires at v ≥ θ, NIR's IF at v > v_threshold) and every sum is exact."""
    rng = np.random.default_rng(1)

    def grid(shape):
        return rng.integers(-4, 5, size=shape) / 8

    b = NetworkBuilder((1, 6, 6))
    b.add_layer(Conv2d(grid((3, 1, 3, 3)), grid(3), padding=1), name="conv1")
    b.add_layer(ReLU(), name="relu1")
    b.add_layer(AvgPool2d(2), name="pool")
    b.add_layer(Conv2d(grid((4, 3, 3, 3)), grid(4)), name="conv2")
    b.add_layer(ReLU(), name="relu2")
    b.add_layer(Flatten(), name="flat")
    b.add_layer(Dense(grid((5, 4))), name="fc1")
    b.add_layer(ReLU(), name="relu3")
    b.add_layer(Dense(grid((3, 5)), grid(3)), name="fc2")
    theta = {"relu1": rng.integers(2, 8, (3, 1, 1)) / 8 + 2.0**-7,
             "relu2": rng.integers(2, 8) / 8 + 2.0**-13,
             "relu3": rng.integers(2, 8, 5) / 8 + 2.0**-17}
    snn = SpikingNetwork(b.build(), {k: NeuronSpec(np.asarray(v, np.float32), reset="zero")
                                     for k, v in theta.items()})
    return snn, rng.integers(0, 9, (4, 1, 6, 6)).astype(np.float32) / 8


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # nirtorch.load, used by Norse
def test_norse_reads_the_export_with_the_same_spike_counts(tmp_path):
    torch = pytest.importorskip("torch")
    norse = pytest.importorskip("norse.torch")
    snn, x = reader_snn()
    T = 16
    expected = evsim.simulate(snn, x, T=T)
    save_nir(snn, tmp_path / "net.nir")
    for graph in (to_nir(snn), nir.read(tmp_path / "net.nir")):
        module = norse.from_nir(graph, dt=1.0)  # dt·r = 1
        counts = {name: 0 for name in snn.neurons}
        outputs = np.zeros((len(x), 3), np.float32)
        for i, image in enumerate(x):  # NIR graphs are per sample: no batch axis
            state = None
            for _ in range(T):
                out, state = module(torch.from_numpy(image), state)
                outputs[i] += out.detach().numpy()
                for name in counts:
                    counts[name] = counts[name] + state.cache[name].detach().numpy()
        for name in snn.neurons:
            np.testing.assert_array_equal(counts[name], expected.spike_counts[name],
                                          err_msg=name)
            assert counts[name].sum() > 0
        np.testing.assert_allclose(outputs, expected.outputs[-1], rtol=1e-6, atol=1e-5)


def test_reads_graphs_norse_writes():
    torch = pytest.importorskip("torch")
    norse = pytest.importorskip("norse.torch")
    from norse.torch.functional.iaf import IAFParameters
    from norse.torch.module.iaf import IAFCell
    from norse.torch.module.lif_box import LIFBoxCell

    torch.manual_seed(0)
    model = norse.SequentialState(torch.nn.Linear(12, 6),
                                  IAFCell(IAFParameters(v_th=torch.full((6,), 0.75))),
                                  torch.nn.Linear(6, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nirtorch's deprecation notices
        graph = norse.to_nir(model, torch.zeros(1, 12))
    snn = from_nir(graph)  # Norse writes a batch axis into the Input: read as one
    assert snn.network.input_shape == (12,) and float(snn.neurons["1"].threshold) == 0.75
    x = torch.rand(5, 12)
    state, total = None, 0
    for _ in range(10):
        out, state = model(x, state)
        total = total + out.detach().numpy()
    np.testing.assert_allclose(evsim.simulate(snn, x.numpy(), T=10).outputs[-1], total,
                               rtol=1e-5, atol=1e-5)
    leaky = norse.SequentialState(torch.nn.Linear(12, 6), LIFBoxCell(), torch.nn.Linear(6, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = norse.to_nir(leaky, torch.zeros(1, 12))
    with pytest.raises(NIRImportError, match=r"NIR node '1' \(LIF\) has no evsim equivalent"):
        from_nir(graph)


# -- evsim's extension: max pooling, which NIR 1.0 lacks ---------------------------------------

@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**16), mode=st.sampled_from(["lipooling", "gate"]),
       window=st.sampled_from([(2, 2, 0, False), (3, 2, 1, False), (3, 2, 1, True),
                               (2, 1, 1, False), (3, 3, 0, True)]))
def test_max_pool_round_trips_through_a_file_with_the_extension(seed, mode, window,
                                                                 tmp_path_factory):
    kernel, stride, padding, ceil_mode = window
    rng = np.random.default_rng(seed)
    b = NetworkBuilder((2, 7, 7))
    b.add_layer(Conv2d(dyadic(rng, (3, 2, 3, 3), bits=2, kmax=3), dyadic(rng, 3), padding=1),
                name="conv")
    b.add_layer(ReLU(), name="relu")
    b.add_layer(MaxPool2d(kernel, stride, padding, ceil_mode=ceil_mode), name="pool")
    b.add_layer(Conv2d(dyadic(rng, (2, 3, 1, 1), bits=2, kmax=2)), name="conv2")
    b.add_layer(ReLU(), name="relu2")
    b.add_layer(Flatten(), name="flat")
    b.add_layer(Dense(dyadic(rng, (3, int(np.prod(b.shape("relu2")))), bits=2, kmax=2)),
                name="fc")
    theta = rng.integers(1, 9, size=(3, 1, 1)) / 4
    snn = SpikingNetwork(b.build(), {"relu": NeuronSpec(theta, reset="subtract"),
                                     "relu2": NeuronSpec(np.array(0.75))}, max_pool=mode)
    path = tmp_path_factory.mktemp("nir") / "maxpool.nir"
    save_nir(snn, path, extensions=True)
    back = load_nir(path)
    assert back.max_pool == mode
    pool = back.network["pool"].layer
    assert isinstance(pool, MaxPool2d) and (pool.kernel_size, pool.stride, pool.padding,
                                            pool.ceil_mode) == ((kernel,) * 2, (stride,) * 2,
                                                                (padding,) * 2, ceil_mode)
    x = dyadic(rng, (3, 2, 7, 7), bits=3, low=0, kmax=8)
    assert_same_spikes(snn, back, x)


def test_other_readers_reject_the_max_pool_extension(tmp_path):
    snn = _with_layer(MaxPool2d(2))
    graph = to_nir(snn, extensions=True)
    node = graph.nodes["layer"]
    assert type(node).__name__ == "EvsimMaxPool2d" and graph.metadata["max_pool"] == "lipooling"
    np.testing.assert_array_equal(node.output_type["output"], [2, 3, 3])
    np.testing.assert_array_equal(graph.nodes["fc"].weight, snn.network["fc"].layer.weight * 0.5)
    path = tmp_path / "maxpool.nir"
    nir.write(path, graph)
    with pytest.raises(AssertionError):  # nir 1.0's own reader: unknown node type
        nir.read(path)
    graph.metadata["max_pool"] = "gate"
    with pytest.raises(NIRImportError, match=r"'layer' \(EvsimMaxPool2d\): max-pool mode "
                       r"'lipooling' differs from the graph's 'gate'"):
        from_nir(graph)


def test_an_interrupted_nir_export_leaves_the_old_file(tmp_path, monkeypatch):
    snn, _ = reader_snn()
    path = tmp_path / "net.nir"
    save_nir(snn, path)
    old = path.read_bytes()

    def interrupted(fd):  # after the new bytes are written, before they are renamed into place
        raise KeyboardInterrupt

    monkeypatch.setattr(evsim.io.atomic.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_nir(snn, path, dt=0.5)
    assert path.read_bytes() == old and [p.name for p in tmp_path.iterdir()] == ["net.nir"]
