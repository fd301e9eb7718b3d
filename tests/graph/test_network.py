"""Graph validation, builder naming, summaries and the native save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest

import evsim
from evsim import layers as L
from evsim.layers import ShapeError
from evsim.network import GraphError, Network, NetworkBuilder, Node


def _conv(cin=2, cout=3, k=3, **kw):
    return L.Conv2d(np.ones((cout, cin, k, k)), **kw)


# ----------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------

def test_duplicate_names():
    nodes = [Node("input", L.Input((4,))), Node("relu", L.ReLU(), ("input",)),
             Node("relu", L.Clip(1.0), ("input",))]
    with pytest.raises(GraphError, match="'relu'"):
        Network(nodes)
    b = NetworkBuilder((4,))
    b.add_layer(L.ReLU(), name="a")
    with pytest.raises(GraphError, match="'a'"):
        b.add_layer(L.ReLU(), name="a")


def test_unknown_input():
    nodes = [Node("input", L.Input((4,))), Node("act", L.ReLU(), ("ghost",))]
    with pytest.raises(GraphError, match="'act'.*'ghost'"):
        Network(nodes)
    b = NetworkBuilder((4,))
    with pytest.raises(GraphError, match="'ghost'"):
        b.add_layer(L.ReLU(), "ghost", name="act")


def test_cycle():
    nodes = [Node("input", L.Input((4,))),
             Node("a", L.Add(), ("input", "c")),
             Node("b", L.ReLU(), ("a",)),
             Node("c", L.ReLU(), ("b",)),
             Node("out", L.ReLU(), ("c",))]
    with pytest.raises(GraphError, match="cycle") as err:
        Network(nodes, output="out")
    assert any(f"'{name}'" in str(err.value) for name in "abc")
    # a node reading itself
    with pytest.raises(GraphError, match="cycle.*'self'"):
        Network([Node("input", L.Input((4,))), Node("self", L.Add(), ("input", "self"))])


def test_two_inputs_or_none():
    nodes = [Node("in1", L.Input((4,))), Node("in2", L.Input((4,))),
             Node("add", L.Add(), ("in1", "in2"))]
    with pytest.raises(GraphError, match="in1.*in2"):
        Network(nodes)
    with pytest.raises(GraphError, match="Input"):
        NetworkBuilder((4,)).add_layer(L.Input((4,)))


def test_add_with_mismatched_shapes_names_layer_and_shapes():
    b = NetworkBuilder((2, 6, 6))
    b.add_layer(_conv(padding=1), name="same")
    b.add_layer(_conv(), "input", name="valid")
    with pytest.raises(ShapeError) as err:
        b.add_layer(L.Add(), "same", "valid", name="join")
    msg = str(err.value)
    assert "'join'" in msg and "(3, 6, 6)" in msg and "(3, 4, 4)" in msg
    nodes = [Node("input", L.Input((2, 6, 6))), Node("same", _conv(padding=1), ("input",)),
             Node("valid", _conv(), ("input",)), Node("join", L.Add(), ("same", "valid"))]
    with pytest.raises(ShapeError) as err:
        Network(nodes)
    msg = str(err.value)
    assert "'join'" in msg and "(3, 6, 6)" in msg and "(3, 4, 4)" in msg


def test_add_needs_two_inputs():
    with pytest.raises(GraphError, match="'lonely'"):
        Node("lonely", L.Add(), ("input",))


def test_dense_after_3d_layer_suggests_flatten():
    b = NetworkBuilder((2, 4, 4))
    with pytest.raises(ShapeError, match="Flatten") as err:
        b.add_layer(L.Dense(np.ones((3, 32))), name="fc")
    assert "'fc'" in str(err.value) and "(2, 4, 4)" in str(err.value)
    with pytest.raises(ShapeError) as err:
        Network.sequential((2, 4, 4), [L.Flatten(), L.Dense(np.ones((3, 31)))])
    assert "(31,)" in str(err.value) and "Flatten" not in str(err.value).split("[")[0]


def test_conv_channel_mismatch_names_layer():
    with pytest.raises(ShapeError, match="'c'.*\\(3, H, W\\)"):
        Network.sequential((2, 5, 5), [L.Conv2d(np.ones((4, 3, 3, 3)))], names=["c"])


def test_every_layer_must_reach_the_one_output():
    nodes = [Node("input", L.Input((3,))), Node("a", L.ReLU(), ("input",)),
             Node("b", L.ReLU(), ("input",))]
    with pytest.raises(GraphError, match=r"2 unconsumed layers \['a', 'b'\]"):
        Network(nodes)
    with pytest.raises(GraphError, match="layer 'a' \\(ReLU\\) never reaches the output 'b'"):
        Network(nodes, output="b")  # a dead branch: its SOPs and energy would be counted
    with pytest.raises(GraphError, match="'zzz'"):
        Network(nodes, output="zzz")
    assert Network(nodes[:2]).output_name == "a"


# ----------------------------------------------------------------------------
# Builder, consumers, order, summary
# ----------------------------------------------------------------------------

def test_builder_auto_names():
    b = NetworkBuilder((2, 8, 8))
    names = [b.add_layer(_conv(padding=1, cin=2, cout=2)), b.add_layer(L.ReLU()),
             b.add_layer(_conv(padding=1, cin=2, cout=2)), b.add_layer(L.ReLU()),
             b.add_layer(L.MaxPool2d(2)), b.add_layer(L.AvgPool2d(2)),
             b.add_layer(L.Flatten()), b.add_layer(L.Dense(np.ones((3, 8))))]
    assert names == ["conv2d1", "relu1", "conv2d2", "relu2", "maxpool2d1", "avgpool2d1",
                     "flatten1", "dense1"]
    assert b.last == "dense1"
    # an explicit name that collides with the next automatic one is skipped over
    b2 = NetworkBuilder((4,))
    b2.add_layer(L.ReLU(), name="relu1")
    assert b2.add_layer(L.ReLU()) == "relu2"
    net = b.build()
    assert [n.name for n in net] == ["input"] + names
    assert net.output_name == "dense1"


def test_consumers_and_topological_order():
    nodes = [
        Node("out", L.Add(), ("r2", "r1")),
        Node("r2", L.Clip(2.0), ("r1",)),
        Node("r1", L.ReLU(), ("x",)),
        Node("x", L.Input((3, 4, 4))),
    ]
    net = Network(nodes)
    order = [n.name for n in net]
    assert order[0] == "x"
    for node in net:
        for src in node.inputs:
            assert order.index(src) < order.index(node.name)
    assert order == ["x", "r1", "r2", "out"]
    assert net.consumers("r1") == ["r2", "out"]
    assert net.consumers("out") == []
    assert net.output_name == "out" and net.input_name == "x"
    assert net.shape("out") == (3, 4, 4)
    with pytest.raises(KeyError, match="nope"):
        net.consumers("nope")


def test_summary_lists_every_layer():
    net = _every_kind_network()
    text = net.summary()
    lines = text.splitlines()
    assert len(lines) == len(net) + 2
    for node in net:
        row = next(line for line in lines if line.split()[0] == node.name)
        assert type(node.layer).__name__ in row
        assert str(net.shape(node.name)) in row
    conv_row = next(line for line in lines if line.split()[0] == "conv")
    assert str(net["conv"].layer.weight.size + net["conv"].layer.bias.size) in conv_row


# ----------------------------------------------------------------------------
# Save / load
# ----------------------------------------------------------------------------

def _every_kind_network():
    rng = np.random.default_rng(0)
    b = NetworkBuilder((4, 9, 8))
    b.add_layer(L.Conv2d(rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6),
                         stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2), name="conv")
    b.add_layer(L.BatchNorm(rng.uniform(0.5, 1.5, 6), rng.standard_normal(6),
                            rng.standard_normal(6), rng.uniform(0.5, 1.5, 6), eps=1e-3),
                name="bn")
    b.add_layer(L.ReLU(), name="relu")
    b.add_layer(L.Clip(2.5), "relu", name="clip")
    b.add_layer(L.QCFS(lam=3.0, levels=6, shift=0.25), "relu", name="qcfs")
    b.add_layer(L.Add(), "clip", "qcfs", name="add")
    b.add_layer(L.Concat(), "add", "relu", name="cat")
    b.add_layer(L.Pad((1, 0, 2, 1)), name="pad")
    b.add_layer(L.Upsample((2, 1), "bilinear", align_corners=True), name="up")
    b.add_layer(L.AvgPool2d((3, 2), (2, 2), (1, 1), ceil_mode=True, count_include_pad=False),
                name="avg")
    b.add_layer(L.MaxPool2d(2, 1, 1, ceil_mode=True), name="max")
    b.add_layer(L.ConvTranspose2d(rng.standard_normal((12, 1, 2, 3)), rng.standard_normal(12),
                                  stride=2, padding=(1, 0), output_padding=(1, 0), groups=12),
                name="up_t")
    b.add_layer(L.GlobalAvgPool(), name="gap")
    b.add_layer(L.LeakyReLU(0.125), name="leaky")
    b.add_layer(L.Identity(), name="ident")
    b.add_layer(L.Flatten(), name="flat")
    b.add_layer(L.Dense(rng.standard_normal((3, 12)).astype(np.float32),
                        rng.standard_normal(3).astype(np.float32)), name="fc")
    b.add_layer(L.Sigmoid(), "fc", name="sigmoid")
    b.add_layer(L.Softmax(), "sigmoid", name="softmax")  # an ANN may; a spiking one may not
    return b.build(output="softmax")


def test_save_load_round_trip(tmp_path):
    net = _every_kind_network()
    kinds = {type(n.layer) for n in net}
    assert kinds == set(L.LAYER_KINDS.values())
    path = tmp_path / "net.npz"
    evsim.save(net, path)
    back = evsim.load(path)
    assert isinstance(back, Network)
    assert back.equals(net) and net.equals(back)
    assert back["conv"].layer.weight.dtype == np.float64
    assert back["fc"].layer.weight.dtype == np.float32
    assert back["fc"].layer.bias.dtype == np.float32
    assert back["conv"].layer.stride == (2, 1) and back["conv"].layer.dilation == (1, 2)
    assert back["avg"].layer.ceil_mode is True and back["avg"].layer.count_include_pad is False
    assert back["qcfs"].layer.shift == 0.25 and back["bn"].layer.eps == 1e-3
    assert back["leaky"].layer.alpha == 0.125 and isinstance(back["ident"].layer, L.Identity)
    assert back.output_name == net.output_name
    x = np.random.default_rng(1).standard_normal((2, 4, 9, 8))
    np.testing.assert_array_equal(evsim.forward(back, x, dtype=np.float64),
                                  evsim.forward(net, x, dtype=np.float64))


def test_equals_detects_differences():
    net = _every_kind_network()
    assert net.equals(net)
    nodes = list(net.nodes)

    def swap(name, layer):
        return Network([Node(n.name, layer, n.inputs) if n.name == name else n for n in nodes])

    w = net["fc"].layer.weight.copy()
    w[0, 0] = np.nextafter(w[0, 0], np.float32(np.inf))
    assert not swap("fc", net["fc"].layer.replace(weight=w)).equals(net)
    assert not swap("fc", net["fc"].layer.replace(
        weight=net["fc"].layer.weight.astype(np.float64),
        bias=net["fc"].layer.bias.astype(np.float64))).equals(net)
    assert not swap("max", net["max"].layer.replace(ceil_mode=False)).equals(net)
    assert not swap("clip", L.Clip(2.0)).equals(net)


def test_load_non_evsim_npz_names_file(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.arange(3))
    with pytest.raises(ValueError, match="other.npz"):
        evsim.load(path)


@pytest.mark.parametrize("keep", [1, 5, 40, 0.5, -1])
def test_load_truncated_file_names_file(tmp_path, keep):
    path = tmp_path / "net.npz"
    evsim.save(_every_kind_network(), path)
    data = path.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[:n])
    with pytest.raises(ValueError, match="cut.npz"):
        evsim.load(cut)


def test_load_empty_file_names_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.npz"):
        evsim.load(path)


def test_load_unknown_suffix(tmp_path):
    path = tmp_path / "net.onnx2"
    path.write_bytes(b"x")
    with pytest.raises(ValueError, match="net.onnx2"):
        evsim.load(path)
