"""Transposed convolutions and depthwise convolutions with a channel multiplier in both
engines: event == dense == the naive reference, spike for spike, SOP for SOP, on dyadic
networks (``tests/netgen.py``), and the event engine's runs add exactly the existing
targets of an event (no dense scan of the output)."""

import numpy as np
import pytest
from dyadic import dyadic
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from netgen import random_upsampling_network

import evsim
import naive_reference as naive
from evsim import layers as L
from evsim.simulate.compile import _runs


def _assert_agree(reference, result):
    name = result.engine
    np.testing.assert_array_equal(result.outputs.astype(np.float64), reference.outputs,
                                  err_msg=f"{name}: outputs")
    for layer, counts in reference.spike_counts.items():
        np.testing.assert_array_equal(result.spike_counts[layer], counts,
                                      err_msg=f"{name}: spikes of {layer}")
    assert result.sops.keys() == reference.sops.keys(), name
    for layer, sops in reference.sops.items():
        np.testing.assert_array_equal(result.sops[layer], sops, err_msg=f"{name}: SOPs {layer}")
    assert result.macs == reference.macs, name


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), T=st.integers(1, 10),
       encoding=st.sampled_from(["analog", "rate"]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_engines_equal_the_naive_reference(seed, T, encoding, dtype):
    """ConvTranspose2d (stride, padding, output_padding, dilation, groups) of the analog
    input, of spikes and of average-pooled spikes; depthwise convolutions with a multiplier."""
    snn, x = random_upsampling_network(seed)
    reference = naive.simulate(snn, x, T, encoding=encoding, seed=seed % 1000)
    for engine in ("event", "dense"):
        _assert_agree(reference, evsim.simulate(snn, x, T=T, engine=engine, encoding=encoding,
                                                dtype=dtype, seed=seed % 1000,
                                                per_image_counts=True))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)), multiplier=st.integers(1, 2))
def test_a_depthwise_window_of_any_geometry_equals_the_naive_reference(
        seed, kernel, stride, padding, dilation, multiplier):
    """The event engine finds a depthwise event's taps without a division per tap: strides
    above the kernel's size (inputs that reach no output), padding that puts taps off every
    border, dilation and a multiplier all add what the naive reference adds."""
    rng = np.random.default_rng(seed)
    c, h, w = 3, int(rng.integers(3, 10)), int(rng.integers(3, 10))
    depthwise = L.Conv2d(dyadic(rng, (multiplier * c, 1) + kernel, bits=2, kmax=3),
                         dyadic(rng, multiplier * c, bits=3, kmax=3), stride=stride,
                         padding=padding, dilation=dilation, groups=c)
    try:
        depthwise.output_shape([(c, h, w)])
    except L.ShapeError:
        assume(False)
    b = evsim.NetworkBuilder((c, h, w))
    b.add_layer(L.Conv2d(dyadic(rng, (c, c, 1, 1), bits=2, low=0, kmax=4)))
    b.add_layer(L.ReLU())
    b.add_layer(depthwise)
    b.add_layer(L.ReLU())
    b.add_layer(L.Flatten())
    b.add_layer(L.Dense(dyadic(rng, (2, b.shape(b.last)[0]), bits=2, kmax=2)))
    net = b.build()
    snn = evsim.SpikingNetwork(net, {name: evsim.NeuronSpec(0.25 * int(rng.integers(1, 5)))
                                     for name in net.activations})
    x = dyadic(rng, (2, c, h, w), bits=3, low=0, kmax=8)
    reference = naive.simulate(snn, x, 6)
    _assert_agree(reference, evsim.simulate(snn, x, T=6, engine="event",
                                            per_image_counts=True))


@settings(max_examples=16, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), scheme=st.sampled_from(["temporal", "ilif"]),
       window=st.sampled_from([1, 3, 5]))
def test_the_windowed_schemes_equal_the_naive_reference(seed, scheme, window):
    """A window's bias (the temporal scheme) and K-bit codes (ilif) through transposed and
    depthwise convolutions; thresholds powers of two."""
    base, x = random_upsampling_network(seed)
    rng = np.random.default_rng(seed)
    neurons = {name: evsim.NeuronSpec(2.0 ** int(rng.integers(-2, 2))) for name in base.neurons}
    snn = evsim.SpikingNetwork(base.network, neurons, time_scheme=scheme)
    reference = naive.simulate(snn, x, window)
    for engine in ("event", "dense"):
        _assert_agree(reference, evsim.simulate(snn, x, T=window, engine=engine,
                                                per_image_counts=True))


def test_the_suite_is_not_vacuous():
    """On the generated networks, transposed and depthwise convolutions receive SOPs (of
    plain and of pooled spikes) and change the readout."""
    fed = set()
    pooled = 0
    for seed in range(25):
        snn, x = random_upsampling_network(seed)
        r = naive.simulate(snn, x, 8)
        for layer, sops in r.sops.items():
            node = snn.network[layer]
            if sops.sum() > 0:
                depthwise = isinstance(node.layer, L.Conv2d) and node.layer.groups > 1 and (
                    node.layer.weight.shape[1] == 1)
                fed.add("depthwise" if depthwise else type(node.layer).__name__)
                pooled += isinstance(snn.network[node.inputs[0]].layer, L.AvgPool2d)
    assert {"ConvTranspose2d", "depthwise", "Dense"} <= fed
    assert pooled > 0


@pytest.mark.parametrize("layer, shape", [
    (L.ConvTranspose2d(np.ones((3, 2, 2, 2)), stride=2), (3, 4, 5)),
    (L.ConvTranspose2d(np.ones((4, 1, 3, 3)), stride=(2, 1), padding=1, output_padding=(1, 0),
                       dilation=(1, 2), groups=2), (4, 3, 4)),
    (L.Conv2d(np.ones((6, 1, 3, 3)), padding=1, groups=3), (3, 5, 5)),  # multiplier 2
    (L.Conv2d(np.ones((9, 1, 3, 2)), stride=2, dilation=(2, 1), groups=3), (3, 7, 6)),
])
def test_an_event_adds_exactly_its_existing_targets(layer, shape):
    """The runs of every source neuron cover each of its targets once: their lengths sum to
    its exact fan-out (so an event costs its SOPs, never a scan of the output), and they add
    into distinct outputs."""
    runs = _runs(shape, [], layer, shape)
    fanout = evsim.fanout.path_fanout(shape, [], layer, shape)
    out_size = int(np.prod(layer.output_shape([shape])))
    for c in range(shape[0]):
        for s in range(shape[1] * shape[2]):
            r = slice(runs.ptr[s], runs.ptr[s + 1])
            assert runs.length[r].sum() == fanout[c].reshape(-1)[s]
            targets = np.concatenate([np.zeros(0, np.int64)] + [
                np.arange(o, o + n) for o, n in zip(runs.out[r] + runs.channel_out[c],
                                                    runs.length[r])])
            assert len(set(targets)) == len(targets)
            assert np.all((targets >= 0) & (targets < out_size))


def test_a_2x2_stride_2_transposed_convolution_adds_one_run_per_kernel_row():
    """With one group and dilation 1 a kernel row's runs are contiguous and merge."""
    runs = _runs((3, 4, 4), [], L.ConvTranspose2d(np.ones((3, 5, 2, 2)), stride=2), (3, 4, 4))
    np.testing.assert_array_equal(np.diff(runs.ptr), 2)
    np.testing.assert_array_equal(runs.length, 10)


@pytest.mark.parametrize("head", [L.Sigmoid(), L.Softmax()])
def test_an_output_head_decodes_the_readout_as_the_naive_reference_does(head):
    """The spiking network of an ANN that ends in a head reads the head's input; both
    engines' raw readouts equal the reference's, and the head applied to their mean readout
    equals the reference's head at every checkpoint."""
    base, x = random_upsampling_network(3)
    b = evsim.NetworkBuilder(base.network.input_shape)
    for node in list(base.network)[1:]:
        b.add_layer(node.layer, *node.inputs, name=node.name)
    b.add_layer(head, name="head")
    ann = b.build()
    assert evsim.passes.output_head(ann) is head
    snn = evsim.SpikingNetwork(evsim.passes.drop_output_head(ann), base.neurons)
    reference = naive.simulate(snn, x, 8)
    expected = naive.head_output(head, reference.outputs, reference.checkpoints)
    for engine in ("event", "dense"):
        result = evsim.simulate(snn, x, T=8, engine=engine, dtype=np.float64)
        np.testing.assert_array_equal(result.outputs, reference.outputs)
        for k, step in enumerate(result.checkpoints):
            np.testing.assert_allclose(
                evsim.kinds.apply(head, [result.mean_output(int(step))]), expected[k],
                rtol=1e-12, atol=1e-15)
    for engine in ("event", "dense"):  # a head left in a spiking network is refused
        with pytest.raises(evsim.signals.ConversionError,
                           match="layer 'head' .* cannot carry it"):
            evsim.simulate(evsim.SpikingNetwork(ann, base.neurons), x, T=2, engine=engine)


@pytest.mark.parametrize("layer, shape", [
    (L.Conv2d(np.ones((8, 1, 3, 3)), padding=1, groups=8), (8, 6, 7)),  # the unrolled case
    (L.Conv2d(np.ones((5, 1, 3, 3)), padding=(0, 2), groups=5), (5, 5, 4)),
    (L.Conv2d(np.ones((6, 1, 3, 3)), padding=1, groups=3), (3, 5, 5)),  # multiplier 2
    (L.Conv2d(np.ones((27, 1, 3, 2)), stride=2, dilation=(2, 1), groups=3), (3, 7, 6)),
    (L.Conv2d(np.ones((4, 1, 1, 1)), stride=(1, 2), groups=4), (4, 3, 5)),
    (L.Conv2d(np.ones((4, 1, 3, 3)), padding=1, groups=4), (4, 2, 6)),  # 3×3, two rows
    (L.Conv2d(np.ones((4, 1, 3, 3)), padding=1, groups=4), (4, 5, 1)),  # 3×3, one column
    (L.Conv2d(np.ones((1, 1, 3, 3)), padding=(2, 1)), (1, 4, 5)),  # 3×3, one channel
    # 3×3 stride 2 (MobileNet's downsampling): even and odd sizes, paddings 0, 1 and 2
    # (windows sticking out at the far border), a single row of outputs, M = 2
    (L.Conv2d(np.ones((8, 1, 3, 3)), stride=2, padding=1, groups=8), (8, 8, 7)),
    (L.Conv2d(np.ones((5, 1, 3, 3)), stride=2, groups=5), (5, 9, 6)),
    (L.Conv2d(np.ones((4, 1, 3, 3)), stride=2, padding=(2, 0), groups=4), (4, 7, 8)),
    (L.Conv2d(np.ones((3, 1, 3, 3)), stride=2, padding=(0, 1), groups=3), (3, 3, 10)),
    (L.Conv2d(np.ones((6, 1, 3, 3)), stride=2, padding=1, groups=3), (3, 6, 6)),
])
@pytest.mark.parametrize("ordered", [True, False])
@pytest.mark.parametrize("table", [True, False])
def test_the_depthwise_kernel_adds_what_the_runs_add(layer, shape, ordered, table,
                                                     monkeypatch):
    """A depthwise convolution reading spikes directly has its own scatter, which reads
    each event's taps from a table (or walks its window, where the table would be too
    large; the 3×3, stride 1, multiplier 1 window always has its own loop): on random float
    weights and events (ascending as a neuron layer emits them, or in any order as the rate
    encoder does; multiplicities up to 3) its sums are bit for bit, and its SOPs, those of
    the generic runs."""
    from evsim.simulate import compile as C
    from evsim.simulate import kernels as K
    from evsim.simulate.compile import compile_program
    if not table:
        monkeypatch.setattr(C, "TAP_TABLE_BYTES", 0)
    rng = np.random.default_rng(shape[0])
    layer = L.Conv2d(rng.normal(size=layer.weight.shape).astype(np.float32), None,
                     layer.stride, layer.padding, layer.dilation, layer.groups)
    snn = evsim.SpikingNetwork(evsim.Network.sequential(shape, [layer]), {})
    program = compile_program(snn, "rate", np.float32)
    op = next(row for row in program.ops if row[K.CODE] == K.OP_SCATTER)
    assert op[K.SC_WINDOW] >= 0
    generic = op.copy()
    generic[K.SC_WINDOW] = -1
    n = int(np.prod(shape))
    idx = rng.choice(n, n // 2, replace=False).astype(np.int32)
    idx = np.sort(idx) if ordered else idx
    mult = rng.integers(1, 4, idx.size).astype(np.float32)
    own_loop = (layer.kernel_size == (3, 3) and layer.stride == layer.dilation == (1, 1)
                and layer.weight.shape[0] == layer.groups)
    assert (program.iparams[op[K.SC_WINDOW] + K.WIN_PER] > 0) == (table and not own_loop)
    sums, sops = [], []
    for row in (op, generic):
        buf = np.zeros(program.float_size, np.float32)
        sops.append(K._scatter(row, program.iparams, program.fparams, buf, idx, mult, 0,
                               idx.size, False, 1))
        sums.append(_outside_scratch(program, op, buf).view(np.int32))
    np.testing.assert_array_equal(sums[0], sums[1])
    assert sops[0] == sops[1] > 0


def _outside_scratch(program, op, buf: np.ndarray) -> np.ndarray:
    """``buf`` with a tap table's scratch floats (which padding taps add to, and nothing
    reads) set to zero."""
    from evsim.simulate import kernels as K
    g = op[K.SC_WINDOW]
    scratch, size = program.iparams[g + K.WIN_SCRATCH], program.iparams[g + K.WIN_OUT_C]
    if scratch >= 0:
        buf = buf.copy()
        buf[scratch:scratch + size] = 0
    return buf


# multiplier 1, stride 1: the 3×3 loop, on a slice of the output; stride 2: the tap table
@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
def test_the_depthwise_kernel_reads_each_source_of_a_concat_at_its_channels(multiplier,
                                                                           stride):
    """Through a Concat each source's events reach their own channels of the depthwise
    layer: both scatters take the depthwise kernel and add what their runs add."""
    from evsim.network import NetworkBuilder
    from evsim.simulate import kernels as K
    from evsim.simulate.compile import compile_program
    rng = np.random.default_rng(7)
    b = NetworkBuilder((3, 5, 6))
    first = b.add_layer(L.ReLU(), name="first")
    second = b.add_layer(L.Conv2d(np.ones((2, 3, 1, 1), np.float32)), name="conv")
    second = b.add_layer(L.ReLU(), second, name="second")
    joined = b.add_layer(L.Concat(), first, second)
    b.add_layer(L.Conv2d(rng.normal(size=(5 * multiplier, 1, 3, 3)).astype(np.float32),
                         padding=1, groups=5, stride=stride), joined)
    snn = evsim.SpikingNetwork(b.build(), {"first": evsim.NeuronSpec(1.0),
                                           "second": evsim.NeuronSpec(1.0)})
    program = compile_program(snn, "analog", np.float32)
    scatters = [row for row in program.ops
                if row[K.CODE] == K.OP_SCATTER and row[K.SC_WINDOW] >= 0]
    assert len(scatters) == 2
    for op, channels in zip(scatters, (3, 2)):
        generic = op.copy()
        generic[K.SC_WINDOW] = -1
        idx = np.sort(rng.choice(channels * 30, 20, replace=False)).astype(np.int32)
        mult = rng.integers(1, 3, idx.size).astype(np.float32)
        sums, sops = [], []
        for row in (op, generic):
            buf = np.zeros(program.float_size, np.float32)
            sops.append(K._scatter(row, program.iparams, program.fparams, buf, idx, mult, 0,
                                   idx.size, False, 1))
            sums.append(_outside_scratch(program, op, buf).view(np.int32))
        np.testing.assert_array_equal(sums[0], sums[1])
        assert sops[0] == sops[1] > 0
