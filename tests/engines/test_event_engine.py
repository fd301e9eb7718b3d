"""The event engine's machinery: program layout, blocks of steps, Ctrl-C, first-compile notice."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from interruptible import default_sigint
from netgen import random_network

import evsim
from evsim.simulate import event, kernels
from evsim.simulate.compile import _Builder, compile_program

PREFIXES = {kernels.OP_RATE: "RATE_", kernels.OP_FILL: "FILL_", kernels.OP_ADD: "ADD_",
            kernels.OP_COPYPERM: "PERM_", kernels.OP_SCATTER: "SC_",
            kernels.OP_NEURON: "NR_", kernels.OP_MAXPOOL: "MP_"}


def test_every_operation_has_a_layout_and_named_columns_in_order():
    codes = sorted(v for k, v in vars(kernels).items() if k.startswith("OP_") and k != "OP_WIDTH")
    assert codes == list(range(len(codes))) == sorted(kernels.LAYOUT) == sorted(PREFIXES)
    for code, names in kernels.LAYOUT.items():
        constants = {k: v for k, v in vars(kernels).items() if k.startswith(PREFIXES[code])}
        # one constant per column name, numbered from 1 in layout order, inside a row
        assert sorted(constants.values()) == list(range(1, len(names) + 1)), code
        for column, name in enumerate(names, start=1):
            assert constants[PREFIXES[code] + name.upper()] == column, (code, name)
        assert len(names) < kernels.OP_WIDTH


@numba.njit
def _quotient_of(i, d):
    return kernels._quotient(i, kernels._reciprocal(d))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.integers(0, 2**31 - 1), st.integers(1, 2**31 - 1))
def test_quotient_by_multiplication_equals_integer_division(i, d):
    """The kernels' division-free position of an event, over the whole int32 index range;
    the quotient's edges (multiples of d and their neighbours) are checked too."""
    assert _quotient_of(i, d) == i // d
    k = i // d
    for j in (k * d - 1, k * d, k * d + d - 1):
        if 0 <= j < 2**31:
            assert _quotient_of(j, d) == j // d


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False),
       st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_reset_rounds_like_the_float64_difference(m, theta):
    """The Γ = 1 reset subtracts θ in float32 (kernels and evsim.neuron alike); the general rule
    forms m − sθ in float64 and rounds once. The two agree: rounding through 53 bits first
    cannot change a difference of 24-bit operands."""
    a, b = np.float32(m), np.float32(theta)
    with np.errstate(over="ignore"):
        assert (a - b) == np.float32(np.float64(a) - np.float64(b))


@pytest.mark.parametrize("n_out", [13, 32])
def test_dense_rows_are_added_in_event_order_bit_for_bit(n_out):
    """A dense layer's scatter (four rows per pass over the outputs, then the leftovers) adds
    into each output exactly as one event after another would, in float32, for every count
    of events (so every count of leftover rows); reading the input directly, its rows are
    computed from the neuron's index, not looked up (SC_AFFINE_ROWS)."""
    from evsim import Dense, Network, SpikingNetwork
    rng = np.random.default_rng(3)
    layer = Dense(rng.normal(size=(n_out, 11)).astype(np.float32))
    snn = SpikingNetwork(Network.sequential((11,), [layer]), {})
    program = compile_program(snn, "rate", np.float32)
    op = next(row for row in program.ops if row[kernels.CODE] == kernels.OP_SCATTER)
    assert op[kernels.SC_ROW] == n_out and op[kernels.SC_AFFINE_ROWS] == 1
    weights = np.asarray(layer.weight, np.float32)
    for n_events in range(10):
        idx = np.sort(rng.choice(11, n_events, replace=False)).astype(np.int32)
        mult = rng.integers(1, 4, n_events).astype(np.float32)
        buf = np.zeros(program.float_size, np.float32)
        start = rng.normal(size=n_out).astype(np.float32)
        buf[op[kernels.SC_DST]:op[kernels.SC_DST] + n_out] = start
        sops = kernels._scatter(op, program.iparams, program.fparams, buf, idx, mult, 0,
                                n_events, False, None)
        expected = start.copy()
        for i, m in zip(idx, mult):
            expected += np.float32(m) * weights[:, i]  # the input's amplitude is 1
        np.testing.assert_array_equal(buf[op[kernels.SC_DST]:op[kernels.SC_DST] + n_out],
                                      expected)
        assert sops == int(mult.sum()) * n_out


@pytest.mark.parametrize("pool", [(3, 2, 1), (1, 2, 0)])
def test_dense_rows_of_pooled_sources_follow_their_runs_in_order(pool):
    """A dense layer read through average pooling: a source neuron adds no row, one or
    several (overlapping windows: one per pooled output, each scaled by its factor), and
    the rows kernel adds them in event and run order, as a loop over the program's own
    tables does, bit for bit, for every count of events."""
    from evsim import Dense, Network, SpikingNetwork
    from evsim.layers import AvgPool2d, Flatten
    kernel, stride, padding = pool
    rng = np.random.default_rng(5)
    shape = (2, 5, 5)
    n_pooled = 2 * ((5 + 2 * padding - kernel) // stride + 1) ** 2
    layers = [AvgPool2d(kernel, stride, padding), Flatten(),
              Dense(rng.normal(size=(9, n_pooled)).astype(np.float32))]
    snn = SpikingNetwork(Network.sequential(shape, layers), {})
    program = compile_program(snn, "rate", np.float32)
    op = next(row for row in program.ops if row[kernels.CODE] == kernels.OP_SCATTER)
    assert op[kernels.SC_ROW] == 9 and op[kernels.SC_AFFINE_ROWS] == 0  # rows looked up
    ip, fp, k = program.iparams, program.fparams, kernels
    runs = np.diff(ip[op[k.SC_RUN_PTR]:op[k.SC_RUN_PTR] + 26])
    assert runs.min() == (0 if kernel == 1 else 1) and runs.max() > 1 - (kernel == 1)
    dst = op[k.SC_DST]
    for n_events in range(12):
        idx = np.sort(rng.choice(50, n_events, replace=False)).astype(np.int32)
        mult = rng.integers(1, 4, n_events).astype(np.float32)
        buf = np.zeros(program.float_size, np.float32)
        buf[dst:dst + 9] = rng.normal(size=9).astype(np.float32)
        expected, sops = buf[dst:dst + 9].copy(), 0
        for i, m in zip(idx, mult):
            s, c = divmod(int(i), 2)  # channels-last source
            a = m * fp[op[k.SC_AMPLITUDE] + i]
            w0 = op[k.SC_WEIGHTS] + ip[op[k.SC_CHANNEL_W] + c]
            for r in range(ip[op[k.SC_RUN_PTR] + s], ip[op[k.SC_RUN_PTR] + s + 1]):
                start = w0 + ip[op[k.SC_RUN_W] + r]
                expected += (a * fp[op[k.SC_RUN_FACTOR] + r]) * fp[start:start + 9]
            sops += int(m) * ip[op[k.SC_FANOUT] + s]
        done = kernels._scatter(op, ip, fp, buf, idx, mult, 0, n_events, False, None)
        np.testing.assert_array_equal(buf[dst:dst + 9], expected)
        assert done == sops


def test_builder_refuses_rows_with_missing_or_unknown_columns():
    b = _Builder(np.float32)
    with pytest.raises(ValueError, match="do not match its layout"):
        b.op(kernels.OP_ADD, dst=0, src=1)
    with pytest.raises(ValueError, match="do not match its layout"):
        b.op(kernels.OP_ADD, dst=0, src=1, size=2, stride=3)
    b.op(kernels.OP_ADD, dst=4, src=5, size=6)
    assert b.ops == [[kernels.OP_ADD, 4, 5, 6] + [0] * (kernels.OP_WIDTH - 4)]


def test_compiled_rows_point_inside_the_workspaces():
    """Decoded by column name, every buffer and table a row names lies inside its array, and
    a neuron layer's event list has room for its neurons and the spare entries its
    emission writes."""
    for seed in range(8):
        snn, _ = random_network(seed)
        program = compile_program(snn, "rate", np.float32)
        n_slots = len(program.event_offsets) - 1
        for row in program.ops:
            column = dict(zip(kernels.LAYOUT[row[kernels.CODE]], row[1:]))
            for name in ("slot", "src_slot", "out_slot"):
                if name in column:
                    assert 0 <= column[name] < n_slots
            if row[kernels.CODE] == kernels.OP_NEURON:  # its events, then the spare entries
                slot, size = column["slot"], column["size"]
                assert program.event_sizes[slot] == size
                assert (program.event_offsets[slot + 1] - program.event_offsets[slot]
                        == size + kernels.EMIT_SPARE)
                end = column["current"] + column["size"]
                assert 0 <= column["current"] and end <= program.float_size
                assert column["v"] + column["size"] <= program.float_size
                assert column["theta"] + column["size"] <= len(program.fparams)
            if row[kernels.CODE] == kernels.OP_SCATTER:
                assert 0 <= column["dst"] < program.float_size
                for table in ("run_ptr", "run_out", "run_w", "run_len", "fanout"):
                    assert 0 <= column[table] < len(program.iparams)


@pytest.mark.parametrize("stride,padding,dilation,groups", [
    ((1, 1), (1, 1), (1, 1), 1), ((2, 1), (1, 0), (1, 1), 2), ((1, 2), (0, 2), (2, 1), 1),
    ((3, 2), (2, 1), (1, 2), 3)])
def test_runs_add_exactly_the_counted_fanout_of_every_source(stride, padding, dilation, groups):
    """With no pooling folded in, an event's runs write each existing target once, so the
    floats they add equal the fan-out the SOPs are counted from (borders clipped)."""
    from evsim import Conv2d
    from evsim.fanout import path_fanout
    from evsim.simulate.compile import _runs
    rng = np.random.default_rng(0)
    shape = (6, 7, 8)
    conv = Conv2d(rng.normal(size=(6 * groups, 6 // groups, 3, 2)), stride=stride, padding=padding,
                  dilation=dilation, groups=groups)
    runs = _runs(shape, [], conv, shape)
    fanout = path_fanout(shape, [], conv, shape)  # (C, H, W)
    covered = np.add.reduceat(runs.length, runs.ptr[:-1]) * (np.diff(runs.ptr) > 0)
    np.testing.assert_array_equal(covered.reshape(shape[1:]), fanout[0])
    assert np.all(fanout == fanout[:1])  # the same for every channel of a position


def test_a_positions_events_share_its_runs_only_where_the_runs_write_distinct_outputs():
    """The scatter adds a position's events run by run (up to four at once) only when all
    channels reach the same outputs and the runs of every position are disjoint: so in a
    plain convolution and through a pool of non-overlapping windows, but not in a grouped
    convolution, nor through an overlapping AvgPool folded into the runs,
    where one event writes an output from several runs and grouping events would reorder
    that output's adds."""
    from evsim import AvgPool2d, Conv2d
    from evsim.simulate.compile import _disjoint, _runs
    conv = Conv2d(np.ones((4, 3, 3, 3)), padding=1)
    assert _disjoint(_runs((3, 6, 6), [], conv, (3, 6, 6))) == 1
    assert _disjoint(_runs((3, 12, 12), [(AvgPool2d(2, 2, 0), (3, 12, 12))], conv,
                           (3, 6, 6))) == 1
    depthwise = Conv2d(np.ones((3, 1, 3, 3)), padding=1, groups=3)  # channels reach apart
    assert _disjoint(_runs((3, 6, 6), [], depthwise, (3, 6, 6))) == 0
    overlapping = _runs((3, 7, 7), [(AvgPool2d(2, 1, 0), (3, 7, 7))], conv, (3, 6, 6))
    assert _disjoint(overlapping) == 0
    for s in range(len(overlapping.ptr) - 1):  # the case it guards: an output written twice
        r = slice(overlapping.ptr[s], overlapping.ptr[s + 1])
        targets = np.concatenate([np.arange(o, o + n) for o, n in
                                  zip(overlapping.out[r], overlapping.length[r])])
        if len(set(targets)) < len(targets):
            break
    else:
        raise AssertionError("no position of the overlapping pool writes an output twice")


def test_a_long_run_advances_in_blocks_of_steps_and_equals_one_block():
    snn, x = random_network(5)
    program = compile_program(snn, "analog", np.float32)
    done = []
    workspace = event.Workspace(program, len(x), 3)
    checkpoints = np.array([1, 150, 300])
    original = event.BLOCK_SECONDS
    try:
        event.BLOCK_SECONDS = 1e-6  # as short as possible: one or a few steps per call
        totals = [np.zeros((len(program.sop_layers), 300), np.int64),
                  np.zeros((len(program.pool_layers), 300), np.int64)]
        blocks = event.run_chunk(snn, program, x, 0, T=300, checkpoints=checkpoints, seed=0,
                                 workspace=workspace, sops=totals[0], pool_ops=totals[1],
                                 on_steps=done.append)
        blocks = [a.copy() for a in blocks] + totals
        event.BLOCK_SECONDS = 1e9  # as many steps as allowed per call after the first step
        totals = [np.zeros_like(a) for a in totals]
        whole = event.run_chunk(snn, program, x, 0, T=300, checkpoints=checkpoints, seed=0,
                                workspace=workspace, sops=totals[0], pool_ops=totals[1])
        whole = list(whole) + totals
    finally:
        event.BLOCK_SECONDS = original
    assert len(done) > 10 and sum(done) == 300
    assert blocks[2].sum() > 0
    for a, b in zip(blocks, whole):
        np.testing.assert_array_equal(a, b)


def _start(script: str, env=None, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script),
                             str(Path(__file__).parents[1]), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=default_sigint)


@pytest.mark.slow
@pytest.mark.parametrize("long_calls", [False, True])
def test_ctrl_c_stops_a_long_event_run_within_about_a_second(long_calls):
    """Also when one call into the kernels lasts several seconds (every call 1,024 steps of
    8,192 images, about 10 s), since the kernels check for it at every step."""
    images = 8192 if long_calls else 64
    process = _start(f"""
        import importlib, sys
        sys.path.insert(0, sys.argv[1])
        import numpy as np, evsim
        from netgen import random_network
        if {long_calls}:
            event = importlib.import_module("evsim.simulate.event")
            event._next_block = lambda block, seconds, remaining: min(remaining, 1024)
        snn, x = random_network(2)
        evsim.simulate(snn, x, T=2, engine="event")  # compile or load the kernels first
        print("running", flush=True)
        evsim.simulate(snn, np.concatenate([x] * {images}), T=10**6, engine="event",
                       batch_size={images})
    """)
    assert process.stdout.readline().strip() == "running"
    time.sleep(1.0)
    sent = time.perf_counter()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    stopped = time.perf_counter() - sent
    assert process.returncode != 0 and "KeyboardInterrupt" in process.stderr.read()
    assert stopped < 2.5, f"took {stopped:.1f} s to stop"


@pytest.mark.slow
def test_first_compile_is_announced_once(tmp_path):
    """Once per combination of optional kernels (kernel_paths): a network that needs
    another combination compiles it, and says so; loading a cached one is quiet."""
    from evsim.simulate.compile import compiled
    from evsim.simulate.kernels import kernel_paths
    paths = {}
    for seed in range(40):
        paths.setdefault(kernel_paths(compiled(random_network(seed)[0]).ops), seed)
    assert len(paths) >= 2, paths
    first, other = list(paths.values())[:2]
    script = """
        import sys
        sys.path.insert(0, sys.argv[1])
        import evsim
        from netgen import random_network
        snn, x = random_network(int(sys.argv[2]))
        evsim.simulate(snn, x, T=3, engine="event")
    """
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), EVSIM_KERNELS="needed")
    errors = []
    for seed in (first, first, other, other):
        run = _start(script, env, str(seed))
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
        errors.append(err)
    assert [err.count("compiling the event engine once") for err in errors] == [1, 0, 1, 0]


@pytest.mark.slow
def test_dense_engine_first_compile_is_announced_once(tmp_path):
    """The dense engine's scans (neuron, max and average pooling) compile on first use and
    say so; a second process loads them from the cache quietly."""
    script = """
        import sys
        sys.path.insert(0, sys.argv[1])
        import evsim
        from netgen import random_network
        snn, x = random_network(4)
        evsim.simulate(snn, x, T=3, engine="dense")
    """
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    errors = []
    for _ in range(2):
        run = _start(script, env, "0")
        _, err = run.communicate(timeout=600)
        assert run.returncode == 0, err
        errors.append(err)
    assert [err.count("compiling the dense engine's kernels once") for err in errors] == [1, 0]

@pytest.mark.parametrize("model,parts,absent", [
    # 16-channel layers may take the tiles, 32-channel ones the gather; average pooling
    ("resnet", ("neuron scan", "sparse convolution gather", "sparse convolution tiles",
                "average pooling"), ("upsampling",)),
    # 1 × 1 layers take neither sparse kernel: the GEMM path's parts
    ("mobilenet", ("neuron scan", "convolution layout", "convolution columns",
                   "depthwise convolution"), ("upsampling",)),
    # tiles but no gather: the gather compiles too, for the probe that finds BLAS's order
    ("denoiser", ("neuron scan", "sparse convolution tiles", "sparse convolution gather"), ()),
    # nearest upsampling only: the bilinear kernel never compiles, so it is not announced
    # (it had been, on every run)
    ("unet_relu", ("neuron scan", "concatenation", "nearest upsampling"),
     ("bilinear upsampling",)),
])
def test_dense_notice_names_every_kernel_a_network_needs(monkeypatch, capsys, model, parts,
                                                         absent):
    """With nothing compiled yet, the dense engine's notice for a bundled model names
    every kernel its layers may take, and no other."""
    from evsim.data import bundled_scenes, load_bundled_sample
    from evsim.models import load_model
    from evsim.simulate import dense

    network = load_model(model)
    images = (bundled_scenes().images[:32] if network.input_shape[1:] == (64, 64)
              else load_bundled_sample("train")[0][:32])
    snn = evsim.convert(network, images)
    monkeypatch.setattr(dense, "ready", lambda kernel: False)
    evsim.simulate(snn, images[:1], T=1, engine="dense")
    notice = capsys.readouterr().err
    for part in parts:
        assert part in notice, part
    for part in absent:
        assert part not in notice, part


def test_simulations_reuse_the_compiled_program_of_a_network():
    snn, x = random_network(3)
    from evsim.simulate.compile import compiled
    assert compiled(snn) is compiled(snn)
    assert compiled(snn, dtype=np.float64) is not compiled(snn)
    a = evsim.simulate(snn, x, T=5, engine="event")
    b = evsim.simulate(snn, x, T=5, engine="event")
    assert evsim.results_equal(a, b)


def test_the_compile_notice_says_which_kernels_compile(monkeypatch, capsys):
    """A notice returns for each new combination of kernels: it names the combination."""
    import importlib

    monkeypatch.setenv("EVSIM_KERNELS", "needed")

    dense = importlib.import_module("evsim.simulate.dense")
    event = importlib.import_module("evsim.simulate.event")

    monkeypatch.setattr(event, "ready", lambda *args: False)
    monkeypatch.setattr(dense, "ready", lambda *args: False)
    net = evsim.Network.sequential((1, 4, 4), [evsim.Conv2d(np.ones((2, 1, 1, 1))), evsim.ReLU(),
                                               evsim.MaxPool2d(2), evsim.Flatten(),
                                               evsim.Dense(np.ones((3, 8)))])
    snn = evsim.convert(net, np.full((2, 1, 4, 4), 0.5, np.float32), method="max")
    x = np.full((1, 1, 4, 4), 0.5, np.float32)
    evsim.simulate(snn, x, T=2, encoding="rate")
    err = capsys.readouterr().err
    assert "compiling the event engine once" in err
    # a convolution of one input channel is depthwise (one channel per group)
    assert "LIPooling max pooling, rate-coded input and depthwise convolutions" in err
    evsim.simulate(snn, x, T=2, engine="dense")
    assert "neuron scan and max pooling scan" in capsys.readouterr().err


@pytest.mark.parametrize("seed", [1, 4])
def test_one_threshold_per_layer_is_read_once_and_per_channel_ones_per_neuron(seed):
    """A layer whose neurons share one θ is compiled NR_UNIFORM (its vector pass reads one
    value); per-channel θ are read per neuron; biases are stored once per channel (an
    OP_FILL) or over lcm(channels, 64) values (a neuron layer's refill) and repeated at
    every position. Both kinds of layer, and the biases, give the naive reference's spikes
    and outputs exactly."""
    base, x = random_network(seed)
    rng = np.random.default_rng(seed)
    neurons = {}
    for k, name in enumerate(base.neurons):
        shape = base.network.shape(name)
        per_channel = k % 2 == 0 and len(shape) == 3
        theta = (rng.integers(1, 9, size=(shape[0], 1, 1)) / 4.0 if per_channel
                 else float(rng.integers(1, 9)) / 4.0)
        neurons[name] = evsim.NeuronSpec(theta)
    snn = evsim.SpikingNetwork(base.network, neurons)
    program = compile_program(snn, "analog", np.float32)
    rows = program.ops[program.ops[:, kernels.CODE] == kernels.OP_NEURON]
    expected = [int(np.unique(neurons[layer[0]].threshold).size == 1)
                for layer in program.neuron_layers]
    assert list(rows[:, kernels.NR_UNIFORM]) == expected and 0 in expected and 1 in expected
    fills = program.ops[program.ops[:, kernels.CODE] == kernels.OP_FILL]
    assert (fills[:, kernels.FILL_CHANNELS] < fills[:, kernels.FILL_SIZE]).any() or any(
        len(layer[3]) == 3 for layer, row in zip(program.neuron_layers, rows)
        if row[kernels.NR_REFILL] >= 0)  # a refilled layer of several positions
    _assert_event_engine_equals_naive(snn, x, 8)


def test_a_run_loop_of_only_the_needed_kernels_equals_one_of_all(monkeypatch):
    """The default compiles the run loop with only the optional kernels a network uses
    (kernel_paths); the suite runs one loop with all of them (conftest). Networks of three
    different combinations give the same results under both."""
    from evsim.simulate.compile import compiled
    every = kernels.kernel_paths(np.zeros((0, kernels.OP_WIDTH), np.int64), every=True)
    assert every == (1,) * len(event._KERNEL_PARTS)
    combinations = {}
    for seed in range(40):
        snn, x = random_network(seed, max_pool=("lipooling", "gate")[seed % 2])
        paths = kernels.kernel_paths(compiled(snn).ops)
        if paths not in combinations and paths != every:
            combinations[paths] = (snn, x)
        if len(combinations) == 3:
            break
    assert len(combinations) == 3, combinations.keys()
    for paths, (snn, x) in combinations.items():
        monkeypatch.setenv("EVSIM_KERNELS", "all")
        assert event.compiled_paths(compiled(snn)) == every
        with_all = evsim.simulate(snn, x, T=6, engine="event", per_image_counts=True)
        monkeypatch.setenv("EVSIM_KERNELS", "needed")
        assert event.compiled_paths(compiled(snn)) == paths
        with_needed = evsim.simulate(snn, x, T=6, engine="event", per_image_counts=True)
        assert evsim.results_equal(with_all, with_needed), paths


def test_the_compile_notice_of_every_kernel_says_no_other_compile_follows(monkeypatch,
                                                                          capsys):
    monkeypatch.setenv("EVSIM_KERNELS", "all")
    monkeypatch.setattr(event, "ready", lambda *args: False)
    snn, x = random_network(2)
    evsim.simulate(snn, x, T=2, engine="event")
    err = capsys.readouterr().err
    assert "compiling the event engine once for every optional kernel (EVSIM_KERNELS=all)" in err
    assert "later runs, of any network, load it" in err and "compiles them once" not in err


def test_an_unknown_kernels_choice_is_refused(monkeypatch):
    monkeypatch.setenv("EVSIM_KERNELS", "some")
    snn, x = random_network(1)
    with pytest.raises(ValueError, match="EVSIM_KERNELS must be 'needed' or 'all'"):
        evsim.simulate(snn, x, T=2, engine="event")


def test_the_compile_notice_names_every_optional_kernel():
    """Each optional kernel path of the event engine has words in its compile notice (the
    depthwise scatter had none, so a depthwise network's notice left it out)."""
    paths = kernels.kernel_paths(np.zeros((0, kernels.OP_WIDTH), np.int64))
    assert len(event._KERNEL_PARTS) == len(paths)


@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_64_neuron_blocks_fire_as_the_naive_reference(uniform, reset):
    """The neuron pass takes 64 neurons as one vector and scans the compare's mask; a layer
    of 3 × 64 + 11 neurons (three blocks and a tail) of plain and of signed neurons, with
    one θ or one per neuron, fires and resets exactly as the naive reference does, +1 and
    −1 spikes alike."""
    from dyadic import dyadic
    rng = np.random.default_rng(7)
    n = 3 * 64 + 11
    net = evsim.Network.sequential((5,), [
        evsim.Dense(dyadic(rng, (n, 5), bits=2, kmax=4), dyadic(rng, n, bits=3, kmax=4)),
        evsim.ReLU(), evsim.Dense(dyadic(rng, (n, n), bits=3, kmax=4)), evsim.ReLU(),
        evsim.Dense(dyadic(rng, (3, n), bits=2, kmax=2))])
    first, second = net.activations

    def theta():
        return 0.5 if uniform else rng.integers(1, 5, size=n) / 4.0

    snn = evsim.SpikingNetwork(net, {
        first: evsim.NeuronSpec(theta(), reset=reset),
        second: evsim.NeuronSpec(theta(), reset=reset, negative_threshold=theta())})
    x = dyadic(rng, (3, 5), bits=3, low=-8, kmax=8)
    reference = _assert_event_engine_equals_naive(snn, x, 10)
    signed = reference.spike_counts[second]
    assert (signed < 0).any() and (signed > 0).any()


@pytest.mark.parametrize("per_word", [1, 7, 8, 9, 63, 64])
def test_words_of_any_number_of_spikes_are_emitted_in_order(per_word):
    """The neuron pass writes eight events per word of 64 neurons with spikes whatever
    their number, and loops only past eight: layers whose words hold exactly 1, 7, 8, 9,
    63 or 64 spikes at every step (the tail word fewer) emit them all, in neuron order,
    each counted once, as the naive reference does; the layer read after them receives
    them all."""
    from dyadic import dyadic
    rng = np.random.default_rng(per_word)
    n = 3 * 64 + 11
    fires = (np.arange(n) % 64 < per_word).astype(np.float64)  # the first per_word of a word
    net = evsim.Network.sequential((2,), [
        evsim.Dense(np.zeros((n, 2)), fires), evsim.ReLU(),
        evsim.Dense(dyadic(rng, (3, n), bits=3, kmax=4))])
    snn = evsim.SpikingNetwork(net, {net.activations[0]: evsim.NeuronSpec(1.0)})
    reference = _assert_event_engine_equals_naive(snn, np.ones((2, 2)), 6)
    np.testing.assert_array_equal(reference.spike_counts[net.activations[0]],
                                  np.broadcast_to(6 * fires, (2, n)))


def _assert_event_engine_equals_naive(snn, x, T):
    """The event engine's outputs and per-image spike counts (float64) equal the naive
    reference's exactly; returns the reference."""
    import naive_reference as naive
    reference = naive.simulate(snn, x, T)
    result = evsim.simulate(snn, x, T=T, engine="event", dtype=np.float64,
                            per_image_counts=True)
    np.testing.assert_array_equal(result.outputs, reference.outputs)
    for layer, counts in reference.spike_counts.items():
        np.testing.assert_array_equal(result.spike_counts[layer], counts, err_msg=layer)
    return reference


def test_a_neuron_layer_refills_its_current_where_it_alone_reads_it():
    """A plain neuron layer that is the only reader of its current refills it as it reads it
    (NR_REFILL; the buffer's OP_FILL row is dropped): a biased convolution of 3 channels of
    10 × 10 (a pattern of lcm(3, 64) = 192 values, wrapping after three 64-neuron blocks,
    then one block and a tail of 44), a residual sum (a zero fill) and 10 biased dense
    neurons (a tail only). A convolution's current read by the Add keeps its OP_FILL.
    Spikes and outputs equal the naive reference's exactly."""
    from dyadic import dyadic, dyadic_threshold
    rng = np.random.default_rng(3)
    b = evsim.NetworkBuilder((1, 10, 10))
    b.add_layer(evsim.Conv2d(dyadic(rng, (3, 1, 3, 3), low=-2), dyadic(rng, 3), padding=1))
    b.add_layer(evsim.ReLU(), name="r1")
    b.add_layer(evsim.Conv2d(dyadic(rng, (3, 3, 3, 3)), np.array([0.25, -0.125, 0.5]),
                             padding=1))
    b.add_layer(evsim.ReLU(), name="r2")
    b.add_layer(evsim.Conv2d(dyadic(rng, (3, 3, 3, 3)), dyadic(rng, 3), padding=1))
    b.add_layer(evsim.Add(), b.last, "r2")
    b.add_layer(evsim.ReLU(), name="r3")
    b.add_layer(evsim.Flatten())
    b.add_layer(evsim.Dense(dyadic(rng, (10, 300)), dyadic(rng, 10)))
    b.add_layer(evsim.ReLU(), name="r4")
    b.add_layer(evsim.Dense(dyadic(rng, (4, 10))))
    net = b.build()
    snn = evsim.SpikingNetwork(net, {name: evsim.NeuronSpec(dyadic_threshold(rng))
                                     for name in net.activations})
    program = compile_program(snn, "analog", np.float64)
    ops = program.ops
    neurons = {layer[0]: ops[ops[:, kernels.CODE] == kernels.OP_NEURON][k]
               for k, layer in enumerate(program.neuron_layers)}
    fills = ops[ops[:, kernels.CODE] == kernels.OP_FILL]
    added = ops[ops[:, kernels.CODE] == kernels.OP_ADD][:, kernels.ADD_SRC]
    assert neurons["r1"][kernels.NR_REFILL] < 0  # the analog head's current: never filled
    for name, period in (("r2", 192), ("r3", 192), ("r4", 320)):
        row = neurons[name]
        assert row[kernels.NR_REFILL] >= 0 and row[kernels.NR_PERIOD] == period
        assert row[kernels.NR_CURRENT] not in fills[:, kernels.FILL_DST]
    assert set(fills[:, kernels.FILL_DST]) & set(added)  # the convolution read by the Add
    x = dyadic(rng, (4, 1, 10, 10), bits=3, low=-8, kmax=8)
    reference = _assert_event_engine_equals_naive(snn, x, 12)
    assert all(reference.spike_counts[name].any() for name in ("r2", "r3", "r4"))


def test_a_current_that_an_add_also_reads_keeps_its_fill():
    """A convolution's current read by its neurons and by an Add (a pre-activation residual)
    is not refilled by the neurons: the Add, later in the step, must still read this
    step's current. Spikes and outputs equal the naive reference's exactly."""
    from dyadic import dyadic, dyadic_threshold
    rng = np.random.default_rng(5)
    b = evsim.NetworkBuilder((1, 10, 10))
    b.add_layer(evsim.Conv2d(dyadic(rng, (3, 1, 3, 3), low=-2), dyadic(rng, 3), padding=1))
    b.add_layer(evsim.ReLU())
    conv = b.add_layer(evsim.Conv2d(dyadic(rng, (3, 3, 3, 3)), np.array([0.25, -0.125, 0.5]),
                                    padding=1))
    b.add_layer(evsim.ReLU(), name="both")
    b.add_layer(evsim.Add(), conv, "both")
    b.add_layer(evsim.ReLU())
    b.add_layer(evsim.Flatten())
    b.add_layer(evsim.Dense(dyadic(rng, (4, 300))))
    net = b.build()
    snn = evsim.SpikingNetwork(net, {name: evsim.NeuronSpec(dyadic_threshold(rng))
                                     for name in net.activations})
    ops = compile_program(snn, "analog", np.float64).ops
    added = ops[ops[:, kernels.CODE] == kernels.OP_ADD][:, kernels.ADD_SRC]
    shared = [row for row in ops[ops[:, kernels.CODE] == kernels.OP_NEURON]
              if row[kernels.NR_CURRENT] in added]
    assert len(shared) == 1 and shared[0][kernels.NR_REFILL] < 0
    x = dyadic(rng, (4, 1, 10, 10), bits=3, low=-8, kmax=8)
    reference = _assert_event_engine_equals_naive(snn, x, 12)
    assert reference.spike_counts["both"].any()
