"""Importing transposed convolutions, depthwise convolutions with a channel multiplier and
the Sigmoid/Softmax output heads: from PyTorch through its TorchScript ONNX exporter
(``dynamo=False``, opsets 13 and 17) against onnxruntime, through ``from_torch`` against
torch itself, from hand-made ONNX nodes (asymmetric pads, ``auto_pad``, ``output_shape``),
and every configuration evsim cannot express refused naming its node."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from test_onnx_import import run_ort

import evsim
from evsim import layers as L

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch import nn  # noqa: E402

from evsim.io import UnsupportedOperatorError, load_onnx  # noqa: E402
from evsim.io.torch import UnsupportedModuleError, from_torch  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5



def _export(module, x: np.ndarray, path, opset: int) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(x),), str(path), dynamo=False,
                          opset_version=opset, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return str(path)


@st.composite
def upsampling_modules(draw):
    """(module, per-image input shape): a transposed convolution with random attributes,
    maybe a depthwise convolution with a multiplier after it, and maybe an output head."""
    groups = draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, (k - 1) * d)) for k, d in zip(kernel, dilation))
    # below the stride: onnxruntime refuses output_padding >= stride even where torch takes
    # one below the dilation (tests/graph/test_conv_transpose.py covers that against torch)
    output_padding = tuple(draw(st.integers(0, s - 1)) for s in stride)
    torch.manual_seed(draw(st.integers(0, 2**31)))
    layers = [nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding, groups,
                                 draw(st.booleans()), dilation)]
    if draw(st.booleans()):
        layers += [nn.ReLU(), nn.Conv2d(cout, cout * draw(st.integers(1, 3)), 3, padding=1,
                                        groups=cout)]
    head = draw(st.sampled_from(["none", "sigmoid", "softmax"]))
    if head != "none":
        layers.append(nn.Sigmoid() if head == "sigmoid" else nn.Softmax(dim=1))
    shape = (cin, draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    assume(all((n - 1) * s - 2 * p + d * (k - 1) + o + 1 > 0 for n, s, p, d, k, o in
               zip(shape[1:], stride, padding, dilation, kernel, output_padding)))
    return nn.Sequential(*layers).eval(), shape


@settings(max_examples=12, deadline=None, derandomize=True)
@given(case=upsampling_modules(), opset=st.sampled_from([13, 17]))
def test_torchscript_export_matches_onnxruntime_and_torch(case, opset, tmp_path_factory):
    module, shape = case
    x = np.random.default_rng(opset).normal(size=(3,) + shape).astype(np.float32)
    path = _export(module, x, tmp_path_factory.mktemp("onnx") / "m.onnx", opset)
    net = load_onnx(path)
    np.testing.assert_allclose(evsim.forward(net, x), run_ort(path, x), rtol=RTOL, atol=ATOL)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    traced = from_torch(module, shape)
    np.testing.assert_allclose(evsim.forward(traced, x), expected, rtol=RTOL, atol=ATOL)
    kinds = [type(n.layer).__name__ for n in traced]
    assert kinds == [type(n.layer).__name__ for n in net]
    assert "ConvTranspose2d" in kinds


class _Functional(nn.Module):
    def __init__(self, how: str):
        super().__init__()
        self.how, self.up = how, nn.ConvTranspose2d(2, 3, 2, stride=2)

    def forward(self, x):
        y = self.up(x)
        return {"torch.sigmoid": torch.sigmoid, "method sigmoid": lambda t: t.sigmoid(),
                "F.softmax": lambda t: torch.nn.functional.softmax(t, dim=1),
                "torch.softmax": lambda t: torch.softmax(t, -3),
                "method softmax": lambda t: t.softmax(1)}[self.how](y)


@pytest.mark.parametrize("how", ["torch.sigmoid", "method sigmoid", "F.softmax",
                                 "torch.softmax", "method softmax"])
def test_functional_heads_match_torch(how):
    module = _Functional(how).eval()
    x = np.random.default_rng(0).normal(size=(2, 2, 3, 3)).astype(np.float32)
    net = from_torch(module, (2, 3, 3))
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(evsim.forward(net, x), expected, rtol=RTOL, atol=1e-6)
    assert type(net[net.output_name].layer) in (L.Sigmoid, L.Softmax)


def _model(node, shape, weight, opset=13):
    graph = helper.make_graph(
        [node], "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight.astype(np.float32), "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)
    return model


@pytest.mark.parametrize("attrs", [
    {"strides": [2, 2], "pads": [1, 0, 0, 0]},  # an end crop below the begin one
    {"strides": [2, 3], "pads": [1, 1, 0, 1], "output_padding": [0, 1]},
    {"strides": [2, 2], "auto_pad": "SAME_LOWER"},
    {"strides": [2, 2], "auto_pad": "VALID", "dilations": [2, 1]},
    {"strides": [3, 2], "output_shape": [9, 8]},
    {"strides": [2, 2], "group": 2},
])
def test_onnx_conv_transpose_attributes_match_onnxruntime(attrs):
    weight = np.random.default_rng(1).normal(size=(2, 3 if "group" not in attrs else 1, 3, 3))
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", **attrs)
    model = _model(node, (2, 4, 4), weight)
    x = np.random.default_rng(2).normal(size=(2, 2, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(evsim.forward(load_onnx(model), x), run_ort(model, x),
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("attrs", [{"pads": [0, 0, 2, 0]},
                                   {"strides": [2, 2], "auto_pad": "SAME_UPPER"}])
def test_onnx_conv_transpose_that_crops_more_at_the_end_is_refused_naming_it(attrs):
    """evsim crops both sides alike and output padding only adds at the end."""
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", **attrs)
    with pytest.raises(UnsupportedOperatorError, match=r"'up' \(ConvTranspose\): pads"):
        load_onnx(_model(node, (2, 4, 4), np.ones((2, 1, 3, 3))))


@pytest.mark.parametrize("axis, opset", [(2, 13), (-1, 13), (1, 11)])
def test_onnx_softmax_off_the_channels_is_refused_naming_it(axis, opset):
    node = helper.make_node("Softmax", ["x"], ["y"], name="probs", axis=axis)
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["r"], name="r"),
         helper.make_node("Softmax", ["r"], ["y"], name="probs", axis=axis)], "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    del node
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)
    with pytest.raises(UnsupportedOperatorError, match=r"'probs' \(Softmax\): softmax over axis"):
        load_onnx(model)


def test_a_head_before_another_layer_imports_but_does_not_convert(tmp_path):
    """The ANN is valid; its spiking network is not, and the error names the node."""
    module = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sigmoid(), nn.Flatten(), nn.Linear(8, 3)).eval()
    x = np.random.default_rng(3).uniform(size=(4, 1, 4, 4)).astype(np.float32)
    net = load_onnx(_export(module, x, tmp_path / "m.onnx", 13))
    np.testing.assert_allclose(evsim.forward(net, x), run_ort(str(tmp_path / "m.onnx"), x),
                               rtol=RTOL, atol=ATOL)
    head = next(n.name for n in net if isinstance(n.layer, L.Sigmoid))
    with pytest.raises(evsim.errors.EvsimValueError,
                       match=f"Sigmoid '{head}' feeds .*a spiking network cannot carry it"):
        evsim.convert(net, x)
    traced = from_torch(module, (1, 4, 4))
    with pytest.raises(evsim.errors.EvsimValueError, match="Sigmoid '_1' feeds"):
        evsim.convert(traced, x)


def test_an_output_head_converts_and_decodes():
    """The head is dropped from the spiking network (its readout is the head's input);
    predictions are the ANN's arg-max, and the head applied to the mean readout approaches
    the ANN's probabilities."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Flatten(), nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 4),
                           nn.Softmax(dim=1)).eval()
    x = np.random.default_rng(4).uniform(size=(6, 6)).astype(np.float32)
    net = from_torch(module, (6,))
    snn = evsim.convert(net, x)
    assert snn.network.output_name == "_3" and "_4" not in [n.name for n in snn.network]
    result = evsim.simulate(snn, x, T=256)
    head = evsim.passes.output_head(net)
    assert isinstance(head, L.Softmax) and evsim.passes.output_head(snn.network) is None
    probabilities = evsim.kinds.apply(head, [result.mean_output()])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_allclose(probabilities, evsim.forward(net, x), atol=0.05)
    np.testing.assert_array_equal(result.predictions()[-1], evsim.forward(net, x).argmax(1))


def test_torch_softmax_off_the_channels_and_a_circular_transpose_are_refused():
    module = nn.Sequential(nn.Conv2d(1, 2, 1), nn.Softmax(dim=2))
    with pytest.raises(UnsupportedModuleError, match=r"fx node '_1'.*softmax over dim=2"):
        from_torch(module, (1, 3, 3))
    module = nn.Sequential(nn.ConvTranspose2d(1, 2, 3, padding=1, padding_mode="zeros"))
    module[0].padding_mode = "circular"
    with pytest.raises(UnsupportedModuleError, match="pads with 'circular'"):
        from_torch(module, (1, 3, 3))
