"""A report folder for one spiking network on one data set: plots, Markdown and HTML.

:func:`write_report` simulates (or takes) a run, analyses it and writes

* ``report.md`` -- accuracy/SOPs/energy versus T, accuracy per class and the
  confusion matrix, the energy table with its conventions, the NeuroBench
  metrics, conversion error and spike statistics per layer;
* ``index.html`` -- the same text with every plot embedded (one
  self-contained file that opens in any browser);
* ``explorer.html`` -- the interactive explorer of the first images
  (:mod:`evsim.explorer`; with the extra ``evsim[explore]``);
* one PNG per plot.

Three simulations feed it: the main run on all images (accuracy, SOPs,
energy), a run with per-image counts on the first ``analysis_images`` images
(conversion error, spike-count histograms) and a dense run recording every
neuron on image 0 (raster, membrane traces, spike timing, exact NeuroBench
metrics; only the rasters' neurons when the network is very large).

:func:`write_comparison_report` writes the folder of a method comparison
(:func:`evsim.compare_methods`): its tables, JSON, plot and report page.
"""

from __future__ import annotations

import base64
import html
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import plot
from .analysis import (CONVENTIONS, EnergyTable, checkpoint_summary, class_accuracy,
                       confusion_matrix, conversion_error, energy_report, energy_table,
                       first_spike_times, isi_cv, layer_firing_rates, output_error,
                       saturated_fraction, silent_fraction)
from .analysis.task_score import TaskScore
from .analysis.neurobench import (NEUROBENCH_VERSION, neurobench_metrics,
                                  neurobench_static_metrics)
from .comparison import Comparison
from .data import CLASS_NAMES
from .errors import EvsimFileError, EvsimValueError
from .explorer import report_section as explorer_section
from .forward import forward
from .io.atomic import (StagedFolder, atomic_file, check_output_file, check_output_folder,
                        names_the_folder)
from .options import steps_message
from .simulate import simulate
from .simulation_options import SimulationOptions, resolve_simulation
from .result import SimResult
from .spiking import WINDOWED, SpikingNetwork

#: Side of the square patch of neighbouring neurons each raster shows (8 × 8 = 64 neurons).
RASTER_SIDE = 8
#: Image 0 is recorded in full (every neuron, every step) when neurons × T is at most this
#: (128 MB of float32 membrane values); otherwise only the raster's neurons are.
FULL_RECORDING_LIMIT = 2 ** 25

#: Names of the files a report folder holds (glob patterns).
REPORT_FILES = ("report.md", "index.html", "explorer.html", "*.png")
#: The comparison's figure: accuracy against latency, SOPs and energy.
PLOT = "accuracy_tradeoffs.png"

#: Names of the files a comparison folder holds besides its ``cells`` folder (and
#: ``accuracy_vs_T.png``, which earlier versions wrote and a rerun removes).
COMPARISON_FILES = ("comparison.md", "comparison.json", "accuracy_tradeoffs.png",
                    "accuracy_vs_T.png", "report.md",
                    "index.html")


@dataclass(frozen=True)
class Report:
    """Where the report was written: ``markdown`` and ``html`` files, the ``images`` (PNG)
    and ``summary`` (JSON-ready accuracy, SOPs and energy versus T, the energy table, the
    NeuroBench metrics, per-class accuracy and warnings)."""

    directory: Path
    markdown: Path
    html: Path
    images: tuple[Path, ...]
    summary: dict


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _median(values: np.ndarray) -> str:
    values = values[np.isfinite(values)]
    return f"{np.median(values):.3g}" if values.size else "–"


def _neurobench(snn, result, images, seed) -> tuple[dict, str]:
    """Metrics of one run, or its static ones and why the rest cannot be computed from it."""
    try:
        return neurobench_metrics(snn, result, images, seed=seed), ""
    except ValueError as err:
        return neurobench_static_metrics(snn, np.dtype(result.dtype)), str(err)


def _neurobench_table(runs: list[tuple[str, dict | None]], layers: list[str]) -> str:
    def cell(metrics, get, fmt):
        try:
            value = get(metrics)
        except (KeyError, TypeError):              # not measured on this run
            return "–"
        return "–" if value is None else format(value, fmt)

    rows = [("ParameterCount", lambda m: m["ParameterCount"], "d"),
            ("Footprint (bytes)", lambda m: m["Footprint"], "d"),
            ("ConnectionSparsity", lambda m: m["ConnectionSparsity"], ".4f"),
            ("SynapticOperations: Effective_MACs", lambda m: m["SynapticOperations"][
                "Effective_MACs"], ".4g"),
            ("SynapticOperations: Effective_ACs", lambda m: m["SynapticOperations"][
                "Effective_ACs"], ".4g"),
            ("SynapticOperations: Dense", lambda m: m["SynapticOperations"]["Dense"], ".4g"),
            ("ActivationSparsity", lambda m: m["ActivationSparsity"], ".4f")]
    rows += [(f"ActivationSparsityByLayer: {name}",
              lambda m, name=name: m["ActivationSparsityByLayer"][name], ".4f")
             for name in layers]
    rows.append(("MembraneUpdates", lambda m: m["MembraneUpdates"], ".4g"))
    return _table(["metric (workload ones per image)"] + [label for label, _ in runs],
                  [[name] + [cell(m, get, fmt) for _, m in runs] for name, get, fmt in rows])


@names_the_folder
def write_report(directory: str | os.PathLike, snn: SpikingNetwork, images: np.ndarray,
                 labels: np.ndarray | None = None, *, T: int = 128,
                 simulation: SimulationOptions | None = None, result: SimResult | None = None,
                 table: str | EnergyTable = "float32", convention: str = "reinject",
                 analysis_images: int = 100, title: str = "evsim report", data_name: str = "",
                 class_names: Sequence[str] | None = None, **overrides) -> Report:
    """Simulate, analyse and write a report folder.

    Parameters
    ----------
    directory:
        Folder to write (created if missing). It is built beside its place and
        swapped in whole (:class:`~evsim.io.atomic.StagedFolder`), so an
        interrupted run leaves the previous report; an existing folder may hold
        only a previous report's files (:data:`REPORT_FILES`).
    snn, images, labels:
        The network, the images ``(B, *input_shape)`` and optional labels ``(B,)``, or
        for scenes a :class:`~evsim.analysis.TaskScore`: then the report gives the
        task's metric (mIoU or mAP@.5) versus T and shows the first scenes' input,
        ground truth, ANN answer and SNN answers at several T side by side.
    T, simulation, **overrides:
        How to simulate the main run, as for :func:`evsim.simulate`: ``T``, a
        :class:`~evsim.simulation_options.SimulationOptions` and single options
        changed from it by name (``engine``, ``encoding``, ``seed``,
        ``batch_size``, ``threads``, ``checkpoints``, ``progress``: progress
        bars on stderr for the simulations, ...). ``T``, ``engine``,
        ``encoding`` and ``checkpoints`` are ignored when ``result`` is given;
        the other runs use ``seed``, ``batch_size``, ``threads`` and
        ``progress`` too.
    result:
        A run of ``snn`` on exactly ``images`` to use as the main run.
    table, convention:
        Energy table (preset name or :class:`~evsim.analysis.EnergyTable`) and
        analog-head convention (``"reinject"`` or ``"recompute"``).
    analysis_images:
        Images used for conversion error and spike-count histograms.
    title, data_name:
        The report's heading and a description of the data.
    class_names:
        Names of the output classes, for the per-class table and the
        confusion matrix (default: class indices).
    """
    options = resolve_simulation(simulation, **overrides)
    table = energy_table(table)
    if convention not in CONVENTIONS:
        raise EvsimValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if analysis_images < 1:
        raise EvsimValueError(f"analysis_images must be >= 1, got {analysis_images}")
    images = np.asarray(images)
    out = check_output_folder(directory, REPORT_FILES)
    runs = _simulations(snn, images, T, result, options, analysis_images)
    # a context, not a finalizer: the folder goes when this fails, not when the traceback
    # that holds it is collected
    with StagedFolder(out) as staged:
        figure = _Figures(staged, out)
        summary = checkpoint_summary(snn, runs.result, labels,
                                     images if labels is not None else None, table, convention)
        energy = energy_report(snn, runs.result, table, convention)
        warning = steps_message(snn, runs.result.T, runs.result.checkpoints)
        neurobench = _NeuroBench.of(snn, runs, images)
        classes = _classes(snn, runs.result, images, labels, class_names)
        parts = [f"# {title}", "", _overview(snn, runs, data_name), ""]
        if warning:
            parts += [f"**Warning:** {warning}.", ""]
        parts += _accuracy_sections(snn, runs, summary, table, convention, classes, figure,
                                    labels is not None)
        if isinstance(labels, TaskScore):
            parts += _task_section(snn, runs.result, images, labels, figure, class_names)
        parts += ["## Energy per layer", "", energy.to_markdown(), "",
                  "In the figure, the analog input's re-injection adds (its current added "
                  "into the first spiking layer at every step) are drawn apart from the "
                  "synaptic operations: they are adds, not SOPs.", "",
                  figure(plot.energy_breakdown(energy), "energy.png"), ""]
        parts += neurobench.section(runs, list(snn.neurons))
        parts += _error_sections(snn, runs, figure)
        parts += _inside_section(snn, runs, figure)
        parts += explorer_section(staged, snn, images,
                                  None if isinstance(labels, TaskScore) else labels,
                                  T=runs.result.T, encoding=runs.result.encoding,
                                  seed=runs.seed, class_names=class_names)
        parts += ["## Network", "", "```", snn.summary(), "```", ""]
        markdown = "\n".join(parts)
        md_path, html_path = out / "report.md", out / "index.html"
        (staged / md_path.name).write_text(markdown, encoding="utf-8")
        (staged / html_path.name).write_text(markdown_to_html(markdown, staged, title),
                                             encoding="utf-8")
    return Report(out, md_path, html_path, tuple(figure.saved),
                  {"checkpoints": summary.as_dict(), "energy": energy.as_dict(),
                   "neurobench": neurobench.as_dict(),
                   "classes": None if classes is None else classes["json"],
                   "warnings": [warning] if warning else []})


@dataclass(frozen=True)
class _Runs:
    """The three simulations of a report: the main ``result``; ``detail``, per-image counts
    on the first images (``subset``); ``traced``, image 0 on the dense engine recording
    every neuron (``full``) or only the rasters' ``chosen`` ones (None in the windowed
    schemes, which have no per-step trains); ``seed`` of the rate encoding."""

    result: SimResult
    detail: SimResult
    traced: SimResult | None
    subset: np.ndarray
    chosen: dict
    full: bool
    seed: int


def _simulations(snn: SpikingNetwork, images: np.ndarray, T: int, result: SimResult | None,
                 options: SimulationOptions, analysis_images: int) -> _Runs:
    """The report's runs (:class:`_Runs`), ``result`` used as the main one when given."""
    if result is None:
        result = simulate(snn, images, T=T, options=options)
    elif result.n_images != len(images):
        raise EvsimValueError(f"result simulated {result.n_images} images but {len(images)} were "
                              "given; pass the images of that run")
    subset = images[:analysis_images]
    detail = simulate(snn, subset, T=result.T, options=options.replace(
        engine=result.engine, encoding=result.encoding, checkpoints=None, record=None,
        per_image_counts=True))
    layers = list(snn.neurons)
    chosen = {name: plot.adjacent_neurons(snn.network.shape(name), detail.spike_counts[name][0],
                                          RASTER_SIDE) for name in layers}
    full = sum(result.neurons.values()) * result.T <= FULL_RECORDING_LIMIT
    traced = None if snn.time_scheme in WINDOWED else simulate(
        snn, images[:1], T=result.T, engine="dense", encoding=result.encoding,
        seed=options.seed, dtype=options.dtype,
        record={name: None if full else chosen[name][0] for name in layers})
    return _Runs(result, detail, traced, subset, chosen, full, options.seed)


class _Figures:
    """Saves each figure as a PNG into the staging folder; calling it gives its Markdown."""

    def __init__(self, staging: Path, out: Path):
        self.staging, self.out = staging, out
        self.saved: list[Path] = []

    def __call__(self, fig, name: str) -> str:
        fig.savefig(self.staging / name, dpi=110)
        self.saved.append(self.out / name)
        return f"![{name[:-4].replace('_', ' ')}]({name})"


def _overview(snn: SpikingNetwork, runs: _Runs, data_name: str) -> str:
    result = runs.result
    return (f"Network: {len(snn.network)} layers, {len(snn.neurons)} spiking; conversion "
            f"method `{snn.method}`, max pooling `{snn.max_pool}`. Simulated with the "
            f"{result.engine} engine, {result.encoding} input, T = {result.T}, on "
            f"{result.n_images} image(s)" + (f" from {data_name}" if data_name else "") + ".")


def _accuracy_sections(snn, runs: _Runs, summary, table: EnergyTable, convention: str,
                       classes: dict | None, figure: _Figures, labelled: bool) -> list[str]:
    """Accuracy, SOPs and energy versus T, and accuracy per class."""
    result = runs.result
    parts = [f"## {_title(summary.metric)}, SOPs and energy versus T", "",
             "Each row is what stopping at that step gives and costs, per image "
             f"({table.describe()}; "
             + ("rate-coded input, no analog head" if result.encoding == "rate" else
                f"analog head: {convention}") + ").", "",
             summary.to_markdown(), ""]
    if labelled:
        curves = {snn.method: (summary.steps, summary.accuracy)}
        parts += [figure(plot.accuracy_vs_T(curves, summary.ann_accuracy,
                                            metric=summary.metric), "accuracy_vs_T.png"), ""]
    if classes is not None:
        parts += ["## Accuracy per class", "",
                  f"At T = {result.T}, on all {result.n_images} image(s); the ANN on the same "
                  "images.", "", classes["table"], "",
                  figure(plot.confusion_matrix(classes["snn_matrix"], classes["names"],
                                               f"SNN confusion matrix at T = {result.T}"),
                         "confusion_matrix.png"), ""]
    return parts


@dataclass(frozen=True)
class _NeuroBench:
    """The NeuroBench metrics of the main run (``all_images``) and of image 0 recorded in
    full (``image_0``), each with the reason ('' if none) some were not measured."""

    all_images: dict
    all_images_note: str
    image_0: dict
    image_0_note: str

    @classmethod
    def of(cls, snn: SpikingNetwork, runs: _Runs, images: np.ndarray) -> _NeuroBench:
        all_images, all_note = _neurobench(snn, runs.result, images, runs.seed)
        static = neurobench_static_metrics(snn, np.dtype(runs.result.dtype))
        one, one_note = ((static, "the temporal scheme has no per-step spikes")
                         if runs.traced is None else
                         (static, "image 0 was recorded at the raster's neurons only")
                         if not runs.full else _neurobench(snn, runs.traced, images[:1],
                                                           runs.seed))
        return cls(all_images, all_note, one, one_note)

    def as_dict(self) -> dict:
        return {"version": NEUROBENCH_VERSION,
                "all_images": self.all_images, "all_images_note": self.all_images_note or None,
                "image_0": self.image_0, "image_0_note": self.image_0_note or None}

    def section(self, runs: _Runs, layers: list[str]) -> list[str]:
        """The report's NeuroBench section."""
        n = runs.result.n_images
        parts = [f"## NeuroBench metrics (NeuroBench {NEUROBENCH_VERSION} definitions)", "",
                 "The NeuroBench harness's metrics of this network as a torch model would "
                 "present it to NeuroBench: spikes of multiplicity 1 count as ACs, the analog "
                 "input layer counts MACs at every step, zero weights, biases and pooling are "
                 "not counted, and a burst counts once. `docs/neurobench.md` sets them beside "
                 "evsim's own SOPs above. Image 0 is simulated again with the dense engine "
                 "recording every neuron, which makes every metric exact.", "",
                 _neurobench_table([(f"all {n} image(s)", self.all_images),
                                    ("image 0, every neuron recorded", self.image_0)],
                                   layers), ""]
        for label, note in ((f"all {n} image(s)", self.all_images_note),
                            ("image 0", self.image_0_note)):
            if note:
                parts += [f"- {label}: not measured: {note}."]
        if self.all_images.get("MembraneUpdates", 0) is None:
            parts += [f"- all {n} image(s): MembraneUpdates needs membrane traces of every "
                      "neuron; see image 0."]
        return parts


def _error_sections(snn: SpikingNetwork, runs: _Runs, figure: _Figures) -> list[str]:
    """Conversion error and spike statistics."""
    result, detail, subset, layers = runs.result, runs.detail, runs.subset, list(snn.neurons)
    errors = conversion_error(snn, detail, subset)
    rates, silent = layer_firing_rates(result), silent_fraction(detail, per_image=True)
    saturated = saturated_fraction(detail, snn, per_image=True)
    return ["", "## Conversion error", "",
            f"SNN rate θN/T against the ANN activation of the same layer, on the first "
            f"{len(subset)} image(s). Each scatter shows the pairs with the largest error in "
            "red and a random sample of the rest; its title says how many of how many pairs "
            "it shows.", "",
            _table(["layer", "mean error", "RMS error", "max abs error", "correlation"],
                   [[e.layer, f"{e.mean:.4g}", f"{e.rms:.4g}", f"{e.max_abs:.4g}",
                     f"{e.correlation:.4f}"] for e in errors.values()]), "",
            figure(plot.rate_vs_activation(snn, detail, subset), "rate_vs_activation.png"), "",
            figure(plot.conversion_error(errors), "conversion_error.png"), "",
            figure(plot.output_error(output_error(snn, detail, subset)), "output_error.png"), "",
            "## Spike statistics", "",
            f"Firing rate over all {result.n_images} image(s); silent and saturated (Γ spikes "
            f"every step) fractions of (image, neuron) pairs over the first {len(subset)}; "
            "ISI CV and first-spike step: medians over "
            + ("the neurons of image 0 that fired." if runs.full else
               "the raster's neurons of image 0 that fired."), "",
            _table(["layer", "neurons", "θ", "spikes per neuron per step", "silent",
                    "saturated", "ISI CV", "first spike"],
                   [[name, f"{result.neurons[name]}", _theta(snn, name), f"{rates[name]:.4f}",
                     f"{silent[name]:.3f}", f"{saturated[name]:.4f}",
                     *_timing(runs.traced, name)] for name in layers]), "",
            figure(plot.spike_count_histogram(detail), "spike_counts.png"), ""]


def _inside_section(snn: SpikingNetwork, runs: _Runs, figure: _Figures) -> list[str]:
    """Rasters and membrane traces of image 0."""
    parts = ["## Inside the network (image 0)", ""]
    if runs.traced is None:
        return parts + ["The temporal scheme simulates whole windows, so there are no per-step "
                        "spike trains or membrane traces to show.", ""]
    layers = list(snn.neurons)
    return parts + [
        f"Each raster shows up to {RASTER_SIDE * RASTER_SIDE} neighbouring neurons of "
        "one layer, chosen by one rule: in a layer of feature maps, the channel with "
        f"the most spikes on image 0 and the central {RASTER_SIDE}×{RASTER_SIDE} patch "
        "of its map (the whole map if smaller), row by row; in a vector layer, the "
        f"{RASTER_SIDE * RASTER_SIDE} consecutive neurons with the most spikes. Each "
        "panel's title names its choice.", "",
        figure(_rasters(runs.traced, layers, runs.chosen, runs.subset[0]), "raster.png"), "",
        "Membrane potential of the most active neuron of each raster, before each step's "
        "reset (the value compared with θ; circles where it fired) and, dotted, after it:", "",
        figure(_traces(runs.traced, snn, layers, runs.chosen, runs.subset[0]), "membrane.png"),
        "", "Spike counts of each layer on image 0, its busiest channels as maps:", "",
        figure(plot.layer_maps(runs.detail, 0, runs.subset, layers), "feature_maps.png"), ""]


def _title(metric: str) -> str:
    return "Accuracy" if metric == "accuracy" else metric


#: Scenes the report draws, and at most how many checkpoints of the SNN it shows for them.
TASK_SCENES, TASK_CHECKPOINTS = 4, 3
#: The lowest score of a box drawn in the report's pictures (mAP counts from 0.05).
PICTURE_SCORE = 0.3
#: The most detections drawn per panel of the task picture (the best-scoring).
PICTURE_BOXES = 8


def _task_section(snn, result: SimResult, images: np.ndarray, score: TaskScore,
                  figure: _Figures, class_names: Sequence[str] | None) -> list[str]:
    """The first scenes: input, ground truth, the ANN's answer and the SNN's at a few T."""
    n = min(TASK_SCENES, len(images))
    first = score.take(n)
    picked = np.unique(np.linspace(0, len(result.checkpoints) - 1,
                                   TASK_CHECKPOINTS).round().astype(int))
    columns = {"ANN": first.answers(forward(snn.network, images[:n]), PICTURE_SCORE)}
    for k in picked:
        readout = result.outputs[k, :n].astype(np.float64) / result.checkpoints[k]
        columns[f"SNN T={result.checkpoints[k]}"] = first.answers(readout, PICTURE_SCORE)
    scenes = first.scenes
    truth = (list(scenes.masks) if score.task == "segmentation" else
             list(zip(scenes.boxes, scenes.box_labels)))
    what = ("masks coloured by class, background black" if score.task == "segmentation" else
            f"boxes with their class and score, those scoring at least {PICTURE_SCORE}, "
            f"the {PICTURE_BOXES} best of each; "
            "the ground truth without score")
    names = None if class_names is None else list(class_names)
    if score.task == "detection" and names is None:
        names = list(CLASS_NAMES)
    return [f"## {score.task.capitalize()} of the first scenes", "",
            f"The first {n} scene(s): input, ground truth, the ANN's answer and the SNN's at "
            f"T = {', '.join(str(result.checkpoints[k]) for k in picked)} ({what}).", "",
            figure(plot.task_predictions(images[:n], truth, columns, score.task, names,
                                         max_boxes=PICTURE_BOXES), "task_predictions.png"), ""]


def _classes(snn, result, images, labels, class_names) -> dict | None:
    """Per-class accuracy of the SNN at T and of the ANN, and the SNN's confusion matrix."""
    shape = snn.network.output_shape
    if labels is None or isinstance(labels, TaskScore) or len(shape) != 1:
        return None
    n = shape[0]
    labels = np.asarray(labels)
    if labels.size == 0 or labels.min() < 0 or labels.max() >= n:
        return None
    names = [str(i) for i in range(n)] if class_names is None else list(class_names)
    snn_matrix = confusion_matrix(labels, result.predictions()[-1], n)
    ann_matrix = confusion_matrix(labels, forward(snn.network, images).argmax(axis=1), n)
    snn_acc, ann_acc = class_accuracy(snn_matrix), class_accuracy(ann_matrix)
    counts = snn_matrix.sum(axis=1)

    def pct(value):
        return "–" if np.isnan(value) else f"{100 * value:.2f}"

    rows = [[f"{i}" if class_names is None else f"{i}: {names[i]}", f"{counts[i]}",
             pct(ann_acc[i]), pct(snn_acc[i])] for i in range(n)]
    text = _table(["class", "images", "ANN accuracy (%)", f"SNN accuracy at T = {result.T} (%)"],
                  rows)
    return {"names": names, "snn_matrix": snn_matrix, "table": text,
            "json": {"names": names, "images": counts.tolist(),
                     "ann_accuracy": [None if np.isnan(a) else float(a) for a in ann_acc],
                     "snn_accuracy": [None if np.isnan(a) else float(a) for a in snn_acc],
                     "snn_confusion_matrix": snn_matrix.tolist()}}


def check_comparison_folder(directory: str | os.PathLike) -> Path:
    """``directory`` as a Path if a comparison can be written there: missing, or holding only
    what a comparison writes (:data:`COMPARISON_FILES`, its ``cells`` folder, and temporary
    files an interrupted write left)."""
    out = Path(directory)
    if out.is_dir():
        foreign = sorted(entry.name for entry in os.scandir(out)
                         if not (entry.name in COMPARISON_FILES or entry.name == "cells"
                                 or (entry.name.startswith(".") and entry.name.endswith(".tmp"))))
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            raise EvsimFileError(out, f"the folder holds files evsim compare did not write "
                                 f"({shown}); give a new or empty folder")
        check_output_file(out / "index.html")
    else:
        check_output_folder(out)
    return out


@names_the_folder
def write_comparison_report(directory: str | os.PathLike, comparison: Comparison, *,
                            title: str = "evsim method comparison",
                            description: str = "") -> Report:
    """Write ``comparison`` to a folder: ``comparison.md`` (the tables), ``comparison.json``
    (:meth:`Comparison.to_json`), ``accuracy_tradeoffs.png`` (accuracy against latency,
    SOPs and energy: :meth:`Comparison.plot_tradeoffs`; when a method ran, an earlier one
    is removed otherwise), and a report page, ``report.md`` and a self-contained
    ``index.html``. Each file is replaced atomically; other files in the folder (a
    comparison's ``cells``) are left as they are.

    ``description`` (Markdown) says what was compared, under the title.
    """
    out = check_comparison_folder(directory)
    tables = comparison.to_markdown()
    ran = any(row.applies for row in comparison.methods)
    files = {"comparison.md": tables + "\n", "comparison.json": comparison.to_json() + "\n"}
    images: tuple[Path, ...] = ()
    parts = [f"# {title}", ""]
    if description:
        parts += [description, ""]
    parts += [tables, ""]
    with tempfile.TemporaryDirectory() as scratch:
        if ran:
            figure = comparison.plot_tradeoffs()
            figure.savefig(Path(scratch) / PLOT, dpi=110, bbox_inches="tight")
            images = (out / PLOT,)
            parts += ["## Accuracy versus latency, SOPs and energy", "",
                      "Each point is a method at one T, with its 95 % Wilson interval over "
                      f"{comparison.n_images} images; latency is the steps until the answer "
                      "(a temporal scheme's T is its window, not its latency); ringed points "
                      "are Pareto-optimal.", "",
                      f"![accuracy versus latency, SOPs and energy]({PLOT})", ""]
        markdown = "\n".join(parts)
        page = markdown_to_html(markdown, Path(scratch), title)
        for path in images:
            with atomic_file(path) as stream:
                stream.write((Path(scratch) / path.name).read_bytes())
    files.update({"report.md": markdown, "index.html": page})
    # an earlier comparison's plot would contradict these tables (accuracy_vs_T.png: the
    # plot against T that earlier versions wrote)
    for stale in ("accuracy_vs_T.png",) + (() if ran else (PLOT,)):
        (out / stale).unlink(missing_ok=True)
    for name, text in files.items():
        with atomic_file(out / name) as stream:
            stream.write(text.encode("utf-8"))
    return Report(out, out / "report.md", out / "index.html", images, comparison.as_dict())


def _timing(traced: SimResult | None, layer: str) -> list[str]:
    """Median ISI CV and first-spike step of the recorded neurons, or dashes."""
    if traced is None:
        return ["–", "–"]
    return [_median(isi_cv(traced, layer)), _median(first_spike_times(traced, layer))]


def _beside_input(image: np.ndarray, rows: int, size: tuple[float, float]
                  ) -> tuple[Figure, list]:
    """A figure of ``rows`` panels of ``size`` inches each, with the input ``image`` at the
    top of a narrow column on their left; returns the figure and the panels' axes."""
    fig = Figure(figsize=(size[0] + 2.0, size[1] * rows), layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False, width_ratios=[1, 4])
    for ax in axes[1:, 0]:
        ax.set_axis_off()
    plot.input_image(image, ax=axes[0, 0], title="image 0")
    return fig, list(axes[:, 1])


def _rasters(traced: SimResult, layers: list[str], chosen: dict, image: np.ndarray) -> Figure:
    fig, axes = _beside_input(image, len(layers), (6.5, 3.2))
    for ax, name in zip(axes, layers):
        neurons, rule = chosen[name]
        plot.spike_raster(traced, name, neurons=neurons, rule=rule, ax=ax)
    return fig


def _traces(traced: SimResult, snn: SpikingNetwork, layers: list[str], chosen: dict,
            image: np.ndarray) -> Figure:
    fig, axes = _beside_input(image, len(layers), (8.0, 3.0))
    for ax, name in zip(axes, layers):
        neurons = chosen[name][0]
        busiest = neurons[int(np.argmax(traced.spike_counts[name].reshape(-1)[neurons]))]
        plot.membrane_trace(traced, snn, name, int(busiest), ax=ax)
    return fig


def _theta(snn: SpikingNetwork, layer: str) -> str:
    theta = snn.neurons[layer].threshold
    return f"{float(theta):.4g}" if theta.ndim == 0 else f"{theta.min():.4g}..{theta.max():.4g}"


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def markdown_to_html(markdown: str, image_dir: Path, title: str) -> str:
    """Render the Markdown subset the report uses (headings, paragraphs, lists, pipe tables,
    code blocks, images) as one HTML page with the images embedded as data URIs."""
    body, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = lines.index("```", i + 1)
            body.append("<pre>" + html.escape("\n".join(lines[i + 1:end])) + "</pre>")
            i = end + 1
            continue
        if line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            head, data = rows[0], rows[2:]
            body.append("<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head)
                        + "</tr>" + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r)
                                            + "</tr>" for r in data) + "</table>")
            continue
        if line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            body.append("<ul>" + "".join(items) + "</ul>")
            continue
        image = re.fullmatch(r"!\[(.*)\]\((.+)\)", line)
        heading = re.match(r"(#+) (.*)", line)
        if image:
            data = base64.b64encode((image_dir / image.group(2)).read_bytes()).decode("ascii")
            body.append(f'<p><img alt="{html.escape(image.group(1))}" '
                        f'src="data:image/png;base64,{data}"></p>')
        elif heading:
            level = len(heading.group(1))
            body.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
        i += 1
    style = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
             "padding:.2em .6em;text-align:right}td:first-child,th:first-child{text-align:left}"
             "img{max-width:100%}pre{background:#f4f4f4;padding:1em;overflow:auto}")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}"
            f"</title><style>{style}</style></head><body>\n" + "\n".join(body)
            + "\n</body></html>\n")


__all__ = ["write_report", "Report", "markdown_to_html", "RASTER_SIDE", "FULL_RECORDING_LIMIT",
           "REPORT_FILES", "write_comparison_report", "check_comparison_folder",
           "COMPARISON_FILES"]
