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


def _finished_run(kind: str, *takes: tuple) -> Arena:
    """The arena a run of ``kind`` borrowed, after the run took ``takes`` (key, shape,
    dtype) from it and ended (its runner collected)."""
    owner = _Owner()
    given = borrow(owner, kind)
    for key, shape, dtype in takes:
        given.take(key, shape, dtype)
    del owner
    gc.collect()
    return given


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
    first = borrow(owner, "run")
    first.take("x", (1000,), np.float32)
    assert borrow(other, "run") is not first  # still in use: a run beside it gets another one
    del owner
    gc.collect()
    assert borrow(_Owner(), "run") is first


def test_one_arena_of_a_kind_is_kept_and_release_drops_it():
    owners = [_Owner(), _Owner()]
    arenas = [borrow(o, "run") for o in owners]
    arenas[0].take("x", (10,), np.float64)
    arenas[1].take("x", (20,), np.float64)
    del owners[:]
    gc.collect()
    first, second = _Owner(), _Owner()
    kept = borrow(first, "run")
    assert kept in arenas
    assert borrow(second, "run") not in arenas  # the other one was not kept
    kept.take("y", (4,), np.float64)
    del second
    gc.collect()
    del first  # given back last: the one kept
    gc.collect()
    assert release() == 32
    given = _finished_run("run", ("y", (100,), np.float64))
    assert release() == 800
    assert release() == 0
    assert borrow(_Owner(), "run") is not given


def test_each_kind_keeps_its_own_arena():
    """Runs that alternate engines hand each run the arena of its own engine."""
    event, dense = _Owner(), _Owner()
    arenas = {"event": borrow(event, "event"), "dense": borrow(dense, "dense")}
    for kind, a in arenas.items():
        a.take(kind, (10,), np.float64)
    del event, dense
    gc.collect()
    for kind in ("dense", "event", "dense"):
        assert _finished_run(kind, (kind, (10,), np.float64)) is arenas[kind]
    assert release() == 2 * 80


def test_an_arena_larger_than_the_limit_is_not_kept(monkeypatch):
    monkeypatch.setattr(arena, "KEEP_BYTES", 1000)
    _finished_run("run", ("x", (1001,), np.uint8))
    assert release() == 0
    _finished_run("run", ("x", (1000,), np.uint8))
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
def test_a_run_in_the_memory_another_network_left_gives_the_fresh_results(engine, threads):
    rng = np.random.default_rng(9)
    x = rng.random((6, 2, 8, 8))

    def run(network, images):
        return evsim.simulate(network, images, T=12, engine=engine, threads=threads,
                              dtype=np.float32)

    snn = _network(1, 4, 8)
    fresh = run(snn, x)
    # the same shapes, then larger ones: every array of the checked run fits in the other's
    for other, images in ((_network(2, 4, 8), x), (_network(3, 6, 10),
                                                  rng.random((7, 2, 10, 10)))):
        release()
        run(other, images)
        gc.collect()
        kept = arena._kept[engine]
        for flat in kept._buffers.values():
            flat.view(np.uint8)[:] = 0xFF  # NaN floats, −1 integers: nothing right by chance
        memory = {key: flat.ctypes.data for key, flat in kept._buffers.items()}
        assert len(memory) >= 4  # the dense engine: ReLU spikes, pool spikes and values, fc
        reused = run(snn, x)
        gc.collect()
        assert arena._kept[engine] is kept
        assert {key: flat.ctypes.data for key, flat in kept._buffers.items()} == memory
        assert evsim.results_equal(reused, fresh)
        np.testing.assert_array_equal(reused.outputs.view(np.uint32),
                                      fresh.outputs.view(np.uint32))


def test_a_kept_arena_keeps_only_what_its_last_run_took():
    first = _finished_run("run", ("old", (100,), np.float64), ("both", (10,), np.float64))
    assert _finished_run("run", ("both", (10,), np.float64), ("new", (5,), np.float64)) \
        is first
    assert sorted(first._buffers) == ["both", "new"]
    assert release() == 15 * 8


def test_a_collection_inside_the_lock_does_not_wait_for_it(monkeypatch):
    """A finished runner caught in a reference cycle is given back by whichever garbage
    collection frees it, possibly one that starts while this thread holds the lock (the
    finalizer waited for it forever)."""
    owner = _Owner()
    owner.cycle = owner
    given = borrow(owner, "run")
    del owner
    finalizers = []

    class Lock:
        def acquire(self, blocking=True):
            finalizers.append(blocking)
            assert not blocking, "a finalizer waited for the lock"
            return False

    monkeypatch.setattr(arena, "_kept_lock", Lock())
    gc.collect()  # as if inside release() or borrow(): the lock is taken
    assert finalizers == [False] and given not in arena._kept.values()
