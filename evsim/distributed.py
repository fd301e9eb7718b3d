"""Simulating on a Dask cluster: image shards on the workers of a ``dask.distributed.Client``.

:func:`evsim.simulate` with ``client=`` and :func:`evsim.compare_methods`
with ``client=`` come here. What moves over the network:

* the spiking network and the images go once to every worker
  (``Client.scatter(..., broadcast=True)``, keyed by their content), not once
  per task;
* each task simulates one contiguous shard of images ``[start, stop)`` and
  returns its :class:`~evsim.simulate.SimResult` (NumPy arrays);
* the shards of a run are joined with :func:`evsim.merge`, so the result is
  the local run's, exactly (shards start at multiples of ``batch_size``, which
  the dense engine needs for equal float outputs; rate-coded spikes are drawn
  by image index, ``first_image``).

A worker lost mid-run has its tasks rerun by the scheduler on the workers
left (every worker holds the network and the images). Dask is imported only
when a client is used (the optional extra ``distributed``); the local path
never imports it.
"""

from __future__ import annotations

import contextlib
import re
import sys
import uuid
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .errors import EvsimError, EvsimTypeError, EvsimValueError
from .extras import require
from .io.hashing import array_digest, content_hash
from .request import check_request
from .result import SimResult
from .result_merge import merge
from .simulation_options import resolve_simulation

class ClusterLostError(EvsimError, RuntimeError):
    """The Dask cluster lost a run: the scheduler went away, or cancelled or lost its tasks.
    The message says what was lost and how to resume; the cause is Dask's own error."""


#: Shards per worker thread of a run: enough to keep every thread busy while a slow shard
#: finishes, few enough that scheduling costs nothing next to a shard's work.
SHARDS_PER_THREAD = 2


def check_client(client, feature: str):
    """The ``distributed`` module, after checking that ``client`` is one of its Clients."""
    distributed = require("distributed", feature)
    if not isinstance(client, distributed.Client):
        raise EvsimTypeError(f"client must be a dask.distributed.Client, got "
                             f"{type(client).__name__}; connect one with "
                             "dask.distributed.Client('tcp://SCHEDULER:8786')")
    return distributed


def connect(address: str, timeout: float = 10.0):
    """A ``dask.distributed.Client`` connected to the scheduler at ``address``.

    Raises :class:`~evsim.errors.EvsimValueError` naming the address when no
    scheduler answers within ``timeout`` seconds.
    """
    distributed = require("distributed", "--scheduler")
    try:
        return distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as err:
        raise EvsimValueError(
            f"cannot reach a Dask scheduler at {address!r} ({err}); start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS` (docs/scaling.md)"
        ) from None


def shard_ranges(n_images: int, batch_size: int, shards: int) -> list[tuple[int, int]]:
    """About ``shards`` contiguous ``(start, stop)`` ranges covering ``n_images``, each
    starting at a multiple of ``batch_size``."""
    per_shard = -(-n_images // max(shards, 1))
    per_shard = max(batch_size, -(-per_shard // batch_size) * batch_size)
    return [(start, min(start + per_shard, n_images))
            for start in range(0, n_images, per_shard)]


def _scatter(client, kind: str, digest: str, value):
    """A future of ``value`` held by every worker (its key names the content; a fresh key
    per call, so that releasing an earlier call's copy cannot delete this one's)."""
    key = f"evsim-{kind}-{digest[:16]}-{uuid.uuid4().hex[:12]}"
    return client.scatter({key: value}, broadcast=True)[key]


def _simulate_shard(simulate: Callable[..., SimResult], snn, images: np.ndarray, start: int,
                    stop: int, first_image: int, T: int, options) -> SimResult:
    """Run on a worker: simulate images ``[start, stop)`` of the scattered ``images``."""
    return simulate(snn, images[start:stop], T, options=options,
                    first_image=first_image + start)


@dataclass
class _Run:
    tag: Hashable
    futures: list
    results: list = field(default_factory=list)


class ShardedRuns:
    """Simulations of spiking networks on one image set, sharded over a client's workers.

    :meth:`submit` sends a run's shards to the cluster at once (the workers
    start while you prepare the next run); :meth:`completed` yields
    ``(tag, SimResult)`` as each run's last shard arrives, shards merged.

    ``simulate`` is the local :func:`evsim.simulate` each worker runs on its shards (passed
    in: this module sits below the engines in evsim's layers).
    """

    def __init__(self, client, images: np.ndarray, *, simulate: Callable[..., SimResult],
                 batch_size: int, first_image: int = 0,
                 feature: str = "evsim.simulate(client=...)"):
        self._distributed = check_client(client, feature)
        self.client = client
        self._simulate = simulate
        self.batch_size = batch_size
        self.first_image = first_image
        self._images = _scatter(client, "images", array_digest(images), images)
        self._networks: dict[str, object] = {}
        self._runs: dict[object, _Run] = {}
        self._pending = self._distributed.as_completed()
        threads = sum(client.nthreads().values()) or 1
        self.ranges = shard_ranges(len(images), batch_size, SHARDS_PER_THREAD * threads)

    def submit(self, tag: Hashable, snn, *, T: int = 32, options=None, **overrides) -> None:
        """Simulate ``snn`` on all the images for ``T`` steps; ``options`` (a
        :class:`~evsim.simulation_options.SimulationOptions`) and single ``overrides`` as for
        :func:`evsim.simulate` (``threads`` defaults to 1: Dask runs one task per worker
        thread; ``batch_size`` is the runs' and progress is shown by the caller)."""
        options = resolve_simulation(options, **overrides)
        options = options.replace(batch_size=self.batch_size, progress=False,
                                  threads=options.threads or 1)
        digest = content_hash(snn)
        if digest not in self._networks:
            self._networks[digest] = _scatter(self.client, "network", digest, snn)
        futures = [self.client.submit(_simulate_shard, self._simulate, self._networks[digest],
                                      self._images, start, stop, self.first_image, T, options,
                                      pure=False)
                   for start, stop in self.ranges]
        run = _Run(tag, futures)
        for future in futures:
            self._runs[future.key] = run
            self._pending.add(future)

    def completed(self, on_shard: Callable[[int], None] | None = None
                  ) -> Iterator[tuple[Hashable, object]]:
        """``(tag, merged SimResult)`` of each submitted run as it completes; ``on_shard`` is
        called with the images of every shard that finishes."""
        for future in self._pending:
            run = self._runs.pop(future.key)
            try:
                result = future.result()
            except self._lost_errors() as err:
                raise self._lost(run, err) from err
            run.results.append(result)
            future.release()
            if on_shard is not None:
                on_shard(result.n_images)
            if len(run.results) == len(run.futures):
                yield run.tag, merge(run.results)

    def _lost_errors(self) -> tuple[type[BaseException], ...]:
        """Dask's errors for work the cluster lost (not a task's own failure)."""
        from concurrent.futures import CancelledError

        from distributed.comm import CommClosedError
        from distributed.scheduler import KilledWorker
        return CancelledError, CommClosedError, KilledWorker

    def _lost(self, run: _Run, err: BaseException) -> ClusterLostError:
        """The error saying that ``run`` was lost, and why."""
        text = " ".join(str(err).split())
        cancelled = re.search(r"cancelled for reason: ([\w-]+)", text)
        reason = cancelled.group(1) if cancelled else (text or type(err).__name__)
        what = ("a task killed its workers (did they run out of memory?)"
                if type(err).__name__ == "KilledWorker" else
                "the client lost the connection to the Dask scheduler, or the scheduler "
                "cancelled the tasks")
        unfinished = len(run.futures) - len(run.results)
        return ClusterLostError(
            f"the Dask cluster lost this simulation: {what} ({reason}); {unfinished} of "
            f"{len(run.futures)} image shards of run {run.tag!r} did not finish. Check that "
            "the scheduler and its workers are up (dask scheduler; dask worker ADDRESS) and "
            "run it again: evsim compare and compare_methods(cells=...) resume from the "
            "cells they saved")

    def close(self) -> None:
        """Release what the runs hold on the cluster (the network and image copies); quiet
        when the cluster is gone."""
        for run in self._runs.values():
            for future in run.futures:
                future.cancel()
        self._runs.clear()
        self._networks.clear()
        with contextlib.suppress(Exception):  # a lost scheduler cannot be told
            self._images.release()


def simulate_on(client, snn, inputs: np.ndarray, T: int = 32, *,
                simulate: Callable[..., SimResult], options=None, first_image: int = 0,
                **overrides) -> SimResult:
    """:func:`evsim.simulate` on the workers of ``client``: the same result, exactly.

    The request is checked here first, by the check the local path makes
    (:func:`evsim.request.check_request`), so a bad one fails before
    anything is sent, with the local path's message; warnings are given here too
    (those raised on the workers stay in their logs). ``simulate`` is the local
    :func:`evsim.simulate` each worker runs on its shards.
    """
    request = check_request(snn, inputs, T, resolve_simulation(options, **overrides),
                            first_image)
    runs = ShardedRuns(client, np.ascontiguousarray(request.inputs), simulate=simulate,
                       batch_size=request.options.batch_size, first_image=request.first_image)
    bar = None
    if request.options.progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=len(request.inputs), unit="image", desc="simulate", file=sys.stderr)
    try:
        runs.submit("run", snn, T=request.T, options=request.options)
        (_, result), = runs.completed(bar.update if bar else None)
    finally:
        runs.close()
        if bar:
            bar.close()
    return result


__all__ = ["simulate_on", "ShardedRuns", "ClusterLostError", "connect", "check_client",
           "shard_ranges", "SHARDS_PER_THREAD"]
