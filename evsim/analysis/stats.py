"""Spike statistics and conversion error, computed from a :class:`~evsim.SimResult`.

Three sources of information, three kinds of statistic:

* **spike counts** (always present): firing rates per layer and per neuron,
  fractions of silent and saturated neurons;
* **per-image spike counts** (``simulate(..., per_image_counts=True)``): the
  SNN's estimate of each activation, ``r = θ N(T) / T``, and so the
  conversion error against the ANN layer by layer;
* **recorded spike trains** (``simulate(..., engine="dense", record=...)``):
  anything that needs to know *when* neurons fired — spikes and sparsity per
  step, inter-spike intervals and their coefficient of variation, time to
  first spike. These cover the recorded neurons only.

Nothing here re-simulates: a statistic whose information the result lacks
raises ``ValueError`` saying which ``simulate`` option provides it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..forward import forward
from ..result import SimResult, SpikeTrain
from ..spiking import SpikingNetwork
from ..errors import EvsimValueError


def _check_layer(result: SimResult, layer: str) -> None:
    if layer not in result.spike_counts:
        raise EvsimValueError(
            f"'{layer}' is not a spiking layer of this result; spiking layers are "
            f"{list(result.spike_counts)}")


def _check_same_network(snn: SpikingNetwork, result: SimResult) -> None:
    if set(snn.neurons) != set(result.spike_counts):
        raise EvsimValueError(
            f"the result's spiking layers {sorted(result.spike_counts)} are not the "
            f"network's {sorted(snn.neurons)}; was it simulated from this network?")


def counts_per_image(result: SimResult, layer: str) -> np.ndarray | None:
    """Spike counts of ``layer`` as ``(n_images, n_neurons)``, or None when the result kept
    only their sum over the batch (``per_image_counts=False`` and several images)."""
    _check_layer(result, layer)
    counts, n = result.spike_counts[layer], result.neurons[layer]
    if counts.size == n * result.n_images and counts.ndim >= 2 and (
            counts.shape[0] == result.n_images):
        return counts.reshape(result.n_images, n)
    if result.n_images == 1:  # the batch sum is the one image's counts
        return counts.reshape(1, n)
    return None


def _require_per_image(result: SimResult, layer: str, what: str) -> np.ndarray:
    counts = counts_per_image(result, layer)
    if counts is None:
        raise EvsimValueError(f"{what} of layer '{layer}' needs spike counts per image; simulate "
                              "with per_image_counts=True")
    return counts


def recorded_train(result: SimResult, layer: str, what: str = "this statistic"
                   ) -> tuple[SpikeTrain, int]:
    """The recorded spike train of ``layer`` and its number of recorded neurons.

    Raises ValueError, saying which ``simulate`` options record it, when the
    layer was not recorded; ``what`` names the caller in that message.
    """
    _check_layer(result, layer)
    if layer not in result.spike_trains:
        raise EvsimValueError(f"{what} of layer '{layer}' needs its spike trains, which were not "
                              f"recorded; simulate with engine='dense' and record=['{layer}'] (or "
                              f"record={{'{layer}': [neuron indices]}})")
    return result.spike_trains[layer], len(result.recorded[layer])


# --- firing rates and silent / saturated neurons (spike counts) -----------------------------

def neuron_firing_rates(result: SimResult) -> dict[str, np.ndarray]:
    """Spikes per step of every neuron, averaged over the images.

    Returns ``{layer: float64 array of the layer's per-image shape}``; with
    bursts (Γ > 1) a rate may exceed 1.
    """
    out = {}
    for layer, counts in result.spike_counts.items():
        per_image = counts_per_image(result, layer)
        total = counts if per_image is None else counts.sum(axis=0)
        out[layer] = total.astype(np.float64) / (result.T * result.n_images)
    return out


def layer_firing_rates(result: SimResult) -> dict[str, float]:
    """Mean spikes per neuron per step of every spiking layer (all neurons and images)."""
    return {layer: float(rates.mean()) for layer, rates in neuron_firing_rates(result).items()}


def silent_fraction(result: SimResult, per_image: bool = False) -> dict[str, float]:
    """Fraction of neurons that never fired, per spiking layer.

    ``per_image=False``: neurons silent on every image of the batch (dead
    neurons; works with summed counts). ``per_image=True``: fraction of
    (image, neuron) pairs with no spike (needs ``per_image_counts=True``).
    """
    out = {}
    for layer, counts in result.spike_counts.items():
        if per_image:
            out[layer] = float((_require_per_image(result, layer, "silent_fraction") == 0).mean())
        else:
            total = counts_per_image(result, layer)
            total = counts if total is None else total.sum(axis=0)
            out[layer] = float((total == 0).mean())
    return out


def saturated_fraction(result: SimResult, snn: SpikingNetwork,
                       per_image: bool = False) -> dict[str, float]:
    """Fraction of neurons that fired the most they can: Γ spikes at every step.

    A saturated neuron's count is ``T × Γ`` per image (Γ = the layer's burst
    size, 1 for plain IF neurons); its rate cannot follow a larger
    activation, so saturation is a conversion error. ``per_image`` as in
    :func:`silent_fraction` (``False``: saturated on every image).
    """
    _check_same_network(snn, result)
    out = {}
    for layer, counts in result.spike_counts.items():
        ceiling = result.T * snn.neurons[layer].burst
        if per_image:
            per = _require_per_image(result, layer, "saturated_fraction")
            out[layer] = float((per == ceiling).mean())
        else:
            per = counts_per_image(result, layer)
            total = counts if per is None else per.sum(axis=0)
            out[layer] = float((total == ceiling * result.n_images).mean())
    return out


# --- per-step statistics and timing (recorded spike trains) ---------------------------------

def spikes_per_step(result: SimResult, layer: str) -> np.ndarray:
    """``(T,)`` spikes (summed multiplicities) of the recorded neurons of ``layer`` at each
    step, summed over images."""
    train, _ = recorded_train(result, layer, "spikes_per_step")
    return np.bincount(train.steps - 1, weights=np.abs(train.counts),
                       minlength=result.T).astype(np.int64)


def sparsity_per_step(result: SimResult, layer: str) -> np.ndarray:
    """``(T,)`` fraction of (image, recorded neuron) pairs of ``layer`` that did *not* fire at
    each step (1 = no activity)."""
    train, n_recorded = recorded_train(result, layer, "sparsity_per_step")
    active = np.bincount(train.steps - 1, minlength=result.T)
    return 1.0 - active / (result.n_images * n_recorded)


def _sorted_train(train):
    order = np.lexsort((train.steps, train.neurons, train.images))
    return train.steps[order], train.images[order], train.neurons[order]


def interspike_intervals(result: SimResult, layer: str) -> np.ndarray:
    """All inter-spike intervals (in steps, ≥ 1) of the recorded neurons of ``layer``, 1-D int64.

    An interval runs between two consecutive steps in which the same neuron
    fired on the same image; a burst (several spikes in one step) is one
    firing time.
    """
    train, _ = recorded_train(result, layer, "interspike_intervals")
    steps, images, neurons = _sorted_train(train)
    same = (images[1:] == images[:-1]) & (neurons[1:] == neurons[:-1])
    return np.diff(steps)[same]


def isi_cv(result: SimResult, layer: str) -> np.ndarray:
    """Coefficient of variation (std / mean) of each recorded neuron's inter-spike intervals.

    Returns ``(n_images, n_recorded)`` float64; NaN where a neuron fired in
    fewer than 3 steps (fewer than 2 intervals). A regular IF neuron driven
    by a constant current has a CV near 0; a Poisson neuron's is near 1.
    """
    train, n_recorded = recorded_train(result, layer, "isi_cv")
    steps, images, neurons = _sorted_train(train)
    same = (images[1:] == images[:-1]) & (neurons[1:] == neurons[:-1])
    isi = np.diff(steps)[same].astype(np.float64)
    pair = (images[1:] * n_recorded + neurons[1:])[same]
    size = result.n_images * n_recorded
    n = np.bincount(pair, minlength=size)
    total = np.bincount(pair, weights=isi, minlength=size)
    squares = np.bincount(pair, weights=isi ** 2, minlength=size)
    cv = np.full(size, np.nan)
    ok = n >= 2
    mean = total[ok] / n[ok]
    variance = np.maximum(squares[ok] / n[ok] - mean ** 2, 0.0)
    cv[ok] = np.sqrt(variance) / mean
    return cv.reshape(result.n_images, n_recorded)


def first_spike_times(result: SimResult, layer: str) -> np.ndarray:
    """Step (1..T) of each recorded neuron's first spike, ``(n_images, n_recorded)`` float64;
    NaN for a neuron that never fired."""
    train, n_recorded = recorded_train(result, layer, "first_spike_times")
    first = np.full(result.n_images * n_recorded, np.inf)
    np.minimum.at(first, train.images * n_recorded + train.neurons, train.steps)
    first[np.isinf(first)] = np.nan
    return first.reshape(result.n_images, n_recorded)


# --- conversion error (per-image counts against the ANN) ------------------------------------

def snn_rates(snn: SpikingNetwork, result: SimResult,
              layers: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The SNN's estimate of each activation, ``r = θ N(T) / T``, per image.

    Returns ``{layer: (n_images, *layer_shape) float64}`` in the ANN's units
    (θ broadcast per channel or neuron). Needs ``per_image_counts=True``.
    """
    _check_same_network(snn, result)
    out = {}
    for layer in (result.spike_counts if layers is None else layers):
        _check_layer(result, layer)
        counts = _require_per_image(result, layer, "the SNN rate")
        shape = snn.network.shape(layer)
        theta = snn.threshold(layer).astype(np.float64)
        out[layer] = counts.reshape((result.n_images,) + shape) * theta / result.T
    return out


def rate_vs_activation(snn: SpikingNetwork, result: SimResult, inputs: np.ndarray,
                       layers: Iterable[str] | None = None
                       ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pairs ``(SNN rate θN/T, ANN activation)`` for every neuron and image, per layer.

    ``inputs`` must be the images that were simulated, in the same order.
    Both arrays are ``(n_images, *layer_shape)`` float64; the activation is
    the output of the same layer of ``evsim.forward(snn.network, inputs)``.
    """
    inputs = np.asarray(inputs)
    if len(inputs) != result.n_images:
        raise EvsimValueError(f"inputs hold {len(inputs)} images but the result simulated "
                              f"{result.n_images}; pass the simulated images")
    rates = snn_rates(snn, result, layers)
    _, acts = forward(snn.network, inputs, activations=list(rates), dtype=np.float64)
    return {layer: (rates[layer], acts[layer]) for layer in rates}


@dataclass(frozen=True)
class LayerErrorStats:
    """Conversion error of one spiking layer over all its neurons and images.

    ``mean``: mean of (rate − activation), the bias; ``rms``: root mean
    square error; ``max_abs``: largest |rate − activation|; ``correlation``:
    Pearson correlation of rate and activation (NaN if either is constant);
    ``n``: number of (image, neuron) pairs. Units are the activation's.
    """

    layer: str
    mean: float
    rms: float
    max_abs: float
    correlation: float
    n: int


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    da, db = a - a.mean(), b - b.mean()
    denominator = np.sqrt((da ** 2).sum() * (db ** 2).sum())
    return float((da * db).sum() / denominator) if denominator > 0 else float("nan")


def conversion_error(snn: SpikingNetwork, result: SimResult, inputs: np.ndarray,
                     layers: Iterable[str] | None = None) -> dict[str, LayerErrorStats]:
    """Per-layer error of the SNN rate θN/T against the ANN activation.

    Needs a result simulated with ``per_image_counts=True`` on ``inputs``.
    Returns ``{layer: LayerErrorStats}`` in topological order.
    """
    out = {}
    for layer, (rate, act) in rate_vs_activation(snn, result, inputs, layers).items():
        diff = (rate - act).ravel()
        out[layer] = LayerErrorStats(layer, float(diff.mean()), float(np.sqrt((diff ** 2).mean())),
                                float(np.abs(diff).max()), _correlation(rate.ravel(), act.ravel()),
                                int(diff.size))
    return out


@dataclass(frozen=True)
class OutputErrorStats:
    """Error of the SNN's mean output against the ANN output at each checkpoint.

    ``checkpoints`` ``(K,)`` steps; ``mse`` ``(K,)`` mean squared error and
    ``max_abs`` ``(K,)`` largest absolute error over images and outputs of
    ``mean_output(t) − forward(network, inputs)``.
    """

    checkpoints: np.ndarray
    mse: np.ndarray
    max_abs: np.ndarray


def output_error(snn: SpikingNetwork, result: SimResult, inputs: np.ndarray) -> OutputErrorStats:
    """Mean output ``Σ_{t'≤t} out(t') / t`` at every checkpoint t versus the ANN's output."""
    inputs = np.asarray(inputs)
    if len(inputs) != result.n_images:
        raise EvsimValueError(f"inputs hold {len(inputs)} images but the result simulated "
                              f"{result.n_images}; pass the simulated images")
    ann = forward(snn.network, inputs, dtype=np.float64)
    mean = result.outputs.astype(np.float64) / result.checkpoints.reshape(
        (-1,) + (1,) * (result.outputs.ndim - 1))
    diff = (mean - ann[None]).reshape(len(result.checkpoints), -1)
    return OutputErrorStats(result.checkpoints.copy(), (diff ** 2).mean(axis=1),
                       np.abs(diff).max(axis=1))


__all__ = ["counts_per_image", "recorded_train", "neuron_firing_rates", "layer_firing_rates",
           "silent_fraction", "saturated_fraction",
           "spikes_per_step", "sparsity_per_step", "interspike_intervals", "isi_cv",
           "first_spike_times", "snn_rates", "rate_vs_activation", "conversion_error",
           "LayerErrorStats", "output_error", "OutputErrorStats"]
