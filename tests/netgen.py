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
from evsim.layers import Concat, ConvTranspose2d, Identity, LeakyReLU, Pad, ShapeError, Upsample


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


def _neurons(rng, net) -> dict:
    """Random IF neurons (thresholds k/4, resets, bursts, SpiCalib) for every activation."""
    neurons = {}
    for name in net.activations:
        theta = rng.integers(1, 9, size=(net.shape(name)[0], 1, 1)
                             if rng.random() < 0.5 else ()).astype(np.float64) / 4
        neurons[name] = NeuronSpec(theta, theta * rng.integers(0, 3, size=theta.shape) / 2,
                                   reset=str(rng.choice(["subtract", "zero"])),
                                   burst=int(rng.integers(1, 4)),
                                   allowance=float(rng.choice([0, 0, 1, 2.5])))
    return neurons


def _upsample(rng) -> Upsample:
    """Nearest (any small integer scales) or bilinear at scales 2 and 4 without aligned
    corners (weights k/8: dyadic)."""
    if rng.random() < 0.5:
        return Upsample((int(rng.integers(1, 4)), int(rng.integers(1, 4))), "nearest")
    return Upsample((int(rng.choice([1, 2, 4])), int(rng.choice([2, 4]))), "bilinear")


def _branch(rng, b: NetworkBuilder, start: str, channels: int) -> str:
    """A spiking branch from ``start`` (even height and width) that keeps its spatial size:
    a convolution, a padding undone by a convolution, or an average pooling undone by an
    upsampling."""
    kind = rng.choice(["conv", "pad", "pool"])
    cout = int(rng.integers(1, 4))
    if kind == "conv":
        b.add_layer(Conv2d(dyadic(rng, (cout, channels, 3, 3), bits=2, kmax=3), padding=1), start)
    elif kind == "pad":
        pad = tuple(int(p) for p in rng.integers(0, 3, size=4))
        b.add_layer(Pad(pad), start)
        b.add_layer(Conv2d(dyadic(rng, (cout, channels, 1 + pad[0] + pad[1], 1 + pad[2] + pad[3]),
                                  bits=2, kmax=3)))
    else:  # h and w are even
        b.add_layer(AvgPool2d(2), start)
        b.add_layer(Upsample(2, str(rng.choice(["nearest", "bilinear"]))))
        b.add_layer(Conv2d(dyadic(rng, (cout, channels, 1, 1), bits=2, kmax=3)))
    return b.add_layer(ReLU())


def random_routing_network(seed: int) -> tuple[SpikingNetwork, np.ndarray]:
    """A random SNN with Concats of spikes and of pooled spikes (two or three branches),
    zero padding and nearest/bilinear upsampling folded into convolutions or read by neurons,
    a residual Add and the readout, on the dyadic grid; its input may be concatenated with an
    upsampled pooling of itself (analog values, or rate-coded spikes)."""
    rng = np.random.default_rng(seed)
    c, h, w = int(rng.integers(1, 3)), 2 * int(rng.integers(2, 4)), 2 * int(rng.integers(2, 4))
    b = NetworkBuilder((c, h, w))
    first = b.last
    if rng.random() < 0.4:
        b.add_layer(AvgPool2d(2))
        b.add_layer(Upsample(2, "nearest"))
        b.add_layer(Concat(), first, b.last)
    cin = b.shape(b.last)[0]
    b.add_layer(Conv2d(dyadic(rng, (2, cin, 3, 3), bits=2, kmax=3),
                       dyadic(rng, 2, bits=3, kmax=3), padding=1))
    trunk = b.add_layer(ReLU())
    parts = [trunk] + [_branch(rng, b, trunk, 2) for _ in range(int(rng.integers(0, 3)))]
    if len(parts) == 1:
        parts.append(trunk)  # the same spikes twice
    if rng.random() < 0.5:
        parts[-1] = b.add_layer(Pad(tuple(int(p) for p in rng.integers(0, 2, size=4))),
                                parts[-1])
        parts[-1] = b.add_layer(_crop_conv(rng, b, parts[-1], (h, w)), parts[-1])
        parts[-1] = b.add_layer(ReLU())
    joined = b.add_layer(Concat(), *parts)
    end = rng.choice(["conv", "neuron", "dense", "readout", "add"])
    if end == "add":  # a residual Add of a convolution's currents and the concatenated spikes
        width = b.shape(joined)[0]
        b.add_layer(Conv2d(dyadic(rng, (width, width, 3, 3), bits=2, kmax=2), padding=1),
                    joined)
        b.add_layer(Add(), b.last, joined)
        b.add_layer(ReLU())
    elif end == "conv":
        b.add_layer(_upsample(rng) if rng.random() < 0.5 else Pad(
            tuple(int(p) for p in rng.integers(0, 2, size=4))), joined)
        b.add_layer(Conv2d(dyadic(rng, (2, b.shape(joined)[0], 3, 3), bits=2, kmax=2),
                           stride=2, padding=1))
        b.add_layer(ReLU())
        spikes = b.last
        b.add_layer(AvgPool2d(2, 1), spikes)
        b.add_layer(Concat(), spikes, b.add_layer(Pad((0, 1, 0, 1))))
    elif end == "neuron":
        b.add_layer(_upsample(rng), joined)
        b.add_layer(ReLU())
    if end != "readout":
        b.add_layer(Flatten())
        b.add_layer(Dense(dyadic(rng, (3, b.shape(b.last)[0]), bits=2, kmax=2)))
    else:
        b.add_layer(_upsample(rng), joined)
    net = b.build()
    x = dyadic(rng, (int(rng.integers(1, 4)), c, h, w), bits=3, low=0, kmax=8)
    return SpikingNetwork(net, _neurons(rng, net)), x


def _crop_conv(rng, b: NetworkBuilder, name: str, size: tuple) -> Conv2d:
    """A convolution that brings ``name`` back to spatial ``size``."""
    channels, h, w = b.shape(name)
    return Conv2d(dyadic(rng, (int(rng.integers(1, 3)), channels, h - size[0] + 1,
                               w - size[1] + 1), bits=2, kmax=3))


def _signed_activation(rng):
    """ReLU, LeakyReLU (α a power of two) or the identity."""
    kind = rng.choice(["relu", "leaky", "identity"])
    if kind == "relu":
        return ReLU()
    return LeakyReLU(float(2.0 ** -rng.integers(0, 3))) if kind == "leaky" else Identity()


def random_signed_network(seed: int) -> tuple[SpikingNetwork, np.ndarray]:
    """A random SNN with signed IF neurons (methods.md §5b) on the dyadic grid: LeakyReLU and
    identity layers (a linear bottleneck: convolution → identity → convolution, a residual
    Add read through an identity), average pooling of signed spikes, plain ReLU layers among
    them; θ and θ⁻ k/4 drawn independently, both resets, bursts Γ ≤ 3."""
    rng = np.random.default_rng(seed)
    c, h, w = int(rng.integers(1, 3)), int(rng.integers(4, 8)), int(rng.integers(4, 8))
    b = NetworkBuilder((c, h, w))
    width = int(rng.integers(2, 4))
    b.add_layer(Conv2d(dyadic(rng, (width, c, 3, 3), bits=2, kmax=3),
                       dyadic(rng, width, bits=3, kmax=3), padding=1))
    b.add_layer(_signed_activation(rng))
    for _ in range(int(rng.integers(1, 3))):
        before = b.last
        b.add_layer(Conv2d(dyadic(rng, (width, width, 1, 1), bits=2, kmax=3)))
        if rng.random() < 0.5:  # a projection read through an identity (linear bottleneck)
            b.add_layer(Identity())
            b.add_layer(Conv2d(dyadic(rng, (width, width, 3, 3), bits=2, kmax=2), padding=1))
        b.add_layer(Add(), b.last, before)
        b.add_layer(_signed_activation(rng))
    if rng.random() < 0.5:
        b.add_layer(AvgPool2d(2))
    b.add_layer(Flatten())
    n = b.shape(b.last)[0]
    b.add_layer(Dense(dyadic(rng, (4, n), bits=2, kmax=2), dyadic(rng, 4, kmax=2)))
    b.add_layer(_signed_activation(rng))
    b.add_layer(Dense(dyadic(rng, (3, 4), bits=2, kmax=2)))
    net = b.build()
    neurons = {}
    for name in net.activations:
        per_channel = rng.random() < 0.5
        shape = (net.shape(name)[0],) + (1,) * (len(net.shape(name)) - 1) if per_channel else ()
        theta = rng.integers(1, 9, size=shape).astype(np.float64) / 4
        signed = net[name].layer.negative_slope > 0
        neurons[name] = NeuronSpec(
            theta, theta * rng.integers(-1, 3, size=shape) / 2,
            reset=str(rng.choice(["subtract", "zero"])), burst=int(rng.integers(1, 4)),
            negative_threshold=(rng.integers(1, 9, size=shape) / 4 if signed else None))
    x = dyadic(rng, (int(rng.integers(1, 4)), c, h, w), bits=3, low=0, kmax=8)
    return SpikingNetwork(net, neurons), x


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
