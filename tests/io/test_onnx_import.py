"""ONNX import: every supported operator gives what onnxruntime gives, and nothing is skipped.

Models come from PyTorch's two exporters (TorchScript at opsets 13 and 17,
dynamo at opset 18) and from ``onnx.helper`` for older opsets and for
configurations the exporters do not produce.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import evsim
from evsim import layers as L

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from evsim.io import UnsupportedOperatorError, load_onnx  # noqa: E402

RTOL, ATOL = 1e-5, 1e-5
FEW = settings(max_examples=15, deadline=None, derandomize=True)
EXPORTERS = [("torchscript", 13), ("torchscript", 17), ("dynamo", 18)]


def run_ort(model: onnx.ModelProto | str, x: np.ndarray) -> np.ndarray:
    source = model if isinstance(model, str) else model.SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # its shape-inference warnings on ceil_mode are expected
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def assert_matches_ort(model: onnx.ModelProto | str, x: np.ndarray) -> evsim.Network:
    """Import ``model`` and check evsim's forward against onnxruntime on ``x``."""
    net = load_onnx(model)
    np.testing.assert_allclose(evsim.forward(net, x), run_ort(model, x), rtol=RTOL, atol=ATOL)
    return net


def make_model(nodes: list, input_shape: tuple, initializers: dict | None = None,
               opset: int = 13, batch: int | str = "N") -> onnx.ModelProto:
    """A one-input, one-output float model; ``input_shape`` is per image."""
    inits = []
    for name, value in (initializers or {}).items():
        value = np.asarray(value)
        inits.append(numpy_helper.from_array(
            value.astype(np.float32) if value.dtype.kind == "f" else value, name=name))
    graph = helper.make_graph(
        nodes, "test", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                      [batch, *input_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)  # readable by older onnxruntime builds too
    return model


def layer_kinds(net: evsim.Network) -> list[str]:
    return [type(n.layer).__name__ for n in net.nodes[1:]]


def rng_inputs(shape: tuple, batch: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype(np.float32)


# -- PyTorch models through both exporters --------------------------------------------------
def _torch_classes() -> dict:
    torch = pytest.importorskip("torch")
    nn, F = torch.nn, torch.nn.functional

    class QCFS(nn.Module):
        """The QCFS activation written in plain torch ops, λ a learned scalar."""

        def __init__(self, lam: float = 1.5, levels: int = 4):
            super().__init__()
            self.lam, self.levels = nn.Parameter(torch.tensor(lam)), levels

        def forward(self, x):
            return self.lam * torch.clamp(
                torch.floor(x * self.levels / self.lam + 0.5) / self.levels, 0, 1)

    class ClampAct(nn.Module):
        """Clipped ReLU with a learned bound, ``torch.clamp(x, 0, λ)``."""

        def __init__(self, lam: float = 1.25):
            super().__init__()
            self.lam = nn.Parameter(torch.tensor(lam))

        def forward(self, x):
            return torch.clamp(x, torch.zeros(()), self.lam)

    class CNN(nn.Module):
        """Conv/BN/ReLU, MaxPool (ceil_mode), grouped dilated conv, clamp,
        AvgPool (ceil_mode, count_include_pad False), flatten, Linear."""

        def __init__(self):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6)
            # (ONNX shape inference disagrees with PyTorch and onnxruntime when ceil_mode's
            # last window would start in the right padding, so onnxruntime refuses such a
            # model before a Gemm; test_pool_attributes_match_onnxruntime covers that case.)
            self.pool1 = nn.MaxPool2d(2, ceil_mode=True)
            self.conv2 = nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=2, bias=False)
            self.bn2, self.act2 = nn.BatchNorm2d(6), ClampAct()
            self.pool2 = nn.AvgPool2d(3, 2, padding=1, ceil_mode=True, count_include_pad=False)
            self.fc1, self.fc2 = nn.Linear(6 * 3 * 3, 16), nn.Linear(16, 5)

        def forward(self, x):
            x = self.pool1(F.relu(self.bn1(self.conv1(x))))
            x = self.pool2(self.act2(self.bn2(self.conv2(x))))
            return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

    class Residual(nn.Module):
        """QCFS stem, a residual block with functional relu and ``x + y``, a strided
        MaxPool, a global average pool and ``view(x.size(0), -1)``."""

        def __init__(self):
            super().__init__()
            self.stem, self.bn0 = nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.act0 = QCFS()
            self.conv1, self.bn1 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)
            self.pool, self.gap = nn.MaxPool2d(3, 2, padding=1), nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            x = self.act0(self.bn0(self.stem(x)))
            y = F.relu(self.bn1(self.conv1(x)))
            x = F.relu(x + self.bn2(self.conv2(y)))
            x = self.gap(self.pool(x))
            return self.fc(x.view(x.size(0), -1))

    class MLP(nn.Module):
        """Linear + BatchNorm1d, min(relu(x), λ), MatMul + bias, clamp, MatMul without bias."""

        def __init__(self):
            super().__init__()
            self.fc1, self.bn = nn.Linear(12, 8), nn.BatchNorm1d(8)
            self.lam = nn.Parameter(torch.tensor(0.75))
            self.w2, self.b2 = nn.Parameter(torch.randn(8, 6)), nn.Parameter(torch.randn(6))
            self.w3 = nn.Parameter(torch.randn(6, 4))
            self.drop = nn.Dropout(0.5)

        def forward(self, x):
            x = torch.minimum(F.relu(self.bn(self.fc1(x.flatten(1)))), self.lam)
            x = torch.clamp(self.drop(x) @ self.w2 + self.b2, 0.0, 2.0)
            return x @ self.w3

    return {"cnn": CNN, "residual": Residual, "mlp": MLP, "qcfs": QCFS, "clamp": ClampAct}


SHAPES = {"cnn": (3, 9, 9), "residual": (2, 8, 8), "mlp": (3, 2, 2)}


def _randomise_batchnorm(module) -> None:
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(1)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=generator) - 0.5)


def export(module, example: np.ndarray, path, exporter: str, opset: int, **options) -> str:
    """Export ``module`` with a free batch axis; returns the file name."""
    torch = pytest.importorskip("torch")
    x = torch.from_numpy(example)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            pytest.importorskip("onnxscript")
            torch.onnx.export(module, (x,), str(path), dynamo=True, opset_version=opset,
                              input_names=["x"], verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("batch")},), **options)
        else:
            torch.onnx.export(module, (x,), str(path), dynamo=False, opset_version=opset,
                              input_names=["x"], output_names=["y"],
                              dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, **options)
    return str(path)


def torch_model(name: str, seed: int = 0):
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    module = _torch_classes()[name]().eval()
    _randomise_batchnorm(module)
    return module, SHAPES[name]


@pytest.mark.parametrize("exporter,opset", EXPORTERS)
@pytest.mark.parametrize("name", ["cnn", "residual", "mlp"])
def test_pytorch_export_matches_onnxruntime(name, exporter, opset, tmp_path):
    torch = pytest.importorskip("torch")
    module, shape = torch_model(name)
    path = export(module, rng_inputs(shape, batch=2), tmp_path / "m.onnx", exporter, opset)
    x = rng_inputs(shape, batch=6, seed=1)
    net = assert_matches_ort(path, x)
    with torch.no_grad():
        np.testing.assert_allclose(evsim.forward(net, x), module(torch.from_numpy(x)).numpy(),
                                   rtol=RTOL, atol=ATOL)
    kinds = layer_kinds(net)
    if name == "cnn":
        act = next(n.layer for n in net if isinstance(n.layer, L.Clip))
        assert act.max_value == np.float32(module.act2.lam.item())
        assert kinds.count("MaxPool2d") == kinds.count("AvgPool2d") == 1
        pool = next(n.layer for n in net if isinstance(n.layer, L.AvgPool2d))
        assert pool.ceil_mode and not pool.count_include_pad
    elif name == "residual":
        (qcfs,) = [n.layer for n in net if isinstance(n.layer, L.QCFS)]
        assert (qcfs.lam, qcfs.levels, qcfs.shift) == (np.float32(1.5), 4, 0.5)
        assert kinds.count("Add") == 1 and kinds.count("ReLU") == 2
        assert kinds.count("GlobalAvgPool") == 1
    else:
        assert kinds.count("Clip") == 2 and kinds.count("Dense") == 3
        clips = sorted(n.layer.max_value for n in net if isinstance(n.layer, L.Clip))
        assert clips == [0.75, 2.0]


def test_fixed_batch_export_imports(tmp_path):
    """A model exported without a dynamic batch axis still treats axis 0 as the batch."""
    torch = pytest.importorskip("torch")
    module, shape = torch_model("residual")
    path = tmp_path / "fixed.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.zeros(1, *shape),), str(path), dynamo=False,
                          opset_version=17)
    x = rng_inputs(shape, batch=5)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(evsim.forward(evsim.io.load(path), x), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("target", [[1, -1], [-1, 12], [0, 12]])
def test_fixed_batch_reshape_to_batch_and_features_is_a_flatten(target):
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"], name="flat"),
             helper.make_node("Relu", ["r"], ["y"], name="relu")]
    model = make_model(nodes, (3, 2, 2), {"shape": np.array(target, np.int64)}, batch=1)
    net = assert_matches_ort(model, rng_inputs((3, 2, 2), batch=1))
    assert layer_kinds(net) == ["Flatten", "ReLU"]


def test_unsupported_torch_operator_names_the_node(tmp_path):
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh()).eval()
    path = export(module, rng_inputs((4,)), tmp_path / "s.onnx", "torchscript", 17)
    with pytest.raises(UnsupportedOperatorError, match=r"'/1/Tanh' \(Tanh\)") as info:
        load_onnx(path)
    assert info.value.op_type == "Tanh" and info.value.node_name == "/1/Tanh"


# -- the headline: PyTorch -> ONNX -> evsim -> spikes, no manual step ------------------------
def _headline_net(activation: str):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    classes = _torch_classes()

    def act():
        return classes["qcfs"](lam=2.0, levels=8) if activation == "qcfs" else \
            classes["clamp"](lam=2.0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1, self.a1 = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), act()
            self.pool = nn.MaxPool2d(2)
            self.c2, self.b2, self.a2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), act()
            self.c3, self.b3, self.a3 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), act()
            self.fc = nn.Linear(8 * 7 * 7, 10)

        def features(self, x):
            x = self.pool(self.a1(self.b1(self.c1(x))))
            x = self.a3(x + self.b3(self.c3(self.a2(self.b2(self.c2(x))))))
            return x.view(x.size(0), -1)

        def forward(self, x):
            return self.fc(self.features(x))

    torch.manual_seed(0)
    net = Net().eval()
    _randomise_batchnorm(net)
    generator = torch.Generator().manual_seed(0)
    templates = torch.rand(10, 1, 14, 14, generator=generator)
    labels = torch.arange(48) % 10
    images = (templates[labels] + 0.5 * torch.rand(48, 1, 14, 14, generator=generator)).clamp(0, 1)
    with torch.no_grad():  # a nearest-template read-out: no training, yet distinct classes
        features = net.features(templates)
        mean = features.mean(0)
        centres = features - mean  # logits: -|f - mean - centre|^2 / 2 up to a per-image term
        net.fc.weight.copy_(centres)
        net.fc.bias.copy_(-centres @ mean - 0.5 * (centres * centres).sum(1))
    return net, images.numpy()


@pytest.mark.parametrize("exporter,opset", [("torchscript", 17), ("dynamo", 18)])
@pytest.mark.parametrize("activation,method", [("clamp", "percentile"), ("qcfs", "qcfs")])
def test_exported_cnn_converts_and_simulates(activation, method, exporter, opset, tmp_path):
    torch = pytest.importorskip("torch")
    module, images = _headline_net(activation)
    # TorchScript without constant folding keeps BatchNormalization for evsim to fold.
    options = {} if exporter == "dynamo" else {"do_constant_folding": False}
    path = export(module, images[:2], tmp_path / "net.onnx", exporter, opset, **options)
    network = evsim.io.load(path)
    kinds = layer_kinds(network)
    assert kinds.count("QCFS" if activation == "qcfs" else "Clip") == 3
    calibration, test = images[:32], images[32:]
    snn = evsim.convert(network, calibration, method=method)
    result = evsim.simulate(snn, test, T=128, engine="event")
    with torch.no_grad():
        ann = module(torch.from_numpy(test)).numpy()
    assert len(set(ann.argmax(1))) >= 4  # the agreement below is not one class everywhere
    agreement = np.mean(result.predictions()[-1] == ann.argmax(1))
    assert agreement >= 0.75, f"SNN agrees with the ANN on {agreement:.0%} of images"
    error = np.linalg.norm(result.mean_output() - ann) / np.linalg.norm(ann)
    assert error < 0.25
    if importlib.util.find_spec("nir") is None:
        return
    from evsim.io.nir import NIRExportWarning, load_nir, save_nir
    with pytest.warns(NIRExportWarning, match="EvsimMaxPool2d extension"):
        save_nir(snn, tmp_path / "net.nir", extensions=True)  # MaxPool: evsim's extension node
    back = load_nir(tmp_path / "net.nir")
    again = evsim.simulate(back, test, T=32, engine="event")
    first = evsim.simulate(snn, test, T=32, engine="event")
    for name, counts in first.spike_counts.items():
        np.testing.assert_array_equal(again.spike_counts[name], counts, err_msg=name)
    np.testing.assert_array_equal(again.outputs, first.outputs)


# -- hand-built fixtures: operators, attributes and opsets -----------------------------------
@FEW
@given(data=st.data())
def test_conv_attributes_match_onnxruntime(data):
    groups = data.draw(st.sampled_from([1, 2]))
    cin, cout = 2 * groups, 2 * groups
    kh, kw = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    strides = [data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))]
    dilations = [data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))]
    auto_pad = data.draw(st.sampled_from(["NOTSET", "VALID", "SAME_UPPER"]))
    attrs = {"strides": strides, "dilations": dilations, "group": groups}
    if auto_pad == "NOTSET":
        ph, pw = data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))
        attrs["pads"] = [ph, pw, ph, pw]
    else:
        attrs["auto_pad"] = auto_pad
    if auto_pad == "SAME_UPPER":  # symmetric for an odd kernel at stride 1
        kh, kw = 2 * (kh // 2) + 1, 2 * (kw // 2) + 1
        attrs.update(strides=[1, 1], dilations=[1, 1])  # onnxruntime: no dilated SAME
    rng = np.random.default_rng(0)
    init = {"w": rng.normal(size=(cout, cin // groups, kh, kw))}
    inputs = ["x", "w"]
    if data.draw(st.booleans()):
        init["b"] = rng.normal(size=cout)
        inputs.append("b")
    node = helper.make_node("Conv", inputs, ["y"], name="conv", kernel_shape=[kh, kw], **attrs)
    model = make_model([node], (cin, 7, 6), init, opset=11)
    net = assert_matches_ort(model, rng_inputs((cin, 7, 6)))
    assert layer_kinds(net) == ["Conv2d"]


@FEW
@given(op=st.sampled_from(["MaxPool", "AveragePool"]), kernel=st.tuples(st.integers(1, 3),
       st.integers(1, 3)), strides=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       pad=st.tuples(st.booleans(), st.booleans()), ceil_mode=st.booleans(),
       count_include_pad=st.booleans(), opset=st.sampled_from([11, 13, 19]))
def test_pool_attributes_match_onnxruntime(op, kernel, strides, pad, ceil_mode,
                                           count_include_pad, opset):
    pads = [k // 2 if p else 0 for k, p in zip(kernel, pad)]
    attrs = {"kernel_shape": list(kernel), "strides": list(strides), "pads": pads + pads,
             "ceil_mode": int(ceil_mode)}
    if op == "AveragePool":
        attrs["count_include_pad"] = int(count_include_pad)
    model = make_model([helper.make_node(op, ["x"], ["y"], name="pool", **attrs)], (2, 7, 8),
                       opset=opset)
    net = assert_matches_ort(model, rng_inputs((2, 7, 8)))
    assert layer_kinds(net) == ["MaxPool2d" if op == "MaxPool" else "AvgPool2d"]


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c_shape", [(3,), (1, 3), ()])
def test_gemm_folds_alpha_beta_and_transpose(trans_b, c_shape):
    rng = np.random.default_rng(0)
    b = rng.normal(size=(3, 5) if trans_b else (5, 3))
    node = helper.make_node("Gemm", ["x", "b", "c"], ["y"], name="fc", alpha=0.5, beta=2.0,
                            transB=trans_b)
    model = make_model([node], (5,), {"b": b, "c": rng.normal(size=c_shape)})
    net = assert_matches_ort(model, rng_inputs((5,)))
    assert layer_kinds(net) == ["Dense"]


def test_matmul_with_bias_add_or_sub_is_one_dense():
    rng = np.random.default_rng(0)
    init = {"w1": rng.normal(size=(6, 4)), "b1": rng.normal(size=4),
            "w2": rng.normal(size=(4, 3)), "b2": rng.normal(size=(1, 3)),
            "w3": rng.normal(size=(3, 2))}
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h1"], name="/fc1/MatMul"),
             helper.make_node("Add", ["h1", "b1"], ["a1"], name="/fc1/Add"),
             helper.make_node("Relu", ["a1"], ["r1"], name="/act1/Relu"),
             helper.make_node("MatMul", ["r1", "w2"], ["h2"], name="/fc2/MatMul"),
             helper.make_node("Sub", ["h2", "b2"], ["a2"], name="/fc2/Sub"),
             helper.make_node("Relu", ["a2"], ["r2"], name="/act2/Relu"),
             helper.make_node("MatMul", ["r2", "w3"], ["y"], name="/fc3/MatMul")]
    net = assert_matches_ort(make_model(nodes, (6,), init), rng_inputs((6,)))
    assert [n.name for n in net] == ["x", "fc1", "act1.Relu", "fc2", "act2.Relu", "fc3.MatMul"]
    assert layer_kinds(net) == ["Dense", "ReLU", "Dense", "ReLU", "Dense"]
    assert net["fc3.MatMul"].layer.bias is None


def test_batchnorm_flatten_dropout_identity_sum_and_constants():
    """BatchNormalization, Dropout (opset 13 ratio input), Identity, a Constant weight through
    Cast, a residual Sum and a Reshape whose shape comes from Shape -> Gather -> Concat."""
    rng = np.random.default_rng(0)
    init = {"scale": rng.uniform(0.5, 1.5, 3), "bias": rng.normal(size=3),
            "mean": rng.normal(size=3), "var": rng.uniform(0.5, 1.5, 3),
            "w": rng.normal(size=(3, 3, 3, 3)), "ratio": np.array(0.3, np.float32),
            "zero": np.array([0], np.int64), "minus1": np.array([-1], np.int64)}
    weight16 = numpy_helper.from_array(rng.normal(size=(48, 2)).astype(np.float16))
    nodes = [
        helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["bn"],
                         name="/bn/BatchNormalization", epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["r"], name="/act/Relu"),
        helper.make_node("Dropout", ["r", "ratio"], ["d"], name="/drop/Dropout"),
        helper.make_node("Conv", ["d", "w"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Identity", ["c"], ["c2"], name="/id/Identity"),
        helper.make_node("Sum", ["c2", "r"], ["s"], name="/res/Sum"),
        helper.make_node("Shape", ["s"], ["shape"], name="/Shape"),
        helper.make_node("Gather", ["shape", "zero"], ["batch"], name="/Gather", axis=0),
        helper.make_node("Concat", ["batch", "minus1"], ["target"], name="/Concat", axis=0),
        helper.make_node("Reshape", ["s", "target"], ["flat"], name="/Reshape"),
        helper.make_node("Constant", [], ["w16"], name="/fc/Constant", value=weight16),
        helper.make_node("Cast", ["w16"], ["wfc"], name="/fc/Cast", to=TensorProto.FLOAT),
        helper.make_node("Gemm", ["flat", "wfc"], ["y"], name="/fc/Gemm"),
    ]
    net = assert_matches_ort(make_model(nodes, (3, 4, 4), init), rng_inputs((3, 4, 4)))
    assert layer_kinds(net) == ["BatchNorm", "ReLU", "Conv2d", "Add", "Flatten", "Dense"]
    assert net["bn.BatchNormalization"].layer.eps == pytest.approx(1e-3)


@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_mean_over_space_is_a_global_average_pool(keepdims):
    axes = numpy_helper.from_array(np.array([-2, -1], np.int64), "axes")
    nodes = [helper.make_node("Constant", [], ["axes"], value=axes),
             helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="gap", keepdims=keepdims)]
    net = assert_matches_ort(make_model(nodes, (3, 4, 5), opset=18), rng_inputs((3, 4, 5)))
    assert layer_kinds(net) == ["GlobalAvgPool"] + ["Flatten"] * (1 - keepdims)


@pytest.mark.parametrize("opset", [9, 10])
@pytest.mark.parametrize("nodes,kind,bound", [
    ([("Clip", "x", "y", {"min": 0.0, "max": 6.0})], "Clip", 6.0),
    ([("Clip", "x", "y", {"min": 0.0})], "ReLU", None),
    ([("Relu", "x", "r", {}), ("Clip", "r", "y", {"max": 3.0})], "Clip", 3.0),
])
def test_old_opset_clip_attributes(opset, nodes, kind, bound):
    graph_nodes = [helper.make_node(op, [i], [o], name=f"/act/{op}", **a) for op, i, o, a in nodes]
    net = assert_matches_ort(make_model(graph_nodes, (10,), opset=opset), rng_inputs((10,)) * 4)
    (layer,) = [n.layer for n in net.nodes[1:]]
    assert type(layer).__name__ == kind and layer.bound == bound


@pytest.mark.parametrize("attrs,inputs", [({"min": -1.0, "max": 1.0}, None),
                                          ({"max": 1.0}, None),
                                          (None, ["x", "", "hi"])])
def test_clip_without_zero_lower_bound_is_an_error(attrs, inputs):
    if attrs is not None:
        model = make_model([helper.make_node("Clip", ["x"], ["y"], name="clip", **attrs)], (4,),
                           opset=10)
    else:
        model = make_model([helper.make_node("Clip", inputs, ["y"], name="clip")], (4,),
                           {"hi": np.array(1.0, np.float32)})
    with pytest.raises(UnsupportedOperatorError, match=r"'clip' \(Clip\).*none of evsim"):
        load_onnx(model)


def test_clip_inputs_opset_13_zero_to_inf_is_relu():
    init = {"lo": np.array(0.0, np.float32), "hi": np.array(np.inf, np.float32)}
    model = make_model([helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="c")], (5,), init)
    net = assert_matches_ort(model, rng_inputs((5,)))
    assert layer_kinds(net) == ["ReLU"]


@pytest.mark.parametrize("target", [10, 13])
def test_opset_10_model_and_its_version_converted_upgrade(target):
    """Clip's bounds move from attributes (opset 10) to inputs (onnx.version_converter to 13)."""
    from onnx import version_converter

    rng = np.random.default_rng(0)
    init = {"w": rng.normal(size=(4, 2, 3, 3)), "fw": rng.normal(size=(3, 36)),
            "fb": rng.normal(size=3)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Clip", ["c"], ["a"], name="act", min=0.0, max=1.5),
             helper.make_node("MaxPool", ["a"], ["p"], name="pool", kernel_shape=[2, 2],
                              strides=[2, 2]),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    model = make_model(nodes, (2, 6, 6), init, opset=10)
    if target != 10:
        model = version_converter.convert_version(model, target)
        (clip,) = [n for n in model.graph.node if n.op_type == "Clip"]
        assert len(clip.input) == 3 and not clip.attribute  # the bounds are inputs now
    net = assert_matches_ort(model, rng_inputs((2, 6, 6)))
    assert layer_kinds(net) == ["Conv2d", "Clip", "MaxPool2d", "Flatten", "Dense"]
    assert net["act"].layer.max_value == 1.5


# -- element-wise chains ---------------------------------------------------------------------
def _qcfs_chain(lam: float, levels: int, shift: float, form: int) -> list:
    """Nodes computing QCFS on 'x' into 'y', written in one of three equivalent ways."""
    mk = helper.make_node
    if form == 0:  # as PyTorch exports lam * clamp(floor(x * L / lam + s) / L, 0, 1)
        head = [mk("Mul", ["x", "L"], ["t1"]), mk("Div", ["t1", "lam"], ["t2"])]
    elif form == 1:  # x / lam * L
        head = [mk("Div", ["x", "lam"], ["t0"]), mk("Mul", ["t0", "L"], ["t2"])]
    else:  # a scalar product first, constants on the left
        head = [mk("Mul", ["step_inv", "x"], ["t2"])]
    tail = [mk("Add", ["t2", "s"], ["t3"]), mk("Floor", ["t3"], ["t4"]),
            mk("Div", ["t4", "L"], ["t5"]), mk("Clip", ["t5", "zero", "one"], ["t6"]),
            mk("Mul", ["lam", "t6"], ["y"])]
    nodes = head + tail
    for k, node in enumerate(nodes):
        node.name = f"/q/{node.op_type}_{k}"
    return nodes


@FEW
@given(lam=st.floats(0.05, 20.0), levels=st.integers(1, 32),
       shift=st.sampled_from([0.0, 0.25, 0.5]), form=st.integers(0, 2))
def test_qcfs_chain_becomes_one_qcfs(lam, levels, shift, form):
    lam32 = float(np.float32(lam))
    init = {"L": np.float32(levels), "lam": np.float32(lam), "s": np.float32(shift),
            "zero": np.float32(0), "one": np.float32(1),
            "step_inv": np.float32(np.float32(levels) / np.float32(lam))}
    model = make_model(_qcfs_chain(lam, levels, shift, form), (64,), init)
    net = load_onnx(model)
    (node,) = net.nodes[1:]
    assert node.name == "q" and isinstance(node.layer, L.QCFS)
    assert node.layer.lam == lam32 and node.layer.levels == levels
    assert node.layer.shift == pytest.approx(shift, abs=1e-6 if form == 2 else 0)
    x = rng_inputs((64,), batch=32) * lam
    got, want = evsim.forward(net, x), run_ort(model, x)
    # Points within rounding of a step may land on either side when the chain is reordered.
    close = np.isclose(got, want, rtol=RTOL, atol=ATOL)
    assert close.mean() >= (1.0 if form == 0 else 0.999)


def test_straight_through_floor_is_part_of_the_chain_but_relu_plus_input_is_residual():
    """``(floor(t) - t) + t`` (a straight-through estimator) is one expression of t, while
    ``relu(c) + c`` is a residual Add of an activation and the convolution it reads."""
    mk = helper.make_node
    init = {"w": np.random.default_rng(0).normal(size=(2, 2, 1, 1)), "L": np.float32(4),
            "zero": np.float32(0), "one": np.float32(1)}
    nodes = [mk("Conv", ["x", "w"], ["c"], name="/conv/Conv"),
             mk("Mul", ["c", "L"], ["t"], name="/q/Mul"),
             mk("Floor", ["t"], ["f"], name="/q/Floor"),
             mk("Sub", ["f", "t"], ["d"], name="/q/Sub"),
             mk("Add", ["d", "t"], ["s"], name="/q/Add"),
             mk("Div", ["s", "L"], ["u"], name="/q/Div"),
             mk("Clip", ["u", "zero", "one"], ["q"], name="/q/Clip"),
             mk("Relu", ["c"], ["r"], name="/act/Relu"),
             mk("Add", ["r", "c"], ["a"], name="/res/Add"),
             mk("Add", ["a", "q"], ["y"], name="/out/Add")]
    net = assert_matches_ort(make_model(nodes, (2, 3, 3), init), rng_inputs((2, 3, 3)))
    assert layer_kinds(net) == ["Conv2d", "ReLU", "Add", "QCFS", "Add"]
    assert (net["q"].layer.lam, net["q"].layer.levels, net["q"].layer.shift) == (1.0, 4, 0.0)


@pytest.mark.parametrize("ops", [
    [("Mul", 2.0)],                      # a scale is no activation
    [("Add", 0.1), ("Relu", None)],      # a shifted ReLU
    [("Floor", None)],                   # no lower bound
    [("Relu", None), ("Mul", -1.0)],     # negative
])
def test_chain_that_matches_nothing_names_its_nodes(ops):
    nodes, init, last = [], {}, "x"
    for k, (op, c) in enumerate(ops):
        inputs = [last] + ([f"c{k}"] if c is not None else [])
        if c is not None:
            init[f"c{k}"] = np.float32(c)
        out = "y" if k == len(ops) - 1 else f"t{k}"
        nodes.append(helper.make_node(op, inputs, [out], name=f"/act/{op}_{k}"))
        last = out
    model = make_model(nodes, (4,), init)
    with pytest.raises(UnsupportedOperatorError, match="none of evsim's activations") as info:
        load_onnx(model)
    for node in nodes:
        assert f"'{node.name}' ({node.op_type})" in str(info.value)


def test_per_channel_constant_in_chain_is_an_error():
    model = make_model([helper.make_node("Mul", ["x", "c"], ["m"], name="scale"),
                        helper.make_node("Relu", ["m"], ["y"], name="relu")], (3,),
                       {"c": np.array([1.0, 2.0, 3.0], np.float32)})
    with pytest.raises(UnsupportedOperatorError, match=r"'scale' \(Mul\).*different values"):
        load_onnx(model)


# -- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("op,extra", [("Tanh", {}), ("Transpose", {"perm": [0, 2, 1, 3]}),
                                      ("Elu", {"alpha": 0.1})])
def test_unsupported_operator_names_op_node_and_index(op, extra):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="first"),
             helper.make_node(op, ["r"], ["y"], name=f"my_{op}", **extra)]
    with pytest.raises(UnsupportedOperatorError) as info:
        load_onnx(make_model(nodes, (2, 3, 3)))
    err = info.value
    assert (err.op_type, err.node_name, err.node_index) == (op, f"my_{op}", 1)
    assert f"ONNX node 1 'my_{op}' ({op})" in str(err)
    assert isinstance(err, ValueError)


def test_lstm_is_unsupported():
    rng = np.random.default_rng(0)
    init = {"W": rng.normal(size=(1, 8, 3)), "R": rng.normal(size=(1, 8, 2))}
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["y"], name="/rnn/LSTM", hidden_size=2)]
    with pytest.raises(UnsupportedOperatorError, match=r"'/rnn/LSTM' \(LSTM\)"):
        load_onnx(make_model(nodes, (1, 3, 3), init))


@pytest.mark.parametrize("op,attrs", [
    ("Conv", {"pads": [0, 0, 1, 1]}),
    ("Conv", {"auto_pad": "SAME_UPPER"}),   # even kernel: one more on the far side
    ("MaxPool", {"pads": [1, 0, 0, 0], "kernel_shape": [2, 2]}),
    ("AveragePool", {"pads": [0, 1, 0, 0], "kernel_shape": [2, 2]}),
])
def test_asymmetric_pads_are_an_error(op, attrs):
    init = {"w": np.ones((2, 2, 2, 2), np.float32)} if op == "Conv" else {}
    inputs = ["x", "w"] if op == "Conv" else ["x"]
    model = make_model([helper.make_node(op, inputs, ["y"], name="padded", **attrs)],
                       (2, 5, 5), init)
    with pytest.raises(UnsupportedOperatorError, match=r"'padded'.*asymmetric"):
        load_onnx(model)


def test_node_configurations_evsim_cannot_express():
    rng = np.random.default_rng(0)
    w = {"w": rng.normal(size=(2, 2, 1, 1))}
    cases = {
        "dilated max pool": ([helper.make_node("MaxPool", ["x"], ["y"], name="n",
                                               kernel_shape=[2, 2], dilations=[2, 2])], {}),
        "max pool indices used": ([helper.make_node("MaxPool", ["x"], ["p", "i"], name="n",
                                                    kernel_shape=[2, 2]),
                                   helper.make_node("Cast", ["i"], ["y"], name="cast",
                                                    to=TensorProto.FLOAT)], {}),
        "flatten axis 2": ([helper.make_node("Flatten", ["x"], ["y"], name="n", axis=2)], {}),
        "reshape not a flatten": ([helper.make_node("Reshape", ["x", "s"], ["y"], name="n")],
                                  {"s": np.array([0, 2, 16], np.int64)}),
        "reshape to a fixed batch size": ([helper.make_node("Reshape", ["x", "s"], ["y"],
                                                            name="n")],
                                          {"s": np.array([2, -1], np.int64)}),
        "product of tensors": ([helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                                helper.make_node("Mul", ["x", "c"], ["y"], name="n")], w),
        "bias after conv": ([helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
                             helper.make_node("Add", ["c", "b"], ["y"], name="n")],
                            {**w, "b": np.float32(0.5)}),
        "training batch norm": ([helper.make_node("BatchNormalization",
                                                  ["x", "g", "b", "m", "v"], ["y"], name="n",
                                                  training_mode=1)],
                                {k: np.ones(2, np.float32) for k in "gbmv"}),
        "custom domain": ([helper.make_node("Foo", ["x"], ["y"], name="n", domain="my.ops")], {}),
        "constant as data": ([helper.make_node("MatMul", ["w2", "x"], ["y"], name="n")],
                             {"w2": np.ones((3, 2), np.float32)}),
    }
    for case, (nodes, init) in cases.items():
        with pytest.raises(UnsupportedOperatorError, match=r"'n' \(") as info:
            load_onnx(make_model(nodes, (2, 4, 4), init, opset=15))
        assert info.value.node_name == "n", case


def test_graph_boundary_errors_name_inputs_and_outputs():
    relu = helper.make_node("Relu", ["x"], ["y"], name="relu")
    two_inputs = make_model([relu, helper.make_node("Relu", ["z"], ["w"])], (4,))
    two_inputs.graph.input.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4]))
    with pytest.raises(ValueError, match=r"2 graph inputs \['x', 'z'\]"):
        load_onnx(two_inputs)
    two_outputs = make_model([relu, helper.make_node("Relu", ["x"], ["w"], name="relu2")], (4,))
    two_outputs.graph.output.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, None))
    with pytest.raises(ValueError, match=r"2 graph outputs \['y', 'w'\]"):
        load_onnx(two_outputs)
    with pytest.raises(ValueError, match=r"graph input 'x' has shape \['N', 3, 4\]"):
        load_onnx(make_model([relu], (3, 4)))


def test_corrupt_and_foreign_files_name_the_file(tmp_path):
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"\x08\x07garbage that is not a protobuf\xff\xff")
    for loader in (load_onnx, evsim.io.load):
        with pytest.raises(ValueError, match="broken.onnx"):
            loader(broken)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.onnx.*not an ONNX model"):
        evsim.io.load(empty)


def test_external_data_model_loads_through_evsim_io_load(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    init = {"w": rng.normal(size=(4, 3, 3, 3)), "b": rng.normal(size=4),
            "fw": rng.normal(size=(5, 64)), "fb": rng.normal(size=5)}
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Flatten", ["r"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    folder = tmp_path / "model"
    folder.mkdir()
    onnx.save(make_model(nodes, (3, 4, 4), init), str(folder / "net.onnx"),
              save_as_external_data=True, all_tensors_to_one_file=True, location="net.data",
              size_threshold=0)
    assert (folder / "net.data").stat().st_size > 4 * (108 + 320)
    monkeypatch.chdir(tmp_path)  # external data is found beside the model, not in the cwd
    x = rng_inputs((3, 4, 4))
    net = evsim.io.load(folder / "net.onnx")
    np.testing.assert_allclose(evsim.forward(net, x), run_ort(str(folder / "net.onnx"), x),
                               rtol=RTOL, atol=ATOL)
    assert layer_kinds(net) == ["Conv2d", "ReLU", "Flatten", "Dense"]


def test_input_name_and_missing_onnx_package(monkeypatch):
    model = make_model([helper.make_node("Relu", ["x"], ["y"], name="relu")], (4,))
    assert load_onnx(model, input_name="image").input_name == "image"
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install evsim\[onnx\]"):
        load_onnx(model)


def test_numeric_node_paths_give_readable_unique_layer_names():
    """A Sequential's module indices ('2', '5') name no layer alone: the kind comes first."""
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["0"], name="/0/Conv"),
         helper.make_node("Relu", ["0"], ["1"], name="2"),
         helper.make_node("Conv", ["1", "w2"], ["5"]),
         helper.make_node("Relu", ["5"], ["6"], name="/7/"),
         helper.make_node("Conv", ["6", "w2"], ["y"], name="conv2d_5")], "seq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 2, 2])],
        [w, numpy_helper.from_array(np.ones((2, 2, 1, 1), np.float32), "w2")])
    net = load_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert [node.name for node in net] == ["x", "0.Conv", "relu_2", "conv2d_5", "relu_7",
                                           "conv2d_5_2"]


def _conv_relu(opsets=(17,), duplicate=False):
    w = numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["y"])]
    if duplicate:  # a second node writes 'y' too
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 2, 2])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", v) for v in opsets])
    if not opsets:
        del model.opset_import[:]
    return model


@pytest.mark.parametrize("opsets, duplicate, message", [
    ((1,), False, r"opset 1, older than the oldest evsim reads \(7\).*convert_version"),
    ((99,), False, r"opset 99, newer than the installed onnx package knows"),
    ((), False, "declares no ONNX opset"),
    ((17,), True, r"ONNX checker.*'y' has been used as output names multiple times")])
def test_odd_onnx_files_are_refused_naming_the_file(tmp_path, opsets, duplicate, message):
    import onnx

    path = tmp_path / "odd.onnx"
    onnx.save(_conv_relu(opsets, duplicate), path)
    with pytest.raises(evsim.EvsimFileError, match=f"{re.escape(str(path))}: .*{message}"):
        evsim.load(path)
    assert [n.name for n in load_onnx(_conv_relu())][0] == "x"  # a sound one still loads
