"""ONNX import of Concat, zero Pad and nearest/bilinear Resize as PyTorch's TorchScript
exporter writes them (opsets 13 and 17, Resize scales or sizes computed by small constant
subgraphs): evsim's forward equals onnxruntime's and torch's; other configurations are
errors naming the node."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_onnx_import import (assert_matches_ort, export, layer_kinds, make_model,
                              rng_inputs)

import evsim

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from onnx import helper  # noqa: E402

from evsim.io import UnsupportedOperatorError, load_onnx  # noqa: E402

RTOL, ATOL = 1e-5, 1e-5


class _Routing(torch.nn.Module):
    """conv → relu, then two branches (an upsampling that a pooling undoes, a zero padding
    that a convolution undoes) concatenated with the trunk, then a final upsampling."""

    def __init__(self, cin: int, scale: tuple, mode: str, align: bool, pad: tuple,
                 by_size: bool, final: tuple):
        super().__init__()
        nn = torch.nn
        self.conv = nn.Conv2d(cin, 3, 3, padding=1)
        self.scale, self.mode, self.align, self.by_size, self.final = scale, mode, align, \
            by_size, final
        self.pool = nn.AvgPool2d(scale)
        self.pad = nn.ZeroPad2d(pad)
        left, right, top, bottom = pad
        self.crop = nn.Conv2d(3, 2, (1 + top + bottom, 1 + left + right))

    def _interpolate(self, x, scale):
        F = torch.nn.functional
        options = {"align_corners": self.align} if self.mode == "bilinear" else {}
        if self.by_size:
            size = (x.shape[2] * scale[0], x.shape[3] * scale[1])
            return F.interpolate(x, size=size, mode=self.mode, **options)
        return F.interpolate(x, scale_factor=scale, mode=self.mode, **options)

    def forward(self, x):
        trunk = torch.relu(self.conv(x))
        up = self.pool(self._interpolate(trunk, self.scale))
        padded = torch.relu(self.crop(self.pad(trunk)))
        joined = torch.cat([trunk, up, padded], dim=1)
        return self._interpolate(joined, self.final)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(cin=st.integers(1, 2), h=st.integers(2, 5), w=st.integers(2, 5),
       scale=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       final=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       mode=st.sampled_from(["nearest", "bilinear"]), align=st.booleans(),
       pad=st.tuples(*[st.integers(0, 2)] * 4), by_size=st.booleans(),
       opset=st.sampled_from([13, 17]))
def test_torch_cat_pad_interpolate_match_onnxruntime_and_torch(cin, h, w, scale, final, mode,
                                                                align, pad, by_size, opset,
                                                                tmp_path_factory):
    torch.manual_seed(cin * 100 + h * 10 + w)
    module = _Routing(cin, scale, mode, align and mode == "bilinear", pad, by_size,
                      final).eval()
    path = export(module, rng_inputs((cin, h, w), batch=2),
                  tmp_path_factory.mktemp("routing") / "m.onnx", "torchscript", opset)
    x = rng_inputs((cin, h, w), batch=3, seed=1)
    net = assert_matches_ort(path, x)
    with torch.no_grad():
        np.testing.assert_allclose(evsim.forward(net, x), module(torch.from_numpy(x)).numpy(),
                                   rtol=RTOL, atol=ATOL)
    kinds = layer_kinds(net)
    assert kinds.count("Concat") == 1 and kinds.count("Pad") == 1
    assert kinds.count("Upsample") == 2
    ups = [n.layer for n in net if type(n.layer).__name__ == "Upsample"]
    assert [u.scale for u in ups] == [scale, final]
    assert {u.mode for u in ups} == {mode}


def _resize(mode: str, scales, **attrs) -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Resize", ["r", "", "scales"], ["y"], name="the_resize",
                              mode=mode, **attrs)]
    return make_model(nodes, (2, 3, 3), {"scales": np.array(scales, np.float32)})


@pytest.mark.parametrize("model,why", [
    (_resize("nearest", [1, 1, 1.5, 2]), "integer scales"),
    (_resize("nearest", [1, 2, 2, 2]), "integer scales"),
    (_resize("cubic", [1, 1, 2, 2]), "mode 'cubic'"),
    (_resize("nearest", [1, 1, 2, 2], coordinate_transformation_mode="tf_crop_and_resize"),
     "tf_crop_and_resize"),
    (_resize("linear", [1, 1, 2, 2], coordinate_transformation_mode="asymmetric"),
     "asymmetric"),
])
def test_unsupported_resize_names_the_node(model, why):
    with pytest.raises(UnsupportedOperatorError, match=r"'the_resize' \(Resize\)") as info:
        load_onnx(model)
    assert why in str(info.value)


def _pad(pads, value=None, mode="constant") -> onnx.ModelProto:
    inputs = ["r", "pads"] + (["value"] if value is not None else [])
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Pad", inputs, ["y"], name="the_pad", mode=mode)]
    inits = {"pads": np.array(pads, np.int64)}
    if value is not None:
        inits["value"] = np.array(value, np.float32)
    return make_model(nodes, (2, 3, 3), inits)


@pytest.mark.parametrize("model,why", [
    (_pad([0, 0, 1, 1, 0, 0, 1, 1], mode="reflect"), "mode 'reflect'"),
    (_pad([0, 0, 1, 1, 0, 0, 1, 1], value=0.5), "value 0.5"),
    (_pad([0, 1, 1, 1, 0, 0, 1, 1]), "no cropping"),
    (_pad([0, 0, -1, 1, 0, 0, 1, 1]), "no cropping"),
])
def test_unsupported_pad_names_the_node(model, why):
    with pytest.raises(UnsupportedOperatorError, match=r"'the_pad' \(Pad\)") as info:
        load_onnx(model)
    assert why in str(info.value)


def test_zero_pad_with_explicit_zero_value_matches_onnxruntime():
    net = assert_matches_ort(_pad([0, 0, 1, 0, 0, 0, 2, 3], value=0.0),
                             rng_inputs((2, 3, 3)))
    assert layer_kinds(net) == ["ReLU", "Pad"]
    assert net[net.output_name].layer.padding == (1, 2, 0, 3)


def test_concat_along_space_names_the_node():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Concat", ["r", "r"], ["y"], name="the_cat", axis=2)]
    with pytest.raises(UnsupportedOperatorError, match=r"'the_cat' \(Concat\).*axis 1"):
        load_onnx(make_model(nodes, (2, 3, 3)))


def test_opset_9_upsample_nearest_matches_onnxruntime():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("Upsample", ["r", "scales"], ["y"], name="up", mode="nearest")]
    model = make_model(nodes, (2, 3, 3), {"scales": np.array([1, 1, 2, 3], np.float32)},
                       opset=9)
    net = assert_matches_ort(model, rng_inputs((2, 3, 3)))
    assert net[net.output_name].layer.scale == (2, 3)
