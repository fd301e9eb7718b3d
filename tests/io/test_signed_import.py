"""LeakyReLU and linear bottlenecks from ONNX and PyTorch: the import matches
onnxruntime and torch, and conversion makes the bottlenecks signed identity neurons
(methods.md §5b)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from test_onnx_import import run_ort

import evsim
from evsim import layers as L

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from evsim.io import load_onnx  # noqa: E402
from evsim.io.torch import UnsupportedModuleError, from_torch  # noqa: E402

RTOL, ATOL = 1e-5, 1e-5



def _model(nodes: list, input_shape: tuple, initializers: dict) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), name=k)
             for k, v in initializers.items()]
    graph = helper.make_graph(
        nodes, "signed", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                        ["N", *input_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 8)
    return model


def _kinds(net) -> list[str]:
    return [type(n.layer).__name__ for n in net.nodes[1:]]


@pytest.mark.parametrize("alpha", [None, 0.2, 1.0])
def test_onnx_leaky_relu_matches_onnxruntime(alpha):
    """LeakyRelu (its alpha attribute, or the default 0.01) is one LeakyReLU layer."""
    rng = np.random.default_rng(0)
    attrs = {} if alpha is None else {"alpha": alpha}
    model = _model([helper.make_node("Gemm", ["x", "w", "b"], ["h"], transB=1),
                    helper.make_node("LeakyRelu", ["h"], ["a"], **attrs),
                    helper.make_node("Gemm", ["a", "w2"], ["y"], transB=1)], (5,),
                   {"w": rng.normal(size=(6, 5)), "b": rng.normal(size=6),
                    "w2": rng.normal(size=(3, 6))})
    net = load_onnx(model)
    assert _kinds(net) == ["Dense", "LeakyReLU", "Dense"]
    (act,) = [n.layer for n in net if isinstance(n.layer, L.LeakyReLU)]
    assert act.alpha == np.float32(0.01 if alpha is None else alpha)
    x = rng.normal(size=(7, 5)).astype(np.float32)
    np.testing.assert_allclose(evsim.forward(net, x), run_ort(model, x), rtol=RTOL, atol=ATOL)


def test_onnx_leaky_relu_with_a_slope_above_one_is_an_error_naming_the_node():
    model = _model([helper.make_node("LeakyRelu", ["x"], ["h"], alpha=2.0, name="steep"),
                    helper.make_node("Gemm", ["h", "w"], ["y"], transB=1)], (3,),
                   {"w": np.ones((2, 3))})
    with pytest.raises(evsim.io.UnsupportedOperatorError, match="steep"):
        load_onnx(model)


class _LinearBottlenecks(nn.Module):
    """Conv → Conv, Conv → Add → Conv and Add → Conv with no activation between."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1)
        self.a = nn.Conv2d(4, 4, 1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)  # reads a's currents: Conv → Conv
        self.c = nn.Conv2d(4, 4, 1)  # reads the residual sum: Add → Conv
        self.head = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        s = F.leaky_relu(self.stem(x), 0.1)
        y = self.b(self.a(s)) + s
        z = F.relu(self.c(y))
        return self.head(torch.flatten(z, 1))


def _export(module: nn.Module, example: np.ndarray, path, opset: int) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(example),), str(path), dynamo=False,
                          opset_version=opset, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return str(path)


@pytest.mark.parametrize("opset", [13, 17])
def test_linear_bottlenecks_import_and_convert_with_identity_neurons(opset, tmp_path):
    torch.manual_seed(0)
    module = _LinearBottlenecks().eval()
    x = np.random.default_rng(1).random((6, 2, 6, 6)).astype(np.float32)
    path = _export(module, x[:2], tmp_path / "m.onnx", opset)
    for net in (load_onnx(path), from_torch(module, (2, 6, 6))):
        np.testing.assert_allclose(evsim.forward(net, x), run_ort(path, x), rtol=RTOL,
                                   atol=ATOL)
        with pytest.raises(evsim.ConversionError, match="carries currents"):
            evsim.signals.plan(net)  # the graph itself has no spiking reading
        snn = evsim.convert(net, x)
        identities = [n.name for n in snn.network if isinstance(n.layer, L.Identity)]
        assert len(identities) == 2  # after Conv a and after the Add
        for name in identities:
            spec = snn.neurons[name]
            np.testing.assert_array_equal(spec.negative_threshold, spec.threshold)
        (leaky,) = [n.name for n in snn.network if isinstance(n.layer, L.LeakyReLU)]
        np.testing.assert_allclose(snn.neurons[leaky].negative_threshold,
                                   snn.neurons[leaky].threshold / np.float32(0.1), rtol=1e-6)
        np.testing.assert_allclose(evsim.forward(snn.network, x), evsim.forward(net, x),
                                   rtol=1e-5, atol=1e-5)  # the identities change nothing
        event = evsim.simulate(snn, x, T=16, engine="event")
        dense = evsim.simulate(snn, x, T=16, engine="dense")
        np.testing.assert_allclose(event.outputs, dense.outputs, rtol=1e-4, atol=1e-4)
        assert sum(event.negative_spikes.values()) > 0


@pytest.mark.parametrize("make", [lambda: nn.LeakyReLU(0.3), lambda: nn.LeakyReLU(),
                                  lambda: (lambda x: F.leaky_relu(x, negative_slope=0.5))])
def test_torch_leaky_relu_matches_torch(make):
    act = make()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act = nn.Linear(5, 6), act
            self.out = nn.Linear(6, 2)

        def forward(self, x):
            return self.out(self.act(self.fc(x)) if isinstance(self.act, nn.Module)
                            else act(self.fc(x)))

    torch.manual_seed(0)
    module = Net().eval()
    net = from_torch(module, (5,))
    assert "LeakyReLU" in _kinds(net)
    x = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(evsim.forward(net, x), module(torch.from_numpy(x)).numpy(),
                                   rtol=RTOL, atol=ATOL)


def test_torch_leaky_relu_slope_zero_is_a_relu_and_above_one_an_error():
    assert _kinds(from_torch(nn.Sequential(nn.Linear(3, 3), nn.LeakyReLU(0.0)), (3,))) == [
        "Dense", "ReLU"]
    with pytest.raises(UnsupportedModuleError, match="negative_slope 2.0"):
        from_torch(nn.Sequential(nn.Linear(3, 3), nn.LeakyReLU(2.0)), (3,))


class _InvertedResidual(nn.Module):
    """A MobileNet-v2 block: expand 1×1 + ReLU6, depthwise 3×3 + ReLU6, project 1×1 (linear),
    residual Add; then a 1×1 head conv that reads the sum (another linear bottleneck)."""

    def __init__(self, width: int = 8, expand: int = 3):
        super().__init__()
        hidden = width * expand
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width),
                                  nn.ReLU6())
        self.expand = nn.Sequential(nn.Conv2d(width, hidden, 1, bias=False),
                                    nn.BatchNorm2d(hidden), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden,
                                                 bias=False), nn.BatchNorm2d(hidden), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(hidden, width, 1, bias=False),
                                     nn.BatchNorm2d(width))
        self.head = nn.Sequential(nn.Conv2d(width, 16, 1), nn.ReLU6(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 5))

    def forward(self, x):
        s = self.stem(x)
        return self.head(s + self.project(self.depthwise(self.expand(s))))


@pytest.mark.parametrize("opset", [13, 17])
def test_mobilenet_v2_inverted_residual_converts_and_runs_on_both_engines(opset, tmp_path):
    torch.manual_seed(3)
    module = _InvertedResidual().eval()
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    images = np.random.default_rng(0).random((48, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():  # centre the logits so that the images fall in several classes
        logits = module(torch.from_numpy(images))
        spread = logits.std(0)
        module.head[-1].bias.sub_(logits.mean(0)).div_(spread)  # (logit − mean) / spread
        module.head[-1].weight.div_(spread[:, None])
    path = _export(module, images[:2], tmp_path / "mbv2.onnx", opset)
    net = load_onnx(path)
    assert _kinds(net).count("Clip") == 4  # ReLU6 is Clip(0, 6)
    with torch.no_grad():
        ann = module(torch.from_numpy(images)).numpy()
    np.testing.assert_allclose(evsim.forward(net, images), ann, rtol=1e-4, atol=1e-4)
    snn = evsim.convert(net, images[:32], initial_potential=0.5)  # v(0) = θ/2
    (identity,) = [n for n in snn.network if isinstance(n.layer, L.Identity)]
    assert snn.network[snn.network.consumers(identity.name)[0]].layer.kind == "conv2d"
    test, reference = images[32:], ann[32:]
    assert len(set(reference.argmax(1))) >= 3  # the agreement below is not one class
    for engine in ("event", "dense"):
        result = evsim.simulate(snn, test, T=256, engine=engine)
        error = np.linalg.norm(result.mean_output() - reference) / np.linalg.norm(reference)
        agreement = np.mean(result.predictions()[-1] == reference.argmax(1))
        # logits centred and scaled per class: their error is relative to their spread
        assert error < 0.3 and agreement >= 0.8, (engine, error, agreement)


@pytest.mark.parametrize("layer", [L.LeakyReLU(0.5), L.Identity()])
def test_nir_export_of_signed_neurons_is_an_error_naming_the_layer(layer):
    pytest.importorskip("nir")
    from evsim.io.nir import NIRExportError, to_nir

    net = evsim.Network.sequential((3,), [L.Dense(np.eye(3)), layer, L.Dense(np.ones((2, 3)))],
                                   names=["fc", "act", "out"])
    snn = evsim.SpikingNetwork(net, {"act": evsim.NeuronSpec(1.0, negative_threshold=2.0)})
    kind = type(layer).__name__
    with pytest.raises(NIRExportError, match=rf"layer 'act' \({kind}\): is signed IF neurons"):
        to_nir(snn)
