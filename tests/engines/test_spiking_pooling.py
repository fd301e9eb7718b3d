"""Spiking max pooling: LIPooling's cumulative-max identity and the spike-count gate."""

import numpy as np
from dyadic import dyadic
from hypothesis import example, given, settings
from hypothesis import strategies as st

import evsim
from evsim import Conv2d, Flatten, MaxPool2d, NeuronSpec, ReLU, SpikingNetwork
from evsim.encoding import rate_spikes
from evsim.pooling import spiking_maxpool
from evsim.simulate.compile import compile_program
from evsim.simulate.kernels import CODE, MP_COUNTS_IN, MP_CUM_IN, OP_MAXPOOL, pool_scan

FAST = settings(max_examples=20, deadline=None, derandomize=True)


def _pool_loop(x, k, s, p):
    """Max over each window of x (C, H, W), padding ignored; direct definition."""
    c, h, w = x.shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.empty((c, ho, wo), dtype=x.dtype)
    for ch in range(c):
        for i in range(ho):
            for j in range(wo):
                ys = range(max(i * s - p, 0), min(i * s - p + k, h))
                xs = range(max(j * s - p, 0), min(j * s - p + k, w))
                out[ch, i, j] = max(x[ch, y, xx] for y in ys for xx in xs)
    return out


def _rate_pool_net(shape, k, s, p, mode):
    net = evsim.Network.sequential(shape, [MaxPool2d(k, s, p), Flatten()])
    return SpikingNetwork(net, {}, max_pool=mode)


@FAST
@given(seed=st.integers(0, 2**31), T=st.integers(1, 30), k=st.sampled_from([2, 3]),
       s=st.sampled_from([1, 2]), p=st.sampled_from([0, 1]))
def test_lipooling_output_count_is_max_of_input_counts(seed, T, k, s, p):
    """After every step, Σ output = maxpool(Σ input), exactly, even with overlapping windows."""
    rng = np.random.default_rng(seed)
    x = rng.random((3, 2, 7, 7))
    snn = _rate_pool_net((2, 7, 7), k, s, p, "lipooling")
    r = evsim.simulate(snn, x, T=T, encoding="rate", checkpoints=range(1, T + 1), seed=seed)
    cumulative = np.zeros(x.shape, np.int64)
    for t in range(1, T + 1):
        cumulative += rate_spikes(x, seed, np.arange(3), t)
        for b in range(3):
            expected = _pool_loop(cumulative[b], k, s, p).reshape(-1)
            np.testing.assert_array_equal(r.outputs[t - 1, b], expected)


def test_lipooling_emits_multiplicities_above_one():
    """With overlapping windows a window can owe more than one spike in a single step."""
    # A burst of 3 at a second member lifts the window's max of cumulative counts from 1 to 3.
    layer = MaxPool2d(2, 1)
    c_in, c_out = np.zeros((1, 1, 2, 2), np.int64), np.zeros((1, 1, 1, 1), np.int64)
    steps = [[[0, 0], [0, 0]], [[1, 0], [0, 0]], [[0, 3], [0, 0]]]
    out = [spiking_maxpool("lipooling", layer, np.array(s).reshape(1, 1, 2, 2), c_in, c_out)
           .item() for s in steps]
    assert out == [0, 1, 2]


@FAST
@given(seed=st.integers(0, 2**31), T=st.integers(1, 25), burst=st.integers(1, 3))
def test_lipooling_identity_with_burst_spikes(seed, T, burst):
    """The identity holds for spike multiplicities from burst neurons, through the whole engine."""
    rng = np.random.default_rng(seed)
    w = dyadic(rng, (3, 2, 1, 1), low=0)
    net = evsim.Network.sequential((2, 6, 6), [Conv2d(w), ReLU(), MaxPool2d(3, 2), Flatten()],
                                   names=["conv", "relu", "pool", "flat"])
    snn = SpikingNetwork(net, {"relu": NeuronSpec(np.float64(0.125), burst=burst)})
    x = dyadic(rng, (2, 2, 6, 6), low=0)
    r = evsim.simulate(snn, x, T=T, engine="dense", record="relu", checkpoints=range(1, T + 1))
    train = r.spike_trains["relu"]
    cumulative = np.zeros((2, 3 * 6 * 6), np.int64)
    for t in range(1, T + 1):
        now = train.steps == t
        np.add.at(cumulative, (train.images[now], train.neurons[now]), train.counts[now])
        for b in range(2):
            expected = _pool_loop(cumulative[b].reshape(3, 6, 6), 3, 2, 0).reshape(-1) * 0.125
            np.testing.assert_array_equal(r.outputs[t - 1, b], expected)


def _pool_row(snn, encoding="analog", binary=False):
    """The event program of ``snn`` and its (first) max pooling row."""
    program = compile_program(snn, encoding, np.float32, binary=binary)
    return program, program.ops[program.ops[:, CODE] == OP_MAXPOOL][0]


@FAST
@given(seed=st.integers(0, 2**31), T=st.integers(1, 20), burst=st.integers(1, 3),
       mode=st.sampled_from(["lipooling", "gate"]))
def test_a_pool_of_a_neuron_layer_reads_that_layers_spike_counts(seed, T, burst, mode):
    """The event engine's max pooling of a neuron layer takes its cumulative input counts from
    that layer's own spike counts (MP_COUNTS_IN; it keeps no copy: MP_CUM_IN = -1), here the
    second neuron layer's, with burst multiplicities: the outputs equal the dense engine's
    (its own cumulative counts) at every step, the spike counts equal the dense engine's, and,
    for LIPooling, the outputs at T are max-pool of the spike counts."""
    rng = np.random.default_rng(seed)
    net = evsim.Network.sequential(
        (1, 6, 6), [Conv2d(dyadic(rng, (2, 1, 1, 1), low=0)), ReLU(),
                    Conv2d(dyadic(rng, (3, 2, 1, 1), low=0)), ReLU(), MaxPool2d(3, 2), Flatten()],
        names=["conv1", "relu1", "conv2", "relu2", "pool", "flat"])
    spec = NeuronSpec(np.float64(0.125), burst=burst)
    snn = SpikingNetwork(net, {"relu1": spec, "relu2": spec}, max_pool=mode)
    program, row = _pool_row(snn)
    offsets = {name: offset for name, offset, *_ in program.neuron_layers}
    assert row[MP_COUNTS_IN] == offsets["relu2"] > 0 and row[MP_CUM_IN] == -1
    x = dyadic(rng, (2, 1, 6, 6), low=0)
    steps = range(1, T + 1)
    event = evsim.simulate(snn, x, T=T, engine="event", checkpoints=steps, per_image_counts=True)
    dense = evsim.simulate(snn, x, T=T, engine="dense", checkpoints=steps, per_image_counts=True)
    np.testing.assert_array_equal(event.outputs, dense.outputs)
    for name in ("relu1", "relu2"):  # the pool read the counts and left them as they were
        np.testing.assert_array_equal(event.spike_counts[name], dense.spike_counts[name])
    for b in range(2 if mode == "lipooling" else 0):
        expected = _pool_loop(event.spike_counts["relu2"][b], 3, 2, 0).reshape(-1) * 0.125
        np.testing.assert_array_equal(event.outputs[-1, b], expected)


def test_pools_that_cannot_share_counts_keep_their_own():
    """A pool of the rate-coded input (no neuron layer) and one of K-bit codes (counts add
    their set bits, the pool their values) keep their own cumulative input counts."""
    relu_pool = evsim.Network.sequential((1, 4, 4), [Conv2d(np.ones((1, 1, 1, 1))), ReLU(),
                                                     MaxPool2d(2), Flatten()])
    spec = {"relu1": NeuronSpec(np.float64(1.0))}
    for snn, encoding, binary in (
            (_rate_pool_net((2, 4, 4), 2, 2, 0, "lipooling"), "rate", False),
            (_rate_pool_net((2, 4, 4), 2, 2, 0, "gate"), "rate", False),
            (SpikingNetwork(relu_pool, spec), "analog", True),
            (SpikingNetwork(relu_pool, spec, max_pool="gate"), "analog", True)):
        _, row = _pool_row(snn, encoding, binary)
        assert row[MP_COUNTS_IN] == -1 and row[MP_CUM_IN] >= 0


@FAST
@given(seed=st.integers(0, 2**31), T=st.integers(1, 20))
def test_gate_passes_the_spikes_of_the_most_active_member(seed, T):
    """Gate: each window passes this step's spikes of the member with the largest cumulative
    count so far (this step included), the first such member in row-major order on ties."""
    rng = np.random.default_rng(seed)
    x = rng.random((2, 1, 5, 5))
    snn = _rate_pool_net((1, 5, 5), 3, 2, 0, "gate")
    r = evsim.simulate(snn, x, T=T, encoding="rate", checkpoints=range(1, T + 1), seed=seed)
    cumulative = np.zeros(x.shape, np.int64)
    total = np.zeros((2, 4), np.int64)
    for t in range(1, T + 1):
        now = rate_spikes(x, seed, np.arange(2), t)
        cumulative += now
        for b in range(2):
            for i in range(2):
                for j in range(2):
                    members = [(y, xx) for y in range(2 * i, 2 * i + 3)
                               for xx in range(2 * j, 2 * j + 3)]
                    best = max(members, key=lambda m: (cumulative[b, 0][m], -members.index(m)))
                    total[b, 2 * i + j] += now[b, 0][best]
        np.testing.assert_array_equal(r.outputs[t - 1], total)


def test_pool_ops_count_accumulator_updates():
    """A MaxPool counts one accumulator update per incoming spike per window containing it."""
    x = np.ones((1, 1, 3, 3))  # rate encoding with p = 1: every pixel spikes every step
    snn = _rate_pool_net((1, 3, 3), 2, 1, 0, "lipooling")
    r = evsim.simulate(snn, x, T=3, encoding="rate")
    # windows 2x2 stride 1 on 3x3: the corner pixels are in 1 window, edges in 2, centre in 4
    assert r.pool_ops["maxpool2d1"].tolist() == [4 * 1 + 4 * 2 + 4] * 3
    assert r.sops == {}


@FAST
@example(seed=1, steps=4, k=2, s=2, p=0, ceil=False, mode="gate", dtype=np.float32)
@example(seed=2, steps=4, k=2, s=2, p=0, ceil=False, mode="lipooling", dtype=np.float64)
@given(seed=st.integers(0, 2**31), steps=st.integers(1, 6), k=st.integers(1, 3),
       s=st.integers(1, 3), p=st.integers(0, 1), ceil=st.booleans(),
       mode=st.sampled_from(["gate", "lipooling"]), dtype=st.sampled_from([np.float32, np.float64]))
def test_compiled_pool_scan_follows_the_readable_definition_step_for_step(
        seed, steps, k, s, p, ceil, mode, dtype):
    """The dense engine's compiled block pass gives spiking_maxpool's spikes, values and
    state exactly, on multiplicities of both signs, over images split into two ranges
    (the examples: its 2×2 / stride 2 path), and the spikes' sums over the images: |s|
    per step and s over the steps."""
    layer = MaxPool2d(k, s, min(p, k // 2), ceil_mode=ceil)
    rng = np.random.default_rng(seed)
    batch, shape = 3, (2, 5, 6)
    _, ho, wo = layer.output_shape([shape])
    incoming = rng.integers(-2, 4, (steps, batch) + shape).astype(np.int32)
    amplitude = rng.random(2).astype(dtype)
    c_in, c_out = np.zeros((batch,) + shape, np.int64), np.zeros((batch, 2, ho, wo), np.int64)
    spikes = np.empty((steps, batch, 2, ho, wo), np.int32)
    values = np.empty(spikes.shape, dtype)
    sent, net = np.zeros((steps, 2 * ho * wo), np.int64), np.zeros(2 * ho * wo, np.int64)
    for lo, hi in ((0, 1), (1, batch)):
        pool_scan(incoming, c_in, c_out, layer.kernel_size, layer.stride, layer.padding,
                  mode == "lipooling", amplitude, spikes, values, sent, net, lo, hi)
    ref_in, ref_out = np.zeros_like(c_in), np.zeros_like(c_out)
    want_net = np.zeros(2 * ho * wo, np.int64)
    for t in range(steps):
        expected = spiking_maxpool(mode, layer, incoming[t], ref_in, ref_out)
        np.testing.assert_array_equal(spikes[t], expected)
        np.testing.assert_array_equal(
            values[t], np.multiply(expected, amplitude[:, None, None], dtype=dtype))
        flat = expected.reshape(batch, -1).astype(np.int64)
        np.testing.assert_array_equal(sent[t], np.abs(flat).sum(axis=0))
        want_net += flat.sum(axis=0)
    np.testing.assert_array_equal(net, want_net)
    np.testing.assert_array_equal(c_in, ref_in)
    np.testing.assert_array_equal(c_out, ref_out)
