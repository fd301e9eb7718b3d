"""Memory kept from one run to the next (evsim.arena): what is kept and handed out, and that
a run on memory another network left behind gives the results of a run on fresh memory."""

import gc

import numpy as np
import pytest

import evsim
from evsim import arena
from evsim import (Conv2d, Dense, Flatten, MaxPool2d, NetworkBuilder, NeuronSpec, ReLU,
                   SpikingNetwork)
from evsim.arena import Arena, borrow, release


class _Owner:
    """Stands for an engine's runner: what an arena is borrowed for."""


@pytest.fixture(autouse=True)
def _no_kept_arena():
    release()
    yield
    release()


def test_take_reuses_the_memory_of_its_key_and_grows_when_too_small():
    a = Arena()
    first = a.take("x", (4, 5), np.float32)
    again = a.take("x", (2, 3), np.float32)
    assert np.shares_memory(first, again) and again.flags.c_contiguous
    assert not np.shares_memory(first, a.take("y", (4, 5), np.float32))
    grown = a.take("x", (6, 5), np.float32)
    assert grown.shape == (6, 5) and not np.shares_memory(first, grown)
    assert a.take("x", (3,), np.float64).dtype == np.float64
    assert a.nbytes == 3 * 8 + 4 * 5 * 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
def test_take_aligns_the_data_when_asked(dtype):
    a = Arena()
    for shape in [(1,), (7, 3), (64,), (5, 17)]:
        x = a.take(("k", shape), shape, dtype, align=64)
        assert x.ctypes.data % 64 == 0 and x.shape == shape and x.flags.c_contiguous
        x[...] = 1  # the whole array lies in the key's memory
        assert a.take(("k", shape), shape, dtype, align=64).ctypes.data == x.ctypes.data


def test_a_finished_run_leaves_its_arena_to_the_next():
    owner, other = _Owner(), _Owner()
    first = borrow(owner)
    first.take("x", (1000,), np.float32)
    assert borrow(other) is not first  # still in use: a run beside it gets another one
    del owner
    gc.collect()
    assert borrow(_Owner()) is first


def test_one_arena_is_kept_and_release_drops_it():
    owners = [_Owner(), _Owner()]
    arenas = [borrow(o) for o in owners]
    arenas[0].take("x", (10,), np.float64)
    arenas[1].take("x", (20,), np.float64)
    del owners[:]
    gc.collect()
    first, second = _Owner(), _Owner()
    kept = borrow(first)
    assert kept in arenas
    assert borrow(second) not in arenas  # the other one was not kept
    del second
    gc.collect()
    del first  # given back last: the one kept
    gc.collect()
    assert release() == kept.nbytes > 0
    owner = _Owner()
    given = borrow(owner)
    given.take("y", (100,), np.float64)
    del owner
    gc.collect()
    assert release() == 800
    assert release() == 0
    assert borrow(_Owner()) is not given


def test_an_arena_larger_than_the_limit_is_not_kept(monkeypatch):
    monkeypatch.setattr(arena, "KEEP_BYTES", 1000)
    owner = _Owner()
    big = borrow(owner)
    big.take("x", (1001,), np.uint8)
    del owner
    gc.collect()
    assert release() == 0
    owner = _Owner()
    small = borrow(owner)
    small.take("x", (1000,), np.uint8)
    del owner
    gc.collect()
    assert release() == 1000


def _network(seed: int, channels: int, size: int) -> SpikingNetwork:
    """Float32 weights that are not dyadic (sums that depend on their order), layer names
    that every seed shares, so that a second network's arrays reuse the first's keys."""
    rng = np.random.default_rng(seed)
    b = NetworkBuilder((2, size, size))
    b.add_layer(Conv2d(rng.normal(size=(channels, 2, 3, 3)), rng.normal(size=channels),
                       padding=1), name="conv")
    b.add_layer(ReLU(), name="relu")
    b.add_layer(MaxPool2d(2), name="pool")
    b.add_layer(Flatten(), name="flat")
    b.add_layer(Dense(rng.normal(size=(5, channels * (size // 2) ** 2))), name="fc")
    net = b.build()
    return SpikingNetwork(net, {"relu": NeuronSpec(np.float64(0.7 + 0.1 * seed))})


@pytest.mark.parametrize("engine", ["event", "dense"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_run_on_memory_that_another_network_left_gives_the_fresh_results(engine, threads):
    x = np.random.default_rng(9).random((6, 2, 8, 8))
    snn = _network(1, 4, 8)
    fresh = evsim.simulate(snn, x, T=12, engine=engine, threads=threads, dtype=np.float32)
    for other in (_network(2, 4, 8), _network(3, 6, 10)):  # the same shapes, then larger
        release()
        evsim.simulate(other, x if other.network.input_shape == (2, 8, 8) else
                       np.random.default_rng(4).random((7, 2, 10, 10)), T=12, engine=engine,
                       threads=threads, dtype=np.float32)
        gc.collect()
        assert release() > 0  # the other run left its arena, which is dropped here ...
        evsim.simulate(other, np.ones((1,) + other.network.input_shape), T=3, engine=engine,
                       threads=threads, dtype=np.float32)
        gc.collect()
        reused = evsim.simulate(snn, x, T=12, engine=engine, threads=threads,
                                dtype=np.float32)  # ... and this one runs in another's memory
        assert evsim.results_equal(reused, fresh)
        np.testing.assert_array_equal(reused.outputs.view(np.uint32),
                                      fresh.outputs.view(np.uint32))
