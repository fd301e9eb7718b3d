"""Simulating a spiking network: :func:`simulate` and its :class:`SimResult`."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping

import numpy as np

from ..arena import Arena
from ..errors import EvsimTypeError, EvsimValueError
from ..encoding import check_rate_inputs
from ..forward import _check_inputs
from ..options import warn_if_tuned_for_other_T
from ..signals import ENCODINGS, plan
from ..spiking import WINDOWED, SpikingNetwork
from ..threads import one_blas_thread, thread_count
from ..timescheme import binary_network, latency, window_network
from ..validate import (check_batch_size, check_images, check_index, check_simulation_memory,
                        check_steps)
from . import dense, event
from .compile import compiled
from .result import (SimResult, SpikeTrain, compare, default_checkpoints, provenance,
                     results_equal)

ENGINES = ("dense", "event")


def _selection(snn: SpikingNetwork, record) -> dict[str, np.ndarray]:
    if record is None:
        return {}
    if isinstance(record, str):
        record = [record]
    if not isinstance(record, Mapping):
        record = {name: None for name in record}
    out = {}
    for name, neurons in record.items():
        if name not in snn.neurons:
            raise EvsimValueError(f"cannot record '{name}': only spiking layers are recorded "
                                  f"({list(snn.neurons)})")
        size = int(np.prod(snn.network.shape(name)))
        chosen = np.arange(size) if neurons is None else np.asarray(neurons, dtype=np.int64)
        if chosen.ndim != 1 or chosen.size == 0 or chosen.min() < 0 or chosen.max() >= size:
            raise EvsimValueError(f"record['{name}'] must list flat neuron indices in [0, {size}), "
                             f"got {neurons!r}")
        out[name] = chosen
    return out


def simulate(snn: SpikingNetwork, inputs: np.ndarray, T: int = 32, *, engine: str = "event",
             encoding: str = "analog", checkpoints: Iterable[int] | None = None,
             record: Iterable[str] | Mapping[str, Iterable[int] | None] | str | None = None,
             per_image_counts: bool = False, seed: int = 0, first_image: int = 0,
             batch_size: int = 128,
             dtype=np.float32, threads: int | None = None,
             progress: bool = False, client=None) -> SimResult:
    """Simulate ``snn`` on a batch of images for ``T`` time steps.

    Parameters
    ----------
    snn:
        The converted network (:func:`evsim.convert`).
    inputs:
        ``(B, *input_shape)`` images, batch first, channel first.
    T:
        Number of time steps (an int ≥ 1); for a network in the temporal scheme,
        the window length W (the result then has one checkpoint, W, and one
        SOP entry per layer, and ``latency`` = (D + 1) W steps); in the
        ``"ilif"`` scheme the number of bits K per window (≤ 24), the
        outputs being the decoded readout × T and spike counts the binary
        spikes sent.
    engine:
        ``"event"`` (default, as in the ``evsim`` command): the event-driven
        Numba engine (compiled on first use; one image per thread; exact
        SOPs of the accumulates it performs). ``"dense"``: the NumPy
        reference engine (readable; the one that records traces).
    encoding:
        ``"analog"`` (default): the image is layer 1's input at every step,
        its first layers are computed once (MACs). ``"rate"``: Bernoulli
        spikes with probability equal to the pixel value (inputs in [0, 1]),
        drawn from a counter-based generator keyed by ``(seed, image, step,
        pixel)``, so results do not depend on chunking or threads.
    checkpoints:
        Steps at which to keep the accumulated output; default 1, 2, 4, ...,
        T. Accuracy versus T comes from one run.
    record:
        Spiking layers whose spike trains and membrane traces to keep: a name,
        a list of names, or ``{name: flat neuron indices or None for all}``.
        Memory for these grows with T; nothing else does.
    per_image_counts:
        Keep spike counts per image ``(B, *shape)`` instead of summed.
    seed:
        Seed of the rate encoder (≥ 0).
    first_image:
        Index of ``inputs[0]`` in the whole data set (≥ 0): rate-coded spikes
        are drawn by image index, so a shard simulated with its offset gets
        the spikes of the whole run (:func:`evsim.merge` joins the shards).
    batch_size:
        Images simulated together (≥ 1; bounds memory).
    dtype:
        ``np.float32`` (default) or ``np.float64``.
    threads:
        Threads sharing the images of a chunk (default: every core this
        process may use); results do not depend on it. The analog head and
        the dense engine's convolutions run one GEMM per group of images on
        these threads, with BLAS held to one thread when ``threadpoolctl`` is
        installed (it is in the ``test`` extra); without it, BLAS also uses
        its own threads (``OPENBLAS_NUM_THREADS``), and float results of
        networks that are not on a dyadic grid may then depend on them.
    progress:
        Show a progress bar (stderr) in images, advancing during a chunk as its steps run
        (with ``client``: as shards finish).
    client:
        A ``dask.distributed.Client``: simulate shards of the images on its
        workers and merge them (:mod:`evsim.distributed`); the result equals
        the local run's exactly. Needs the extra ``distributed``; ``threads``
        then counts per task (default 1).

    Returns
    -------
    A :class:`SimResult`.
    """
    if client is not None:
        from ..distributed import simulate_on
        return simulate_on(client, snn, inputs, T, simulate=simulate, engine=engine,
                           encoding=encoding,
                           checkpoints=checkpoints, record=record,
                           per_image_counts=per_image_counts, seed=seed,
                           first_image=first_image, batch_size=batch_size, dtype=dtype,
                           threads=threads, progress=progress)
    if not isinstance(snn, SpikingNetwork):
        raise EvsimTypeError(f"simulate needs a SpikingNetwork (from evsim.convert), got "
                             f"{type(snn).__name__}")
    if engine not in ENGINES:
        raise EvsimValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if encoding not in ENCODINGS:
        raise EvsimValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
    T, batch_size = check_steps(T), check_batch_size(batch_size)
    first_image = check_index(first_image, "first_image")
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise EvsimValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    if int(seed) < 0:
        raise EvsimValueError(f"seed must be >= 0, got {seed}")
    x = _check_inputs(snn.network, inputs, dtype)
    if len(x) == 0:
        raise EvsimValueError("inputs hold no image")
    check_images(inputs, encoding=encoding)
    if encoding == "rate":
        check_rate_inputs(x)
    steps = default_checkpoints(T) if checkpoints is None else np.unique(
        np.asarray(list(checkpoints), dtype=np.int64))
    if steps.size == 0 or steps[0] < 1 or steps[-1] > T:
        raise EvsimValueError(f"checkpoints must be steps in [1, {T}], got {steps.tolist()}")
    warn_if_tuned_for_other_T(snn, T, steps)
    selection = _selection(snn, record)
    check_simulation_memory(snn, len(x), T, engine=engine, batch_size=batch_size,
                            checkpoints=len(steps), per_image_counts=per_image_counts,
                            recorded=sum(len(v) for v in selection.values()), dtype=dtype)
    run = provenance(snn, seed=seed, first_image=first_image, batch_size=batch_size,
                     per_image_counts=per_image_counts)
    signal_plan = plan(snn.network, encoding)
    window, binary, steps_simulated = 0, snn.time_scheme == "ilif", T
    if snn.time_scheme in WINDOWED:
        if checkpoints is not None or selection:
            raise EvsimValueError(f"the {snn.time_scheme} scheme simulates whole windows: it has "
                                  "one checkpoint (T, the window) and records no traces")
        steps, steps_simulated = np.array([T]), 1
        if binary:
            if encoding != "analog":
                raise EvsimValueError("the ilif scheme sends binary codes of analog values; use "
                                      "encoding='analog'")
            snn, window = binary_network(snn, T), 2 ** T - 1  # window: the largest code
        else:
            snn, window = window_network(snn, T), T
            if encoding == "analog":
                x = x * x.dtype.type(window)

    net = snn.network
    sops = {p.layer: np.zeros(steps_simulated, np.int64) for p in signal_plan.paths
            if p.counts == "sops"}
    pool_ops = {p.layer: np.zeros(steps_simulated, np.int64) for p in signal_plan.paths
                if p.counts == "pool_ops"}
    counts = {name: np.zeros(net.shape(name), np.int64) for name in snn.neurons}
    negative = dict.fromkeys(snn.neurons, 0)
    outputs, trains, traces = [], {k: [] for k in selection}, {k: [] for k in selection}
    per_image = []
    chunks = range(0, len(x), batch_size)
    n_threads = thread_count(threads)
    if engine == "event":
        if selection:
            raise EvsimValueError("recording spike trains and membrane traces needs engine='dense'")
        program = compiled(snn, encoding, dtype, window, binary)
        workspace = event.Workspace(program, min(batch_size, len(x)),
                                    len(steps) if not window else 1)
        event.announce_compile(program)
    else:
        arena = Arena()  # the dense engine's block arrays, kept from chunk to chunk
        dense.announce_compile(snn, signal_plan)
    bar = _progress_bar(progress, len(x), "image")

    def advance(steps_done: int, images: int) -> None:
        if bar:
            bar.update(images * steps_done / steps_simulated)

    with one_blas_thread():  # the engines' own threads share the work, BLAS stays serial
        for start in chunks:
            chunk = x[start:start + batch_size]
            tick = functools.partial(advance, images=len(chunk))
            chunk_counts = ({name: np.zeros((len(chunk),) + net.shape(name), np.int64)
                             for name in snn.neurons} if per_image_counts else counts)
            if engine == "event":
                out = _event_chunk(snn, program, chunk, first_image + start, steps_simulated,
                                   steps if not window else np.array([1]), int(seed), sops,
                                   pool_ops, chunk_counts, negative, per_image_counts,
                                   workspace, n_threads, tick)
            else:
                out, chunk_trains, chunk_traces = dense.run_chunk(
                    snn, signal_plan, chunk, first_image + start, T=steps_simulated,
                    checkpoints=steps if not window else np.array([1]), encoding=encoding,
                    seed=int(seed), per_image=per_image_counts, record=selection, sops=sops,
                    pool_ops=pool_ops, counts=chunk_counts, negative=negative, window=window,
                    binary=binary, tick=tick, threads=n_threads, arena=arena)
                for name in selection:
                    tr = chunk_trains[name]
                    trains[name].append(SpikeTrain(tr.steps, tr.images + start, tr.neurons,
                                                   tr.counts))
                    traces[name].append(chunk_traces[name])
            outputs.append(out)
            if per_image_counts:
                per_image.append(chunk_counts)
    if bar:
        bar.close()
    if per_image_counts:
        counts = {name: np.concatenate([c[name] for c in per_image]) for name in snn.neurons}
    outputs = np.concatenate(outputs, axis=1)
    if binary:  # the readout decodes the window once; report it as a sum over T steps
        outputs = outputs * outputs.dtype.type(T)
    return SimResult(
        T=T, checkpoints=steps, outputs=outputs, spike_counts=counts,
        negative_spikes=negative,
        sops=sops, pool_ops=pool_ops, macs=dict(signal_plan.macs),
        neurons={name: int(np.prod(net.shape(name))) for name in snn.neurons},
        n_images=len(x), engine=engine, encoding=encoding, dtype=np.dtype(dtype).name,
        time_scheme=snn.time_scheme, latency=latency(net, T) if window else T,
        recorded=selection,
        spike_trains={name: SpikeTrain(*(np.concatenate([getattr(t, f) for t in parts])
                                         for f in ("steps", "images", "neurons", "counts")))
                      for name, parts in trains.items()},
        membrane={name: np.concatenate(parts, axis=1) for name, parts in traces.items()}, **run)


def _event_chunk(snn, program, chunk, start, T, steps, seed, sops, pool_ops, counts,
                 negative, per_image, workspace, threads, on_steps) -> np.ndarray:
    """Run the event engine on one chunk and file its results in the dense engine's layout."""
    net = snn.network
    chunk_sops = np.zeros((len(program.sop_layers), T), np.int64)
    chunk_pool = np.zeros((len(program.pool_layers), T), np.int64)
    out, chunk_counts = event.run_chunk(
        snn, program, chunk, start, T=T, checkpoints=steps, seed=seed, workspace=workspace,
        sops=chunk_sops, pool_ops=chunk_pool, threads=threads, on_steps=on_steps)
    for i, name in enumerate(program.sop_layers):
        sops[name] += chunk_sops[i]
    for i, name in enumerate(program.pool_layers):
        pool_ops[name] += chunk_pool[i]
    for name, offset, size, shape, negatives in program.neuron_layers:
        layer_counts = _channels_first(chunk_counts[:, offset:offset + size], shape)
        counts[name] += layer_counts if per_image else layer_counts.sum(axis=0)
        negative[name] += int(chunk_counts[:, negatives].sum())
    out = _channels_first(out.reshape(-1, program.readout_size), net.output_shape)
    return out.copy().reshape((len(chunk), len(steps)) + net.output_shape).swapaxes(0, 1)


def _channels_first(flat: np.ndarray, shape) -> np.ndarray:
    """(N, H*W*C) channels-last -> (N, C, H, W); 1-D layers unchanged."""
    if len(shape) != 3:
        return flat.reshape((len(flat),) + tuple(shape))
    c, h, w = shape
    return flat.reshape(len(flat), h, w, c).transpose(0, 3, 1, 2)


def _progress_bar(enabled: bool, total: int, unit: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, unit=unit, desc="simulate")


__all__ = ["simulate", "SimResult", "SpikeTrain", "compare", "results_equal",
           "default_checkpoints", "ENGINES"]
