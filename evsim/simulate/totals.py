"""Adding up a run's chunks: the :class:`~evsim.engines.ChunkResult` of every chunk
into one :class:`~evsim.simulate.SimResult`, whatever engine made them."""

from __future__ import annotations

import numpy as np

from ..signals import SignalPlan
from ..engines import ChunkResult, zero_counters
from ..request import SimulationRequest
from .result import SimResult, SpikeTrain, provenance

_TRAIN_FIELDS = ("steps", "images", "neurons", "counts")


class ChunkTotals:
    """The totals of a run so far: :meth:`add` each chunk in order, then :meth:`result`."""

    def __init__(self, request: SimulationRequest, signals: SignalPlan):
        self.request, self.signals = request, signals
        net, neurons = request.time.snn.network, request.time.snn.neurons
        self.sops, self.pool_ops = zero_counters(signals, request.time.steps_simulated)
        self.counts = {name: np.zeros(net.shape(name), np.int64) for name in neurons}
        self.negative = dict.fromkeys(neurons, 0)
        self.outputs: list[np.ndarray] = []
        self.per_image: list[dict[str, np.ndarray]] = []
        self.pooled: list[dict[str, np.ndarray]] = []  # each chunk's pool_spike_counts
        self.trains: dict[str, list] = {name: [] for name in request.selection}
        self.traces: dict[str, list] = {name: [] for name in request.selection}
        self.crossings: dict[str, list] = {name: [] for name in request.selection}

    def add(self, chunk: ChunkResult, start: int) -> None:
        """Add the chunk whose first image is ``inputs[start]``."""
        for totals, counted in ((self.sops, chunk.sops), (self.pool_ops, chunk.pool_ops)):
            for name, values in counted.items():
                totals[name] += values
        for name, value in chunk.negative_spikes.items():
            self.negative[name] += value
        if self.request.options.per_image_counts:
            self.per_image.append(chunk.spike_counts)
        else:
            for name, counts in chunk.spike_counts.items():
                self.counts[name] += counts
        self.pooled.append(chunk.pool_spike_counts)
        self.outputs.append(chunk.outputs)
        for name in self.trains:
            train = chunk.spike_trains[name]
            self.trains[name].append(SpikeTrain(train.steps, train.images + start,
                                                train.neurons, train.counts))
            self.traces[name].append(chunk.membrane[name])
            if name in chunk.membrane_before_reset:  # an engine may keep only `membrane`
                self.crossings[name].append(chunk.membrane_before_reset[name])

    def result(self) -> SimResult:
        """The :class:`SimResult` of the chunks added."""
        request, options, time = self.request, self.request.options, self.request.time
        net = time.snn.network
        counts = self.counts
        if options.per_image_counts:
            counts = {name: np.concatenate([c[name] for c in self.per_image]) for name in counts}
        run = provenance(request.snn, seed=options.seed, first_image=request.first_image,
                         batch_size=options.batch_size, per_image_counts=options.per_image_counts)
        return SimResult(
            T=request.T, checkpoints=time.checkpoints,
            outputs=time.scale_outputs(np.concatenate(self.outputs, axis=1)),
            spike_counts=counts, negative_spikes=self.negative, sops=self.sops,
            pool_ops=self.pool_ops, macs=dict(self.signals.macs),
            neurons={name: int(np.prod(net.shape(name))) for name in time.snn.neurons},
            n_images=len(request.inputs), engine=options.engine, encoding=options.encoding,
            dtype=options.dtype.name, time_scheme=time.snn.time_scheme, latency=time.latency,
            recorded=request.selection,
            spike_trains={name: SpikeTrain(*(np.concatenate([getattr(t, f) for t in parts])
                                             for f in _TRAIN_FIELDS))
                          for name, parts in self.trains.items()},
            membrane={name: np.concatenate(parts, axis=1) for name, parts in self.traces.items()},
            membrane_before_reset={name: np.concatenate(parts, axis=1)
                                   for name, parts in self.crossings.items() if parts},
            pool_spike_counts=self.pool_spike_counts(), **run)

    def pool_spike_counts(self) -> dict[str, np.ndarray]:
        """The pooling layers' output spikes of all chunks (none unless every chunk has
        them)."""
        names = set.intersection(*(set(chunk) for chunk in self.pooled))
        join = (np.concatenate if self.request.options.per_image_counts
                else lambda parts: np.sum(parts, axis=0, dtype=np.int64))
        return {name: join([chunk[name] for chunk in self.pooled])
                for name in self.pooled[0] if name in names}


__all__ = ["ChunkTotals"]
