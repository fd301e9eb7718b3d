"""SimResults that last: exact save/load round trips, provenance, and merging image shards."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from netgen import random_network

import evsim
from evsim import EvsimValueError, SimResult
from evsim.io import content_hash
from evsim.result import SpikeTrain


def _equal(a, b) -> bool:
    """Exactly equal, down to dtypes, key order and the types of scalars."""
    if isinstance(a, SimResult) or isinstance(a, SpikeTrain):
        return type(a) is type(b) and all(_equal(getattr(a, f.name), getattr(b, f.name))
                                           for f in dataclasses.fields(a))
    if isinstance(a, dict):
        return (isinstance(b, dict) and list(a) == list(b)
                and all(_equal(a[k], b[k]) for k in a))
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    return type(a) is type(b) and a == b


def _differing(a: SimResult, b: SimResult) -> list[str]:
    return [f.name for f in dataclasses.fields(a)
            if not _equal(getattr(a, f.name), getattr(b, f.name))]


_NAMES = st.text("abcxyz_0123456789.-", min_size=1, max_size=6)
_INTS = st.sampled_from([np.int64, np.int32, np.uint8])


@st.composite
def _results(draw) -> SimResult:
    """Small SimResults with arbitrary layers, dtypes, trains and traces (not simulated)."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    T, n = draw(st.integers(1, 9)), draw(st.integers(1, 4))
    layers = draw(st.lists(_NAMES, min_size=1, max_size=3, unique=True))
    out_dtype = draw(st.sampled_from([np.float32, np.float64]))
    checkpoints = np.unique(rng.integers(1, T + 1, size=draw(st.integers(1, 3))))
    per_image = draw(st.booleans())

    def ints(shape):
        return rng.integers(-5, 100, size=shape).astype(draw(_INTS))

    counts = {k: ints(((n,) if per_image else ()) + (2, 3)) for k in layers}
    recorded = {k: np.sort(rng.choice(6, size=draw(st.integers(1, 3)), replace=False))
                for k in draw(st.lists(st.sampled_from(layers), unique=True))}
    trains = {k: SpikeTrain(*(ints(draw(st.integers(0, 5))) for _ in range(4))) for k in recorded}
    membrane = {k: rng.standard_normal((T, n, len(v))).astype(out_dtype)
                for k, v in recorded.items()}
    before_reset = {k: rng.standard_normal(v.shape).astype(out_dtype)
                    for k, v in membrane.items()}
    if membrane and draw(st.booleans()):
        next(iter(membrane.values())).reshape(-1)[0] = np.nan
    return SimResult(
        T=T, checkpoints=checkpoints, outputs=rng.standard_normal((len(checkpoints), n, 3))
        .astype(out_dtype), spike_counts=counts,
        sops={k: ints(T) for k in draw(st.lists(st.sampled_from(layers), unique=True))},
        pool_ops={k: ints(T) for k in draw(st.lists(_NAMES, unique=True, max_size=2))},
        macs={k: draw(st.integers(0, 10 ** 12)) for k in draw(st.lists(_NAMES, unique=True))},
        neurons={k: 6 for k in layers}, n_images=n, engine=draw(st.sampled_from(["dense",
                                                                                 "event"])),
        encoding=draw(st.sampled_from(["analog", "rate"])), dtype=np.dtype(out_dtype).name,
        time_scheme=draw(st.sampled_from(["synchronous", "temporal", "ilif"])),
        latency=draw(st.integers(0, 100)), recorded=recorded, spike_trains=trains,
        membrane=membrane, membrane_before_reset=before_reset,
        seed=draw(st.integers(0, 2 ** 63 - 1)),
        first_image=draw(st.integers(0, 10 ** 6)), batch_size=draw(st.integers(0, 512)),
        per_image_counts=per_image, network_hash=draw(st.text(max_size=64)),
        method=draw(st.text(max_size=8)),
        options=draw(st.dictionaries(_NAMES, st.one_of(st.integers(-9, 9), st.floats(
            allow_nan=False, allow_infinity=False), st.text(max_size=4), st.booleans(),
            st.none(), st.lists(st.integers(0, 3), max_size=2)), max_size=3)),
        evsim_version=draw(st.text(max_size=8)))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(result=_results())
def test_any_result_round_trips_exactly(tmp_path_factory, result):
    path = tmp_path_factory.mktemp("rt") / "run.npz"
    evsim.save(result, path)
    assert _differing(result, evsim.load(path)) == []


@pytest.mark.parametrize("engine", ["dense", "event"])
def test_simulated_results_round_trip_with_their_provenance(tmp_path, engine):
    snn, x = random_network(5)
    result = evsim.simulate(snn, x, T=9, engine=engine, per_image_counts=True, seed=7,
                            record=["relu1"] if engine == "dense" else None)
    evsim.save(result, tmp_path / "run")
    loaded = evsim.load(tmp_path / "run.npz")
    assert _differing(result, loaded) == []
    assert (loaded.seed, loaded.engine, loaded.evsim_version) == (7, engine, evsim.__version__)
    assert loaded.network_hash == content_hash(snn) and loaded.method == snn.method
    assert loaded.options == snn.options and loaded.per_image_counts


def test_content_hash_survives_save_and_load_and_sees_every_value(tmp_path):
    snn, _ = random_network(2)
    evsim.save(snn, tmp_path / "snn.npz")
    assert content_hash(evsim.load(tmp_path / "snn.npz")) == content_hash(snn)
    name, spec = next(iter(snn.neurons.items()))
    changed = evsim.SpikingNetwork(snn.network, {**snn.neurons, name: dataclasses.replace(
        spec, threshold=spec.threshold * 2)})
    assert content_hash(changed) != content_hash(snn)
    assert content_hash(snn.network) != content_hash(snn)


def _shards(snn, x, bounds, **run):
    return [evsim.simulate(snn, x[a:b], first_image=a, **run)
            for a, b in zip(bounds, bounds[1:])]


@pytest.mark.parametrize("engine", ["dense", "event"])
@pytest.mark.parametrize("encoding", ["analog", "rate"])
@pytest.mark.parametrize("per_image_counts", [False, True])
def test_merged_shards_equal_the_whole_run(tmp_path, engine, encoding, per_image_counts):
    snn, x = random_network(13)
    x = np.concatenate([x] * 5)[:12]
    run = dict(T=10, engine=engine, encoding=encoding, per_image_counts=per_image_counts,
               seed=3, batch_size=2, checkpoints=[1, 4, 10])
    if engine == "dense":
        run["record"] = {name: None for name in list(snn.neurons)[:2]}
    whole = evsim.simulate(snn, x, **run)
    shards = _shards(snn, x, [0, 4, 6, 12], **run)
    assert _differing(evsim.merge(shards[::-1]), whole) == []
    for i, shard in enumerate(shards):  # through files, as shards from other machines come
        evsim.save(shard, tmp_path / f"shard{i}.npz")
    loaded = [evsim.load(tmp_path / f"shard{i}.npz") for i in range(len(shards))]
    assert _differing(evsim.merge(loaded), whole) == []


def test_rate_coded_shards_need_their_offset():
    snn, x = random_network(13)
    x = np.concatenate([x] * 4)[:8]
    run = dict(T=16, encoding="rate", per_image_counts=True, batch_size=4)
    whole = evsim.simulate(snn, x, **run)
    shifted = evsim.simulate(snn, x[4:], **run)  # no first_image: images 0..3 again
    assert not evsim.results_equal(evsim.simulate(snn, x[4:], first_image=4, **run), shifted)
    assert _differing(evsim.merge(_shards(snn, x, [0, 4, 8], **run)), whole) == []


def test_merge_refuses_shards_of_different_runs_overlaps_and_gaps():
    snn, x = random_network(13)
    x = np.concatenate([x] * 4)[:8]
    a, b = _shards(snn, x, [0, 4, 8], T=6)
    assert _differing(evsim.merge([a]), a) == []
    name, spec = next(iter(snn.neurons.items()))
    retuned = evsim.SpikingNetwork(snn.network, {**snn.neurons, name: dataclasses.replace(
        spec, threshold=spec.threshold * 2)})
    for other, field in [(evsim.simulate(snn, x[4:], T=7, first_image=4), "T"),
                         (evsim.simulate(snn, x[4:], T=6, first_image=4,
                                         engine="dense" if a.engine == "event" else "event"),
                          "engine"),
                         (evsim.simulate(snn, x[4:], T=6, first_image=4, seed=1), "seed"),
                         (evsim.simulate(retuned, x[4:], T=6, first_image=4), "network_hash")]:
        with pytest.raises(EvsimValueError, match=f"different runs: their {field} differ"):
            evsim.merge([a, other])
    with pytest.raises(EvsimValueError, match=r"checkpoints differ"):
        evsim.merge([a, evsim.simulate(snn, x[4:], T=6, first_image=4, checkpoints=[6])])
    with pytest.raises(EvsimValueError, match=r"overlap: one covers images \[0, 4\), another "
                                              r"\[2, 6\)"):
        evsim.merge([a, evsim.simulate(snn, x[2:6], T=6, first_image=2)])
    with pytest.raises(EvsimValueError, match=r"images \[4, 5\) are in no shard"):
        evsim.merge([a, evsim.simulate(snn, x[5:], T=6, first_image=5)])
    with pytest.raises(EvsimValueError, match="do not say which network"):
        evsim.merge([dataclasses.replace(a, network_hash=""), b])
    with pytest.raises(EvsimValueError, match="at least one"):
        evsim.merge([])
    with pytest.raises(evsim.EvsimTypeError, match="SimResults"):
        evsim.merge([a, "b"])


def test_event_engine_shards_need_not_align_with_batches():
    snn, x = random_network(13)
    x = np.concatenate([x] * 5)[:12]
    run = dict(T=10, engine="event", encoding="rate", per_image_counts=True, seed=5,
               batch_size=4)
    whole = evsim.simulate(snn, x, **run)
    assert _differing(evsim.merge(_shards(snn, x, [0, 3, 7, 12], **run)), whole) == []


def test_results_saved_before_membrane_before_reset_existed_still_load():
    from evsim.io.results import read_result, result_payload
    snn, x = random_network(5)
    result = evsim.simulate(snn, x, T=4, engine="dense", record=["relu1"])
    header, arrays = result_payload(result)
    del header["layers"]["membrane_before_reset"]
    arrays = {k: v for k, v in arrays.items() if not k.startswith("membrane_before_reset/")}
    old = read_result("old.npz", header, arrays)
    assert old.membrane_before_reset == {}
    assert _differing(old, result) == ["membrane_before_reset"]
