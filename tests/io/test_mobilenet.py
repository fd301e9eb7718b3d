"""The bundled mobilenet: its file, its record, and its architecture through torch and ONNX."""

from __future__ import annotations

import importlib.util
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import evsim
from evsim.data import load_bundled_sample
from evsim.layers import Add, AvgPool2d, BatchNorm, Clip, Conv2d
from evsim.models import available_models, load_model, model_info

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "train_method_models.py"

# (hidden channels, output channels, output side) of each inverted residual block
BLOCKS = {"block1": (64, 16, 14), "block2": (64, 24, 7), "block3": (96, 24, 7),
          "block4": (96, 32, 7)}
RESIDUAL = {"block1": "add", "block3": "add_1"}


def _script():
    """examples/train_method_models.py as a module (it defines the torch architecture)."""
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("train_method_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _torch_mobilenet(seed: int = 0):
    """The untrained architecture in eval mode, with BatchNorm statistics made non-trivial."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    model = _script().mobilenet().eval()
    generator = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=generator) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=generator) - 0.5)
    return model


def _images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 1, 28, 28), dtype=np.float32)


def test_mobilenet_is_bundled_with_record_and_card():
    assert "mobilenet" in available_models()
    info = model_info("mobilenet")
    for key in ("description", "recipe", "history", "parameters", "training_seconds",
                "machine", "date", "test_accuracy", "test_correct", "sample_accuracy",
                "sample_correct", "sample_logits_first4"):
        assert key in info, key
    assert info["test_correct"] == round(info["test_accuracy"] * info["test_images"])
    assert info["recipe"]["kept_epoch"] in [e["epoch"] for e in info["history"]]
    card = resources.files("evsim.models").joinpath("mobilenet.md").read_text(encoding="utf-8")
    assert "--model mobilenet" in card
    assert resources.files("evsim.models").joinpath("mobilenet.npz").stat().st_size < 1 << 20


def test_mobilenet_blocks_expand_filter_depthwise_and_project_linearly():
    network = load_model("mobilenet")
    assert network.input_shape == (1, 28, 28) and network.output_name == "fc"
    for block, (hidden, out, side) in BLOCKS.items():
        depthwise = network[f"{block}_depthwise"].layer
        assert type(depthwise) is Conv2d and depthwise.groups == hidden
        assert network.shape(f"{block}_expand")[0] == hidden
        assert network.shape(f"{block}_project") == (out, side, side)
        for i in (1, 2):
            assert type(network[f"{block}_relu{i}"].layer) is Clip
            assert network[f"{block}_relu{i}"].layer.max_value == 6.0
        assert type(network[f"{block}_bn3"].layer) is BatchNorm  # no activation: linear
    for block, add in RESIDUAL.items():
        assert type(network[add].layer) is Add and f"{block}_bn3" in network[add].inputs
    assert type(network["pool"].layer) is AvgPool2d and network.shape("flatten") == (64,)


def test_mobilenet_sample_logits_and_accuracy_match_record():
    info = model_info("mobilenet")
    images, labels = load_bundled_sample("test")
    logits = evsim.forward(load_model("mobilenet"), images)
    np.testing.assert_allclose(logits[:4], info["sample_logits_first4"], atol=1e-4)
    correct = int(np.sum(logits.argmax(1) == labels))
    assert correct == info["sample_correct"] == round(info["sample_accuracy"] * len(labels))
    assert correct / len(labels) >= 0.85


@pytest.mark.torch
def test_mobilenet_architecture_imports_from_torch():
    torch = pytest.importorskip("torch")
    from evsim.io.torch import from_torch

    model = _torch_mobilenet()
    network = from_torch(model, (1, 28, 28))
    assert [n.name for n in network.nodes[1:]] == [n.name for n in load_model("mobilenet")
                                                   .nodes[1:]]
    x = _images(6)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(evsim.forward(network, x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.torch
def test_mobilenet_onnx_export_matches_onnxruntime_and_torch(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from evsim.io import load_onnx

    model, path = _torch_mobilenet(), str(tmp_path / "mobilenet.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(_images(2)),), path, dynamo=False,
                          opset_version=17, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    network = load_onnx(path)
    x = _images(6, seed=2)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = evsim.forward(network, x)
    np.testing.assert_allclose(got, session.run(None, {"x": x})[0], rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        np.testing.assert_allclose(got, model(torch.from_numpy(x)).numpy(), rtol=1e-5,
                                   atol=1e-5)
    kinds = [type(n.layer).__name__ for n in network.nodes[1:]]
    assert kinds.count("Add") == len(RESIDUAL) and kinds.count("Clip") == 2 * len(BLOCKS) + 2
    groups = sorted(n.layer.groups for n in network if isinstance(n.layer, Conv2d))
    assert groups[-len(BLOCKS):] == sorted(hidden for hidden, _, _ in BLOCKS.values())
