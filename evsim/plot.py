"""Pictures of what a spiking network does, with matplotlib.

Every function returns a :class:`matplotlib.figure.Figure`. Figures are made
with matplotlib's object interface (no ``pyplot``), so nothing opens a window
and no backend is selected: save with ``fig.savefig("name.png")``; in Jupyter,
run ``%matplotlib inline`` once and a returned figure displays itself.
Functions that draw one panel take an optional ``ax`` to draw into; those
with one panel per layer take an optional ``fig`` to fill. Legends sit
beside or below the axes, never over the data.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .analysis.energy import EnergyReport, energy_unit
from .analysis.stats import (LayerErrorStats, OutputErrorStats, counts_per_image,
                             recorded_train)
from .analysis.stats import rate_vs_activation as _rate_pairs
from .result import SimResult
from .spiking import SpikingNetwork
from .errors import EvsimValueError


#: Size (inches) of a one-panel figure whose legend sits beside the axes.
WIDE = (7.5, 4.0)


def _axes(ax: Axes | None, size=(6.0, 4.0)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def _legend_beside(ax: Axes) -> None:
    """The axes' legend to their right, outside the plotting area."""
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)


def _grid(fig: Figure | None, n: int, panel=(3.6, 3.2)) -> tuple[Figure, list[Axes]]:
    """``n`` panels in rows of at most 3, added to ``fig`` (a new figure when None)."""
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    if fig is None:
        fig = Figure(figsize=(panel[0] * cols, panel[1] * rows), layout="constrained")
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    return fig, axes


def spike_raster(result: SimResult, layer: str, image: int = 0,
                 neurons: Sequence[int] | None = None, rule: str | None = None,
                 ax: Axes | None = None) -> Figure:
    """Raster of neurons of ``layer`` on one image: a mark per (step, neuron) that fired, larger
    for bursts, one row per neuron in the order of ``neurons``.

    ``neurons``: flat indices to show, all recorded (default: every recorded
    neuron); ``rule``: how they were chosen, shown as the title (e.g.
    :func:`adjacent_neurons`'s). Needs ``simulate(..., engine="dense", record=[layer])``.
    """
    train, _ = recorded_train(result, layer, "spike_raster")
    if not 0 <= image < result.n_images:
        raise EvsimValueError(f"image must be in [0, {result.n_images}), got {image}")
    recorded = result.recorded[layer]
    shown = recorded if neurons is None else np.asarray(neurons, dtype=np.int64)
    missing = np.setdiff1d(shown, recorded)
    if missing.size:
        raise EvsimValueError(
            f"neurons {missing[:5].tolist()} of layer '{layer}' were not recorded")
    row = np.full(int(recorded.max()) + 1, -1)
    row[shown] = np.arange(len(shown))
    keep = train.images == image
    rows = row[recorded[train.neurons[keep]]]
    keep_rows = rows >= 0
    fig, ax = _axes(ax)
    ax.scatter(train.steps[keep][keep_rows], rows[keep_rows],
               s=12 * np.abs(train.counts[keep][keep_rows]), marker="|", color="black",
               linewidths=1.0)
    ax.set(xlim=(0.5, result.T + 0.5), ylim=(-0.5, len(shown) - 0.5), xlabel="time step",
           ylabel="neuron (row of the selection)")
    ax.set_title(textwrap.fill(f"{layer}, image {image}: "
                               + (rule or f"{len(shown)} recorded neurons"), 80),
                 fontsize="small", loc="left")
    return fig


def adjacent_neurons(shape: Sequence[int], counts: np.ndarray, size: int = 8
                     ) -> tuple[np.ndarray, str]:
    """Neighbouring neurons of one layer to show in a raster, and the rule that chose them.

    ``shape``: the layer's per-image shape; ``counts``: its spike counts on
    one image, same shape. For a map ``(C, H, W)``: the channel with the most
    spikes, and its central ``size × size`` patch (the whole map if smaller),
    row by row. For a vector: the ``size²`` consecutive neurons with the most
    spikes. Returns ``(flat indices, rule in words)``.
    """
    counts = np.asarray(counts).reshape(tuple(shape))
    if len(shape) == 3:
        c = int(np.argmax(counts.reshape(shape[0], -1).sum(axis=1)))
        h, w = shape[1:]
        ph, pw = min(h, size), min(w, size)
        y0, x0 = (h - ph) // 2, (w - pw) // 2
        ys, xs = np.meshgrid(np.arange(y0, y0 + ph), np.arange(x0, x0 + pw), indexing="ij")
        flat = (c * h * w + ys * w + xs).ravel()
        where = (f"the whole {h}×{w} map" if (ph, pw) == (h, w) else
                 f"its central {ph}×{pw} patch (rows {y0}–{y0 + ph - 1}, columns "
                 f"{x0}–{x0 + pw - 1})")
        return flat, f"channel {c} (most spikes), {where}, row by row"
    n = int(np.prod(shape))
    width = min(n, size * size)
    window = np.convolve(counts.ravel(), np.ones(width, dtype=np.int64), mode="valid")
    start = int(np.argmax(window))
    return (np.arange(start, start + width),
            f"neurons {start}–{start + width - 1} (the {width} consecutive with most spikes)")


def membrane_trace(result: SimResult, snn: SpikingNetwork, layer: str, neuron: int,
                   image: int = 0, ax: Axes | None = None) -> Figure:
    """Membrane potential of one recorded neuron (flat index ``neuron`` in ``layer``) after each
    step's reset, with its threshold θ as a dashed line and its spikes marked above it.

    Needs the dense engine with ``record={layer: [..., neuron, ...]}``.
    """
    if layer not in result.membrane:
        raise EvsimValueError(f"no membrane trace of layer '{layer}'; traces are recorded by the "
                              f"dense engine: simulate(..., engine='dense', record=['{layer}'])")
    position = np.flatnonzero(result.recorded[layer] == neuron)
    if position.size == 0:
        raise EvsimValueError(f"neuron {neuron} of layer '{layer}' was not recorded; recorded: "
                              f"{result.recorded[layer][:10].tolist()}"
                              + (" ..." if len(result.recorded[layer]) > 10 else ""))
    if not 0 <= image < result.n_images:
        raise EvsimValueError(f"image must be in [0, {result.n_images}), got {image}")
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
    _legend_beside(ax)
    return fig


def rate_vs_activation(snn: SpikingNetwork, result: SimResult, inputs: np.ndarray,
                       layers: Iterable[str] | None = None, max_points: int = 4000,
                       worst: int = 100, seed: int = 0, fig: Figure | None = None) -> Figure:
    """One scatter per spiking layer: SNN rate θN/T against the ANN activation of each (image,
    neuron) pair, with the identity line.

    When a layer has more than ``max_points`` pairs, the ``worst`` pairs with
    the largest |rate − activation| are always drawn (in red) and the rest of
    the ``max_points`` are a random sample of the others (seeded); each
    panel's title says how many of how many pairs it shows. Needs
    ``per_image_counts=True`` and the simulated ``inputs``.
    """
    if not 0 <= worst <= max_points:
        raise EvsimValueError(f"worst must be in [0, max_points = {max_points}], got {worst}")
    pairs = _rate_pairs(snn, result, inputs, layers)
    fig, axes = _grid(fig, len(pairs))
    rng = np.random.default_rng(seed)
    for ax, (layer, (rate, act)) in zip(axes, pairs.items()):
        rate, act = rate.ravel(), act.ravel()
        error = np.abs(rate - act)
        bad = np.argsort(error, kind="stable")[::-1][:min(worst, rate.size)]
        others = np.setdiff1d(np.arange(rate.size), bad)
        room = max_points - bad.size
        sample = others if others.size <= room else rng.choice(others, room, replace=False)
        low = float(min(0.0, act.min(), rate.min()))
        top = float(max(rate.max(), act.max(), 1e-12))
        ax.scatter(act[sample], rate[sample], s=4, alpha=0.3, color="tab:blue", linewidths=0,
                   label="sampled pairs" if others.size > room else "pairs")
        ax.scatter(act[bad], rate[bad], s=9, color="tab:red", linewidths=0,
                   label=f"the {bad.size} largest |error|")
        ax.plot([low, top], [low, top], color="gray", linestyle="--", linewidth=1,
                label="rate = activation")
        ax.set(xlabel="ANN activation", ylabel="SNN rate θN/T")
        ax.set_title(f"{layer}: {bad.size + sample.size:,} of {rate.size:,} pairs",
                     fontsize="medium")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize="small")
    fig.suptitle(f"SNN rate versus ANN activation, T = {result.T}")
    return fig


def accuracy_vs_T(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
                  ann_accuracy: float | None = None, ax: Axes | None = None) -> Figure:
    """Accuracy (%) versus time steps, one line per entry ``name: (checkpoints, accuracy in
    [0, 1])``, log₂ time axis; the ANN's accuracy as a dashed line if given."""
    if not curves:
        raise EvsimValueError("curves is empty; pass {name: (checkpoints, accuracy)}")
    fig, ax = _axes(ax, WIDE)
    styles = ("-", "--", ":", "-.")  # colours repeat after ten curves; line styles tell apart
    markers = "os^Dv"
    for i, (name, (steps, accuracy)) in enumerate(curves.items()):
        steps, accuracy = np.asarray(steps), np.asarray(accuracy, dtype=np.float64)
        if steps.shape != accuracy.shape:
            raise EvsimValueError(f"curve '{name}': {steps.size} checkpoints but {accuracy.size} "
                                  "accuracies")
        ax.plot(steps, 100 * accuracy, marker=markers[i // 10 % len(markers)],
                linestyle=styles[i // 10 % len(styles)], label=name)
    if ann_accuracy is not None:
        ax.axhline(100 * ann_accuracy, color="black", linestyle="--", label="ANN")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="time steps T", ylabel="accuracy (%)", title="accuracy versus T")
    _legend_beside(ax)
    return fig


def conversion_error(errors: Mapping[str, LayerErrorStats],
                     ax: Axes | None = None) -> Figure:
    """Per-layer conversion error (:func:`evsim.analysis.conversion_error`): RMS error and mean
    error (bias) of the SNN rate against the ANN activation, as grouped bars."""
    if not errors:
        raise EvsimValueError("errors is empty")
    fig, ax = _axes(ax, WIDE)
    x = np.arange(len(errors))
    ax.bar(x - 0.2, [e.rms for e in errors.values()], 0.4, label="RMS error")
    ax.bar(x + 0.2, [e.mean for e in errors.values()], 0.4, label="mean error (bias)")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [f"{name}\nr = {e.correlation:.3f}" for name, e in errors.items()])
    ax.set(ylabel="rate − activation (activation units)",
           title="conversion error per layer (r: correlation)")
    _legend_beside(ax)
    return fig


def output_error(error: OutputErrorStats, ax: Axes | None = None) -> Figure:
    """Error of the SNN's mean output against the ANN output versus T
    (:func:`evsim.analysis.output_error`): mean squared and largest absolute error, log axes."""
    fig, ax = _axes(ax, WIDE)
    ax.plot(error.checkpoints, error.mse, marker="o", label="mean squared error")
    ax.plot(error.checkpoints, error.max_abs, marker="s", label="max |error|")
    ax.set_xscale("log", base=2)
    if np.all(error.mse > 0) and np.all(error.max_abs > 0):
        ax.set_yscale("log")
    ax.set(xlabel="time steps T", ylabel="output error", title="SNN output versus ANN output")
    _legend_beside(ax)
    return fig


def energy_breakdown(report: EnergyReport, ax: Axes | None = None) -> Figure:
    """Energy per image by layer: the ANN's beside the SNN's, the SNN's stacked into the analog
    head's MACs, synaptic operations (SOPs), the analog input's re-injection adds (the head's
    current added into the first spiking layer every step: not SOPs), max-pool accumulator
    updates and charged neuron updates. Parts a report does not have are left out."""
    rows = [r for r in report.rows if r.ann_pj or r.snn_pj]
    if not rows:
        raise EvsimValueError("the report has no layer with energy")
    unit, scale = energy_unit(max(max(r.ann_pj, r.snn_pj) for r in rows))
    fig, ax = _axes(ax, (max(6.0, 1.1 * len(rows) + 2) + 3.0, 4.0))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r.ann_pj / scale for r in rows], 0.4, color="tab:gray", label="ANN")
    e_ac = report.table.e_ac_pj
    parts = [("SNN MACs (analog head)", "tab:orange", [r.snn_mac_pj for r in rows]),
             ("SNN synaptic operations (SOPs)", "tab:blue", [r.snn_sops * e_ac for r in rows]),
             ("SNN re-injection adds (analog input, not SOPs)", "tab:cyan",
              [r.snn_adds * e_ac for r in rows]),
             ("SNN max-pool updates", "tab:purple", [r.pool_ops * e_ac for r in rows]),
             ("SNN neuron updates", "tab:green", [r.snn_update_pj for r in rows])]
    bottom = np.zeros(len(rows))
    for label, color, values in parts:
        height = np.array(values, dtype=np.float64) / scale
        if not height.any():
            continue
        ax.bar(x + 0.2, height, 0.4, bottom=bottom, color=color, label=label)
        bottom += height
    ax.set_xticks(x, [r.layer for r in rows])
    ax.margins(y=0.08)
    ax.set(ylabel=f"energy per image ({unit})",
           title=f"energy by layer, T = {report.steps}, {report.table.name}")
    _legend_beside(ax)
    return fig


def spike_count_histogram(result: SimResult, layers: Iterable[str] | None = None,
                          fig: Figure | None = None) -> Figure:
    """One histogram per spiking layer of the spikes each neuron emitted: per image when the
    result has per-image counts, otherwise averaged over the images."""
    names = list(result.spike_counts if layers is None else layers)
    for name in names:
        if name not in result.spike_counts:
            raise EvsimValueError(f"'{name}' is not a spiking layer of this result; spiking layers "
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


def confusion_matrix(matrix: np.ndarray, class_names: Sequence[str] | None = None,
                     title: str = "confusion matrix", ax: Axes | None = None) -> Figure:
    """A confusion matrix ``(classes, classes)`` of counts (rows: true class, columns:
    predicted), e.g. :func:`evsim.analysis.confusion_matrix`, with each cell's count written
    in it and the colour scale beside the axes."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise EvsimValueError(f"matrix must be square (classes, classes), got shape {matrix.shape}")
    n = matrix.shape[0]
    names = [str(i) for i in range(n)] if class_names is None else list(class_names)
    if len(names) != n:
        raise EvsimValueError(f"{len(names)} class names for {n} classes")
    fig, ax = _axes(ax, (0.55 * n + 3.5, 0.5 * n + 2.0))
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, label="images")
    dark = matrix.max() / 2 if matrix.size else 0
    for (i, j), value in np.ndenumerate(matrix):
        if value:
            ax.text(j, i, str(value), ha="center", va="center", fontsize="x-small",
                    color="white" if value > dark else "black")
    ax.set_xticks(np.arange(n), names, rotation=45, ha="right", fontsize="small")
    ax.set_yticks(np.arange(n), names, fontsize="small")
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    return fig


__all__ = ["spike_raster", "adjacent_neurons", "membrane_trace", "rate_vs_activation",
           "accuracy_vs_T", "conversion_error", "output_error", "energy_breakdown",
           "spike_count_histogram", "confusion_matrix"]
