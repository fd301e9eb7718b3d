"""Tests for evsim.models: the bundled fashion_cnn and the script that trains it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

import evsim
from evsim.data import find_fashion_mnist, load_bundled_sample, load_fashion_mnist
from evsim.layers import AvgPool2d, BatchNorm, Conv2d, Dense, Flatten, ReLU
from evsim.models import available_models, load_model, model_info

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "train_default_model.py"

# The layers documented in evsim.models: name -> (record type, per-image output shape).
FASHION_CNN_LAYERS = {
    "conv1": (Conv2d, (16, 28, 28)),
    "bn1": (BatchNorm, (16, 28, 28)),
    "relu1": (ReLU, (16, 28, 28)),
    "pool1": (AvgPool2d, (16, 14, 14)),
    "conv2": (Conv2d, (32, 14, 14)),
    "bn2": (BatchNorm, (32, 14, 14)),
    "relu2": (ReLU, (32, 14, 14)),
    "pool2": (AvgPool2d, (32, 7, 7)),
    "conv3": (Conv2d, (32, 7, 7)),
    "bn3": (BatchNorm, (32, 7, 7)),
    "relu3": (ReLU, (32, 7, 7)),
    "flatten": (Flatten, (1568,)),
    "fc": (Dense, (10,)),
}


def correct_count(network: evsim.Network, images: np.ndarray, labels: np.ndarray) -> int:
    return int(np.sum(evsim.forward(network, images).argmax(1) == labels))


def test_fashion_cnn_is_available_with_metadata_and_card():
    assert "fashion_cnn" in available_models()
    info = model_info("fashion_cnn")
    assert info["name"] == "fashion_cnn"
    assert info["layers"] == list(FASHION_CNN_LAYERS)
    for key in ("description", "architecture", "recipe", "training_seconds", "machine",
                "test_accuracy", "sample_accuracy", "date"):
        assert key in info
    for key in ("optimizer", "lr", "schedule", "epochs", "batch_size", "weight_decay", "seed",
                "torch_version"):
        assert key in info["recipe"]
    card = resources.files("evsim.models").joinpath("fashion_cnn.md").read_text(encoding="utf-8")
    assert "train_default_model.py" in card


def test_fashion_cnn_layers_and_shapes():
    network = load_model()
    assert network.input_shape == (1, 28, 28)
    assert [node.name for node in network.nodes[1:]] == list(FASHION_CNN_LAYERS)
    assert network.output_name == "fc"
    for name, (kind, shape) in FASHION_CNN_LAYERS.items():
        assert type(network[name].layer) is kind, name
        assert network.shape(name) == shape, name
    for name in ("conv1", "conv2", "conv3"):
        assert network[name].layer.bias is None
    for name in ("bn1", "bn2", "bn3"):
        assert network[name].layer.eps == pytest.approx(1e-5)
    for node in network:
        for array in node.layer.arrays().values():
            assert array.dtype == np.float32


def test_fashion_cnn_sample_accuracy_matches_record():
    info = model_info()
    images, labels = load_bundled_sample("test")
    correct = correct_count(load_model(), images, labels)
    assert correct == info["sample_correct"] == round(info["sample_accuracy"] * len(labels))
    assert correct / len(labels) >= 0.85


@pytest.mark.slow
@pytest.mark.skipif(find_fashion_mnist(split="test") is None,
                    reason="Fashion-MNIST test files not installed")
def test_fashion_cnn_test_accuracy_matches_record():
    info = model_info()
    images, labels = load_fashion_mnist("test")
    correct = correct_count(load_model(), images, labels)
    assert correct == info["test_correct"] == round(info["test_accuracy"] * len(labels))


def test_unknown_model_name_lists_available():
    for call in (load_model, model_info):
        with pytest.raises(ValueError, match="fashion_cnn"):
            call("no_such_model")


@pytest.mark.torch
@pytest.mark.skipif(find_fashion_mnist() is None, reason="Fashion-MNIST files not installed")
def test_training_script_smoke(tmp_path):
    pytest.importorskip("torch")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    network = evsim.load(tmp_path / "fashion_cnn.npz")
    assert [node.name for node in network.nodes[1:]] == list(FASHION_CNN_LAYERS)
    info = json.loads((tmp_path / "fashion_cnn.json").read_text())
    assert info["recipe"]["epochs"] == 1
    assert info["recipe"]["train_images"] == 2000
    images, labels = load_bundled_sample("test")
    assert correct_count(network, images, labels) == info["sample_correct"]
    assert (tmp_path / "fashion_cnn.md").is_file()
