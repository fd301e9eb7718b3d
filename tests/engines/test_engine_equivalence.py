"""The event engine equals the dense engine: spike for spike, SOP for SOP, output for output."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netgen import random_network

import evsim

EXAMPLES = settings(max_examples=60, deadline=None, derandomize=True)


def _assert_identical(a, b):
    diff = evsim.difference(a, b)
    assert diff["spikes"] == 0 and diff["sops"] == {} and diff["pool_ops"] == {}, diff
    np.testing.assert_array_equal(a.outputs, b.outputs)
    for name in a.spike_counts:
        np.testing.assert_array_equal(a.spike_counts[name], b.spike_counts[name])
    for name in a.sops:
        np.testing.assert_array_equal(a.sops[name], b.sops[name])
    assert a.macs == b.macs


@EXAMPLES
@given(seed=st.integers(0, 2**31), T=st.integers(1, 20),
       max_pool=st.sampled_from(["lipooling", "gate"]),
       encoding=st.sampled_from(["analog", "rate"]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_event_engine_equals_dense_engine(seed, T, max_pool, encoding, dtype):
    snn, x = random_network(seed, max_pool=max_pool)
    kwargs = dict(T=T, encoding=encoding, dtype=dtype, per_image_counts=True, seed=seed % 1000,
                  checkpoints=range(1, T + 1))
    dense = evsim.simulate(snn, x, engine="dense", **kwargs)
    event = evsim.simulate(snn, x, engine="event", **kwargs)
    _assert_identical(dense, event)
    assert event.engine == "event" and event.dtype == np.dtype(dtype).name


@pytest.mark.parametrize("max_pool", ["lipooling", "gate"])
def test_a_layer_read_by_a_max_pooling_and_a_convolution_keeps_its_values(max_pool):
    """The dense engine skips the values of a neuron layer read only by max poolings (they
    read its spikes); one read by a convolution as well must keep them: both engines
    agree on a network where one ReLU feeds both, and on one where it feeds the pooling
    alone."""
    from dyadic import dyadic
    rng = np.random.default_rng(5)
    for shared in (True, False):
        b = evsim.NetworkBuilder((2, 8, 8))
        b.add_layer(evsim.Conv2d(dyadic(rng, (4, 2, 3, 3), bits=2, kmax=3), padding=1))
        relu = b.add_layer(evsim.ReLU())
        b.add_layer(evsim.MaxPool2d(2, 2), relu)
        b.add_layer(evsim.Flatten())
        pooled = b.add_layer(evsim.Dense(dyadic(rng, (3, 64), bits=2, kmax=2)))
        source = relu if shared else b.add_layer(evsim.ReLU(), pooled)
        if shared:
            b.add_layer(evsim.Conv2d(dyadic(rng, (2, 4, 2, 2), bits=2, kmax=3), stride=2),
                        source)
            b.add_layer(evsim.ReLU())
            b.add_layer(evsim.Flatten())
            b.add_layer(evsim.Dense(dyadic(rng, (3, 32), bits=2, kmax=2)))
            b.add_layer(evsim.Add(), b.last, pooled)
        net = b.build()
        neurons = {name: evsim.NeuronSpec(0.75) for name in net.activations}
        snn = evsim.SpikingNetwork(net, neurons, max_pool=max_pool)
        x = dyadic(rng, (3, 2, 8, 8), bits=3, low=0, kmax=8)
        kwargs = dict(T=6, checkpoints=range(1, 7))
        _assert_identical(evsim.simulate(snn, x, engine="dense", **kwargs),
                          evsim.simulate(snn, x, engine="event", **kwargs))


def test_generated_networks_are_not_silent():
    """Guard against a vacuous equivalence suite: the generated networks do spike."""
    rates = []
    for seed in range(20):
        snn, x = random_network(seed)
        rates.extend(evsim.simulate(snn, x, T=8, engine="event").firing_rates().values())
    assert np.median(rates) > 0.05


def test_results_do_not_depend_on_threads_or_chunking():
    snn, x = random_network(11)
    x = np.concatenate([x] * 4)
    one = evsim.simulate(snn, x, T=12, engine="event", threads=1, batch_size=3,
                         per_image_counts=True)
    two = evsim.simulate(snn, x, T=12, engine="event", threads=2, batch_size=64,
                         per_image_counts=True)
    _assert_identical(one, two)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31), max_pool=st.sampled_from(["lipooling", "gate"]))
def test_dense_engine_results_do_not_depend_on_chunks_or_blocks(seed, max_pool):
    """Chunks of 3 images (the last one smaller) in blocks of two steps (the last one
    shorter), whose arrays are views of different lengths into memory reused from block
    to block and chunk to chunk, give what one chunk in one block gives."""
    from evsim.simulate import dense
    snn, x = random_network(seed, max_pool=max_pool)
    x = np.concatenate([x] * 4)[:7]
    kwargs = dict(T=9, engine="dense", per_image_counts=True, checkpoints=range(1, 10))
    whole = evsim.simulate(snn, x, batch_size=7, **kwargs)
    largest = max(int(np.prod(snn.network.shape(n.name))) for n in snn.network)
    saved = dense.BLOCK_FLOATS
    dense.BLOCK_FLOATS = 2 * 3 * largest  # hypothesis runs many examples per fixture
    try:
        _assert_identical(whole, evsim.simulate(snn, x, batch_size=3, **kwargs))
    finally:
        dense.BLOCK_FLOATS = saved

@pytest.mark.parametrize("per_image_counts", [True, False])
def test_dense_engine_results_do_not_depend_on_threads(per_image_counts, monkeypatch):
    """1, 2 or 3 threads (uneven shares included) give the same outputs, counts, SOPs,
    recorded trains and membrane traces."""
    from evsim import threads
    monkeypatch.setattr(threads, "MIN_SHARE", 1)  # share even this small network's work
    snn, x = random_network(5)
    x = np.concatenate([x] * 3)[:7]
    name = list(snn.neurons)[0]
    runs = [evsim.simulate(snn, x, T=9, engine="dense", threads=threads, batch_size=5,
                           per_image_counts=per_image_counts, checkpoints=[3, 9], record=[name])
            for threads in (1, 2, 3)]
    assert len(runs[0].spike_trains[name].steps) > 0
    for other in runs[1:]:
        _assert_identical(runs[0], other)
        for field in ("steps", "images", "neurons", "counts"):
            np.testing.assert_array_equal(getattr(runs[0].spike_trains[name], field),
                                          getattr(other.spike_trains[name], field))
        np.testing.assert_array_equal(runs[0].membrane[name], other.membrane[name])


@pytest.mark.parametrize("engine", ["dense", "event"])
def test_threads_keep_a_real_model_bit_identical(engine):
    """Where float sums are not exact (a bundled model: its analog first layer and, in the
    dense engine, every convolution are GEMMs) one thread and two give identical results:
    each group of images gets the same GEMM on any thread."""
    pytest.importorskip("threadpoolctl")  # without it BLAS's own threads may reorder sums
    from evsim.data import load_bundled_sample
    from evsim.models import load_model
    calibration = load_bundled_sample("train")[0][:200]
    x = load_bundled_sample("test")[0][:20]
    snn = evsim.convert(load_model("resnet"), calibration, method="percentile")
    record = {"relu1": np.arange(0, 16 * 28 * 28, 97)} if engine == "dense" else None
    one, two = (evsim.simulate(snn, x, T=16, engine=engine, threads=n, batch_size=20,
                               record=record) for n in (1, 2))
    _assert_identical(one, two)
    if record:  # membranes show any change of rounding, not only flipped spikes
        np.testing.assert_array_equal(one.membrane["relu1"], two.membrane["relu1"])


def test_long_runs_keep_memory_flat():
    """T = 4096 with nothing recorded: the result holds checkpoints and per-step SOPs only."""
    snn, x = random_network(3)
    r = evsim.simulate(snn, x, T=4096, engine="event")
    assert r.outputs.shape == (13,) + (len(x),) + snn.network.output_shape
    assert all(v.shape == (4096,) for v in r.sops.values())


def test_event_engine_refuses_recording():
    snn, x = random_network(4)
    with pytest.raises(ValueError, match="needs engine='dense'"):
        evsim.simulate(snn, x, engine="event", record=list(snn.neurons)[:1])


@pytest.mark.slow
def test_equivalence_under_numba_boundscheck(tmp_path):
    """Out-of-bounds accesses in the kernels would raise here (fresh compile, bounds checked)."""
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, sys.argv[1])
        import numpy as np, evsim
        from netgen import random_network
        for seed in range(12):
            for max_pool in ("lipooling", "gate"):
                for encoding in ("analog", "rate"):
                    snn, x = random_network(seed, max_pool=max_pool)
                    a = evsim.simulate(snn, x, T=6, encoding=encoding)
                    b = evsim.simulate(snn, x, T=6, encoding=encoding, engine="event")
                    assert evsim.results_equal(a, b), (seed, max_pool, encoding)
        print("ok")
    """)
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parents[1])], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok"
