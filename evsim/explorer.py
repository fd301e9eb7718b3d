"""An interactive explorer: one self-contained HTML page to step through a simulation.

:func:`record_exploration` simulates a few images with the dense engine,
keeping per step each image's running output (the readout so far), its
synaptic operations so far, and the spikes and membrane potentials of a few
neurons per layer (the most active over those images). :func:`explorer_figure`
draws them as a Plotly figure with one frame per (image, step): a dropdown
chooses the image, a slider the step, and every panel shows what happened up to
that step. :func:`write_explorer` writes the page atomically, plotly.js
embedded inline, so it opens offline. Plotly is the optional extra
``evsim[explore]``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import EvsimValueError
from .extras import require
from .io.atomic import atomic_file, check_output_file
from .simulate import simulate
from .spiking import WINDOWED, SpikingNetwork

#: Defaults of the explorer: images, time steps and neurons shown per layer.
IMAGES, STEPS, NEURONS = 4, 32, 8
#: What the explorer needs from the ``explore`` extra.
_FEATURE = "the interactive explorer (evsim explore)"
#: Colour of the predicted class's bar and of every other bar.
_PREDICTED, _OTHER = "#d62728", "#1f77b4"


@dataclass(frozen=True, eq=False)
class ImageTrace:
    """One image's simulation as the explorer shows it.

    ``image`` ``(*input_shape)``; ``label`` (None without labels); ``readout``
    ``(T, outputs)``: the mean output over steps 1..t at row t-1; ``sops``
    ``(T,)``: synaptic operations over steps 1..t; ``spikes``
    ``{layer: (steps (1-based), positions in the layer's chosen neurons,
    counts)}``; ``membrane`` ``{layer: (T, chosen)}`` potential after each
    step's reset.
    """

    image: np.ndarray
    label: int | None
    readout: np.ndarray
    sops: np.ndarray
    spikes: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    membrane: dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class Exploration:
    """What the explorer shows: ``T`` steps of each of ``images`` (:class:`ImageTrace`),
    the ``neurons`` chosen per layer (flat indices, most active first), each
    layer's firing ``thresholds`` (a float, or None when they differ per neuron),
    the index of the first image in its data set and the network's
    ``output_shape`` (a vector is drawn as bars, a map as an image)."""

    T: int
    images: tuple[ImageTrace, ...]
    neurons: dict[str, np.ndarray]
    thresholds: dict[str, float | None]
    first_image: int = 0
    output_shape: tuple[int, ...] = ()

    def __post_init__(self):
        if not self.images:
            raise EvsimValueError("an exploration needs at least one image")
        if any(trace.readout.shape[0] != self.T for trace in self.images):
            raise EvsimValueError(f"every image's readout must have T = {self.T} rows")


def record_exploration(snn: SpikingNetwork, images: np.ndarray,
                       labels: np.ndarray | None = None, *, T: int = STEPS,
                       neurons: int = NEURONS, layers: Sequence[str] | None = None,
                       encoding: str = "analog", seed: int = 0,
                       first_image: int = 0) -> Exploration:
    """Simulate ``images`` ``(B, *input_shape)`` for ``T`` steps with the dense engine and
    keep what the explorer shows.

    ``neurons``: how many neurons of each layer to show, the most active over
    these images (ties: the lower index); ``layers``: the spiking layers to
    show (default: all); ``encoding``, ``seed``: as for :func:`evsim.simulate`;
    ``first_image``: index of ``images[0]`` in its data set (keys the rate
    encoder). Each image is simulated on its own, so its SOPs are its own.
    """
    images = np.asarray(images)
    if images.ndim == 0 or len(images) == 0:
        raise EvsimValueError("no images to explore: give at least one image")
    if snn.time_scheme in WINDOWED:
        raise EvsimValueError(f"the {snn.time_scheme!r} scheme simulates whole windows, so it "
                              "has no per-step spikes to explore; explore a synchronous network")
    if not isinstance(neurons, (int, np.integer)) or neurons < 1:
        raise EvsimValueError(f"neurons must be a positive integer, got {neurons!r}")
    chosen_layers = _checked_layers(snn, layers)
    counts = simulate(snn, images, T=T, engine="dense", encoding=encoding, seed=seed,
                      first_image=first_image).spike_counts  # summed over the images
    chosen = {name: _most_active(counts[name].reshape(-1), neurons)
              for name in chosen_layers}
    traces = tuple(_trace(snn, images[i], None if labels is None else int(labels[i]), T,
                          chosen, encoding, seed, first_image + i) for i in range(len(images)))
    return Exploration(T, traces, chosen, {name: _threshold(snn, name) for name in chosen},
                       first_image, tuple(snn.network.output_shape))


def _checked_layers(snn: SpikingNetwork, layers: Sequence[str] | None) -> list[str]:
    spiking = list(snn.neurons)
    if layers is None:
        return spiking
    names = [layers] if isinstance(layers, str) else list(layers)
    unknown = [name for name in names if name not in snn.neurons]
    if not names or unknown:
        raise EvsimValueError(f"layers: no spiking layer named {', '.join(unknown) or '(none)'}; "
                              f"the spiking layers are {', '.join(spiking)}")
    return [name for name in spiking if name in names]


def _most_active(counts: np.ndarray, k: int) -> np.ndarray:
    """Flat indices of the ``k`` largest ``counts``, largest first (ties: lower index)."""
    return np.argsort(-counts, kind="stable")[:k].astype(np.int64)


def _threshold(snn: SpikingNetwork, layer: str) -> float | None:
    theta = np.asarray(snn.neurons[layer].threshold)
    return float(theta.reshape(-1)[0]) if np.all(theta == theta.reshape(-1)[0]) else None


def _trace(snn, image, label, T, chosen, encoding, seed, index) -> ImageTrace:
    result = simulate(snn, image[None], T=T, engine="dense", encoding=encoding, seed=seed,
                      checkpoints=range(1, T + 1), first_image=index,
                      record={name: tuple(int(n) for n in neurons)
                              for name, neurons in chosen.items()})
    steps = result.checkpoints.astype(np.float64)
    readout = result.outputs[:, 0].reshape(T, -1) / steps[:, None]
    spikes = {name: (train.steps, train.neurons, train.counts)
              for name, train in result.spike_trains.items()}
    membrane = {name: values[:, 0, :] for name, values in result.membrane.items()}
    return ImageTrace(image, label, readout, result.cumulative_sops(), spikes, membrane)


# --- the figure -------------------------------------------------------------------------

def explorer_figure(exploration: Exploration, class_names: Sequence[str] | None = None,
                    title: str = "evsim explorer"):
    """A ``plotly.graph_objects.Figure``: the input image, the readout so far, the SOPs so
    far, and per layer the chosen neurons' spikes and membrane potentials up to the step
    the slider names; a dropdown chooses the image. Frames are named ``"IMAGE:STEP"``."""
    go = require("plotly.graph_objects", _FEATURE)
    subplots = require("plotly.subplots", _FEATURE)
    layers = list(exploration.neurons)
    fig = subplots.make_subplots(
        rows=2 + len(layers), cols=2, specs=[[{}, {}], [{"colspan": 2}, None]]
        + [[{}, {}]] * len(layers), vertical_spacing=0.4 / (2 + len(layers)),
        subplot_titles=["input image", "readout so far (mean output over steps 1..t)",
                        "synaptic operations so far"]
        + [text for name in layers for text in (f"{name}: spikes of the chosen neurons",
                                                 f"{name}: membrane potential (after reset)")])
    names = _output_names(exploration, class_names)
    fig.add_trace(go.Heatmap(z=_picture(exploration.images[0].image), colorscale="gray",
                             showscale=False, name="input"), row=1, col=1)
    for spec, row, col in _panels(exploration, layers, names, exploration.images[0],
                                  exploration.T):
        fig.add_trace(spec, row=row, col=col)  # a dict naming its type
    fig.frames = [go.Frame(name=f"{i}:{t}", traces=list(range(1, len(fig.data))),
                           data=[spec for spec, _, _ in _panels(exploration, layers, names,
                                                                trace, t)])
                  for i, trace in enumerate(exploration.images)
                  for t in range(1, exploration.T + 1)]
    _axes(fig, exploration, layers)
    fig.update_layout(title=f"{title}: {_image_name(exploration, 0, names)}", showlegend=False,
                      height=360 + 300 * len(layers), margin={"t": 150},
                      sliders=[_slider(i, exploration.T) for i in range(len(exploration.images))],
                      updatemenus=[_image_menu(fig, exploration, layers, names, title)])
    return fig


def _output_names(exploration: Exploration, class_names) -> list[str]:
    outputs = exploration.images[0].readout.shape[1]
    if class_names is not None and len(class_names) == outputs:
        return [str(name) for name in class_names]
    return [str(k) for k in range(outputs)]


def _picture(image: np.ndarray) -> np.ndarray:
    """A 2-D view of an input: a map's channels averaged, a vector as one row."""
    image = np.asarray(image, dtype=np.float64)
    flat = image.mean(axis=0) if image.ndim == 3 else image.reshape(1, -1)
    return flat


def _panels(exploration: Exploration, layers: list[str], names: list[str],
            trace: ImageTrace, t: int) -> list[tuple[dict, int, int]]:
    """``(trace spec, row, col)`` of every time-dependent panel at step ``t`` (1-based).
    Each spec names its ``type``: a frame without it would redraw a bar chart as lines."""
    steps = np.arange(1, t + 1)
    specs = [(_readout(exploration, trace.readout[t - 1], names), 1, 2),
             ({"type": "scatter", "x": steps, "y": trace.sops[:t], "mode": "lines+markers",
               "line": {"color": "#2ca02c"}}, 2, 1)]
    for row, name in enumerate(layers, start=3):
        when, who, count = trace.spikes[name]
        shown = when <= t
        specs.append(({"type": "scatter", "x": when[shown], "y": who[shown],
                       "mode": "markers", "text": [f"{c} spike(s)" for c in count[shown]],
                       "marker": {"symbol": "line-ns-open", "size": 12, "color": "black"}},
                      row, 1))
        for j, neuron in enumerate(exploration.neurons[name]):
            specs.append(({"type": "scatter", "x": steps, "y": trace.membrane[name][:t, j],
                           "mode": "lines", "name": f"neuron {neuron}"}, row, 2))
    return specs


def _readout(exploration: Exploration, readout: np.ndarray, names: list[str]) -> dict:
    """The readout panel's trace: bars, the predicted class in red, or a map's image."""
    if len(exploration.output_shape) <= 1:
        colours = [_PREDICTED if k == int(np.argmax(readout)) else _OTHER
                   for k in range(len(readout))]
        return {"type": "bar", "x": names, "y": readout, "marker": {"color": colours}}
    low, high = _readout_range(exploration)
    return {"type": "heatmap", "z": _picture(readout.reshape(exploration.output_shape)),
            "colorscale": "gray", "showscale": False, "zmin": low, "zmax": high}


def _readout_range(exploration: Exploration) -> tuple[float, float]:
    values = [trace.readout for trace in exploration.images]
    return min(0.0, min(float(v.min()) for v in values)), max(float(v.max()) for v in values)


def _axes(fig, exploration: Exploration, layers: list[str]) -> None:
    """Fixed ranges, so that moving the slider or changing the image redraws no axis."""
    T, traces = exploration.T, exploration.images
    steps = [0.5, T + 0.5]
    fig.update_xaxes(showticklabels=False, showgrid=False, row=1, col=1)
    fig.update_yaxes(autorange="reversed", showticklabels=False, showgrid=False,
                     scaleanchor="x", row=1, col=1)
    if len(exploration.output_shape) <= 1:
        fig.update_yaxes(range=_padded(*_readout_range(exploration)), row=1, col=2)
    else:
        fig.update_xaxes(showticklabels=False, showgrid=False, row=1, col=2)
        fig.update_yaxes(autorange="reversed", showticklabels=False, showgrid=False,
                         scaleanchor="x2", row=1, col=2)
    fig.update_xaxes(range=steps, title_text="step t", row=2, col=1)
    fig.update_yaxes(range=_padded(0, max(float(trace.sops[-1]) for trace in traces)),
                     row=2, col=1)
    for row, name in enumerate(layers, start=3):
        chosen = exploration.neurons[name]
        last = "step t" if row == len(layers) + 2 else None
        fig.update_xaxes(range=steps, title_text=last, row=row, col=1)
        fig.update_xaxes(range=steps, title_text=last, row=row, col=2)
        fig.update_yaxes(range=[len(chosen) - 0.5, -0.5], tickvals=list(range(len(chosen))),
                         ticktext=[str(n) for n in chosen], title_text="neuron", row=row, col=1)
        values = np.concatenate([trace.membrane[name].ravel() for trace in traces])
        theta = exploration.thresholds[name]
        extra = [] if theta is None else [theta]
        fig.update_yaxes(range=_padded(min([values.min(), *extra]), max([values.max(), *extra])),
                         row=row, col=2)
        if theta is not None:
            fig.add_hline(y=theta, line_dash="dash", line_color="gray", row=row, col=2,
                          annotation_text="θ", annotation_position="top left")


def _padded(low: float, high: float) -> list[float]:
    pad = 0.05 * (high - low) or 0.5
    return [float(low) - pad, float(high) + pad]


def _image_name(exploration: Exploration, i: int, names: list[str]) -> str:
    """``"image 3, label Dress"``: the image's index in its data set and its label."""
    label = exploration.images[i].label
    shown = "" if label is None else f", label {names[label]}" if (
        len(exploration.output_shape) <= 1 and 0 <= label < len(names)) else f", label {label}"
    return f"image {exploration.first_image + i}{shown}"


def _slider(i: int, T: int) -> dict:
    return {"visible": i == 0, "active": T - 1, "pad": {"t": 40},
            "currentvalue": {"prefix": f"image {i}, step t = "},
            "steps": [{"label": str(t), "method": "animate",
                       "args": [[f"{i}:{t}"], {"mode": "immediate", "transition": {"duration": 0},
                                               "frame": {"duration": 0, "redraw": True}}]}
                      for t in range(1, T + 1)]}


def _image_menu(fig, exploration: Exploration, layers: list[str], names: list[str],
                title: str) -> dict:
    """The dropdown: each button draws its image at the last step and shows its slider."""
    count, buttons = len(exploration.images), []
    for i, trace in enumerate(exploration.images):
        specs = [{"z": _picture(trace.image)}] + [spec for spec, _, _ in _panels(
            exploration, layers, names, trace, exploration.T)]
        data = {key: [spec.get(key) for spec in specs] for key in ("x", "y", "z")}
        data["marker.color"] = [spec.get("marker", {}).get("color") for spec in specs]
        layout = {f"sliders[{j}].visible": j == i for j in range(count)}
        layout.update({f"sliders[{i}].active": exploration.T - 1,
                       "title.text": f"{title}: {_image_name(exploration, i, names)}"})
        buttons.append({"label": _image_name(exploration, i, names), "method": "update",
                        "args": [data, layout]})
    return {"buttons": buttons, "direction": "down", "x": 0.0, "xanchor": "left", "y": 1.0,
            "yanchor": "bottom", "pad": {"b": 40}, "showactive": True}


# --- the page ---------------------------------------------------------------------------

def explorer_html(exploration: Exploration, class_names: Sequence[str] | None = None,
                  title: str = "evsim explorer") -> str:
    """The explorer as one HTML page with plotly.js inline (opens offline)."""
    figure = explorer_figure(exploration, class_names, title)
    return figure.to_html(include_plotlyjs=True, full_html=True, auto_play=False,
                          config={"responsive": True})


def write_explorer(path: str | os.PathLike, snn: SpikingNetwork, images: np.ndarray,
                   labels: np.ndarray | None = None, *, class_names: Sequence[str] | None = None,
                   title: str = "evsim explorer", **recording) -> Path:
    """Record ``images`` (:func:`record_exploration`, which ``**recording`` configures:
    ``T``, ``neurons``, ``layers``, ``encoding``, ``seed``, ``first_image``) and write the
    explorer page to ``path`` atomically. Returns the path."""
    require("plotly", _FEATURE)
    target = check_output_file(path)
    page = explorer_html(record_exploration(snn, images, labels, **recording), class_names,
                         title)
    with atomic_file(target) as stream:
        stream.write(page.encode("utf-8"))
    return target


def report_section(folder: Path, snn: SpikingNetwork, images: np.ndarray,
                   labels: np.ndarray | None, *, T: int, encoding: str, seed: int,
                   class_names: Sequence[str] | None = None) -> list[str]:
    """A report's explorer: writes ``folder/explorer.html`` for the first :data:`IMAGES`
    images at ``min(T, STEPS)`` steps and returns the Markdown lines that describe it
    (or that say why there is none: the extra is missing, or the scheme has no steps)."""
    parts = ["## Interactive explorer", ""]
    if snn.time_scheme in WINDOWED:
        return parts + ["The temporal scheme simulates whole windows: there are no steps to "
                        "explore.", ""]
    try:
        require("plotly", _FEATURE)
    except ImportError as missing:
        return parts + [f"Not written: {missing}.", ""]
    steps, shown = min(T, STEPS), images[:IMAGES]
    page = explorer_html(record_exploration(
        snn, shown, None if labels is None else labels[:IMAGES], T=steps, encoding=encoding,
        seed=seed), class_names, "evsim explorer")
    (folder / "explorer.html").write_text(page, encoding="utf-8")
    return parts + [f"`explorer.html`, in this folder, opens offline in a browser: choose one "
                    f"of the first {len(shown)} image(s), move the slider through T = {steps} "
                    "steps, and see the readout so far, the synaptic operations so far, and "
                    f"the spikes and membrane potentials of the {NEURONS} most active neurons "
                    "of each spiking layer (`evsim explore` writes one with other choices).",
                    ""]


__all__ = ["record_exploration", "report_section", "explorer_figure", "explorer_html",
           "write_explorer", "Exploration", "ImageTrace", "IMAGES", "STEPS", "NEURONS"]
