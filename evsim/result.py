"""SimResult: what a simulation returns, the same schema for every engine, and how two results
differ (:func:`difference`, :func:`results_equal`).

A leaf of the data flow: reading a saved result needs this module, never an engine (no
Numba).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields

import numpy as np

from .errors import EvsimValueError
from .spiking import WINDOWED
from .validate import check_labels, check_steps


def default_checkpoints(T: int) -> np.ndarray:
    """Steps 1, 2, 4, 8, ... below T, and T itself."""
    steps = [1 << k for k in range(T.bit_length()) if (1 << k) < T]
    return np.array(steps + [T], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class SpikeTrain:
    """Spikes of the recorded neurons of one layer as coordinate lists.

    ``steps`` (1-based), ``images`` (index within the simulated batch),
    ``neurons`` (position in the layer's ``recorded`` list) and ``counts``
    (multiplicity, may exceed 1 with bursts), all 1-D of equal length.
    """

    steps: np.ndarray
    images: np.ndarray
    neurons: np.ndarray
    counts: np.ndarray


@dataclass(frozen=True, eq=False)
class SimResult:
    """The outcome of simulating a batch of ``n_images`` for ``T`` steps.

    Attributes
    ----------
    T:
        Number of time steps simulated.
    checkpoints:
        ``(K,)`` steps at which the accumulated output was kept.
    outputs:
        ``(K, n_images, *output_shape)``: the output layer's values summed
        over steps 1..checkpoints[k] (divide by the step for the mean; see
        :meth:`mean_output`).
    spike_counts:
        ``{layer: counts}`` per spiking layer, int64: ``layer_shape`` summed
        over the batch, or ``(n_images, *layer_shape)`` when per-image counts
        were asked for.
    sops:
        ``{layer: (T,) int64}`` synaptic operations per step summed over the
        batch, for every layer that accumulates spikes (Dense, Conv2d with
        any folded pooling, Add, activations reading spikes directly).
    pool_ops:
        ``{layer: (T,) int64}`` max-pool accumulator updates per step.
    macs:
        ``{layer: MACs per image}`` of the analog head (layers computed once
        from the analog input).
    neurons:
        ``{layer: neurons per image}`` of every spiking layer.
    recorded:
        ``{layer: flat neuron indices}`` whose trains/traces were recorded.
    spike_trains:
        ``{layer: SpikeTrain}`` for recorded layers.
    membrane:
        ``{layer: (T, n_images, n_recorded)}`` membrane potential after each
        step's reset (dense engine only).
    membrane_before_reset:
        ``{layer: (T, n_images, n_recorded)}`` membrane potential of the same neurons
        after each step's input was integrated and before the reset: the value compared
        with θ, so the crossing shows (dense engine only).
    negative_spikes:
        ``{layer: count}`` negative spikes (SpiCalib's calibration spikes, or the
        negative spikes of signed neurons, methods.md §5b) of
        every spiking layer, over all images and steps; ``spike_counts`` are
        net counts, so a layer sent ``spike_counts + 2 × negative`` spikes.
    pool_spike_counts:
        ``{layer: counts}`` of every spiking max pooling layer, int64, laid out as
        ``spike_counts``: its output spikes (empty in the ilif scheme, and in results
        of engines or evsim versions that do not count them).
    engine, encoding, dtype, time_scheme:
        How the result was produced. In the ``"temporal"`` and ``"ilif"``
        schemes T is the window length, there is one checkpoint (T) and
        ``sops``/``pool_ops`` hold one entry per layer: the whole window.
    latency:
        Steps until the last output is complete: T, or (D + 1) T in the
        temporal scheme.
    seed, first_image, batch_size, per_image_counts:
        The run's arguments: rate-encoder seed, index of the first image in
        the whole data set (the images are ``first_image ..
        first_image + n_images - 1``), images per chunk, and whether
        ``spike_counts`` are per image.
    network_hash, method, options:
        What was simulated: the SpikingNetwork's content hash
        (:func:`evsim.io.content_hash`), its conversion method and options.
    evsim_version:
        The evsim that made the result.

    :func:`evsim.save` writes a result and :func:`evsim.load` reads it back
    exactly; :func:`evsim.merge` joins the results of disjoint image shards.
    """

    T: int
    checkpoints: np.ndarray
    outputs: np.ndarray
    spike_counts: dict[str, np.ndarray]
    sops: dict[str, np.ndarray]
    pool_ops: dict[str, np.ndarray]
    macs: dict[str, int]
    neurons: dict[str, int]
    n_images: int
    engine: str
    encoding: str
    dtype: str
    time_scheme: str = "synchronous"
    latency: int = 0
    recorded: dict[str, np.ndarray] = field(default_factory=dict)
    spike_trains: dict[str, SpikeTrain] = field(default_factory=dict)
    membrane: dict[str, np.ndarray] = field(default_factory=dict)
    membrane_before_reset: dict[str, np.ndarray] = field(default_factory=dict)
    negative_spikes: dict[str, int] = field(default_factory=dict)
    seed: int = 0
    first_image: int = 0
    batch_size: int = 0
    per_image_counts: bool = False
    network_hash: str = ""
    method: str = ""
    options: dict = field(default_factory=dict)
    evsim_version: str = ""
    pool_spike_counts: dict[str, np.ndarray] = field(default_factory=dict)

    def _index(self, step: int | None) -> int:
        if step is None:
            return len(self.checkpoints) - 1
        step = check_steps(step, "step")
        hits = np.flatnonzero(self.checkpoints == step)
        if not hits.size:
            raise EvsimValueError(f"step {step} is not a checkpoint; checkpoints are "
                                  f"{self.checkpoints.tolist()}")
        return int(hits[0])

    def mean_output(self, step: int | None = None) -> np.ndarray:
        """Mean output over steps 1..step (default T): ``(n_images, *output_shape)``."""
        k = self._index(step)
        return self.outputs[k] / self.checkpoints[k]

    def predictions(self) -> np.ndarray:
        """``(K, n_images)`` arg-max class at every checkpoint."""
        flat = self.outputs.reshape(len(self.checkpoints), self.n_images, -1)
        return flat.argmax(axis=2)

    def accuracy(self, labels: np.ndarray) -> np.ndarray:
        """``(K,)`` classification accuracy at every checkpoint.

        ``labels`` ``(n_images,)`` are class indices in ``[0, number of outputs)``;
        others raise :class:`~evsim.errors.EvsimValueError`.
        """
        classes = int(np.prod(self.outputs.shape[2:]))
        labels = check_labels(labels, classes, self.n_images)
        return (self.predictions() == labels[None, :]).mean(axis=1)

    def cumulative_sops(self) -> np.ndarray:
        """``(K,)`` SOPs (all layers, summed over the batch) up to each checkpoint."""
        per_step = sum(self.sops.values()) if self.sops else np.zeros(self.T, np.int64)
        if self.time_scheme in WINDOWED:
            return np.array([int(per_step.sum())], dtype=np.int64)
        return np.cumsum(per_step)[self.checkpoints - 1]

    def total_sops(self) -> int:
        """All synaptic operations of the run (all layers, steps and images)."""
        return int(sum(int(v.sum()) for v in self.sops.values()))

    def firing_rates(self) -> dict[str, float]:
        """Mean net spikes per neuron per step for each spiking layer (a negative spike, from
        SpiCalib or a signed neuron, counts −1, as in :attr:`spike_counts`; the spikes sent
        are these plus twice :attr:`negative_spikes`)."""
        return {name: float(counts.sum()) / (self.neurons[name] * self.T * self.n_images)
                for name, counts in self.spike_counts.items()}

    def accuracy_table(self, labels: np.ndarray, ann_accuracy: float | None = None) -> str:
        """A Markdown table: T, accuracy, SOPs per image so far."""
        acc = self.accuracy(labels)
        sops = self.cumulative_sops() / self.n_images
        lines = ["| T | accuracy (%) | SOPs per image |", "|---:|---:|---:|"]
        for step, a, s in zip(self.checkpoints, acc, sops):
            lines.append(f"| {step} | {100 * a:.2f} | {s:.4g} |")
        if ann_accuracy is not None:
            lines.append(f"| ANN | {100 * ann_accuracy:.2f} | |")
        return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class ResultDifference(Mapping):
    """How two results of the same run differ (:func:`difference`).

    Also a read-only mapping of its fields (``diff["spikes"]``, ``dict(diff)``, ``diff ==
    {...}``), as :func:`compare`'s dict was.

    Attributes
    ----------
    spikes:
        Differing spike count: the sum of |Δ| over layers and neurons, and of the negative
        spike totals.
    sops:
        ``{layer: sum of |Δ| over steps}`` of the layers whose SOPs differ.
    pool_ops:
        Likewise for max-pool accumulator updates.
    outputs:
        Max |Δ| of the accumulated outputs (float64).
    predictions:
        Number of images whose arg-max prediction at T differs.
    """

    spikes: int
    sops: dict[str, int]
    pool_ops: dict[str, int]
    outputs: float
    predictions: int

    def __getitem__(self, key: str):
        if key not in self._keys():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


def difference(a: SimResult, b: SimResult) -> ResultDifference:
    """How two results of the same run (e.g. of two engines) differ.

    Raises :class:`~evsim.errors.EvsimValueError` when they are not the same run: T, batch
    size, checkpoints, layers or time scheme differ.
    """
    if (a.T, a.n_images) != (b.T, b.n_images) or not np.array_equal(a.checkpoints,
                                                                       b.checkpoints):
        raise EvsimValueError("results differ in T, batch size or checkpoints; they are not the "
                              "same run")
    if (a.spike_counts.keys() != b.spike_counts.keys() or a.sops.keys() != b.sops.keys()
            or a.pool_ops.keys() != b.pool_ops.keys()):
        raise EvsimValueError("results come from different networks")
    if a.time_scheme != b.time_scheme:
        raise EvsimValueError(f"results of the {a.time_scheme!r} and {b.time_scheme!r} time "
                              "schemes are not the same run")
    per_image = a.per_image_counts and b.per_image_counts
    spikes = sum(int(np.abs(_counts(a, k, per_image) - _counts(b, k, per_image)).sum())
                 for k in a.spike_counts)
    spikes += sum(abs(a.negative_spikes.get(k, 0) - b.negative_spikes.get(k, 0))
                  for k in a.spike_counts)
    sops = {k: int(np.abs(a.sops[k] - b.sops[k]).sum()) for k in a.sops
            if not np.array_equal(a.sops[k], b.sops[k])}
    pool = {k: int(np.abs(a.pool_ops[k] - b.pool_ops[k]).sum()) for k in a.pool_ops
            if not np.array_equal(a.pool_ops[k], b.pool_ops[k])}
    outputs = float(np.max(np.abs(a.outputs.astype(np.float64) - b.outputs)))
    predictions = int((a.predictions()[-1] != b.predictions()[-1]).sum())
    return ResultDifference(spikes=spikes, sops=sops, pool_ops=pool, outputs=outputs,
                            predictions=predictions)


def compare(a: SimResult, b: SimResult) -> ResultDifference:
    """Deprecated alias of :func:`difference`; removed after 0.2. It returns the same
    labelled record, which reads as the dict it once returned (``diff["spikes"]``,
    ``dict(diff)``, ``diff == {...}``).

    ``evsim.compare`` was easily confused with :func:`evsim.compare_methods` and the
    ``evsim compare`` command.
    """
    warnings.warn("evsim.compare is deprecated; use evsim.difference (same keys, also "
                  "attributes)", DeprecationWarning, stacklevel=2)
    return difference(a, b)


def _counts(result: SimResult, layer: str, per_image: bool) -> np.ndarray:
    """int64 spike counts of ``layer``: ``(n_images, neurons)`` when ``per_image``, else
    ``(neurons,)`` summed over the images whether the result kept them per image or not."""
    counts = result.spike_counts[layer].astype(np.int64)
    if not result.per_image_counts:
        return counts.reshape(-1)
    counts = counts.reshape(result.n_images, -1)
    return counts if per_image else counts.sum(axis=0)


def results_equal(a: SimResult, b: SimResult) -> bool:
    """True when spikes, SOPs, pooling operations and outputs are identical."""
    diff = difference(a, b)
    return diff.spikes == 0 and not diff.sops and not diff.pool_ops and (
        np.array_equal(a.outputs, b.outputs))


__all__ = ["SimResult", "SpikeTrain", "ResultDifference", "difference", "results_equal",
           "default_checkpoints", "compare"]
