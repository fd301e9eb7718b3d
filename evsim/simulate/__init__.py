"""Simulating a spiking network: :func:`simulate` and its :class:`SimResult`.

:func:`simulate` checks the request (:mod:`~evsim.request`), lowers
its time scheme (:mod:`~evsim.timeplan`), makes the engine's runner
from the registry (:mod:`~evsim.engines`) and adds up the runner's
chunks (:mod:`~evsim.simulate.totals`). The engine modules, and Numba, are
imported when an engine is first used.
"""

from __future__ import annotations

import functools

import numpy as np

from ..signals import plan
from ..spiking import SpikingNetwork
from ..threads import one_blas_thread, thread_count
from ..engines import ENGINES, EngineSetup, register_engine
from ..simulation_options import SimulationOptions, resolve_simulation
from ..request import SimulationRequest, check_memory, check_request
from .result import SimResult, SpikeTrain, compare, default_checkpoints, results_equal
from .totals import ChunkTotals


def simulate(snn: SpikingNetwork, inputs: np.ndarray, T: int = 32, *,
             options: SimulationOptions | None = None, first_image: int = 0, client=None,
             **overrides) -> SimResult:
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
    options:
        How to simulate: a :class:`~evsim.simulation_options.SimulationOptions`
        (default: its defaults).
    first_image:
        Index of ``inputs[0]`` in the whole data set (≥ 0): rate-coded spikes
        are drawn by image index, so a shard simulated with its offset gets
        the spikes of the whole run (:func:`evsim.merge` joins the shards).
    client:
        A ``dask.distributed.Client``: simulate shards of the images on its
        workers and merge them (:mod:`evsim.distributed`); the result equals
        the local run's exactly. Needs the extra ``distributed``; ``threads``
        then counts per task (default 1).
    **overrides:
        Single options changed from ``options``, by field name of
        :class:`~evsim.simulation_options.SimulationOptions`: ``engine``
        (``"event"``, default, or ``"dense"``, or a registered engine),
        ``encoding`` (``"analog"`` or ``"rate"``), ``checkpoints`` (steps at
        which to keep the accumulated output; default 1, 2, 4, ..., T),
        ``record`` (spiking layers whose spike trains and membrane traces to
        keep: a name, names, or ``{name: flat neuron indices or None}``),
        ``per_image_counts``, ``seed`` (of the rate encoder), ``batch_size``
        (images simulated together), ``dtype`` (float32 or float64),
        ``threads`` (sharing a chunk's images; results do not depend on it)
        and ``progress`` (a progress bar on stderr). Each is documented there.

    Returns
    -------
    A :class:`SimResult`.
    """
    options = resolve_simulation(options, **overrides)
    if client is not None:
        from ..distributed import simulate_on
        return simulate_on(client, snn, inputs, T, simulate=simulate, options=options,
                           first_image=first_image)
    request = check_request(snn, inputs, T, options, first_image)
    check_memory(request)
    return _run(request)


def _run(request: SimulationRequest) -> SimResult:
    """Simulate a checked request chunk by chunk on its engine's runner."""
    options, time = request.options, request.time
    x = time.scale_inputs(request.inputs)
    signals = plan(request.snn.network, options.encoding)
    runner = ENGINES[options.engine].runner(EngineSetup(
        time, signals, options, request.selection, capacity=min(options.batch_size, len(x)),
        threads=thread_count(options.threads)))
    totals = ChunkTotals(request, signals)
    bar = _progress_bar(options.progress, len(x), "image")
    steps_done = [0]  # image-steps simulated: the bar shows the whole images they make

    def advance(steps: int, images: int) -> None:
        steps_done[0] += images * steps
        if bar:
            bar.update(steps_done[0] // time.steps_simulated - bar.n)

    with one_blas_thread():  # the engines' own threads share the work, BLAS stays serial
        for start in range(0, len(x), options.batch_size):
            chunk = x[start:start + options.batch_size]
            tick = functools.partial(advance, images=len(chunk))
            totals.add(runner.run_chunk(chunk, request.first_image + start, tick), start)
    if bar:
        bar.close()
    return totals.result()


def _progress_bar(enabled: bool, total: int, unit: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, unit=unit, desc="simulate")


__all__ = ["simulate", "SimResult", "SpikeTrain", "compare", "results_equal",
           "default_checkpoints", "ENGINES", "SimulationOptions", "register_engine"]
