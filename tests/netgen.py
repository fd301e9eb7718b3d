"""Random spiking networks on the dyadic grid, for engine-equivalence tests.

Weights k/4, inputs k/8, biases k/8, thresholds k/4 and average-pooling
divisors that are powers of two keep every partial sum exact in float32 for
the sizes and step counts used here, so two correct engines must agree bit
for bit whatever order they sum in.
"""

from __future__ import annotations

import numpy as np
from dyadic import dyadic

from evsim import (Add, AvgPool2d, Conv2d, Dense, Flatten, GlobalAvgPool, MaxPool2d,
                   NetworkBuilder, NeuronSpec, ReLU, SpikingNetwork)
from evsim.layers import ConvTranspose2d, ShapeError


def _try(b: NetworkBuilder, layer, *inputs) -> str | None:
    try:
        return b.add_layer(layer, *inputs)
    except ShapeError:
        return None


def _conv(rng, cin: int, cout: int, square_kernel: bool = False) -> Conv2d:
    k = int(rng.integers(1, 4))
    kw = k if square_kernel else int(rng.integers(1, 4))
    groups = int(rng.choice([g for g in (1, 2, 3) if cin % g == 0 and cout % g == 0]))
    return Conv2d(dyadic(rng, (cout, cin // groups, k, kw), bits=2, kmax=3),
                  dyadic(rng, cout, bits=3, kmax=3) if rng.random() < 0.7 else None,
                  stride=(int(rng.integers(1, 3)), int(rng.integers(1, 3))),
                  padding=(int(rng.integers(0, 2)), int(rng.integers(0, 2))),
                  dilation=(int(rng.integers(1, 3)), 1), groups=groups)


def random_network(seed: int, *, max_pool: str = "lipooling") -> tuple[SpikingNetwork, np.ndarray]:
    """A random convolutional SNN (convs, residual adds, max/avg pools, dense head) and inputs."""
    rng = np.random.default_rng(seed)
    c, h, w = int(rng.integers(1, 4)), int(rng.integers(5, 10)), int(rng.integers(5, 10))
    b = NetworkBuilder((c, h, w))
    channels = c
    if _try(b, _conv(rng, c, int(rng.integers(2, 5)))) is None:
        b.add_layer(Conv2d(dyadic(rng, (2, c, 1, 1), bits=2, kmax=3)))
    channels = b.shape(b.last)[0]
    b.add_layer(ReLU())
    pooled = False  # the last layer is average-pooled spikes: no max pooling of it
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.choice(["conv", "residual"] + ([] if pooled else ["maxpool", "avgpool"]))
        before = b.last
        if kind == "conv":
            cout = int(rng.integers(2, 6))
            if _try(b, _conv(rng, channels, cout)) is not None:
                b.add_layer(ReLU())
        elif kind == "residual":
            conv = Conv2d(dyadic(rng, (channels, channels, 3, 3), bits=2, kmax=2),
                          dyadic(rng, channels, bits=3, kmax=2), padding=1)
            b.add_layer(conv)
            b.add_layer(ReLU())
            b.add_layer(Conv2d(dyadic(rng, (channels, channels, 3, 3), bits=2, kmax=2),
                               padding=1))
            b.add_layer(Add(), b.last, before)
            b.add_layer(ReLU())
        elif kind == "maxpool":
            _try(b, MaxPool2d(int(rng.integers(2, 4)), int(rng.integers(1, 3)),
                              int(rng.integers(0, 2)), ceil_mode=bool(rng.random() < 0.3)))
        else:
            _try(b, AvgPool2d(2, int(rng.integers(1, 3)), int(rng.integers(0, 2)),
                              ceil_mode=bool(rng.random() < 0.3),
                              count_include_pad=bool(rng.random() < 0.5)))
            if b.last != before and rng.random() < 0.5:
                # pooled spikes read by a convolution: a folded composite kernel
                if _try(b, _conv(rng, channels, int(rng.integers(2, 5)))) is not None:
                    b.add_layer(ReLU())
        channels = b.shape(b.last)[0]
        pooled = b.last.startswith("avgpool2d")
    _, hh, ww = b.shape(b.last)
    if (hh * ww) & (hh * ww - 1) == 0 and rng.random() < 0.5:
        b.add_layer(GlobalAvgPool())
    b.add_layer(Flatten())
    n = b.shape(b.last)[0]
    if rng.random() < 0.5:
        hidden = int(rng.integers(3, 8))
        b.add_layer(Dense(dyadic(rng, (hidden, n), bits=2, kmax=2), dyadic(rng, hidden, kmax=2)))
        b.add_layer(ReLU())
        n = hidden
    b.add_layer(Dense(dyadic(rng, (4, n), bits=2, kmax=2), dyadic(rng, 4, kmax=2)))
    net = b.build()
    neurons = {}
    for name in net.activations:
        shape = net.shape(name)
        per_channel = rng.random() < 0.5
        theta_shape = (shape[0],) + (1,) * (len(shape) - 1) if per_channel else ()
        theta = rng.integers(1, 9, size=theta_shape).astype(np.float64) / 4
        v0 = theta * rng.integers(0, 3, size=theta_shape) / 2
        allowance = float(rng.choice([0, 0, 0.5, 1, 2, 3.25]))  # SpiCalib on for some layers
        neurons[name] = NeuronSpec(theta, v0, reset=str(rng.choice(["subtract", "zero"])),
                                   burst=int(rng.integers(1, 4)), allowance=allowance)
    x = dyadic(rng, (int(rng.integers(1, 5)), c, h, w), bits=3, low=0, kmax=8)
    return SpikingNetwork(net, neurons, max_pool=max_pool), x


def random_conv_transpose(rng, cin: int, cout: int) -> ConvTranspose2d:
    """A dyadic transposed convolution: random kernel, stride, padding, output padding,
    dilation and groups."""
    groups = int(rng.choice([g for g in (1, 2, 3) if cin % g == 0 and cout % g == 0]))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 3)))
    dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    return ConvTranspose2d(
        dyadic(rng, (cin, cout // groups, int(rng.integers(1, 4)), int(rng.integers(1, 4))),
               bits=2, kmax=3),
        dyadic(rng, cout, bits=3, kmax=3) if rng.random() < 0.7 else None,
        stride=stride, padding=(int(rng.integers(0, 3)), int(rng.integers(0, 2))),
        output_padding=tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation)),
        dilation=dilation, groups=groups)


def random_depthwise(rng, channels: int) -> Conv2d:
    """A dyadic depthwise convolution with a channel multiplier (groups = C_in, C_out =
    k·C_in) and random kernel, stride, padding and dilation."""
    k = int(rng.integers(1, 4))
    return Conv2d(dyadic(rng, (k * channels, 1, int(rng.integers(1, 4)), int(rng.integers(1, 4))),
                         bits=2, kmax=3),
                  dyadic(rng, k * channels, bits=3, kmax=3) if rng.random() < 0.7 else None,
                  stride=(int(rng.integers(1, 3)), int(rng.integers(1, 3))),
                  padding=(int(rng.integers(0, 2)), int(rng.integers(0, 2))),
                  dilation=(int(rng.integers(1, 3)), 1), groups=channels)


def random_upsampling_network(seed: int) -> tuple[SpikingNetwork, np.ndarray]:
    """A random SNN of transposed and depthwise convolutions: a transposed convolution of the
    analog input or of spikes, of average-pooled spikes (a folded composite kernel), a
    depthwise convolution with a channel multiplier, then a dense head; and its inputs."""
    rng = np.random.default_rng(seed)
    c, h, w = int(rng.integers(1, 4)), int(rng.integers(2, 6)), int(rng.integers(2, 6))
    b = NetworkBuilder((c, h, w))
    if rng.random() < 0.5:
        b.add_layer(Conv2d(dyadic(rng, (int(rng.integers(1, 4)), c, 1, 1), bits=2, kmax=3)))
        b.add_layer(ReLU())
    for _ in range(int(rng.integers(1, 4))):
        channels, before = b.shape(b.last)[0], b.last
        kind = rng.choice(["transpose", "depthwise", "pooled_transpose"])
        if kind == "pooled_transpose" and before.startswith("relu"):
            _try(b, AvgPool2d(2, 1, 0, count_include_pad=True))
        layer = (random_depthwise(rng, channels) if kind == "depthwise"
                 else random_conv_transpose(rng, channels, int(rng.integers(1, 4))))
        try:
            too_large = int(np.prod(layer.output_shape([b.shape(b.last)]))) > 600
        except ShapeError:
            continue
        if not too_large:
            b.add_layer(layer)
            b.add_layer(ReLU())
    if b.last == "input":
        b.add_layer(random_conv_transpose(rng, c, 2))
        b.add_layer(ReLU())
    b.add_layer(Flatten())
    n = b.shape(b.last)[0]
    b.add_layer(Dense(dyadic(rng, (3, n), bits=2, kmax=2), dyadic(rng, 3, kmax=2)))
    net = b.build()
    neurons = {}
    for name in net.activations:
        theta = float(rng.integers(1, 9)) / 4
        neurons[name] = NeuronSpec(theta, theta * rng.integers(0, 3) / 2,
                                   reset=str(rng.choice(["subtract", "zero"])),
                                   burst=int(rng.integers(1, 3)))
    x = dyadic(rng, (int(rng.integers(1, 4)), c, h, w), bits=3, low=0, kmax=8)
    return SpikingNetwork(net, neurons), x
