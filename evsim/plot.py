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
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.animation import PillowWriter
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


def _tick_name(name: str, width: int = 12) -> str:
    """A layer name in lines of at most ``width`` characters, broken after its separators
    (``.``, ``/``, ``_``) where it has them, so that long ONNX names do not overlap."""
    pieces = [token[k:k + width] for token in re.split(r"(?<=[./_])", name) if token
              for k in range(0, len(token), width)]
    lines = [""]
    for piece in pieces:
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(lines)


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
    """Membrane potential of one recorded neuron (flat index ``neuron`` in ``layer``) at each
    step before the reset (the value compared with θ, so the crossing shows) and, dotted,
    after it; its threshold θ as a dashed line and a mark on the steps it fired.

    Results without :attr:`SimResult.membrane_before_reset` (saved by an older evsim) show
    the potential after the reset only. Needs the dense engine with
    ``record={layer: [..., neuron, ...]}``.
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
    after = result.membrane[layer][:, image, pos]
    before = result.membrane_before_reset.get(layer)
    before = None if before is None else before[:, image, pos]
    theta = float(snn.threshold(layer).reshape(-1)[neuron])
    train = result.spike_trains[layer]
    fired = (train.images == image) & (train.neurons == pos)
    steps = np.arange(1, result.T + 1)
    fig, ax = _axes(ax, (7.0, 3.5))
    if before is not None:
        ax.plot(steps, before, marker=".", color="tab:blue", label="v before reset",
                gid="before_reset")
    ax.plot(steps, after, linestyle=":" if before is not None else "-", marker=".",
            color="tab:gray" if before is not None else "tab:blue", label="v after reset",
            gid="after_reset")
    ax.axhline(theta, color="tab:red", linestyle="--", label=f"θ = {theta:.3g}", gid="theta")
    marked = before if before is not None else np.full(result.T, 1.08 * theta)
    ax.scatter(train.steps[fired], marked[train.steps[fired] - 1], marker="o", facecolor="none",
               edgecolor="tab:red", s=30 * np.abs(train.counts[fired]), label="spike",
               gid="spikes")
    ax.set(xlabel="time step", ylabel="membrane potential",
           title=f"{layer}[{neuron}], image {image}")
    _legend_beside(ax)
    return fig


def input_image(image: np.ndarray, ax: Axes | None = None, title: str = "input") -> Figure:
    """One input image ``(C, H, W)`` (or ``(H, W)``): grey for one channel, colour for three
    (each channel stretched to [0, 1] together), otherwise its channels' mean; a vector input
    is drawn as a row of values."""
    fig, ax = _axes(ax, (3.0, 3.0))
    ax.imshow(_displayable(np.asarray(image, dtype=np.float64)), cmap="gray",
              interpolation="nearest", gid="input")
    ax.set_axis_off()
    ax.set_title(title, fontsize="medium")
    return fig


def _displayable(image: np.ndarray) -> np.ndarray:
    if image.ndim == 3 and image.shape[0] == 3:
        low, high = image.min(), image.max()
        return np.moveaxis((image - low) / (high - low if high > low else 1.0), 0, -1)
    if image.ndim == 3:
        return image.mean(axis=0)
    return image if image.ndim == 2 else image.reshape(1, -1)


def beside_input(image: np.ndarray, draw: Callable[[Axes], object],
                 size=(9.0, 3.5)) -> Figure:
    """A per-image picture with the input ``image`` beside it: ``draw(ax)`` draws into the
    wide right-hand axes, e.g. ``beside_input(x[0], lambda ax: spike_raster(r, "relu1",
    ax=ax))``."""
    fig = Figure(figsize=size, layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 3])
    input_image(image, ax=left)
    draw(right)
    return fig


def _layer_shape(result: SimResult, layer: str) -> tuple[int, ...]:
    """The per-image shape of a spiking layer, read off its spike counts."""
    counts = result.spike_counts[layer]
    return tuple(counts.shape[1:] if result.per_image_counts else counts.shape)


def _as_maps(counts: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """A layer's per-image values as ``(maps, H, W)``: the channels of a feature map, or a
    vector folded row by row into one near-square map (padded with NaN, drawn blank)."""
    if len(shape) == 3:
        return counts.reshape(tuple(shape))
    n = int(np.prod(shape))
    side = math.ceil(math.sqrt(n))
    grid = np.full(side * math.ceil(n / side), np.nan)
    grid[:n] = counts.reshape(-1)
    return grid.reshape(1, -1, side)


def feature_maps(result: SimResult, layer: str, image: int = 0,
                 inputs: np.ndarray | None = None, channels: Sequence[int] | None = None,
                 fig: Figure | None = None) -> Figure:
    """Spike counts of one spiking ``layer`` on one image as heatmaps: one panel per channel
    of a feature map (``channels``, default the first 12), a vector layer folded into one
    near-square map; ``inputs[image]`` first when ``inputs`` (the simulated images) are given.
    One colour scale for all panels. Needs per-image counts (``per_image_counts=True``, or
    one image)."""
    per_image = counts_per_image(result, layer)
    if per_image is None:
        raise EvsimValueError(f"feature_maps of layer '{layer}' needs spike counts per image; "
                              "simulate with per_image_counts=True")
    if not 0 <= image < result.n_images:
        raise EvsimValueError(f"image must be in [0, {result.n_images}), got {image}")
    shape = _layer_shape(result, layer)
    maps = _as_maps(per_image[image], shape)
    chosen = list(range(min(12, len(maps)))) if channels is None else list(channels)
    if any(not 0 <= c < len(maps) for c in chosen):
        raise EvsimValueError(f"channels must be in [0, {len(maps)}), got {chosen}")
    extra = inputs is not None
    fig, axes = _grid(fig, len(chosen) + extra, panel=(2.4, 2.3))
    if extra:
        input_image(np.asarray(inputs)[image], ax=axes[0], title=f"input {image}")
    top = max(float(np.nanmax(maps)) if maps.size else 0.0, 1.0)
    for ax, c in zip(axes[extra:], chosen):
        shown = ax.imshow(maps[c], cmap="magma", vmin=0, vmax=top, interpolation="nearest",
                          gid=f"channel {c}")
        ax.set_axis_off()
        ax.set_title(f"channel {c}" if len(shape) == 3 else f"{layer} (row by row)",
                     fontsize="small")
    fig.colorbar(shown, ax=axes[extra:], label=f"spikes in {result.T} steps", shrink=0.8)
    fig.suptitle(f"{layer}: spike counts, image {image}")
    return fig


def layer_maps(result: SimResult, image: int = 0, inputs: np.ndarray | None = None,
               layers: Iterable[str] | None = None, channels: int = 6) -> Figure:
    """Spike counts of every spiking layer on one image, one row per layer: the ``channels``
    channels with the most spikes of a feature map (a vector layer folded into one map), each
    row on its own colour scale (its largest count in the row's label); ``inputs[image]`` in
    a first row when given. Needs per-image counts (``per_image_counts=True``, or one
    image)."""
    names = list(result.spike_counts if layers is None else layers)
    if not 0 <= image < result.n_images:
        raise EvsimValueError(f"image must be in [0, {result.n_images}), got {image}")
    rows = []
    for name in names:
        per_image = counts_per_image(result, name)
        if per_image is None:
            raise EvsimValueError(f"layer_maps needs spike counts per image (layer '{name}'); "
                                  "simulate with per_image_counts=True")
        maps = _as_maps(per_image[image].astype(np.float64), _layer_shape(result, name))
        busiest = np.argsort(-np.nansum(maps.reshape(len(maps), -1), axis=1), kind="stable")
        rows.append((name, maps, sorted(busiest[:channels].tolist())))
    extra = inputs is not None
    cols = max(len(chosen) for _, _, chosen in rows) if rows else 1
    fig = Figure(figsize=(1.6 * cols + 1.0, 1.6 * (len(rows) + extra)), layout="constrained")
    axes = fig.subplots(len(rows) + extra, cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    if extra:
        input_image(np.asarray(inputs)[image], ax=axes[0, 0], title=f"input {image}")
    for row, (name, maps, chosen) in zip(axes[extra:], rows):
        top = max(float(np.nanmax(maps)), 1.0)
        for ax, c in zip(row, chosen):
            ax.imshow(maps[c], cmap="magma", vmin=0, vmax=top, interpolation="nearest",
                      gid=f"{name} {c}")
            ax.set_title(f"{name} c{c}" if len(maps) > 1 else name, fontsize="x-small")
        row[0].text(-0.08, 0.5, f"max {top:g}", transform=row[0].transAxes, rotation=90,
                    ha="right", va="center", fontsize="x-small")
    fig.suptitle(f"spike counts per layer, image {image}, T = {result.T} (brightest: most)",
                 fontsize="medium")
    return fig


def spike_animation(result: SimResult, path, image: int = 0, inputs: np.ndarray | None = None,
                    layers: Iterable[str] | None = None, fps: int = 4, dpi: int = 60) -> Path:
    """A GIF of spikes travelling through the layers: one frame per time step, one panel per
    recorded layer showing which of its neurons fired at that step (a feature map's channels
    summed), the input image first when ``inputs`` are given. Written with matplotlib's
    :class:`~matplotlib.animation.PillowWriter` to ``path``, which is returned.

    Needs every neuron of the layers recorded: ``simulate(..., engine="dense",
    record={layer: None, ...})``.
    """
    names = list(result.spike_trains if layers is None else layers)
    if not names:
        raise EvsimValueError("spike_animation needs recorded spike trains; simulate with "
                              "engine='dense' and record=[layer, ...]")
    if not 0 <= image < result.n_images:
        raise EvsimValueError(f"image must be in [0, {result.n_images}), got {image}")
    frames = {name: _spikes_per_step(result, name, image) for name in names}
    extra = inputs is not None
    fig, axes = _grid(None, len(names) + extra, panel=(2.6, 2.6))
    if extra:
        input_image(np.asarray(inputs)[image], ax=axes[0])
    shown = {}
    for ax, name in zip(axes[extra:], names):
        top = max(float(np.nanmax(frames[name])), 1.0)
        shown[name] = ax.imshow(frames[name][0], cmap="magma", vmin=0, vmax=top,
                                interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(name, fontsize="small")
    path = Path(path)
    writer = PillowWriter(fps=fps)
    with writer.saving(fig, str(path), dpi):
        for t in range(result.T):
            for name, artist in shown.items():
                artist.set_data(frames[name][t])
            fig.suptitle(f"image {image}, step {t + 1} of {result.T}")
            writer.grab_frame()
    return path


def _spikes_per_step(result: SimResult, layer: str, image: int) -> np.ndarray:
    """``(T, H, W)`` spikes of ``layer`` on ``image`` per step (feature-map channels summed),
    from its spike train; every neuron must have been recorded."""
    train, recorded = recorded_train(result, layer, "spike_animation")
    n = result.neurons[layer]
    if recorded != n:
        raise EvsimValueError(f"spike_animation needs every neuron of layer '{layer}' recorded "
                              f"({recorded} of {n} were); record={{'{layer}': None}}")
    shape = _layer_shape(result, layer)
    spikes = np.zeros((result.T, n))
    keep = train.images == image
    np.add.at(spikes, (train.steps[keep] - 1, result.recorded[layer][train.neurons[keep]]),
              train.counts[keep])
    return np.stack([_as_maps(step, shape).sum(axis=0) if len(shape) == 3
                     else _as_maps(step, shape)[0] for step in spikes])


def rate_vs_activation(snn: SpikingNetwork, result: SimResult, inputs: np.ndarray,
                       layers: Iterable[str] | None = None, max_points: int = 4000,
                       worst: int = 100, seed: int = 0, fig: Figure | None = None,
                       image: int | None = None) -> Figure:
    """One scatter per spiking layer: SNN rate θN/T against the ANN activation of each (image,
    neuron) pair, with the identity line; of one ``image`` only when given.

    When a layer has more than ``max_points`` pairs, the ``worst`` pairs with
    the largest |rate − activation| are always drawn (in red) and the rest of
    the ``max_points`` are a random sample of the others (seeded); each
    panel's title says how many of how many pairs it shows. Needs
    ``per_image_counts=True`` and the simulated ``inputs``.
    """
    if not 0 <= worst <= max_points:
        raise EvsimValueError(f"worst must be in [0, max_points = {max_points}], got {worst}")
    pairs = _rate_pairs(snn, result, inputs, layers)
    if image is not None:
        if not 0 <= image < result.n_images:
            raise EvsimValueError(f"image must be in [0, {result.n_images}), got {image}")
        pairs = {layer: (rate[image], act[image]) for layer, (rate, act) in pairs.items()}
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
    fig.suptitle(f"SNN rate versus ANN activation, T = {result.T}"
                 + ("" if image is None else f", image {image}"))
    return fig


def accuracy_vs_T(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]],
                  ann_accuracy: float | None = None, ax: Axes | None = None,
                  metric: str = "accuracy") -> Figure:
    """Accuracy (%) versus time steps, one line per entry ``name: (checkpoints, accuracy in
    [0, 1])``, log₂ time axis; the ANN's accuracy as a dashed line if given. ``metric``
    names what is plotted when it is not accuracy (a task's ``"mIoU"`` or ``"mAP@.5"``)."""
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
    ax.set(xlabel="time steps T", ylabel=f"{metric} (%)", title=f"{metric} versus T")
    _legend_beside(ax)
    return fig


def accuracy_versus_cost(curves: Mapping[str, Mapping[str, Sequence[float]]], xlabel: str,
                         ann_accuracy: float | None = None, n_images: int | None = None,
                         ax: Axes | None = None, log: bool = True,
                         ann_cost: float | None = None, metric: str = "accuracy") -> Figure:
    """Accuracy (%) against a cost, one line per method, with error bars and the Pareto front.

    ``curves`` maps a method's label to ``{"x": costs, "accuracy": fractions, "low": ...,
    "high": ...}`` (``low``/``high``: the ends of each accuracy's confidence interval,
    optional); ``xlabel`` names the cost and its unit. The points no other point beats in
    both cost and accuracy (:func:`evsim.analysis.pareto_optimal`) are ringed in black and
    joined by a dotted black line; the ANN's accuracy is dashed, shaded by its 95 % Wilson
    interval when ``n_images`` (the images every accuracy was measured on, also in the
    title) is given, and marked by a black star at ``ann_cost`` if given (the ANN's cost
    in the same unit). ``log``: a logarithmic cost axis. ``metric`` names what is plotted
    when it is not accuracy (a task's ``"mIoU"`` or ``"mAP@.5"``: no fraction of images,
    so no Wilson interval is drawn for the ANN).
    """
    from .analysis.confidence import accuracy_interval
    from .analysis.pareto import pareto_optimal

    if not curves:
        raise EvsimValueError("curves is empty; pass {label: {'x': costs, 'accuracy': ...}}")
    fig, ax = _axes(ax, WIDE)
    every_x, every_y = [], []
    for i, (label, curve) in enumerate(curves.items()):
        x, y = np.asarray(curve["x"], np.float64), np.asarray(curve["accuracy"], np.float64)
        if x.shape != y.shape:
            raise EvsimValueError(f"curve '{label}': {x.size} costs but {y.size} accuracies")
        order = np.argsort(x, kind="stable")
        bars = None
        if "low" in curve and "high" in curve:
            low, high = np.asarray(curve["low"]), np.asarray(curve["high"])
            bars = 100 * np.stack([y - low, high - y])[:, order]
        ax.errorbar(x[order], 100 * y[order], yerr=bars, marker="os^Dv"[i // 10 % 5],
                    linestyle=("-", "--", ":", "-.")[i // 10 % 4], capsize=3, label=label)
        every_x += x.tolist()
        every_y += y.tolist()
    best = pareto_optimal(every_x, every_y)
    front = np.argsort(np.asarray(every_x)[best], kind="stable")
    fx, fy = np.asarray(every_x)[best][front], 100 * np.asarray(every_y)[best][front]
    ax.plot(fx, fy, linestyle=":", color="black", linewidth=1, drawstyle="steps-post")
    ax.scatter(fx, fy, s=110, facecolors="none", edgecolors="black", linewidths=1.4,
               zorder=3, label="Pareto-optimal")
    if ann_accuracy is not None:
        ax.axhline(100 * ann_accuracy, color="black", linestyle="--", label="ANN")
        if n_images is not None and metric == "accuracy":
            low, high = accuracy_interval(ann_accuracy, n_images)
            ax.axhspan(100 * low, 100 * high, color="black", alpha=0.07, linewidth=0)
        if ann_cost is not None:
            ax.scatter([ann_cost], [100 * ann_accuracy], marker="*", s=160, color="black",
                       zorder=4, label="ANN at its cost")
    if log and min(every_x) > 0:
        ax.set_xscale("log")
    shown = "" if n_images is None else (f"\n{n_images} images, 95 % Wilson intervals"
                                         if metric == "accuracy" else f"\n{n_images} images")
    ax.set(xlabel=xlabel, ylabel=f"{metric} (%)", title=f"{metric} versus {xlabel}{shown}")
    _legend_beside(ax)
    return fig


def accuracy_tradeoffs(panels: Mapping[str, Mapping[str, Mapping[str, Sequence[float]]]],
                       ann_accuracy: float | None = None, n_images: int | None = None,
                       fig: Figure | None = None,
                       ann_costs: Mapping[str, float] | None = None,
                       metric: str = "accuracy") -> Figure:
    """One :func:`accuracy_versus_cost` panel per entry ``xlabel: curves`` (e.g. latency,
    SOPs and energy per image), in rows of two, each with its own Pareto front;
    ``ann_costs`` gives the ANN's cost on the panels where it has one (``{xlabel: cost}``);
    ``metric`` as in :func:`accuracy_versus_cost`."""
    if not panels:
        raise EvsimValueError("panels is empty; pass {xlabel: curves}")
    cols = min(len(panels), 2)
    rows = math.ceil(len(panels) / cols)
    if fig is None:
        fig = Figure(figsize=(7.5 * cols, 4.2 * rows), layout="constrained")
    for i, (xlabel, curves) in enumerate(panels.items()):
        accuracy_versus_cost(curves, xlabel, ann_accuracy, n_images,
                             fig.add_subplot(rows, cols, i + 1),
                             ann_cost=(ann_costs or {}).get(xlabel), metric=metric)
    better = "more accurate" if metric == "accuracy" else f"higher in {metric}"
    fig.suptitle(f"ringed: Pareto-optimal (no other point is both cheaper and {better})")
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
    ax.set_xticks(x, [f"{_tick_name(name)}\nr = {e.correlation:.3f}"
                      for name, e in errors.items()])
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
    ax.set_xticks(x, [_tick_name(r.layer) for r in rows])
    highest = max(bottom.max(), max(r.ann_pj for r in rows) / scale)
    ax.set_ylim(0, 1.08 * highest)  # headroom: zero-height parts would pin the top otherwise
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


#: Colour of mask value 0 (background) and of classes 1..10 (matplotlib's tab10).
_MASK_COLOURS = np.array([(0, 0, 0)] + [
    (0.12, 0.47, 0.71), (1.0, 0.5, 0.05), (0.17, 0.63, 0.17), (0.84, 0.15, 0.16),
    (0.58, 0.4, 0.74), (0.55, 0.34, 0.29), (0.89, 0.47, 0.76), (0.5, 0.5, 0.5),
    (0.74, 0.74, 0.13), (0.09, 0.75, 0.81)])


def mask_image(mask: np.ndarray) -> np.ndarray:
    """RGB float ``(H, W, 3)`` of a class mask ``(H, W)``: background black, class ``v``
    (mask value 1..10) the ``v``-th tab10 colour (values above 10 cycle)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise EvsimValueError(f"a mask must be (H, W), got shape {mask.shape}")
    values = mask.astype(np.int64)
    return _MASK_COLOURS[np.where(values > 0, (values - 1) % 10 + 1, 0)]


def _draw_boxes(ax: Axes, boxes: np.ndarray, labels: np.ndarray, names: Sequence[str] | None,
                scores: np.ndarray | None = None) -> None:
    from matplotlib.patches import Rectangle

    for k, ((x0, y0, x1, y1), label) in enumerate(zip(np.asarray(boxes), np.asarray(labels))):
        colour = _MASK_COLOURS[int(label) % 10 + 1]
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                               edgecolor=colour, linewidth=1.2))
        text = names[int(label)] if names is not None else str(int(label))
        if scores is not None:
            text += f" {scores[k]:.2f}"
        ax.text(x0 - 0.5, y0 - 1, text, color=colour, fontsize=6, va="bottom")


def task_predictions(images: np.ndarray, truth: Sequence, columns: Mapping[str, Sequence],
                     task: str, class_names: Sequence[str] | None = None,
                     fig: Figure | None = None, max_boxes: int = 8) -> Figure:
    """For each scene (one row): the input, the ground truth and each column's answer.

    ``images`` ``(N, 1, H, W)``; ``task`` ``"segmentation"`` or ``"detection"``;
    ``truth``: per scene a mask ``(H, W)`` (segmentation) or ``(boxes (K, 4), labels
    (K,))`` (detection, boxes ``(x0, y0, x1, y1)`` in pixels); ``columns``: ``{title:
    per-scene answers}`` (e.g. ``"ANN"``, ``"SNN T=8"``): masks, or
    :class:`~evsim.tasks.Detections`. Masks are coloured by class (background black);
    boxes are drawn on the input with their class names (``class_names``) and scores, at
    most ``max_boxes`` per panel, the highest-scoring (a network at small T may find a peak
    in every cell: the panel then says how many it left out).
    """
    if task not in ("segmentation", "detection"):
        raise EvsimValueError(f"task must be 'segmentation' or 'detection', got {task!r}")
    n = len(images)
    if len(truth) != n or any(len(answers) != n for answers in columns.values()):
        raise EvsimValueError(f"{n} images: truth and every column need one entry per image")
    titles = ["input", "ground truth", *columns]
    if fig is None:
        fig = Figure(figsize=(1.7 * len(titles), 1.8 * n + 0.3), layout="constrained")
    axes = np.asarray(fig.subplots(n, len(titles), squeeze=False))
    for i in range(n):
        picture = _displayable(np.asarray(images[i]))
        answers = [truth[i], *(column[i] for column in columns.values())]
        for j, ax in enumerate(axes[i]):
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=8)
            if j == 0 or task == "detection":
                ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
            if j == 0:
                continue
            answer = answers[j - 1]
            if task == "segmentation":
                ax.imshow(mask_image(answer), interpolation="nearest")
            elif j == 1:
                _draw_boxes(ax, answer[0], answer[1], class_names)
            else:
                best = np.argsort(-np.asarray(answer.scores), kind="stable")[:max_boxes]
                _draw_boxes(ax, answer.boxes[best], answer.labels[best], class_names,
                            answer.scores[best])
                if len(answer.scores) > max_boxes:
                    ax.set_xlabel(f"+{len(answer.scores) - max_boxes} more", fontsize=6)
    return fig


__all__ = ["spike_raster", "adjacent_neurons", "membrane_trace", "input_image", "beside_input",
           "feature_maps", "layer_maps", "spike_animation", "rate_vs_activation",
           "accuracy_vs_T", "accuracy_versus_cost", "accuracy_tradeoffs", "conversion_error",
           "output_error", "energy_breakdown", "spike_count_histogram", "confusion_matrix",
           "mask_image", "task_predictions"]
