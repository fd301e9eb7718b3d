"""Comparing conversion methods on one model: accuracy against latency, SOPs and energy.

:func:`compare_methods` converts a network with each method (a preset or a
variant such as ``"percentile+opi"``, :mod:`evsim.variants`) and simulates the
same images, and returns a :class:`Comparison`: Markdown tables, JSON and plots
of each method's accuracy, with its 95 % Wilson interval, against its latency
(steps until the answer), its SOPs and its energy per image, compute-only and
with memory and addressing, the Pareto-optimal points marked
(:meth:`Comparison.tradeoffs`, :meth:`Comparison.plot_tradeoffs`). Its unit of
work is a *cell*, one simulation:

* a method whose options do not depend on T runs once, at the largest T, and
  is read at every T (checkpoints of one run);
* a method whose options do runs once per T: SpiCalib's allowance A = T/4,
  options chosen for one T (:func:`evsim.tune.tune`), and the temporal
  schemes, where T is the window (their latency, (D + 1) T steps, is reported).

A method that cannot convert the network (``qcfs`` on a ReLU network) or run
with the comparison's encoding (iLIF with rate input), or a T it does not
support (iLIF beyond 24 bits), is reported with the reason, never raised.
With ``cells=FOLDER`` every finished cell is saved and reused by a rerun
(:mod:`evsim.cellstore`); with ``client=`` the cells' image shards run on the
workers of a Dask cluster (:mod:`evsim.distributed`) with the same results,
exactly.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .analysis.confidence import accuracy_interval
from .analysis.energy import CONVENTIONS, EnergyTable, energy_report, energy_table
from .analysis.task_score import TaskScore
from .analysis.pareto import pareto_optimal
from .convert import convert
from .errors import EvsimTypeError, EvsimValueError
from .forward import _check_inputs, forward
from .network import Network
from .options import METHODS, ConversionOptions, preset
from .simulate import simulate
from .simulation_options import SimulationOptions, resolve_simulation
from .spiking import WINDOWED
from .timescheme import MAX_BITS
from .validate import check_labels, check_steps
from .variants import parse_variant

#: T of a comparison unless told otherwise: 1, 2, 4, ..., 128.
DEFAULT_T = (1, 2, 4, 8, 16, 32, 64, 128)

#: How the progress line of a cell found in the ``cells`` folder ends.
REUSED = "reused: saved by an earlier run"

#: A method: a preset name or variant (``"percentile+opi"``, ``"spicalib(p=0.995)"``:
#: :mod:`evsim.variants`), ``(label, preset name or variant)``, ``(label, ConversionOptions)``,
#: ``(label, {T: options})``, or ``(label, preset name, options | {option: value} |
#: {T: options})``.
MethodSpec = (str | tuple[str, str | ConversionOptions | Mapping]
              | tuple[str, str, ConversionOptions | Mapping])


@dataclass(frozen=True)
class MethodResult:
    """One method's row of a :class:`Comparison`; every table is ``{T: value}``.

    ``accuracy`` is a fraction in [0, 1]; ``sops`` synaptic operations and
    ``energy_uj`` SNN energy (µJ) per image over the first T steps (the whole
    window in the temporal schemes); ``latency`` steps until the output is
    complete, for the temporal schemes only; ``calibration_spikes``
    SpiCalib's negative spikes per image (0 without calibration); ``options``
    the options each T was converted with (:meth:`ConversionOptions.as_dict`); ``not_applied``
    the reason for each T the method could not run at; ``memory_energy_uj`` the
    SNN's energy with memory and addressing (Lemaire et al. 2022,
    :mod:`evsim.analysis.energy_memory`). ``per_T``: one run per T (options
    that depend on T) rather than one run read at checkpoints.
    """

    label: str
    method: str
    per_T: bool
    accuracy: dict[int, float] = field(default_factory=dict)
    sops: dict[int, float] = field(default_factory=dict)
    energy_uj: dict[int, float] = field(default_factory=dict)
    latency: dict[int, int] = field(default_factory=dict)
    calibration_spikes: dict[int, float] = field(default_factory=dict)
    options: dict[int, dict] = field(default_factory=dict)
    not_applied: dict[int, str] = field(default_factory=dict)
    memory_energy_uj: dict[int, float] = field(default_factory=dict)

    @property
    def applies(self) -> bool:
        """Whether the method ran at some T."""
        return bool(self.accuracy)

    def as_dict(self) -> dict:
        """JSON-ready (T keys become strings in JSON)."""
        return {"label": self.label, "method": self.method, "per_T": self.per_T,
                **{name: dict(getattr(self, name)) for name in _TABLES}}

    def steps_until_answer(self, t: int) -> int:
        """The latency at T = ``t``: T itself for synchronous schemes, the steps until the
        output is complete ((D + 1)·T) for the temporal ones."""
        return int(self.latency.get(t, t))

    @classmethod
    def from_dict(cls, values: Mapping) -> MethodResult:
        """The row :meth:`as_dict` describes (string T keys accepted)."""
        tables = {name: {int(t): v for t, v in values.get(name, {}).items()} for name in _TABLES}
        return cls(label=values["label"], method=values["method"], per_T=values["per_T"],
                   **tables)


_TABLES = ("accuracy", "sops", "energy_uj", "latency", "calibration_spikes", "options",
           "not_applied", "memory_energy_uj")

#: The costs a comparison sets accuracy against: ``(MethodResult table or "latency", axis
#: label, name in the Pareto column)``.
COSTS = (("latency", "latency (steps until the answer)", "latency"),
         ("sops", "SOPs per image", "SOPs"),
         ("energy_uj", "energy per image (µJ, compute only)", "energy"),
         ("memory_energy_uj", "energy per image (µJ, with memory)", "memory energy"))


@dataclass(frozen=True)
class Comparison:
    """Methods compared on one network and one image set (:func:`compare_methods`).

    ``T`` the steps compared; ``methods`` one :class:`MethodResult` each, in
    the order asked; ``ann_accuracy`` the ANN's accuracy (fraction) and
    ``ann_energy_uj`` its energy per image (µJ; None when no method ran) on
    the same ``n_images`` images; how they were simulated (``engine``,
    ``encoding``, ``seed``) and costed (``energy_table``, ``convention``);
    ``network_hash`` the ANN's content hash; ``evsim_version``;
    ``ann_memory_energy_uj`` the ANN's energy per image with memory and
    addressing (µJ; Lemaire et al. 2022).
    """

    T: tuple[int, ...]
    methods: tuple[MethodResult, ...]
    ann_accuracy: float
    ann_energy_uj: float | None
    n_images: int
    engine: str
    encoding: str
    seed: int
    energy_table: str
    convention: str
    network_hash: str
    evsim_version: str
    ann_memory_energy_uj: float | None = None
    metric: str = "accuracy"

    def __getitem__(self, label: str) -> MethodResult:
        for row in self.methods:
            if row.label == label:
                return row
        raise KeyError(f"no method labelled {label!r}; labels are "
                       f"{', '.join(r.label for r in self.methods)}")

    def interval(self, accuracy: float) -> tuple[float, float]:
        """The 95 % Wilson interval of an ``accuracy`` measured on this comparison's images;
        a task's metric (mIoU, mAP@.5) is no fraction of images and gets none: ``(v, v)``."""
        if self.metric != "accuracy":
            return accuracy, accuracy
        return accuracy_interval(accuracy, self.n_images)

    def tradeoffs(self) -> list[dict]:
        """Every (method, T) that ran, JSON-ready: ``label``, ``T``, ``latency`` (steps until
        the answer), ``accuracy`` and its 95 % Wilson interval ``low``/``high``, ``images``,
        ``sops``, ``energy_uj``, ``memory_energy_uj`` (None if not measured) and
        ``pareto``: the costs (:data:`COSTS`' names) in which no other point is both
        cheaper and more accurate."""
        points = []
        for row in self.methods:
            for t in sorted(row.accuracy):
                low, high = self.interval(row.accuracy[t])
                points.append({"label": row.label, "T": t, "latency": row.steps_until_answer(t),
                               "accuracy": row.accuracy[t], "low": low, "high": high,
                               "images": self.n_images, "sops": row.sops.get(t),
                               "energy_uj": row.energy_uj.get(t),
                               "memory_energy_uj": row.memory_energy_uj.get(t), "pareto": []})
        for key, _, name in COSTS:
            measured = [p for p in points if p[key] is not None]
            if measured:
                best = pareto_optimal([p[key] for p in measured],
                                      [p["accuracy"] for p in measured])
                for point, optimal in zip(measured, best):
                    if optimal:
                        point["pareto"].append(name)
        return points

    def to_markdown(self) -> str:
        """Markdown tables: accuracy (%) with its 95 % Wilson interval, SOPs and energy per
        image (compute only, and with memory) at every T (the ANN's last), the accuracy
        against latency, SOPs and energy with the Pareto-optimal points, latency for
        temporal schemes, and the reason for each method or T not run."""
        def cell(fmt):
            return lambda v: "n/a" if v is None else fmt(v)

        def accuracy(v):
            if self.metric != "accuracy":
                return f"{100 * v:.2f}"
            low, high = self.interval(v)
            return f"{100 * v:.2f} ({100 * low:.1f}–{100 * high:.1f})"

        energy = cell(lambda v: f"{v:.4g}")
        title = "Accuracy" if self.metric == "accuracy" else self.metric
        lines = [f"{title}, SOPs and energy per image on {self.n_images} images ({self.engine} "
                 f"engine, {self.encoding} input, energy table {self.energy_table}, analog "
                 f"head: {self.convention}). n/a: the method did not run at that T "
                 "(reasons below).", ""]
        lines += self._table(f"### {title} (%) on {self.n_images} images" + (
            ", with its 95 % Wilson interval" if self.metric == "accuracy" else ""),
            "accuracy", accuracy, accuracy(self.ann_accuracy))
        lines += [""] + self._table("### SOPs per image", "sops", lambda v: f"{v:.4g}", None)
        lines += [""] + self._table("### Energy per image (µJ, compute only)", "energy_uj",
                                    lambda v: f"{v:.4g}", energy(self.ann_energy_uj))
        if any(row.memory_energy_uj for row in self.methods):
            lines += [""] + self._table(
                "### Energy per image with memory and addressing (µJ, Lemaire et al. 2022)",
                "memory_energy_uj", lambda v: f"{v:.4g}", energy(self.ann_memory_energy_uj))
        lines += [""] + self._tradeoff_table()
        lines += self._notes()
        return "\n".join(lines)

    def _table(self, title: str, key: str, fmt: Callable[[float], str], ann: str | None,
               methods: Sequence[MethodResult] | None = None) -> list[str]:
        """One ``{T: value}`` table of ``methods`` (default: all), and the ANN's row if
        ``ann``."""
        rows = [title, "", "| method | " + " | ".join(f"T={t}" for t in self.T) + " |",
                "|---|" + "---:|" * len(self.T)]
        for row in self.methods if methods is None else methods:
            values = getattr(row, key)
            rows.append(f"| {row.label} | " + " | ".join(
                fmt(values[t]) if t in values else "n/a" for t in self.T) + " |")
        if ann is not None:
            rows.append("| ANN | " + " | ".join(ann for _ in self.T) + " |")
        return rows

    def _tradeoff_table(self) -> list[str]:
        """Accuracy against latency, SOPs and energy, one line per (method, T) that ran."""
        def number(v):
            return "n/a" if v is None else f"{v:.4g}"

        lines = ["### Accuracy versus latency, SOPs and energy (Pareto view)", "",
                 "Latency: steps until the answer (T, or (D + 1)·T for a temporal scheme, "
                 "whose T is its window). Pareto-optimal in: the costs for which no other "
                 "point is both cheaper and more accurate.", "",
                 "| method | T | latency (steps) | accuracy (%) | 95 % interval | images | "
                 "SOPs / image | energy (µJ) | energy with memory (µJ) | Pareto-optimal in |",
                 "|---|---:|---:|---:|---|---:|---:|---:|---:|---|"]
        for p in self.tradeoffs():
            lines.append(
                f"| {p['label']} | {p['T']} | {p['latency']} | {100 * p['accuracy']:.2f} | "
                f"{100 * p['low']:.1f}–{100 * p['high']:.1f} | {p['images']} | "
                f"{number(p['sops'])} | {number(p['energy_uj'])} | "
                f"{number(p['memory_energy_uj'])} | {', '.join(p['pareto']) or '–'} |")
        return lines

    def _notes(self) -> list[str]:
        """Calibration spikes, latency of the temporal schemes, and what did not run."""
        lines = []
        calibrated = [row for row in self.methods if any(row.calibration_spikes.values())]
        if calibrated:
            lines += [""] + self._table(
                "### Calibration spikes per image (SpiCalib's negative spikes)",
                "calibration_spikes", lambda v: f"{v:.4g}", None, calibrated)
        temporal = [row for row in self.methods if row.latency]
        if temporal:
            lines += [""] + self._table("### Latency (steps until the output is complete)",
                                        "latency", str, None, temporal)
        missing = [row for row in self.methods if row.not_applied]
        if missing:
            lines += ["", "### Not run", ""]
            for row in missing:
                by_reason: dict[str, list[int]] = {}
                for t, reason in row.not_applied.items():
                    by_reason.setdefault(reason, []).append(t)
                for reason, steps in by_reason.items():
                    where = ("any T" if set(steps) == set(self.T) else
                             "T = " + ", ".join(map(str, sorted(steps))))
                    lines.append(f"- {row.label} ({where}): {reason}")
        return lines

    def as_dict(self) -> dict:
        """JSON-ready: accuracies as fractions, SOPs per image, energies in µJ per image."""
        return {"kind": "evsim_comparison", "T": list(self.T),
                "methods": [row.as_dict() for row in self.methods],
                "ann_accuracy": self.ann_accuracy, "ann_energy_uj": self.ann_energy_uj,
                "n_images": self.n_images, "engine": self.engine, "encoding": self.encoding,
                "seed": self.seed, "energy_table": self.energy_table,
                "convention": self.convention, "network_hash": self.network_hash,
                "evsim_version": self.evsim_version,
                "ann_memory_energy_uj": self.ann_memory_energy_uj,
                "tradeoffs": self.tradeoffs(),
                **({} if self.metric == "accuracy" else {"metric": self.metric})}

    def to_json(self) -> str:
        """The comparison as JSON text (:meth:`from_json` reads it back)."""
        return json.dumps(self.as_dict(), indent=1, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> Comparison:
        """The comparison :meth:`to_json` wrote."""
        values = json.loads(text)
        if not isinstance(values, dict) or values.get("kind") != "evsim_comparison":
            raise EvsimValueError("not an evsim comparison (JSON from Comparison.to_json)")
        return cls(T=tuple(values["T"]),
                   methods=tuple(MethodResult.from_dict(r) for r in values["methods"]),
                   **{k: values[k] for k in ("ann_accuracy", "ann_energy_uj", "n_images",
                                             "engine", "encoding", "seed", "energy_table",
                                             "convention", "network_hash", "evsim_version")},
                   ann_memory_energy_uj=values.get("ann_memory_energy_uj"),
                   metric=values.get("metric", "accuracy"))

    def _curves(self, key: str) -> dict[str, dict[str, list[float]]]:
        """Each method's accuracy against ``key`` (a :data:`COSTS` key or ``"T"``), with its
        Wilson interval: the curves :func:`evsim.plot.accuracy_versus_cost` draws."""
        curves = {}
        for row in self.methods:
            steps = [t for t in sorted(row.accuracy)
                     if key in ("T", "latency") or t in getattr(row, key)]
            if not steps:
                continue
            x = [t if key == "T" else row.steps_until_answer(t) if key == "latency"
                 else getattr(row, key)[t] for t in steps]
            ends = [self.interval(row.accuracy[t]) for t in steps]
            curves[row.label] = {"x": x, "accuracy": [row.accuracy[t] for t in steps],
                                 "low": [e[0] for e in ends], "high": [e[1] for e in ends]}
        return curves

    def plot(self, ax=None, x: str = "latency"):
        """Accuracy of every method that ran, with 95 % Wilson error bars, the
        Pareto-optimal points ringed and the ANN dashed (:func:`evsim.plot.accuracy_versus_cost`),
        against ``x``: ``"latency"`` (steps until the answer: T, or (D + 1)·T for a temporal
        scheme; default), ``"sops"``, ``"energy_uj"``, ``"memory_energy_uj"`` or ``"T"``
        (each scheme's own T: a temporal scheme's T is its window). Returns the Figure."""
        from .plot import accuracy_versus_cost

        labels = {key: label for key, label, _ in COSTS}
        labels["T"] = "T (time steps; a temporal scheme's window)"
        if x not in labels:
            raise EvsimValueError(f"x must be one of {', '.join(labels)}, got {x!r}")
        curves = self._curves(x)
        if not curves:
            raise EvsimValueError("no method ran, so there is no accuracy to plot")
        ann = {"energy_uj": self.ann_energy_uj, "memory_energy_uj": self.ann_memory_energy_uj}
        return accuracy_versus_cost(curves, labels[x], self.ann_accuracy, self.n_images, ax,
                                    ann_cost=ann.get(x), metric=self.metric)

    def plot_tradeoffs(self, fig=None):
        """Accuracy against latency, SOPs and energy per image (compute only and, where
        measured, with memory), one panel each with its Pareto front
        (:func:`evsim.plot.accuracy_tradeoffs`); returns the Figure."""
        from .plot import accuracy_tradeoffs

        panels = {label: self._curves(key) for key, label, _ in COSTS}
        panels = {label: curves for label, curves in panels.items() if curves}
        if not panels:
            raise EvsimValueError("no method ran, so there is no accuracy to plot")
        ann = {COSTS[2][1]: self.ann_energy_uj, COSTS[3][1]: self.ann_memory_energy_uj}
        return accuracy_tradeoffs(panels, self.ann_accuracy, self.n_images, fig,
                                  {label: cost for label, cost in ann.items() if cost},
                                  metric=self.metric)


# --- methods and cells -------------------------------------------------------------------

@dataclass(frozen=True)
class _Method:
    label: str
    method: str
    options: ConversionOptions | None = None        # None: the preset
    overrides: Mapping = field(default_factory=dict)
    by_T: Mapping[int, ConversionOptions] | None = None

    def base(self) -> ConversionOptions:
        return (self.options or preset(self.method)).replace(**self.overrides)

    def depends_on_T(self) -> bool:
        base = self.base()
        return (self.by_T is not None or base.allowance is None or base.T is not None
                or base.time_scheme in WINDOWED)


def _preset_name(options: ConversionOptions) -> str:
    """The preset these options equal, or the plainest one with their normalisation (only
    checks and records use the name; the options are used as given)."""
    for name, candidate in METHODS.items():
        if candidate == options:
            return name
    if options.normalization == "trained":
        return "opi"
    if options.normalization == "braincog":
        return "spicalib"
    return "channelwise" if options.channelwise else options.normalization


def _is_options_by_T(value) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(
        isinstance(k, (int, np.integer)) and not isinstance(k, bool)
        and isinstance(v, ConversionOptions) for k, v in value.items())


def _named(label: str, text: str) -> _Method:
    """A preset, or a variant in :mod:`evsim.variants`' grammar (``"percentile+opi"``)."""
    if text in METHODS:
        return _Method(label, text)
    variant = parse_variant(text)
    return _Method(label, variant.preset, overrides=dict(variant.options))


def _method(spec) -> _Method:
    if isinstance(spec, str):
        return _named(spec.strip(), spec)
    if not isinstance(spec, (tuple, list)) or len(spec) not in (2, 3) or not isinstance(
            spec[0], str):
        raise EvsimTypeError(f"a method is a preset name, (label, options) or (label, method, "
                             f"options), got {spec!r}")
    label, *rest = spec
    options = rest[-1]
    if len(rest) == 1 and isinstance(options, str):
        return _named(label, options)
    if len(rest) == 2:
        method = rest[0]
        preset(method)
    elif isinstance(options, ConversionOptions):
        method = _preset_name(options)
    elif _is_options_by_T(options):
        method = _preset_name(next(iter(options.values())))
    else:
        raise EvsimTypeError(f"method {label!r}: give ConversionOptions or {{T: "
                             f"ConversionOptions}}, got {type(options).__name__}")
    if isinstance(options, ConversionOptions):
        return _Method(label, method, options=options)
    if _is_options_by_T(options):
        return _Method(label, method, by_T={int(k): v for k, v in options.items()})
    if isinstance(options, Mapping):
        entry = _Method(label, method, overrides=dict(options))
        entry.base()  # unknown or bad options fail here, naming the option
        return entry
    raise EvsimTypeError(f"method {label!r}: options must be ConversionOptions, {{option: "
                         f"value}} or {{T: ConversionOptions}}, got {type(options).__name__}")


@dataclass(frozen=True)
class _Cell:
    """One simulation: ``method`` run for ``T`` steps, read at ``steps``."""

    row: int
    method: _Method
    T: int
    steps: tuple[int, ...]
    reason: str = ""

    def options(self) -> ConversionOptions | None:
        return self.method.by_T[self.T] if self.method.by_T is not None else self.method.options

    def key(self) -> dict:
        """JSON-ready: the overrides as the options hold them (``np.int64(2)`` as 2)."""
        options = self.options()
        base = self.method.base().as_dict()
        return {"label": self.method.label, "method": self.method.method, "T": self.T,
                "steps": list(self.steps),
                "options": None if options is None else options.as_dict(),
                "overrides": {name: base[name] for name in self.method.overrides}}


def _cells(methods: list[_Method], steps: tuple[int, ...], encoding: str) -> list[_Cell]:
    cells = []
    for row, method in enumerate(methods):
        if not method.depends_on_T():
            cells.append(_Cell(row, method, steps[-1], steps))
            continue
        base = method.base() if method.by_T is None else None
        for t in steps:
            reason = ""
            if method.by_T is not None and t not in method.by_T:
                reason = f"no options were given for T = {t}"
            elif base is not None and base.T is not None and base.T != t:
                reason = f"its options were chosen for T = {base.T} only"
            elif (base or method.by_T[t]).time_scheme == "ilif" and encoding != "analog":
                reason = (f"the ilif scheme sends binary codes of analog values: it runs "
                          f"with encoding='analog', not {encoding!r}")
            elif (base or method.by_T[t]).time_scheme == "ilif" and t > MAX_BITS:
                reason = (f"the ilif scheme carries at most {MAX_BITS} bits per window "
                          "(T = K bits)")
            cells.append(_Cell(row, method, t, (t,), reason))
    return cells


def _summary(snn, result, labels: np.ndarray | TaskScore, steps: tuple[int, ...],
             table: EnergyTable, convention: str) -> dict:
    """A cell's numbers at each of its ``steps`` (JSON-ready, T keys as strings); a task's
    metric is kept as the cell's ``accuracy``."""
    windowed = result.time_scheme in WINDOWED
    accuracy = (labels.curve(result) if isinstance(labels, TaskScore)
                else result.accuracy(labels))
    sops = result.cumulative_sops() / result.n_images
    cell = {"accuracy": {}, "sops": {}, "energy_uj": {}, "memory_energy_uj": {}, "latency": {},
            "calibration_spikes": {}, "options": dict(snn.options)}
    negative = sum(result.negative_spikes.values()) / result.n_images
    for k, t in enumerate(steps):
        report = energy_report(snn, result, table, convention, steps=None if windowed else t)
        cell["accuracy"][str(t)] = float(accuracy[k])
        cell["sops"][str(t)] = float(sops[k])
        cell["energy_uj"][str(t)] = report.snn_pj / 1e6
        cell["memory_energy_uj"][str(t)] = report.memory.snn_pj / 1e6
        if windowed:
            cell["latency"][str(t)] = int(result.latency)
        if negative == 0 or len(steps) == 1:  # SpiCalib runs once per T
            cell["calibration_spikes"][str(t)] = float(negative)
        cell["ann_energy_uj"] = report.ann_pj / 1e6
        cell["ann_memory_energy_uj"] = report.memory.ann_pj / 1e6
    return cell


def _report_line(cell: _Cell, summary: dict, how: str, metric: str) -> str:
    label = f"{cell.method.label} at T={cell.T}"
    if len(cell.steps) > 1:
        label += f" (read at T={','.join(map(str, cell.steps))})"
    if "reason" in summary:
        return f"{label}: not run" + (f" ({how})" if how else "") + f": {summary['reason']}"
    return f"{label}: {metric} {100 * summary['accuracy'][str(cell.T)]:.2f} % ({how})"


def _printer(progress) -> Callable[[str], None] | None:
    if callable(progress):
        return progress
    if progress:
        return lambda line: print(f"compare: {line}", file=sys.stderr, flush=True)
    return None


# --- the entry point ---------------------------------------------------------------------

def compare_methods(network: Network, calibration: np.ndarray | None, images: np.ndarray,
                    labels: np.ndarray, methods: Sequence[MethodSpec] = ("percentile",),
                    T: Sequence[int] = DEFAULT_T, *, client=None,
                    simulation: SimulationOptions | None = None,
                    energy: str | EnergyTable = "float32", convention: str = "reinject",
                    cells: str | os.PathLike | None = None, restart: bool = False,
                    progress: bool | Callable[[str], None] = False,
                    **overrides) -> Comparison:
    """Convert ``network`` with each method, simulate ``images`` and compare them at every T.

    Parameters
    ----------
    network:
        The trained ANN (:class:`~evsim.network.Network`).
    calibration:
        Training images ``(B, *input_shape)`` for the threshold statistics
        (unused by methods with trained bounds), as for :func:`evsim.convert`.
    images, labels:
        Test images ``(N, *input_shape)`` and their classes ``(N,)``, or for scenes a
        :class:`~evsim.analysis.TaskScore` (:func:`~evsim.analysis.task_score`): then
        its metric (mIoU or mAP@.5) takes accuracy's place in every table.
    methods:
        Each one a preset name (``"opi"``) or a variant of one, labelled as
        written (``"percentile+opi"``, ``"spicalib(p=0.995)"``: a preset,
        ``+modifiers`` and ``(option=value, ...)``, :mod:`evsim.variants`),
        ``(label, preset name or variant)``,
        ``(label, ConversionOptions)``,
        ``(label, {T: ConversionOptions})`` (e.g. tuned at each T), or
        ``(label, preset name, options)`` with options a ConversionOptions,
        ``{option: value}`` overrides of the preset, or ``{T: options}``.
        Labels must differ.
    T:
        The steps to compare (positive integers).
    client:
        A ``dask.distributed.Client``: run the cells' image shards on its
        workers (extra ``distributed``); the comparison equals the local one.
    simulation, **overrides:
        How to simulate, as for :func:`evsim.simulate`: a
        :class:`~evsim.simulation_options.SimulationOptions` and single options
        changed from it by name (``engine``, ``encoding``, ``seed``,
        ``batch_size``, ``threads``, ...; ``threads`` per task with a client).
        Each cell sets its own ``checkpoints`` and shows no progress bar.
    energy, convention:
        The energy table (a preset name or :class:`~evsim.analysis.EnergyTable`)
        and the analog head's convention, as for :func:`~evsim.analysis.energy_report`.
    cells, restart:
        A folder keeping each finished cell (:class:`~evsim.cellstore.CellStore`):
        a rerun with the same inputs reuses them; one with other inputs raises
        :class:`~evsim.errors.EvsimValueError` unless ``restart`` discards them.
    progress:
        True: one line per cell on stderr as it finishes (or a function
        called with each line).

    Returns
    -------
    A :class:`Comparison`.
    """
    options = resolve_simulation(simulation, **overrides)
    if not isinstance(network, Network):
        raise EvsimTypeError(f"compare_methods needs an ANN (evsim.Network), got "
                             f"{type(network).__name__}")
    steps = tuple(sorted({check_steps(t) for t in T}))
    if not steps:
        raise EvsimValueError("T holds no step; pass e.g. T=[1, 2, 4, 8]")
    if convention not in CONVENTIONS:
        raise EvsimValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    entries = _methods(methods)
    x = np.ascontiguousarray(_check_inputs(network, images, np.float32))
    if len(x) == 0:
        raise EvsimValueError("images hold no image")
    if calibration is not None:
        calibration = _check_inputs(network, calibration, np.float32)
    y = (_check_task(labels, len(x)) if isinstance(labels, TaskScore) else
         check_labels(labels, int(np.prod(network.output_shape)), len(x)))
    session = _Session(network, calibration, x, y, options, energy_table(energy), convention,
                       _cells(entries, steps, options.encoding), _printer(progress))
    if cells is not None:
        session.store = _cell_store(cells, session, restart)
    session.run(client)
    return session.comparison(entries, steps)


def _check_task(score: TaskScore, n: int) -> TaskScore:
    if len(score) != n:
        raise EvsimValueError(f"the TaskScore holds {len(score)} scenes but {n} images were "
                              "given; pass the scenes' images")
    return score


def _methods(methods: Sequence[MethodSpec]) -> list[_Method]:
    """The methods to compare, checked: at least one, labels that differ."""
    entries = [_method(spec) for spec in methods]
    if not entries:
        raise EvsimValueError("methods is empty; pass e.g. methods=['percentile', 'opi']")
    labels_seen = [m.label for m in entries]
    if len(set(labels_seen)) != len(labels_seen):
        raise EvsimValueError(f"method labels must differ, got {labels_seen}")
    return entries


def _cell_store(cells: str | os.PathLike, session: _Session, restart: bool):
    """The :class:`~evsim.cellstore.CellStore` of a comparison's inputs and settings."""
    from ._version import __version__
    from .cellstore import CellStore
    from .io.hashing import array_digest, content_hash

    options = session.options
    settings = {"engine": options.engine, "encoding": options.encoding, "seed": options.seed,
                "batch_size": options.batch_size, "energy_table": asdict(session.table),
                "convention": session.convention, "evsim_version": __version__}
    if options.dtype != np.float32:  # named only when not the default, as earlier stores were
        settings["dtype"] = options.dtype.name
    return CellStore(cells, {
        "model": content_hash(session.network),
        "calibration": (None if session.calibration is None
                        else array_digest(session.calibration)),
        "images": array_digest(session.x), "labels": _labels_digest(session.y),
        "settings": settings}, restart=restart)


def _labels_digest(labels: np.ndarray | TaskScore) -> str:
    """The labels' digest, or for a task its name and its ground truth's digests."""
    from .io.hashing import array_digest

    if not isinstance(labels, TaskScore):
        return array_digest(labels)
    return ":".join([labels.task] + [array_digest(a) for a in labels.digest_arrays()])


@dataclass
class _Session:
    """One comparison at work: its inputs, its cells (``plan``) and their summaries (``done``)."""

    network: Network
    calibration: np.ndarray | None
    x: np.ndarray
    y: np.ndarray | TaskScore
    options: SimulationOptions
    table: EnergyTable
    convention: str
    plan: list[_Cell]
    say: Callable[[str], None] | None
    store: object = None
    done: dict[int, dict] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return self.y.metric if isinstance(self.y, TaskScore) else "accuracy"

    def finish(self, i: int, summary: dict, how: str) -> None:
        self.done[i] = summary
        if self.store is not None and how != REUSED:
            self.store.put(self.plan[i].key(), summary)
        if self.say:
            self.say(f"[{len(self.done)}/{len(self.plan)}] "
                     + _report_line(self.plan[i], summary, how, self.metric))

    def convert(self, cell: _Cell):
        """The cell's spiking network, or why it cannot be converted."""
        overrides, options = dict(cell.method.overrides), cell.options()
        if overrides.pop("T", None) is not None:
            # options chosen for one T: the preset with that T (the cell's, see _cells)
            options = preset(cell.method.method).replace(T=cell.T)
        try:
            return convert(self.network, self.calibration, method=cell.method.method,
                           options=options, T=cell.T if cell.method.depends_on_T() else None,
                           **overrides)
        except ValueError as err:  # includes OptionError and ConversionError
            return " ".join(str(err).split())

    def simulation(self, cell: _Cell, snn) -> SimulationOptions:
        """How the cell is simulated: read at its steps (a windowed scheme has one)."""
        return self.options.replace(
            progress=False,
            checkpoints=None if snn.time_scheme in WINDOWED else list(cell.steps))

    def summary(self, i: int, snn, result) -> dict:
        return _summary(snn, result, self.y, self.plan[i].steps, self.table, self.convention)

    def run(self, client) -> None:
        """Run every cell not done yet, here or on ``client``'s workers."""
        runs = None
        if client is not None:
            from .distributed import ShardedRuns
            runs = ShardedRuns(client, self.x, simulate=simulate,
                               batch_size=self.options.batch_size,
                               feature="compare_methods(client=...)")
        started, networks = {}, {}
        try:
            for i, cell in enumerate(self.plan):
                snn = self._prepare(i, cell)
                if snn is None:
                    continue
                started[i] = time.perf_counter()
                if runs is not None:
                    networks[i] = snn
                    runs.submit(i, snn, T=cell.T, options=self.simulation(cell, snn))
                    continue
                result = simulate(snn, self.x, T=cell.T, options=self.simulation(cell, snn))
                self.finish(i, self.summary(i, snn, result),
                            f"{time.perf_counter() - started[i]:.1f} s")
            if runs is not None:
                for i, result in runs.completed():
                    self.finish(i, self.summary(i, networks.pop(i), result),
                                f"{time.perf_counter() - started[i]:.1f} s on the cluster")
        finally:
            if runs is not None:
                runs.close()

    def _prepare(self, i: int, cell: _Cell):
        """The cell's network to simulate, or None when it is done already (reused from the
        store, or not run: the reason is its summary)."""
        saved = self.store.get(cell.key()) if self.store is not None else None
        if saved is not None:
            self.finish(i, saved, REUSED)
            return None
        if cell.reason:
            self.finish(i, {"reason": cell.reason}, "")
            return None
        snn = self.convert(cell)
        if isinstance(snn, str):
            self.finish(i, {"reason": snn}, "")
            return None
        return snn

    def comparison(self, entries: list[_Method], steps: tuple[int, ...]) -> Comparison:
        """The :class:`Comparison` of the finished cells."""
        from ._version import __version__
        from .io.hashing import content_hash

        output = forward(self.network, self.x)
        ann = (self.y.score(output) if isinstance(self.y, TaskScore) else
               float((output.reshape(len(self.x), -1).argmax(axis=1) == self.y).mean()))
        rows = [MethodResult(method.label, method.method, method.depends_on_T(),
                             **self._tables(row)) for row, method in enumerate(entries)]
        ann_energy, ann_memory = (next((s[key] for s in self.done.values() if key in s), None)
                                  for key in ("ann_energy_uj", "ann_memory_energy_uj"))
        options = self.options
        return Comparison(T=steps, methods=tuple(rows),
                          ann_accuracy=ann,
                          ann_energy_uj=ann_energy, n_images=len(self.x), engine=options.engine,
                          encoding=options.encoding, seed=options.seed,
                          energy_table=self.table.name, convention=self.convention,
                          network_hash=content_hash(self.network), evsim_version=__version__,
                          ann_memory_energy_uj=ann_memory, metric=self.metric)

    def _tables(self, row: int) -> dict[str, dict]:
        """The ``{T: value}`` tables of one method's row, from its cells."""
        tables = {name: {} for name in _TABLES}
        for i, cell in enumerate(self.plan):
            if cell.row != row:
                continue
            summary = self.done[i]
            if "reason" in summary:
                tables["not_applied"].update({t: summary["reason"] for t in cell.steps})
                continue
            for name in ("accuracy", "sops", "energy_uj", "latency", "calibration_spikes",
                         "memory_energy_uj"):
                tables[name].update({int(t): v for t, v in summary.get(name, {}).items()})
            tables["options"].update({t: summary["options"] for t in cell.steps})
        return tables


__all__ = ["compare_methods", "Comparison", "MethodResult", "DEFAULT_T", "MethodSpec", "COSTS"]
