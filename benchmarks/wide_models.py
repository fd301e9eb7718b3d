"""Benchmark models of realistic width, built with random weights (no training data).

- ``vgg_wide``: a VGG-style net on 28×28×1 (Fashion-MNIST-shaped) inputs, 3×3
  convolutions of 64-64-128-128-256-256 channels in three stages, each closed by a
  2×2 max pooling, then a 10-way dense head (the shape the performance issue timed);
- ``cifar_wide``: the same on 32×32×3 (CIFAR-shaped) inputs.

The weights are He-initialised (normal, σ = √(2 / fan-in)) and each convolution's bias
is set so that its ReLU passes about half of its inputs, measured on the calibration
images: after 99.9-percentile conversion 5–10 % of the neurons then fire per step, as in
trained nets of this shape (the measured rate is printed by the benchmarks). We cannot
train on CIFAR here, so both models' outputs mean nothing: the benchmarks compare each
tool's predictions with the ANN's instead of labels. The inputs are real Fashion-MNIST
images, for ``cifar_wide`` padded to 32×32 and given three slightly different channels.
"""

from __future__ import annotations

import numpy as np

import evsim
from evsim import layers as L

MODELS = ("vgg_wide", "cifar_wide")
CHANNELS = (64, 64, 128, 128, 256, 256)
#: The fraction of each convolution's outputs its bias lets through the ReLU.
PASSED = 0.5


def images_for(name: str, fashion: np.ndarray) -> np.ndarray:
    """The model's inputs from Fashion-MNIST images (N, 1, 28, 28) in [0, 1]."""
    if name == "vgg_wide":
        return fashion
    padded = np.pad(fashion, ((0, 0), (0, 0), (2, 2), (2, 2)))
    return np.concatenate([padded, 0.8 * padded, np.sqrt(padded)], axis=1).astype(np.float32)


def build(name: str, calibration: np.ndarray, seed: int = 0) -> evsim.Network:
    """The named model (:data:`MODELS`), its biases set on ``calibration`` (N, C, H, W)."""
    if name not in MODELS:
        raise ValueError(f"unknown wide model {name!r}: choose from {MODELS}")
    rng = np.random.default_rng(seed)
    layers, shape, x = [], calibration.shape[1:], calibration
    for stage, channels in enumerate(CHANNELS):
        fan_in = shape[0] * 9
        weight = (rng.normal(size=(channels, shape[0], 3, 3)) * np.sqrt(2 / fan_in))
        conv = L.Conv2d(weight.astype(np.float32), np.zeros(channels, np.float32), padding=1)
        pre = evsim.kinds.apply(conv, [x])
        bias = -np.quantile(pre.transpose(1, 0, 2, 3).reshape(channels, -1), 1 - PASSED, axis=1)
        conv = L.Conv2d(conv.weight, bias.astype(np.float32), padding=1)
        x = np.maximum(pre + bias[None, :, None, None].astype(np.float32), 0)
        layers += [conv, L.ReLU()]
        shape = (channels,) + tuple(shape[1:])
        if stage % 2 == 1:
            pool = L.MaxPool2d(2)
            layers.append(pool)
            x = evsim.kinds.apply(pool, [x])
            shape = x.shape[1:]
    features = int(np.prod(shape))
    head = rng.normal(size=(10, features)) * np.sqrt(2 / features)
    layers += [L.Flatten(), L.Dense(head.astype(np.float32), np.zeros(10, np.float32))]
    return evsim.Network.sequential(calibration.shape[1:], layers)
