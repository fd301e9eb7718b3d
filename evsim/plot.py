"""Pictures of what a spiking network does, with matplotlib.

Every function returns a :class:`matplotlib.figure.Figure`. Figures are made
with matplotlib's object interface (no ``pyplot``), so nothing opens a window
and no backend is selected: save with ``fig.savefig("name.png")``; in Jupyter,
run ``%matplotlib inline`` once and a returned figure displays itself.
Functions that draw one panel take an optional ``ax`` to draw into; those
with one panel per layer take an optional ``fig`` to fill.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .analysis.energy import EnergyReport, energy_unit
from .analysis.stats import (LayerErrorStats, OutputErrorStats, counts_per_image,
                             recorded_train)
from .analysis.stats import rate_vs_activation as _rate_pairs
from .simulate.result import SimResult
from .spiking import SpikingNetwork


def _axes(ax: Axes | None, size=(6.0, 4.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _grid(fig: Figure | None, n: int, panel=(3.6, 3.2)) -> tuple[Figure, list[Axes]]:
    """``n`` panels in rows of at most 3, added to ``fig`` (a new figure when None)."""
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    if fig is None:
        fig = Figure(figsize=(panel[0] * cols, panel[1] * rows), layout="constrained")
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    return fig, axes


def spike_raster(result: SimResult, layer: str, image: int = 0, ax: Axes | None = None) -> Figure:
    """Raster of the recorded neurons of ``layer`` on one image: a mark per (step, neuron) that
    fired, larger for bursts. Needs ``simulate(..., engine="dense", record=[layer])``."""
    train, _ = recorded_train(result, layer, "spike_raster")
    if not 0 <= image < result.n_images:
        raise ValueError(f"image must be in [0, {result.n_images}), got {image}")
    keep = train.images == image
    neuron_ids = result.recorded[layer][train.neurons[keep]]
    fig, ax = _axes(ax)
    ax.scatter(train.steps[keep], neuron_ids, s=12 * np.abs(train.counts[keep]), marker="|",
               color="black", linewidths=1.0)
    ax.set(xlim=(0.5, result.T + 0.5), xlabel="time step", ylabel=f"{layer} neuron (flat index)",
           title=f"{layer}: spikes of {len(result.recorded[layer])} recorded neurons, image "
                 f"{image}")
    return fig


def membrane_trace(result: SimResult, snn: SpikingNetwork, layer: str, neuron: int,
                   image: int = 0, ax: Axes | None = None) -> Figure:
    """Membrane potential of one recorded neuron (flat index ``neuron`` in ``layer``) after each
    step's reset, with its threshold θ as a dashed line and its spikes marked above it.

    Needs the dense engine with ``record={layer: [..., neuron, ...]}``.
    """
    if layer not in result.membrane:
        raise ValueError(f"no membrane trace of layer '{layer}'; traces are recorded by the "
                         f"dense engine: simulate(..., engine='dense', record=['{layer}'])")
    position = np.flatnonzero(result.recorded[layer] == neuron)
    if position.size == 0:
        raise ValueError(f"neuron {neuron} of layer '{layer}' was not recorded; recorded: "
                         f"{result.recorded[layer][:10].tolist()}"
                         + (" ..." if len(result.recorded[layer]) > 10 else ""))
    if not 0 <= image < result.n_images:
        raise ValueError(f"image must be in [0, {result.n_images}), got {image}")
    pos = int(position[0])
    v = result.membrane[layer][:, image, pos]
    theta = float(snn.threshold(layer).reshape(-1)[neuron])
    train = result.spike_trains[layer]
    fired = (train.images == image) & (train.neurons == pos)
    steps = np.arange(1, result.T + 1)
    fig, ax = _axes(ax, (7.0, 3.5))
    ax.plot(steps, v, marker=".", color="tab:blue", label="v after reset")
    ax.axhline(theta, color="tab:red", linestyle="--", label=f"θ = {theta:.3g}")
    ax.scatter(train.steps[fired], np.full(int(fired.sum()), 1.08 * theta), marker="v",
               color="tab:red", s=18 * np.abs(train.counts[fired]), label="spike")
    ax.set(xlabel="time step", ylabel="membrane potential",
           title=f"{layer}[{neuron}], image {image}")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def rate_vs_activation(snn: SpikingNetwork, result: SimResult, inputs: np.ndarray,
                       layers: Iterable[str] | None = None, max_points: int = 4000,
                       seed: int = 0, fig: Figure | None = None) -> Figure:
    """One scatter per spiking layer: SNN rate θN/T against the ANN activation of every neuron
    and image (a random subset of ``max_points``), with the identity line.

    Needs ``per_image_counts=True`` and the simulated ``inputs``.
    """
    pairs = _rate_pairs(snn, result, inputs, layers)
    fig, axes = _grid(fig, len(pairs))
    rng = np.random.default_rng(seed)
    for ax, (layer, (rate, act)) in zip(axes, pairs.items()):
        rate, act = rate.ravel(), act.ravel()
        if rate.size > max_points:
            pick = rng.choice(rate.size, max_points, replace=False)
            rate, act = rate[pick], act[pick]
        top = float(max(rate.max(), act.max(), 1e-12))
        ax.scatter(act, rate, s=4, alpha=0.3, color="tab:blue", linewidths=0)
        ax.plot([min(0.0, act.min()), top], [min(0.0, act.min()), top], color="gray",
                linestyle="--", linewidth=1)
        ax.set(xlabel="ANN activation", ylabel="SNN rate θN/T", title=layer)
    fig.suptitle(f"SNN rate versus ANN activation, T = {result.T}")
    return fig


def accuracy_vs_T(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
                  ann_accuracy: float | None = None, ax: Axes | None = None) -> Figure:
    """Accuracy (%) versus time steps, one line per entry ``name: (checkpoints, accuracy in
    [0, 1])``, log₂ time axis; the ANN's accuracy as a dashed line if given."""
    if not curves:
        raise ValueError("curves is empty; pass {name: (checkpoints, accuracy)}")
    fig, ax = _axes(ax)
    styles = ("-", "--", ":", "-.")  # colours repeat after ten curves; line styles tell apart
    markers = "os^Dv"
    for i, (name, (steps, accuracy)) in enumerate(curves.items()):
        steps, accuracy = np.asarray(steps), np.asarray(accuracy, dtype=np.float64)
        if steps.shape != accuracy.shape:
            raise ValueError(f"curve '{name}': {steps.size} checkpoints but {accuracy.size} "
                             "accuracies")
        ax.plot(steps, 100 * accuracy, marker=markers[i // 10 % len(markers)],
                linestyle=styles[i // 10 % len(styles)], label=name)
    if ann_accuracy is not None:
        ax.axhline(100 * ann_accuracy, color="black", linestyle="--", label="ANN")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="time steps T", ylabel="accuracy (%)", title="accuracy versus T")
    if len(curves) > 6:  # a long legend goes beside the axes, not over the curves
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1))
    else:
        ax.legend(fontsize="small")
    return fig


def conversion_error(errors: Mapping[str, LayerErrorStats],
                     ax: Axes | None = None) -> Figure:
    """Per-layer conversion error (:func:`evsim.analysis.conversion_error`): RMS error and mean
    error (bias) of the SNN rate against the ANN activation, as grouped bars."""
    if not errors:
        raise ValueError("errors is empty")
    fig, ax = _axes(ax)
    x = np.arange(len(errors))
    ax.bar(x - 0.2, [e.rms for e in errors.values()], 0.4, label="RMS error")
    ax.bar(x + 0.2, [e.mean for e in errors.values()], 0.4, label="mean error (bias)")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [f"{name}\nr = {e.correlation:.3f}" for name, e in errors.items()])
    ax.set(ylabel="rate − activation (activation units)",
           title="conversion error per layer (r: correlation)")
    ax.legend(fontsize="small")
    return fig


def output_error(error: OutputErrorStats, ax: Axes | None = None) -> Figure:
    """Error of the SNN's mean output against the ANN output versus T
    (:func:`evsim.analysis.output_error`): mean squared and largest absolute error, log axes."""
    fig, ax = _axes(ax)
    ax.plot(error.checkpoints, error.mse, marker="o", label="mean squared error")
    ax.plot(error.checkpoints, error.max_abs, marker="s", label="max |error|")
    ax.set_xscale("log", base=2)
    if np.all(error.mse > 0) and np.all(error.max_abs > 0):
        ax.set_yscale("log")
    ax.set(xlabel="time steps T", ylabel="output error", title="SNN output versus ANN output")
    ax.legend(fontsize="small")
    return fig


def energy_breakdown(report: EnergyReport, ax: Axes | None = None) -> Figure:
    """Energy per image by layer: the ANN's MAC energy beside the SNN's, stacked into MACs
    (analog head), accumulates (SOPs, re-injection, pooling) and neuron updates."""
    rows = [r for r in report.rows if r.ann_pj or r.snn_pj]
    if not rows:
        raise ValueError("the report has no layer with energy")
    unit, scale = energy_unit(max(max(r.ann_pj, r.snn_pj) for r in rows))
    fig, ax = _axes(ax, (max(6.0, 1.1 * len(rows) + 2), 4.0))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r.ann_pj / scale for r in rows], 0.4, color="tab:gray", label="ANN")
    parts = [("snn_mac_pj", "SNN MACs", "tab:orange"), ("snn_ac_pj", "SNN accumulates (SOPs)",
                                                         "tab:blue")]
    if report.table.e_update_pj:
        parts.append(("snn_update_pj", "SNN neuron updates", "tab:green"))
    bottom = np.zeros(len(rows))
    for key, label, color in parts:
        height = np.array([getattr(r, key) for r in rows]) / scale
        ax.bar(x + 0.2, height, 0.4, bottom=bottom, color=color, label=label)
        bottom += height
    ax.set_xticks(x, [r.layer for r in rows])
    ax.set(ylabel=f"energy per image ({unit})",
           title=f"energy by layer, T = {report.steps}, {report.table.name}")
    ax.legend(fontsize="small")
    return fig


def spike_count_histogram(result: SimResult, layers: Iterable[str] | None = None,
                          fig: Figure | None = None) -> Figure:
    """One histogram per spiking layer of the spikes each neuron emitted: per image when the
    result has per-image counts, otherwise averaged over the images."""
    names = list(result.spike_counts if layers is None else layers)
    for name in names:
        if name not in result.spike_counts:
            raise ValueError(f"'{name}' is not a spiking layer of this result; spiking layers "
                             f"are {list(result.spike_counts)}")
    fig, axes = _grid(fig, len(names))
    for ax, name in zip(axes, names):
        per_image = counts_per_image(result, name)
        if per_image is not None:
            values, xlabel, ylabel = per_image.ravel(), "spikes per neuron per image", (
                "(image, neuron) pairs")
            top = int(values.max()) if values.size else 0
            bins = np.arange(top + 2) - 0.5 if top <= 64 else 40
        else:
            values = result.spike_counts[name].ravel() / result.n_images
            xlabel, ylabel, bins = "mean spikes per neuron per image", "neurons", 40
        ax.hist(values, bins=bins, color="tab:blue")
        ax.set_yscale("log")
        ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{name} (T = {result.T})")
    return fig


__all__ = ["spike_raster", "membrane_trace", "rate_vs_activation", "accuracy_vs_T",
           "conversion_error", "output_error", "energy_breakdown", "spike_count_histogram"]
