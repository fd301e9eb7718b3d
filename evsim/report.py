"""A report folder for one spiking network on one data set: plots, Markdown and HTML.

:func:`write_report` simulates (or takes) a run, analyses it and writes

* ``report.md`` -- accuracy/SOPs/energy versus T, the energy table with its
  conventions, conversion error and spike statistics per layer;
* ``index.html`` -- the same text with every plot embedded (one
  self-contained file that opens in any browser);
* one PNG per plot.

Three simulations feed it: the main run on all images (accuracy, SOPs,
energy), a run with per-image counts on the first ``analysis_images`` images
(conversion error, spike-count histograms) and a dense run recording a few
neurons per layer on one image (raster, membrane traces, spike timing).
"""

from __future__ import annotations

import base64
import html
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import plot
from .analysis import (CONVENTIONS, EnergyTable, checkpoint_summary, conversion_error,
                       energy_report, energy_table, first_spike_times, isi_cv, layer_firing_rates,
                       output_error, saturated_fraction, silent_fraction)
from .io.atomic import StagedFolder, check_output_folder
from .simulate import simulate
from .spiking import WINDOWED
from .simulate.result import SimResult
from .spiking import SpikingNetwork

#: Neurons recorded per spiking layer for the raster and traces.
RECORDED_NEURONS = 64

#: Names of the files a report folder holds (glob patterns).
REPORT_FILES = ("report.md", "index.html", "*.png")


@dataclass(frozen=True)
class Report:
    """Where the report was written: ``markdown`` and ``html`` files, the ``images`` (PNG)
    and ``summary`` (JSON-ready accuracy, SOPs and energy versus T, and the energy table)."""

    directory: Path
    markdown: Path
    html: Path
    images: tuple[Path, ...]
    summary: dict


def _recorded(snn: SpikingNetwork, layer: str) -> np.ndarray:
    """Up to RECORDED_NEURONS flat neuron indices spread evenly over the layer."""
    size = int(np.prod(snn.network.shape(layer)))
    return np.unique(np.linspace(0, size - 1, min(size, RECORDED_NEURONS)).astype(np.int64))


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _median(values: np.ndarray) -> str:
    values = values[np.isfinite(values)]
    return f"{np.median(values):.3g}" if values.size else "–"


def write_report(directory: str | os.PathLike, snn: SpikingNetwork, images: np.ndarray,
                 labels: np.ndarray | None = None, *, T: int = 128, engine: str = "event",
                 encoding: str = "analog", result: SimResult | None = None,
                 table: str | EnergyTable = "float32", convention: str = "reinject",
                 analysis_images: int = 100, title: str = "evsim report", data_name: str = "",
                 progress: bool = False) -> Report:
    """Simulate, analyse and write a report folder.

    Parameters
    ----------
    directory:
        Folder to write (created if missing). It is built beside its place and
        swapped in whole (:class:`~evsim.io.atomic.StagedFolder`), so an
        interrupted run leaves the previous report; an existing folder may hold
        only a previous report's files (:data:`REPORT_FILES`).
    snn, images, labels:
        The network, the images ``(B, *input_shape)`` and optional labels ``(B,)``.
    T, engine, encoding:
        How to simulate the main run (ignored when ``result`` is given).
    result:
        A run of ``snn`` on exactly ``images`` to use as the main run.
    table, convention:
        Energy table (preset name or :class:`~evsim.analysis.EnergyTable`) and
        analog-head convention (``"reinject"`` or ``"recompute"``).
    analysis_images:
        Images used for conversion error and spike-count histograms.
    title, data_name:
        The report's heading and a description of the data.
    progress:
        Show progress bars for the simulations.
    """
    table = energy_table(table)
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if analysis_images < 1:
        raise ValueError(f"analysis_images must be >= 1, got {analysis_images}")
    images = np.asarray(images)
    out = check_output_folder(directory, REPORT_FILES)
    if result is None:
        result = simulate(snn, images, T=T, engine=engine, encoding=encoding, progress=progress)
    elif result.n_images != len(images):
        raise ValueError(f"result simulated {result.n_images} images but {len(images)} were "
                         "given; pass the images of that run")
    T, engine, encoding = result.T, result.engine, result.encoding
    staging = StagedFolder(out)

    subset = images[:analysis_images]
    detail = simulate(snn, subset, T=T, engine=engine, encoding=encoding, per_image_counts=True,
                      progress=progress)
    layers = list(snn.neurons)
    # The temporal scheme simulates whole windows and has no per-step trains to record.
    traced = None if snn.time_scheme in WINDOWED else simulate(
        snn, images[:1], T=T, engine="dense", encoding=encoding,
        record={name: _recorded(snn, name) for name in layers})

    summary = checkpoint_summary(snn, result, labels, images if labels is not None else None,
                                 table, convention)
    energy = energy_report(snn, result, table, convention)
    errors = conversion_error(snn, detail, subset)
    saved: list[Path] = []

    def figure(fig, name: str) -> str:
        fig.savefig(staging.path / name, dpi=110)
        saved.append(out / name)
        return f"![{name[:-4].replace('_', ' ')}]({name})"

    curves = {snn.method: (summary.steps, summary.accuracy)} if labels is not None else {}
    rates, silent = layer_firing_rates(result), silent_fraction(detail, per_image=True)
    saturated = saturated_fraction(detail, snn, per_image=True)
    parts = [f"# {title}", "",
             f"Network: {len(snn.network)} layers, {len(layers)} spiking; conversion method "
             f"`{snn.method}`, max pooling `{snn.max_pool}`. Simulated with the {engine} engine, "
             f"{encoding} input, T = {T}, on {result.n_images} image(s)"
             + (f" from {data_name}" if data_name else "") + ".", "",
             "## Accuracy, SOPs and energy versus T", "",
             "Each row is what stopping at that step gives and costs, per image "
             f"({table.describe()}; "
             + ("rate-coded input, no analog head" if encoding == "rate" else
                f"analog head: {convention}") + ").", "",
             summary.to_markdown(), ""]
    if curves:
        parts += [figure(plot.accuracy_vs_T(curves, summary.ann_accuracy), "accuracy_vs_T.png"),
                  ""]
    parts += ["## Energy per layer", "", energy.to_markdown(), "",
              figure(plot.energy_breakdown(energy), "energy.png"), "",
              "## Conversion error", "",
              f"SNN rate θN/T against the ANN activation of the same layer, on the first "
              f"{len(subset)} image(s).", "",
              _table(["layer", "mean error", "RMS error", "max abs error", "correlation"],
                     [[e.layer, f"{e.mean:.4g}", f"{e.rms:.4g}", f"{e.max_abs:.4g}",
                       f"{e.correlation:.4f}"] for e in errors.values()]), "",
              figure(plot.rate_vs_activation(snn, detail, subset), "rate_vs_activation.png"), "",
              figure(plot.conversion_error(errors), "conversion_error.png"), "",
              figure(plot.output_error(output_error(snn, detail, subset)), "output_error.png"), "",
              "## Spike statistics", "",
              f"Firing rate over all {result.n_images} image(s); silent and saturated (Γ spikes "
              f"every step) fractions of (image, neuron) pairs over the first {len(subset)}; "
              f"ISI CV and first-spike step: medians over {RECORDED_NEURONS} or fewer recorded "
              "neurons of image 0.", "",
              _table(["layer", "neurons", "θ", "spikes per neuron per step", "silent",
                      "saturated", "ISI CV", "first spike"],
                     [[name, f"{result.neurons[name]}", _theta(snn, name), f"{rates[name]:.4f}",
                       f"{silent[name]:.3f}", f"{saturated[name]:.4f}",
                       *_timing(traced, name)] for name in layers]), "",
              figure(plot.spike_count_histogram(detail), "spike_counts.png"), "",
              "## Inside the network (image 0)", ""]
    if traced is None:
        parts += ["The temporal scheme simulates whole windows, so there are no per-step spike "
                  "trains or membrane traces to show.", ""]
    else:
        parts += [figure(_rasters(traced, layers), "raster.png"), "",
                  "Membrane potential of the most active recorded neuron of each layer:", "",
                  figure(_traces(traced, snn, layers), "membrane.png"), ""]
    parts += ["## Network", "", "```", snn.summary(), "```", ""]
    markdown = "\n".join(parts)
    md_path, html_path = out / "report.md", out / "index.html"
    (staging.path / md_path.name).write_text(markdown, encoding="utf-8")
    (staging.path / html_path.name).write_text(markdown_to_html(markdown, staging.path, title),
                                               encoding="utf-8")
    staging.commit()
    return Report(out, md_path, html_path, tuple(saved),
                  {"checkpoints": summary.as_dict(), "energy": energy.as_dict()})


def _timing(traced: SimResult | None, layer: str) -> list[str]:
    """Median ISI CV and first-spike step of the recorded neurons, or dashes."""
    if traced is None:
        return ["–", "–"]
    return [_median(isi_cv(traced, layer)), _median(first_spike_times(traced, layer))]


def _rasters(traced: SimResult, layers: list[str]) -> Figure:
    fig = Figure(figsize=(6.0, 3.2 * len(layers)), layout="constrained")
    for ax, name in zip(fig.subplots(len(layers), 1, squeeze=False)[:, 0], layers):
        plot.spike_raster(traced, name, ax=ax)
    return fig


def _traces(traced: SimResult, snn: SpikingNetwork, layers: list[str]) -> Figure:
    fig = Figure(figsize=(7.0, 3.0 * len(layers)), layout="constrained")
    for ax, name in zip(fig.subplots(len(layers), 1, squeeze=False)[:, 0], layers):
        recorded = traced.recorded[name]
        busiest = recorded[int(np.argmax(traced.spike_counts[name].reshape(-1)[recorded]))]
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


__all__ = ["write_report", "Report", "markdown_to_html", "RECORDED_NEURONS", "REPORT_FILES"]
