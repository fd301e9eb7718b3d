"""An independent, naive reference simulator of evsim's spiking networks.

Written from the specifications (the project's design notes, ``docs/methods.md``,
``docs/conventions.md``, ``docs/concepts.md``), sharing no code with the engines: it
imports nothing from ``evsim.simulate``, ``evsim.neuron``, ``evsim.ops``,
``evsim.fanout``, ``evsim.signals``, ``evsim.encoding`` or ``evsim.timescheme``. It
reads only data: the graph (``Network``: nodes in topological order, their inputs and
shapes), the layer records of ``evsim.layers`` (weights, biases, kernel geometry) and
the neuron specs (θ, v(0), reset, Γ, allowance, θ⁻ of signed neurons) of a
``SpikingNetwork``.

How it computes, deliberately unlike the engines:

- every synapse or pooling layer is an explicit matrix over flat channel-first
  neurons, built by enumerating each synapse (each output position, kernel tap and
  input channel of its group) or each pooling window's members, border by border;
- all arithmetic is float64 (exact on dyadic-grid networks, where the engines'
  float32 and float64 sums are exact too);
- SOPs are counted per event: each neuron that sent spikes this step costs its
  multiplicity (or, in the ilif scheme, the set bits of its code) times the number of
  distinct targets it reaches, its target set obtained by following the enumerated
  synapses through any pooling/flatten layers to the layer that accumulates it;
- the ilif scheme is simulated bit by bit (the sender's binary expansion, most
  significant bit first; a signed neuron below zero sends the expansion of −V/θ⁻ as
  negative spikes), not by the engines' clip-floor code;
- the rate encoder's counter-based hash is re-implemented on Python integers.

It is slow (Python loops over layers, steps and windows) and meant for tiny networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from evsim import layers as L  # layer record classes: data only

_MASK = (1 << 64) - 1
_SYNAPSES = (L.Dense, L.Conv2d, L.ConvTranspose2d)  # layers with weights: SOPs
_GOLDEN = 0x9E3779B97F4A7C15


# --- the rate encoder: SplitMix64's finaliser applied after each key is mixed in -------

def _finalise(z: int) -> int:
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & _MASK
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def _absorb(h: int, key: int) -> int:
    return _finalise(((h ^ key) + _GOLDEN) & _MASK)


def rate_input(pixels: np.ndarray, seed: int, image: int, step: int) -> np.ndarray:
    """Input spikes (0/1, int64) of one image's flat channel-first ``pixels`` at ``step``
    (1-based): pixel p spikes when the top 53 bits of hash(seed, image, step, p), as a
    fraction of 2^53, are below its value."""
    h = _absorb(_absorb(_absorb(0, seed), image), step)
    out = np.zeros(len(pixels), np.int64)
    for p, value in enumerate(pixels):
        u = (_absorb(h, p) >> 11) * 2.0 ** -53
        out[p] = u < value
    return out


# --- enumerated connectivity -----------------------------------------------------------

def _flat(c: int, y: int, x: int, h: int, w: int) -> int:
    return (c * h + y) * w + x


def _window_count(size: int, kernel: int, stride: int, pad: int, ceil: bool) -> int:
    """Number of pooling windows along one axis (PyTorch's rule for ceil_mode)."""
    room = size + 2 * pad - kernel
    count = (-(-room // stride) if ceil else room // stride) + 1
    if ceil and (count - 1) * stride >= size + pad:
        count -= 1
    return count


def pool_windows(layer, in_shape) -> tuple[list[list[int]], np.ndarray, tuple]:
    """Each window's real members (flat input indices, row-major kernel order), its
    divisor for average pooling, and the output shape."""
    c_in, h, w = in_shape
    if isinstance(layer, L.GlobalAvgPool):
        windows = [[_flat(c, y, x, h, w) for y in range(h) for x in range(w)]
                   for c in range(c_in)]
        return windows, np.full(c_in, float(h * w)), (c_in, 1, 1)
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    ho = _window_count(h, kh, sh, ph, layer.ceil_mode)
    wo = _window_count(w, kw, sw, pw, layer.ceil_mode)
    windows, divisors = [], []
    for c in range(c_in):
        for oy in range(ho):
            for ox in range(wo):
                y0, x0 = oy * sh - ph, ox * sw - pw
                members = [_flat(c, y, x, h, w) for y in range(y0, y0 + kh)
                           for x in range(x0, x0 + kw) if 0 <= y < h and 0 <= x < w]
                if getattr(layer, "count_include_pad", False):
                    # padding counts, the part hanging past the padded input does not
                    rows = min(y0 + kh, h + ph) - y0
                    cols = min(x0 + kw, w + pw) - x0
                    divisors.append(float(rows * cols))
                else:
                    divisors.append(float(len(members)))
                windows.append(members)
    return windows, np.array(divisors), (c_in, ho, wo)


def conv_synapses(layer: L.Conv2d, in_shape) -> tuple[list, tuple]:
    """Every synapse of a convolution as (target, source, weight), and the output shape."""
    c_in, h, w = in_shape
    c_out, cin_g, kh, kw = layer.weight.shape
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    per_group = c_out // layer.groups
    synapses = []
    for co in range(c_out):
        group = co // per_group
        for oy in range(ho):
            for ox in range(wo):
                target = _flat(co, oy, ox, ho, wo)
                for k in range(cin_g):
                    ci = group * cin_g + k
                    for i in range(kh):
                        y = oy * sh - ph + i * dh
                        for j in range(kw):
                            x = ox * sw - pw + j * dw
                            if 0 <= y < h and 0 <= x < w:
                                synapses.append((target, _flat(ci, y, x, h, w),
                                                 float(layer.weight[co, k, i, j])))
    return synapses, (c_out, ho, wo)


def pad_weights(layer: L.Pad, in_shape) -> np.ndarray:
    """Zero padding as a 0/1 matrix (n_out, n_in) over flat channel-first neurons."""
    c_in, h, w = in_shape
    top, bottom, left, right = layer.padding
    ho, wo = h + top + bottom, w + left + right
    weights = np.zeros((c_in * ho * wo, c_in * h * w))
    for c in range(c_in):
        for y in range(h):
            for x in range(w):
                weights[_flat(c, y + top, x + left, ho, wo), _flat(c, y, x, h, w)] = 1.0
    return weights


def _bilinear_taps(o: int, size: int, scale: int, align_corners: bool) -> list:
    """(input index, weight) pairs that output sample ``o`` of one axis mixes (PyTorch's
    bilinear rule, one axis)."""
    n_out = size * scale
    if align_corners:
        src = o * (size - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        src = max((o + 0.5) / scale - 0.5, 0.0)
    i0 = min(int(np.floor(src)), size - 1)
    i1 = i0 + 1 if i0 < size - 1 else i0
    lam = src - i0
    return [(i0, 1.0 - lam), (i1, lam)]


def upsample_weights(layer: L.Upsample, in_shape) -> np.ndarray:
    """Nearest or bilinear upsampling as a matrix (n_out, n_in) over flat neurons."""
    c_in, h, w = in_shape
    (sh, sw) = layer.scale
    ho, wo = h * sh, w * sw
    weights = np.zeros((c_in * ho * wo, c_in * h * w))
    for c in range(c_in):
        for oy in range(ho):
            for ox in range(wo):
                target = _flat(c, oy, ox, ho, wo)
                if layer.mode == "nearest":
                    weights[target, _flat(c, oy // sh, ox // sw, h, w)] = 1.0
                    continue
                for y, wy in _bilinear_taps(oy, h, sh, layer.align_corners):
                    for x, wx in _bilinear_taps(ox, w, sw, layer.align_corners):
                        weights[target, _flat(c, y, x, h, w)] += wy * wx
    return weights


def conv_transpose_synapses(layer: L.ConvTranspose2d, in_shape) -> tuple[list, tuple]:
    """Every synapse of a transposed convolution as (target, source, weight), and the output
    shape: input (ci, y, x) reaches output (co, y·s − p + i·d, x·s − p + j·d) through tap
    (i, j) for each output channel co of its group, if that position exists."""
    c_in, h, w = in_shape
    _, per_group, kh, kw = layer.weight.shape
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    (oph, opw), in_group = layer.output_padding, c_in // layer.groups
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wo = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    synapses = []
    for ci in range(c_in):
        group = ci // in_group
        for y in range(h):
            for x in range(w):
                source = _flat(ci, y, x, h, w)
                for k in range(per_group):
                    co = group * per_group + k
                    for i in range(kh):
                        oy = y * sh - ph + i * dh
                        for j in range(kw):
                            ox = x * sw - pw + j * dw
                            if 0 <= oy < ho and 0 <= ox < wo:
                                synapses.append((_flat(co, oy, ox, ho, wo), source,
                                                 float(layer.weight[ci, k, i, j])))
    return synapses, (per_group * layer.groups, ho, wo)


@dataclass
class _Op:
    """A non-spiking layer as explicit matrices over flat neurons.

    ``weights`` (n_out, n_in) and ``bias`` (n_out,) for Dense/Conv2d; ``members``
    (n_out, n_in) 0/1 and ``divisor`` (n_out,) for average pooling; ``windows`` (member
    lists) for max pooling; ``targets[i]``: the set of outputs input i reaches.
    """

    kind: str
    targets: list
    weights: np.ndarray | None = None
    bias: np.ndarray | None = None
    members: np.ndarray | None = None
    divisor: np.ndarray | None = None
    windows: list | None = None
    parts: list | None = None  # a Concat's targets per input (``targets`` of each)


def _build_op(layer, in_shape, all_shapes=()) -> _Op:
    n_in = int(np.prod(in_shape))
    if isinstance(layer, L.Dense):
        n_out = layer.weight.shape[0]
        return _Op("synapse", [set(range(n_out)) for _ in range(n_in)],
                   weights=layer.weight.astype(np.float64), bias=_bias(layer, n_out, 1))
    if isinstance(layer, (L.Conv2d, L.ConvTranspose2d)):
        enumerate_synapses = (conv_synapses if isinstance(layer, L.Conv2d)
                              else conv_transpose_synapses)
        synapses, out_shape = enumerate_synapses(layer, in_shape)
        n_out = int(np.prod(out_shape))
        weights = np.zeros((n_out, n_in))
        targets = [set() for _ in range(n_in)]
        for target, source, weight in synapses:
            weights[target, source] = weight
            targets[source].add(target)
        return _Op("synapse", targets, weights=weights,
                   bias=_bias(layer, out_shape[0], n_out // out_shape[0]))
    if isinstance(layer, (L.AvgPool2d, L.GlobalAvgPool, L.MaxPool2d)):
        windows, divisor, _ = pool_windows(layer, in_shape)
        members = np.zeros((len(windows), n_in))
        targets = [set() for _ in range(n_in)]
        for o, window in enumerate(windows):
            for i in window:
                members[o, i] = 1
                targets[i].add(o)
        kind = "maxpool" if isinstance(layer, L.MaxPool2d) else "avgpool"
        return _Op(kind, targets, members=members, divisor=divisor, windows=windows)
    if isinstance(layer, (L.Pad, L.Upsample)):
        weights = pad_weights(layer, in_shape) if isinstance(layer, L.Pad) else \
            upsample_weights(layer, in_shape)
        return _Op("linear", [set(np.flatnonzero(weights[:, i])) for i in range(n_in)],
                   weights=weights)
    if isinstance(layer, L.Concat):  # flat channel-first inputs, one after the other
        parts, offset = [], 0
        for shape in all_shapes:
            size = int(np.prod(shape))
            parts.append([{offset + i} for i in range(size)])
            offset += size
        return _Op("concat", [], parts=parts)
    if isinstance(layer, L.Flatten):
        return _Op("flatten", [{i} for i in range(n_in)])
    if isinstance(layer, L.Add):
        return _Op("add", [{i} for i in range(n_in)])
    raise TypeError(f"the naive reference has no rule for {type(layer).__name__}")


def _bias(layer, channels: int, per_channel: int) -> np.ndarray:
    if layer.bias is None:
        return np.zeros(channels * per_channel)
    return np.repeat(layer.bias.astype(np.float64), per_channel)


# --- signal classes and synaptic paths ------------------------------------------------

def _classes(network, encoding: str) -> dict[str, str]:
    """'static' (computed once), 'events', 'pooled' or 'current' for every layer."""
    classes = {}
    for node in network.nodes:
        layer, ins = node.layer, [classes[s] for s in node.inputs]
        if isinstance(layer, L.Input):
            classes[node.name] = "events" if encoding == "rate" else "static"
        elif isinstance(layer, L.Activation):
            classes[node.name] = "events"
        elif all(c == "static" for c in ins):
            classes[node.name] = "static"
        elif isinstance(layer, L.Flatten):
            classes[node.name] = ins[0]
        elif isinstance(layer, (L.AvgPool2d, L.GlobalAvgPool, L.Pad, L.Upsample, L.Concat)):
            classes[node.name] = "pooled"
        elif isinstance(layer, L.MaxPool2d):
            classes[node.name] = "events"
        else:  # Dense, Conv2d, Add
            classes[node.name] = "current"
    return classes


def _sources_and_chains(network, classes, name: str) -> list[tuple[str, list]]:
    """Every spiking source of ``name`` with the pooling/flatten/concat layers from it to
    ``name`` (a Concat as ``(name, input index)``)."""
    if classes[name] == "events" and not isinstance(network[name].layer, L.Flatten):
        return [(name, [])]
    node = network[name]
    if isinstance(node.layer, L.Concat):
        return [(source, chain + [(name, k)]) for k, src in enumerate(node.inputs)
                for source, chain in _sources_and_chains(network, classes, src)]
    return [(source, chain + [name])
            for source, chain in _sources_and_chains(network, classes, node.inputs[0])]


def _reach(ops: dict, chain: list, consumer: str | None, n_source: int) -> np.ndarray:
    """Distinct targets of every source neuron: its reach followed through each layer."""
    counts = np.zeros(n_source, np.int64)
    for i in range(n_source):
        reached = {i}
        for step in chain + ([consumer] if consumer else []):
            targets = (ops[step[0]].parts[step[1]] if isinstance(step, tuple)
                       else ops[step].targets)
            reached = set().union(*(targets[j] for j in reached))
        counts[i] = len(reached)
    return counts


@dataclass
class _Path:
    layer: str  # the layer whose SOPs (or pool ops) these are
    source: str  # the spiking layer whose events travel it
    targets: np.ndarray  # distinct targets per source neuron
    pool: bool = False


def _paths(network, classes, ops) -> list[_Path]:
    paths = []
    for node in network.nodes:
        name, layer = node.name, node.layer
        if classes[name] == "static":
            continue
        if isinstance(layer, L.MaxPool2d):
            src = node.inputs[0]
            paths.append(_Path(name, src, _reach(ops, [], name, _size(network, src)), True))
            continue
        if not isinstance(layer, _SYNAPSES + (L.Add, L.Activation)):
            continue
        synapse = isinstance(layer, _SYNAPSES)
        for src in node.inputs:
            if classes[src] not in ("events", "pooled"):
                continue
            for source, chain in _sources_and_chains(network, classes, src):
                paths.append(_Path(name, source, _reach(ops, chain, name if synapse else None,
                                                        _size(network, source))))
    return paths


def _size(network, name: str) -> int:
    return int(np.prod(network.shape(name)))


# --- neurons ---------------------------------------------------------------------------

def fire(m: np.ndarray, theta: np.ndarray, cap: int) -> np.ndarray:
    """Spikes at membrane m: how many of θ, 2θ, ..., cap·θ it reaches (int64)."""
    spikes = np.zeros(m.shape, np.int64)
    for k in range(1, cap + 1):
        spikes += m >= k * theta
    return spikes


def binary_code(m: np.ndarray, theta: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The ilif sender, bit by bit: s_k = [V ≥ θ], V ← 2 (V − θ s_k), k = 1..K.
    Returns (the code Σ s_k 2^(K−k), the spikes Σ s_k), both int64."""
    v, code, spikes = m.copy(), np.zeros(m.shape, np.int64), np.zeros(m.shape, np.int64)
    for _ in range(bits):
        s = (v >= theta).astype(np.int64)
        code, spikes = 2 * code + s, spikes + s
        v = 2 * (v - theta * s)
    return code, spikes


@dataclass
class _Calibration:
    """SpiCalib state per neuron (methods.md §3), on a clock that reads 0 at step 1 (as
    the published code and evsim do): last spike time, spikes, sum of the inter-spike
    intervals (the mean interval is that sum / spikes) and net emitted count."""

    last: np.ndarray
    fired: np.ndarray
    intervals: np.ndarray
    net: np.ndarray

    def step(self, x: np.ndarray, t: int, allowance: float) -> np.ndarray:
        clock = t - 1
        spiked = x > 0
        self.intervals += np.where(spiked, clock - self.last, 0)
        self.last = np.where(spiked, clock, self.last)
        self.fired += spiked
        silent = clock - self.last
        # silent > mean + A, the mean being intervals / fired (0 before any spike): both
        # sides times fired, in integers and an exact dyadic A
        late = np.where(self.fired > 0,
                        self.fired * silent - self.intervals > self.fired * allowance,
                        silent > allowance)
        x = x - late
        x = np.where(self.net + x < 0, -self.net, x)
        self.net += x
        return x


# --- the simulation --------------------------------------------------------------------

@dataclass
class NaiveResult:
    """What the reference computes, in :class:`evsim.SimResult`'s layout: ``outputs``
    (K, B, *output_shape) summed to each checkpoint, ``spike_counts`` per image (B,
    *shape) (net counts; binary spikes in the ilif scheme), ``negative_spikes`` per
    layer, ``sops`` and ``pool_ops`` ``{layer: (steps,)}`` summed over images, ``macs``
    per image of the analog head, ``latency`` in steps; in the synchronous scheme also
    every neuron's output ``spikes`` (T, B, neurons) int64 and ``membrane`` (T, B,
    neurons), its potential after each step's reset, per spiking layer."""

    T: int
    checkpoints: np.ndarray
    outputs: np.ndarray
    spike_counts: dict
    negative_spikes: dict
    sops: dict
    pool_ops: dict
    macs: dict
    latency: int
    spikes: dict
    membrane: dict


def simulate(snn, x: np.ndarray, T: int, *, encoding: str = "analog", checkpoints=None,
             seed: int = 0, first_image: int = 0) -> NaiveResult:
    """Simulate ``snn`` on images ``x`` (B, *input_shape) for ``T`` steps (the window
    length W in the temporal scheme, the bits K in the ilif scheme), one image at a time."""
    network, scheme = snn.network, snn.time_scheme
    windowed = scheme in ("temporal", "ilif")
    if checkpoints is None:
        checkpoints = [1 << k for k in range(T.bit_length()) if (1 << k) < T] + [T]
    checkpoints = np.array([T] if windowed else sorted(set(checkpoints)), np.int64)
    classes = _classes(network, encoding)
    ops = {n.name: _build_op(n.layer, network.shape(n.inputs[0]),
                             [network.shape(s) for s in n.inputs])
           for n in network.nodes if n.inputs and n.name not in snn.neurons}
    paths = _paths(network, classes, ops)
    steps = 1 if windowed else T
    sops = {p.layer: np.zeros(steps, np.int64) for p in paths if not p.pool}
    pool_ops = {p.layer: np.zeros(steps, np.int64) for p in paths if p.pool}
    macs = {n.name: sum(len(t) for t in ops[n.name].targets) for n in network.nodes
            if classes[n.name] == "static" and isinstance(n.layer, _SYNAPSES)}
    outputs, counts, negative = [], {name: [] for name in snn.neurons}, dict.fromkeys(
        snn.neurons, 0)
    spikes, membrane = {name: [] for name in snn.neurons}, {name: [] for name in snn.neurons}
    for b, image in enumerate(np.asarray(x, np.float64)):
        run = _Image(snn, classes, ops, paths, image.reshape(-1), T, seed, first_image + b)
        outputs.append(run.run(checkpoints, sops, pool_ops))
        for name in snn.neurons:
            counts[name].append(run.counts[name].reshape(network.shape(name)))
            negative[name] += run.negative[name]
            spikes[name].append(run.spikes[name])
            membrane[name].append(run.membrane[name])
    return NaiveResult(T, checkpoints, np.stack(outputs, axis=1),
                       {k: np.stack(v) for k, v in counts.items()}, negative, sops, pool_ops,
                       macs, _latency(network, snn.neurons, T) if windowed else T,
                       {k: np.stack(v, axis=1) for k, v in spikes.items()},
                       {k: np.stack(v, axis=1) for k, v in membrane.items()})


def head_output(head, outputs: np.ndarray, checkpoints) -> np.ndarray:
    """An output head (``docs/conventions.md``) applied to the mean readout at each
    checkpoint: ``outputs`` (K, B, *shape) summed readouts; a Sigmoid element by element,
    a Softmax over axis 2 (the channels or features) of every image and position."""
    mean = np.asarray(outputs, np.float64) / np.reshape(checkpoints, (-1,) + (1,) * (
        np.ndim(outputs) - 1))
    if isinstance(head, L.Sigmoid):
        return np.vectorize(lambda v: 1.0 / (1.0 + math.exp(-v)) if v >= 0
                            else math.exp(v) / (1.0 + math.exp(v)))(mean)
    if isinstance(head, L.Softmax):
        weights = np.exp(mean - mean.max(axis=2, keepdims=True))
        return weights / weights.sum(axis=2, keepdims=True)
    raise TypeError(f"the naive reference has no output head {type(head).__name__}")


def _latency(network, neurons, window: int) -> int:
    """(D + 1) W, D the most spiking layers on a path from the input to the output."""
    depth = {}
    for node in network.nodes:
        depth[node.name] = (max((depth[s] for s in node.inputs), default=0)
                            + (node.name in neurons))
    return (depth[network.output_name] + 1) * window


class _Image:
    """One image's simulation: membranes, pooling and calibration state, step by step."""

    def __init__(self, snn, classes, ops, paths, pixels, T, seed, image):
        self.snn, self.net, self.classes, self.ops, self.paths = (snn, snn.network, classes,
                                                                  ops, paths)
        self.pixels, self.T, self.seed, self.image = pixels, T, seed, image
        self.scheme = snn.time_scheme
        self.theta = {n: self._full(n, s.threshold) for n, s in snn.neurons.items()}
        self.v = {n: self._full(n, s.v_init).copy() for n, s in snn.neurons.items()}
        self.negative_theta = {n: self._full(n, s.negative_threshold)
                               for n, s in snn.neurons.items()
                               if getattr(s, "negative_threshold", None) is not None}
        self.calibration = {n: _Calibration(*(np.zeros(_size(self.net, n), np.int64)
                                               for _ in range(4)))
                            for n, s in snn.neurons.items() if s.allowance > 0}
        self.counts = {n: np.zeros(_size(self.net, n), np.int64) for n in snn.neurons}
        self.negative = dict.fromkeys(snn.neurons, 0)
        self.spikes = {n: [] for n in snn.neurons}  # per step: outputs and potentials
        self.membrane = {n: [] for n in snn.neurons}
        self.pool_in = {n: np.zeros(_size(self.net, self.net[n].inputs[0]), np.int64)
                        for n, op in ops.items() if op.kind == "maxpool"
                        and classes[n] != "static"}
        self.pool_out = {n: np.zeros(len(ops[n].windows), np.int64) for n in self.pool_in}
        # a window's worth of every constant current in the temporal scheme
        self.scale = float(T) if self.scheme == "temporal" else 1.0
        self.static = self._static_values()

    def _full(self, name: str, array) -> np.ndarray:
        return np.broadcast_to(np.asarray(array, np.float64), self.net.shape(name)).reshape(-1)

    def _static_values(self) -> dict:
        values = {}
        for node in self.net.nodes:
            if self.classes[node.name] != "static":
                continue
            if isinstance(node.layer, L.Input):
                values[node.name] = self.pixels
            else:
                values[node.name] = self._apply(node, [values[s] for s in node.inputs], 1.0)
        return values

    def _apply(self, node, inputs: list, bias_scale: float) -> np.ndarray:
        """A non-spiking layer's values; its bias scaled by ``bias_scale``."""
        op = self.ops[node.name]
        if op.kind == "synapse":
            return op.weights @ inputs[0] + bias_scale * op.bias
        if op.kind == "avgpool":
            return (op.members @ inputs[0]) / op.divisor
        if op.kind == "maxpool":  # of analog values: padding never wins
            return np.array([max(inputs[0][w]) for w in op.windows])
        if op.kind == "add":
            return np.sum(inputs, axis=0)
        if op.kind == "linear":  # zero padding, upsampling: no bias
            return op.weights @ inputs[0]
        if op.kind == "concat":
            return np.concatenate(inputs)
        return inputs[0]  # flatten: channel-first flat indices already

    def run(self, checkpoints, sops, pool_ops) -> np.ndarray:
        """Steps 1..T (one window step in the windowed schemes); the readout summed to each
        checkpoint (× T in the ilif scheme, which decodes one window)."""
        total = np.zeros(_size(self.net, self.net.output_name))
        kept = []
        steps = 1 if self.scheme in ("temporal", "ilif") else self.T
        for t in range(1, steps + 1):
            values, sent = self._step(t, sops, pool_ops)
            total = total + values[self.net.output_name]
            if self.scheme == "ilif":
                kept.append(total * self.T)
            elif self.scheme == "temporal" or t in checkpoints:
                kept.append(total.copy())
        return np.stack(kept).reshape((len(kept),) + self.net.output_shape)

    def _step(self, t: int, sops, pool_ops):
        values, mult, sent = {}, {}, {}
        for node in self.net.nodes:
            name, layer = node.name, node.layer
            if self.classes[name] == "static":
                consumed = any(self.classes[c] != "static" for c in self.net.consumers(name))
                values[name] = self.static[name] * (self.scale if consumed else 1.0)
            elif isinstance(layer, L.Input):  # rate-coded
                draws = range(1, self.T + 1) if self.scheme == "temporal" else [t]
                mult[name] = sum(rate_input(self.pixels, self.seed, self.image, u)
                                 for u in draws)
                values[name], sent[name] = mult[name].astype(np.float64), mult[name]
            elif name in self.snn.neurons:
                mult[name], values[name], sent[name] = self._neurons(
                    name, values[node.inputs[0]], t)
            elif isinstance(layer, L.MaxPool2d):
                src = node.inputs[0]
                mult[name] = self._spiking_maxpool(name, mult[src])
                values[name] = mult[name] * self._amplitude(name)
                sent[name] = self._sent(mult[name])
            elif isinstance(layer, L.Flatten) and self.classes[name] == "events":
                src = node.inputs[0]
                mult[name], values[name], sent[name] = mult[src], values[src], sent[src]
            else:
                scale = self.scale if self.scheme == "temporal" else 1.0
                values[name] = self._apply(node, [values[s] for s in node.inputs], scale)
        for path in self.paths:
            # each event costs its spikes times the distinct targets it reaches
            events = np.flatnonzero(sent[path.source])
            cost = int(sent[path.source][events] @ path.targets[events])
            (pool_ops if path.pool else sops)[path.layer][t - 1] += cost
        return values, sent

    def _amplitude(self, name: str) -> np.ndarray:
        """The value one unit of multiplicity of an events layer carries, per neuron: θ
        (θ 2^(1−K) in the ilif scheme), 1 for the rate-coded input, and for a max pool the
        amplitude of its channel in the layer it pools."""
        node = self.net[name]
        if isinstance(node.layer, L.Input):
            return np.ones(_size(self.net, name))
        if name in self.snn.neurons:
            theta = self.theta[name]
            return theta * 2.0 ** (1 - self.T) if self.scheme == "ilif" else theta
        channels = self.net.shape(name)[0]
        per_channel = self._amplitude(node.inputs[0]).reshape(channels, -1)[:, 0]
        return np.repeat(per_channel, _size(self.net, name) // channels)

    def _sent(self, multiplicity: np.ndarray) -> np.ndarray:
        """Unit spikes an event stands for: |m|, or the set bits of an ilif code."""
        if self.scheme == "ilif":
            return np.array([bin(int(m)).count("1") for m in multiplicity], np.int64)
        return np.abs(multiplicity)

    def _neurons(self, name: str, current: np.ndarray, t: int):
        """One step (one window) of an IF layer: (multiplicities, values, spikes sent).

        A window of the temporal scheme is a step whose burst cap is W: the count is how
        many of θ, ..., Wθ the potential reaches, and for signed neurons minus how many of
        θ⁻, ..., Wθ⁻ its negation reaches (methods.md, signed neurons in the temporal
        scheme)."""
        spec, theta = self.snn.neurons[name], self.theta[name]
        m = self.v[name] + current
        if self.scheme == "ilif":
            code, spikes = binary_code(m, theta, self.T)
            sent = spikes
            if name in self.negative_theta:  # below zero: −V's code, in units of θ⁻
                down, down_spikes = binary_code(-m, self.negative_theta[name], self.T)
                code, spikes = code - down, spikes - down_spikes
                sent = sent + down_spikes
                self.negative[name] += int(down_spikes.sum())
            self.counts[name] += spikes
            return code, code * self._amplitude(name), sent
        cap = self.T if self.scheme == "temporal" else spec.burst
        s = fire(m, theta, cap)
        step = theta
        if name in self.negative_theta:  # signed neurons (methods.md §5b)
            s = s - fire(-m, self.negative_theta[name], cap)
            step = np.where(s < 0, self.negative_theta[name], theta)
            self.negative[name] += int(-s[s < 0].sum())
        if spec.reset == "zero":
            self.v[name] = np.where(s != 0, 0.0, m)
        else:
            self.v[name] = m - s * step
        if name in self.calibration:
            s = self.calibration[name].step(s, t, spec.allowance)
            self.negative[name] += int(-s[s < 0].sum())
        self.counts[name] += s
        self.spikes[name].append(s)
        self.membrane[name].append(self.v[name].copy())
        return s, s * theta, np.abs(s)

    def _spiking_maxpool(self, name: str, incoming: np.ndarray) -> np.ndarray:
        """LIPooling (each window emits the rise of its members' largest cumulative count)
        or the gate (each window passes this step's spikes of the member with the largest
        cumulative count, the first in row-major order on ties)."""
        windows = self.ops[name].windows
        cumulative = self.pool_in[name]
        cumulative += incoming
        out = np.zeros(len(windows), np.int64)
        for o, members in enumerate(windows):
            counts = [cumulative[i] for i in members]
            if self.snn.max_pool == "lipooling":
                peak = max(counts)
                out[o] = peak - self.pool_out[name][o]
                self.pool_out[name][o] = peak
            else:
                out[o] = incoming[members[counts.index(max(counts))]]
        return out
