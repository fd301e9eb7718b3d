"""The ``evsim`` command: convert, simulate, account energy and report from the shell.

Subcommands: ``demo`` (the bundled default end to end), ``convert`` (ANN
file -> spiking network file), ``run`` (simulate a spiking network file on
data), ``report`` (a folder of plots, Markdown and HTML), ``compare``
(conversion methods side by side on one model, resumable) and ``explore`` (an
interactive HTML page to step through a simulation). ``run`` and
``compare`` take ``--scheduler ADDRESS`` to run on a Dask cluster. Every
subcommand has ``--help`` and ``--json``; a failure is one line on stderr,
exit code 2 for a user error and 1 for an internal one (:func:`main`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._version import __version__
from .errors import EvsimError, EvsimValueError, UnscaledInputWarning

if TYPE_CHECKING:
    from .analysis.energy import EnergyReport
    from .analysis.summary import CheckpointSummary
    from .result import SimResult

BUNDLED = "bundled"


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line (and exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class CommandError(EvsimValueError):
    """A user error the command reports as one line."""


# --- inputs -----------------------------------------------------------------------------

def _load_network(path: str):
    from .io import load
    from .network import Network
    from .spiking import SpikingNetwork

    loaded = load(path)
    if not isinstance(loaded, (Network, SpikingNetwork)):
        raise CommandError(f"{path}: holds a {type(loaded).__name__}, not a network")
    return loaded


def _load_ann(path: str):
    from .spiking import SpikingNetwork

    network = _load_network(path)
    if isinstance(network, SpikingNetwork):
        raise CommandError(f"{path}: is already a spiking network; `evsim run` simulates it")
    return network


def _load_snn(path: str):
    from .spiking import SpikingNetwork

    snn = _load_network(path)
    if not isinstance(snn, SpikingNetwork):
        raise CommandError(f"{path}: is an ANN, not a spiking network; convert it first with "
                           f"`evsim convert {path} CALIBRATION -o snn.npz`")
    return snn


def _load_data(spec: str, split: str, network, limit: int | None):
    """``(images, labels or None, description)`` from ``bundled`` or an .npz file, checked
    against ``network``: image shape, finite values, labels in the output range. A scenes
    file (with 'masks') gives a :class:`~evsim.analysis.TaskScore` in place of labels, and
    so does ``bundled`` for a network that reads 64 x 64 scenes."""
    from .analysis.task_score import TaskScore
    from .validate import check_finite, check_labels

    if limit is not None and limit < 1:
        raise CommandError(f"--images must be >= 1, got {limit}")
    images, labels, what = _read_data(spec, split, network, limit)
    task = isinstance(labels, TaskScore)
    input_shape = network.input_shape
    if tuple(images.shape[1:]) != tuple(input_shape):
        raise CommandError(f"{spec}: images have shape {images.shape}, the network expects "
                           f"(N, {', '.join(map(str, input_shape))})")
    if labels is not None and len(labels) != len(images):
        raise CommandError(f"{spec}: 'labels' has shape {np.shape(labels)}, expected "
                           f"({len(images)},)")
    if limit is not None:
        images = images[:limit]
        labels = None if labels is None else labels.take(limit) if task else labels[:limit]
    check_finite(images, what=f"{spec}: images")
    if labels is not None and not task:
        labels = check_labels(labels, int(np.prod(network.output_shape)),
                              what=f"{spec}: 'labels'")
    return images.astype(np.float32, copy=False), labels, what


def _read_data(spec: str, split: str, network, limit: int | None):
    """``(images, labels, description)`` as stored: labels an array, a TaskScore or None."""
    from .data import load_bundled_sample

    if spec == BUNDLED:
        if tuple(network.input_shape) == SCENE_INPUT:
            scenes, what = _bundled_scenes(split)
            return scenes.images, _task(spec, network, scenes), what
        images, labels = load_bundled_sample(split)
        return images, labels, f"the bundled Fashion-MNIST {split} sample"
    if not os.path.exists(spec):
        raise CommandError(f"{spec}: no such file (give an .npz with an 'images' array, "
                           f"or '{BUNDLED}')")
    if _holds_masks(spec):
        from .data import load_scenes

        scenes = load_scenes(spec)
        return scenes.images, _task(spec, network, scenes), os.path.basename(spec)
    images, labels = _read_data_file(spec, network.input_shape, limit)
    return images, labels, os.path.basename(spec)


def _holds_masks(spec: str) -> bool:
    """Whether the .npz file is a scenes file (it has a 'masks' array)."""
    from .io.errors import reading
    from .io.npz import NpzArchive

    with reading(spec, ".npz file"), NpzArchive(spec) as archive:
        return "masks" in archive


def _read_data_file(spec: str, input_shape, limit: int | None):
    """``(images, labels or None)`` of an .npz data file, the shapes they declare checked
    before they are decompressed, and only the first ``limit`` images decompressed."""
    from .io.errors import reading
    from .io.npz import NpzArchive

    with reading(spec, ".npz file"), NpzArchive(spec) as archive:
        if "images" not in archive:
            raise CommandError(f"{spec}: has no 'images' array (it holds "
                               f"{', '.join(archive) or 'nothing'})")
        shape = archive.declared("images").shape
        if tuple(shape[1:]) != tuple(input_shape):
            raise CommandError(f"{spec}: images have shape {shape}, the network expects "
                               f"(N, {', '.join(map(str, input_shape))})")
        if "labels" in archive and archive.declared("labels").shape != shape[:1]:
            raise CommandError(f"{spec}: 'labels' has shape {archive.declared('labels').shape}"
                               f", expected ({shape[0]},)")
        return (archive.read("images", limit),
                archive.read("labels", limit) if "labels" in archive else None)


#: The input of the networks that read Fashion-MNIST scenes (the bundled task models).
SCENE_INPUT = (1, 64, 64)
#: Scenes ``bundled`` means: the 300 bundled test scenes; for calibration, scenes made
#: from the bundled training sample's 1,000 items (this many, this seed).
CALIBRATION_SCENES, CALIBRATION_SEED = 200, 1


def _bundled_scenes(split: str):
    from .data import bundled_scenes, load_bundled_sample, make_scenes

    if split == "test":
        return bundled_scenes(), "the bundled Fashion-MNIST test scenes"
    items, labels = load_bundled_sample("train")
    scenes = make_scenes(items, labels, CALIBRATION_SCENES, size=SCENE_INPUT[1],
                         seed=CALIBRATION_SEED, source="bundled Fashion-MNIST training sample")
    return scenes, (f"{CALIBRATION_SCENES} scenes of the bundled Fashion-MNIST training "
                    "sample's items")


def _task(spec: str, network, scenes):
    """The TaskScore of ``scenes`` for ``network``'s output, or a CommandError saying why."""
    from .analysis.task_score import task_score

    try:
        return task_score(network.output_shape, network.input_shape, scenes)
    except EvsimValueError as err:
        raise CommandError(f"{spec}: {err}") from None


# --- shared output ----------------------------------------------------------------------

#: The bundled model trained for each method that needs trained activations (demo's choice).
DEMO_MODELS = {"opi": "vgg_tcl", "qcfs": "vgg_qcfs", "nq": "vgg_nq"}

#: The bundled models of each task, ``<name>_relu`` and ``<name>_qcfs`` (the demo's choice).
TASK_MODELS = {"segmentation": "unet", "detection": "centernet"}
#: Scenes ``evsim demo --task ... --full-test-set`` makes from the Fashion-MNIST test set.
FULL_TEST_SCENES = 1000

#: What the numbers in --json mean.
UNITS = {"accuracy": "fraction of images in [0, 1]",
         "miou, map50": "a task's metric (mIoU, mAP@.5), a fraction in [0, 1]",
         "energy": "µJ per image (keys ending in _uj)",
         "energy_table": "pJ per operation (keys ending in _pj)",
         "sops, macs, adds, pool_ops, neuron_updates": "operations per image",
         "firing_rates": "spikes per neuron per step",
         "neurobench": "NeuroBench's own units: operations and updates per image, "
                       "Footprint in bytes, sparsities as fractions",
         "seconds": "wall-clock seconds"}

#: Python names of arguments the commands pass on, and the command-line names users know.
_ARGUMENT_NAMES = {"calibration_inputs": "CALIBRATION (the calibration images)",
                   "options": "--method"}


def _flag(option: str) -> str:
    return _ARGUMENT_NAMES.get(option, "--" + option.replace("_", "-"))


class _as_flags:
    """Re-raise an :class:`~evsim.options.OptionError` with the command-line flag's name."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        from .options import OptionError

        if isinstance(error, OptionError):
            raise CommandError(f"{_flag(error.option)} {error.problem}") from None
        return False


class _cells_as_flags:
    """Re-raise a :class:`~evsim.cellstore.ForeignCellsError` advising ``--restart``."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        from .cellstore import ForeignCellsError

        if isinstance(error, ForeignCellsError):
            raise CommandError(error.advice("--restart")) from None
        return False


def _interrupted(args: argparse.Namespace) -> str:
    """What the command says when Ctrl-C stops it (a comparison resumes)."""
    if args.command == "compare":
        return (f"interrupted; the finished cells are kept in {args.output}: run the same "
                "command again to resume")
    return "interrupted"


def _warn(args, message: str) -> None:
    if message:
        print(f"evsim {args.command}: warning: {message}", file=sys.stderr)


def _checkpoints(args, snn) -> list[int] | None:
    from .spiking import WINDOWED

    if args.checkpoints is None:
        return None
    if snn.time_scheme in WINDOWED:
        raise CommandError(f"--checkpoints: the {snn.time_scheme} scheme simulates whole windows "
                           "and has one checkpoint, --T")
    late = [step for step in args.checkpoints if step > args.T]
    if late:
        raise CommandError(f"--checkpoints must be steps in 1..{args.T} (--T), got "
                           f"{', '.join(map(str, late))}")
    return sorted(set(args.checkpoints) | {args.T})


def _simulation(args, snn=None):
    """The :class:`~evsim.simulation_options.SimulationOptions` the flags give (generated from
    its fields, :func:`_simulation_flags`), with progress bars on stderr (also with --json);
    ``--checkpoints`` checked against ``snn`` and --T."""
    from dataclasses import fields

    from .simulation_options import SimulationOptions

    given = {f.name: getattr(args, f.name) for f in fields(SimulationOptions)
             if f.metadata["cli"] and hasattr(args, f.name)}
    if "checkpoints" in given:
        given["checkpoints"] = _checkpoints(args, snn)
    with _as_flags():
        return SimulationOptions(**given, progress=True)


def _simulate(args, snn, images):
    """Simulate as the flags say, with a progress bar on stderr (also with --json)."""
    from .options import TunedForOtherTWarning
    from .simulate import simulate

    options = _simulation(args, snn)
    with _cluster(args) as client, warnings.catch_warnings():
        warnings.simplefilter("ignore", TunedForOtherTWarning)  # reported by the command
        return simulate(snn, images, T=args.T, options=options, client=client)


@contextlib.contextmanager
def _cluster(args):
    """A Dask client connected to ``--scheduler`` (closed afterwards), or None without it."""
    address = getattr(args, "scheduler", None)
    if address is None:
        yield None
        return
    from .distributed import connect

    client = connect(address)
    print(f"evsim {args.command}: on the Dask cluster at {address} "
          f"({len(client.nthreads())} workers, {sum(client.nthreads().values())} threads)",
          file=sys.stderr)
    # the client logs tracebacks of its own while a lost scheduler is retried; the command
    # says what was lost in one line (evsim.distributed.ClusterLostError)
    quiet = logging.getLogger("distributed.client")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):  # a lost scheduler cannot be told
            client.close()
        quiet.setLevel(level)


def _energy_line(report) -> str:
    from .analysis import energy_unit

    unit, scale = energy_unit(max(report.ann_pj, report.snn_pj))
    line = (f"energy per image at T = {report.steps}: SNN {report.snn_pj / scale:.4g} {unit}, "
            f"ANN {report.ann_pj / scale:.4g} {unit} (SNN/ANN {report.ratio:.3g}; "
            f"{report.table.name}, analog head: {report.convention})")
    if report.memory is None:
        return line
    memory = report.memory
    unit, scale = energy_unit(max(memory.ann_pj, memory.snn_pj))
    return (line + f"; with memory and addressing (Lemaire et al. 2022): SNN "
            f"{memory.snn_pj / scale:.4g} {unit}, ANN {memory.ann_pj / scale:.4g} {unit} "
            f"(SNN/ANN {memory.ratio:.3g})")


def _rates_line(result) -> str:
    return "firing rates (spikes per neuron per step): " + ", ".join(
        f"{k} {v:.3f}" for k, v in result.firing_rates().items())


def _neurobench(snn, result, images, seed: int) -> dict:
    """NeuroBench metrics of the run, or its static ones and why the rest are missing."""
    from .analysis.neurobench import (NEUROBENCH_VERSION, neurobench_metrics,
                                      neurobench_static_metrics)

    try:
        metrics, note = neurobench_metrics(snn, result, images, seed=seed), None
    except ValueError as err:
        metrics, note = neurobench_static_metrics(snn, np.dtype(result.dtype)), str(err)
    if note is None and metrics["MembraneUpdates"] is None:
        note = ("MembraneUpdates needs membrane traces of every neuron (the dense engine "
                "recording all of them; `evsim report` does it on one image)")
    return {"version": NEUROBENCH_VERSION, **metrics, "note": note}


def _neurobench_lines(metrics: dict) -> list[str]:
    synops = metrics.get("SynapticOperations")
    lines = [f"NeuroBench {metrics['version']} metrics (docs/neurobench.md): "
             f"ParameterCount {metrics['ParameterCount']}, Footprint {metrics['Footprint']} "
             f"bytes, ConnectionSparsity {metrics['ConnectionSparsity']:.4f}"]
    if synops is not None:
        lines.append(f"  per image: Effective_ACs {synops['Effective_ACs']:.4g}, "
                     f"Effective_MACs {synops['Effective_MACs']:.4g}, Dense "
                     f"{synops['Dense']:.4g}; ActivationSparsity "
                     f"{metrics['ActivationSparsity']:.4f}"
                     + ("" if metrics["MembraneUpdates"] is None else
                        f"; MembraneUpdates {metrics['MembraneUpdates']:.4g}"))
    if metrics["note"]:
        lines.append(f"  not measured: {metrics['note']}")
    return lines


def _thresholds_from(snn, calibration: int | None) -> str:
    """Where the thresholds came from, in words."""
    options = snn.options
    normalization, p = options.get("normalization"), options.get("percentile")
    if normalization == "trained":
        return "the trained activation bounds (calibration images not used)"
    p = "per-layer p" if isinstance(p, dict) else f"p = {p:g}%"
    statistic = {"max": "the maximum", "percentile": f"the percentile ({p})",
                 "braincog": f"BrainCog's per-layer λ ({p})"}.get(normalization, normalization)
    if options.get("channelwise"):
        statistic += " per channel"
    return f"{statistic} of the ANN activations on {calibration} calibration images"


def _print_json(obj) -> None:
    print(json.dumps(obj, allow_nan=False, default=float))


@dataclass(frozen=True)
class _Measured:
    """A simulation as `demo` and `run` report it: the result, the accuracy/SOPs/energy table
    per checkpoint, the energy report, the NeuroBench metrics (:func:`_neurobench`), the
    steps warning (or "") and the wall-clock seconds since the command's timer started."""

    result: SimResult
    summary: CheckpointSummary
    energy: EnergyReport
    neurobench: dict
    warning: str
    seconds: float

    def as_dict(self) -> dict:
        """The --json keys that follow the table's."""
        return {"energy": self.energy.as_dict(), "neurobench": self.neurobench,
                "warnings": [self.warning] if self.warning else [], "seconds": self.seconds}

    def print_tables(self, per_layer: bool) -> None:
        """The table, firing rates, energy line (``per_layer``: then the per-layer energy
        table) and NeuroBench lines."""
        print(self.summary.to_markdown())
        print("\n" + _rates_line(self.result))
        if per_layer:
            print(_energy_line(self.energy) + "\n")
            print(self.energy.to_markdown() + "\n")
        else:
            print(_energy_line(self.energy))
        print("\n".join(_neurobench_lines(self.neurobench)))


def _simulate_and_measure(args, snn, images, labels, started: float) -> _Measured:
    """Simulate as the flags say (:func:`_simulate`), warn about the steps, and measure the
    result; ``started``: the ``time.perf_counter()`` at which the timed work began."""
    from .analysis import checkpoint_summary, energy_report
    from .options import steps_message

    result = _simulate(args, snn, images)
    seconds = time.perf_counter() - started
    warning = steps_message(snn, args.T, result.checkpoints)
    _warn(args, warning)
    summary = checkpoint_summary(snn, result, labels, images, args.energy_table,
                                 args.convention)
    energy = energy_report(snn, result, args.energy_table, args.convention)
    return _Measured(result, summary, energy, _neurobench(snn, result, images, args.seed),
                     warning, seconds)


# --- subcommands ------------------------------------------------------------------------

def _demo(args: argparse.Namespace) -> int:
    """Convert a bundled model (the one trained for --method and --task) with calibration
    images from the training set, simulate it on real test images and print accuracy (for
    --task segmentation or detection: mIoU or mAP@.5 on Fashion-MNIST scenes), SOPs and
    energy per image versus T."""
    from . import convert
    from .models import available_models, load_model, model_info

    if args.report is not None:
        _check_report_folder(args.report)
    model = _demo_model(args)
    if model not in available_models():
        raise CommandError(f"--model {model!r} is not a bundled model; bundled models: "
                           f"{', '.join(available_models())}")
    network = load_model(model)
    _check_method_fits(network, args.method, model)
    calibration, images, labels, source = _demo_data(args, network)

    started = time.perf_counter()
    with _as_flags():
        snn = convert(network, calibration, method=args.method, T=args.T,
                      batch_size=args.batch_size, progress=True)
    run = _simulate_and_measure(args, snn, images, labels, started)
    report = (None if args.report is None else
              _write_report(args, args.report, snn, images, labels, run.result,
                            f"the {source}"))
    thresholds = _thresholds_from(snn, len(calibration))
    if args.json:
        _print_json({"units": UNITS, "model": model, "method": args.method,
                     "engine": args.engine, "encoding": args.encoding, "images": len(images),
                     "data": source, "thresholds_from": thresholds,
                     **run.summary.as_dict(), **run.as_dict(),
                     "report": None if report is None else str(report.html)})
        return 0
    info = model_info(model)
    print(f"evsim {__version__} demo: {model} ({info['description']})")
    print(f"converted with method '{args.method}' (thresholds from {thresholds}), simulated "
          f"with the {args.engine} engine on {len(images)} images of the {source}\n")
    run.print_tables(per_layer=False)
    print(f"took {run.seconds:.1f} s (conversion and simulation; a first run also compiles the "
          "event engine once, cached for later runs)")
    if report is not None:
        print(f"report: {report.html}")
    return 0


def _demo_model(args) -> str:
    """The bundled model the demo converts: --model, or the one trained for the task and
    (QCFS for the methods that need trained activations) the method."""
    from .convert import TRAINED_ACTIVATIONS
    from .models import DEFAULT_MODEL

    if args.model:
        return args.model
    if args.task == "classification":
        return DEMO_MODELS.get(args.method, DEFAULT_MODEL)
    return TASK_MODELS[args.task] + ("_qcfs" if args.method in TRAINED_ACTIVATIONS else "_relu")


def _demo_data(args, network):
    """``(calibration images, test images, labels or TaskScore, description of the test
    data)`` for the demo, the first --images of the test data."""
    from .data import fashion_mnist_scenes, load_bundled_sample, load_fashion_mnist

    if args.task == "classification":
        calibration, _ = load_bundled_sample("train")
        if args.full_test_set:
            images, labels = load_fashion_mnist("test")
            source = "Fashion-MNIST test set"
        else:
            images, labels = load_bundled_sample("test")
            source = "bundled Fashion-MNIST test sample"
        return calibration, images[:args.images], labels[:args.images], source
    calibration = _bundled_scenes("train")[0].images
    if args.full_test_set:
        scenes = fashion_mnist_scenes("test", FULL_TEST_SCENES, size=SCENE_INPUT[1], seed=0)
        source = f"{FULL_TEST_SCENES} scenes of the Fashion-MNIST test set"
    else:
        scenes, source = _bundled_scenes("test")
        source = source[len("the "):]
    task = _task("--task", network, scenes)
    if task.task != args.task:
        raise CommandError(f"--task {args.task}: the model answers {task.task}")
    n = len(scenes) if args.images is None else min(args.images, len(scenes))
    return calibration, scenes.images[:n], task.take(n), source


def _check_method_fits(network, method: str, model: str) -> None:
    """A method that needs trained activations names the bundled model trained for it."""
    from .convert import TRAINED_ACTIVATIONS, prepare

    needed = TRAINED_ACTIVATIONS.get(method)
    if needed is None:
        return
    layers = prepare(network)
    if all(isinstance(layers[name].layer, needed) for name in layers.activations):
        return
    kinds = " or ".join(c.__name__ for c in needed)
    raise CommandError(f"--method {method} needs a model trained with {kinds} activations, and "
                       f"--model {model} has none; pass --model {DEMO_MODELS[method]} (the "
                       f"bundled model trained for {method}) or leave --model out; to keep "
                       f"its initial potential θ/2 on --model {model}, run `evsim convert "
                       "--method percentile --initial-potential 0.5` (`percentile+opi` in "
                       "`evsim compare --methods`)")


def _convert(args: argparse.Namespace) -> int:
    """Convert an ANN file (evsim .npz or .onnx) into a spiking network file, choosing
    thresholds on calibration images (or from trained activation bounds)."""
    from dataclasses import fields

    from . import convert
    from .io import save
    from .io.atomic import check_output_file
    from .io.native import npz_path
    from .options import ConversionOptions

    output = npz_path(args.output)
    check_output_file(output)
    network = _load_ann(args.model)
    calibration, what = None, None
    if args.calibration is not None:
        calibration, _, what = _load_data(args.calibration, "train", network,
                                          args.calibration_images)
    overrides = {f.name: getattr(args, f.name) for f in fields(ConversionOptions)
                 if getattr(args, f.name) is not None}
    steps = overrides.pop("T", None)
    with _as_flags():
        snn = convert(network, calibration, method=args.method, T=steps,
                      batch_size=args.batch_size, progress=True, **overrides)
    save(snn, output)
    used = snn.options["normalization"] != "trained"
    thresholds = _thresholds_from(snn, 0 if calibration is None else len(calibration))
    if args.json:
        _print_json({"output": output, "method": snn.method, "thresholds_from": thresholds,
                     "calibration": what if used else None,
                     "calibration_images": len(calibration) if used else 0,
                     "options": snn.options,
                     "layers": {name: {"threshold_min": float(spec.threshold.min()),
                                       "threshold_max": float(spec.threshold.max()),
                                       "v_init_mean": float(np.mean(spec.v_init)),
                                       "reset": spec.reset, "burst": spec.burst}
                                for name, spec in snn.neurons.items()}})
        return 0
    print(snn.summary())
    source = f"{len(calibration)} images of {what}" if used else "no images"
    print(f"\nthresholds from {thresholds}" + (f" ({what})" if used else "")
          + f"; calibrated on {source}; wrote {output}")
    return 0


def _run(args: argparse.Namespace) -> int:
    """Simulate a spiking network file on images and print accuracy (with labels), SOPs and
    energy per image versus T, the NeuroBench metrics, and the per-layer energy table with its
    conventions."""
    snn = _load_snn(args.network)
    images, labels, what = _load_data(args.data, "test", snn.network, args.images)
    run = _simulate_and_measure(args, snn, images, labels, time.perf_counter())
    if args.json:
        _print_json({"units": UNITS, "network": args.network, "data": what,
                     "images": len(images), "engine": args.engine, "encoding": args.encoding,
                     **run.summary.as_dict(), "firing_rates": run.result.firing_rates(),
                     **run.as_dict()})
        return 0
    print(f"simulated {args.network} ({snn.method}) with the {args.engine} engine, "
          f"{args.encoding} input, on {len(images)} images of {what}"
          + ("" if labels is not None else " (no labels: accuracy not measured)") + "\n")
    run.print_tables(per_layer=True)
    print(f"\nsimulation took {run.seconds:.1f} s")
    return 0


def _report(args: argparse.Namespace) -> int:
    """Write a report folder: plots (PNG), report.md and a self-contained index.html."""
    _check_report_folder(args.output)
    snn = _load_snn(args.network)
    images, labels, what = _load_data(args.data, "test", snn.network, args.images)
    report = _write_report(args, args.output, snn, images, labels, None, what)
    for warning in report.summary["warnings"]:
        _warn(args, warning)
    if args.json:
        _print_json({"units": UNITS, "directory": str(report.directory),
                     "markdown": str(report.markdown), "html": str(report.html),
                     "images": [str(p) for p in report.images], **report.summary})
        return 0
    print(f"wrote {report.markdown}, {report.html} and {len(report.images)} plots")
    return 0


def _compare(args: argparse.Namespace) -> int:
    """Compare conversion methods on one model: convert it with each method, simulate the same
    images at every T and write the tables (comparison.md), comparison.json, the plot and a
    report page (report.md, index.html) to DIR. Finished cells (one simulation of one method)
    are kept in DIR/cells and reused by a rerun with the same inputs."""
    from pathlib import Path

    from .comparison import compare_methods
    from .report import check_comparison_folder, write_comparison_report

    check_comparison_folder(args.output)
    network = _load_ann(args.model)
    calibration, _, calibration_what = _load_data(args.calibration, "train", network,
                                                  args.calibration_images)
    images, labels, what = _load_data(args.data, "test", network, args.images)
    if labels is None:
        raise CommandError(f"{args.data}: has no 'labels' array; comparing methods measures "
                           "accuracy, so the data needs labels")

    def say(line: str) -> None:
        print(f"evsim compare: {line}", file=sys.stderr, flush=True)

    started = time.perf_counter()
    with _cluster(args) as client, _as_flags(), _cells_as_flags():
        comparison = compare_methods(
            network, calibration, images, labels, methods=args.methods, T=args.T,
            client=client, simulation=_simulation(args), energy=args.energy_table,
            convention=args.convention, cells=Path(args.output) / "cells",
            restart=args.restart, progress=say)
    elapsed = time.perf_counter() - started
    description = (f"Model `{os.path.basename(args.model)}`; calibration: {len(calibration)} "
                   f"images of {calibration_what}; test: {len(images)} images of {what}. "
                   "Methods whose options depend on T (SpiCalib's allowance, the temporal "
                   "schemes) run once per T; the others run once, read at every T.")
    report = write_comparison_report(args.output, comparison,
                                     title="evsim method comparison", description=description)
    if args.json:
        _print_json({"units": UNITS, "directory": str(report.directory),
                     "markdown": str(report.markdown), "html": str(report.html),
                     "table": str(report.directory / "comparison.md"),
                     "json": str(report.directory / "comparison.json"),
                     "plot": [str(p) for p in report.images], "comparison": report.summary,
                     "seconds": elapsed})
        return 0
    print(comparison.to_markdown())
    print(f"\nwrote {report.html}, {report.markdown}, comparison.md, comparison.json"
          + (" and accuracy_tradeoffs.png" if report.images else "") + f" in {report.directory} "
          f"({elapsed:.1f} s)")
    return 0


def _explore(args: argparse.Namespace) -> int:
    """Write an interactive explorer: one self-contained HTML page (plotly.js inline, opens
    offline) in which a dropdown chooses an image and a slider a time step, showing each
    layer's spikes and membrane potentials of a few neurons, the readout so far and the
    synaptic operations so far. Records with the dense engine; needs evsim[explore]."""
    from .analysis.task_score import TaskScore
    from .data import CLASS_NAMES
    from .explorer import write_explorer
    from .extras import require
    from .io.atomic import check_output_file

    require("plotly", "evsim explore")
    check_output_file(args.output)
    snn = _load_snn(args.network)
    images, labels, what = _load_data(args.data, "test", snn.network, args.images)
    if len(images) == 0:
        raise CommandError(f"{args.data}: holds no images to explore")
    layers = None if args.layers is None else [n.strip() for n in args.layers.split(",")]
    names = CLASS_NAMES if snn.network.output_shape == (len(CLASS_NAMES),) and (
        args.data == BUNDLED) else None
    with _as_flags():
        path = write_explorer(args.output, snn, images,
                              None if isinstance(labels, TaskScore) else labels,
                              class_names=names,
                              title=f"evsim explorer ({snn.method})", T=args.T,
                              neurons=args.neurons, layers=layers, encoding=args.encoding,
                              seed=args.seed)
    size = path.stat().st_size
    if args.json:
        _print_json({"units": {"bytes": "file size in bytes"}, "output": str(path),
                     "bytes": size, "network": args.network, "data": what,
                     "images": len(images), "T": args.T, "neurons": args.neurons})
        return 0
    print(f"wrote {path} ({size / 1e6:.1f} MB; {len(images)} images of {what}, T = {args.T}; "
          "open it in a browser, no network needed)")
    return 0


def _check_report_folder(directory: str) -> None:
    from .io.atomic import check_output_folder
    from .report import REPORT_FILES

    check_output_folder(directory, REPORT_FILES)


def _write_report(args, directory, snn, images, labels, result, what):
    from .data import CLASS_NAMES
    from .report import write_report

    names = CLASS_NAMES if snn.network.output_shape == (len(CLASS_NAMES),) and (
        args.command == "demo" or args.data == BUNDLED) else None
    with _as_flags():
        return write_report(directory, snn, images, labels, T=args.T,
                            simulation=_simulation(args, snn), result=result,
                            table=args.energy_table, convention=args.convention,
                            analysis_images=args.analysis_images,
                            title=f"evsim report: {snn.method} conversion", data_name=what,
                            class_names=names)


# --- the parser -------------------------------------------------------------------------

def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _output_name(text: str) -> str:
    """An -o argument: a file or folder name, not an empty one (it would write '.npz' or
    into the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a name, got an empty one")
    return text


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _threads(text: str) -> int:
    import numba

    value, most = _positive(text), numba.config.NUMBA_NUM_THREADS
    if value > most:
        raise argparse.ArgumentTypeError(f"expected 1..{most} (the cores Numba may use), got "
                                         f"{value}")
    return value


def _steps(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        steps = []
    if not steps or min(steps) < 1:
        raise argparse.ArgumentTypeError(f"expected steps such as 1,8,32 (positive integers, "
                                         f"comma-separated), got {text!r}")
    return steps


def _methods_file(path: str) -> list[str]:
    """The variants a spec file lists: a JSON list of strings, or one per line (``#``
    starts a comment)."""
    import json

    try:
        text = open(path, encoding="utf-8").read()
    except OSError as err:
        raise argparse.ArgumentTypeError(f"{path}: cannot read the methods file "
                                         f"({err.strerror})") from None
    if path.endswith(".json"):
        try:
            names = json.loads(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"{path}: not JSON ({err})") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise argparse.ArgumentTypeError(f"{path}: expected a JSON list of method names "
                                             'such as ["percentile", "spicalib(p=0.995)"]')
        return [name.strip() for name in names if name.strip()]
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def _methods(text: str) -> list[str]:
    """Method names or variants (:mod:`evsim.variants`), each checked, labelled as written;
    ``@FILE`` reads them from a file (:func:`_methods_file`)."""
    from .options import METHODS
    from .variants import VariantError, parse_variant, split_variants

    try:
        names = _methods_file(text[1:]) if text.startswith("@") else split_variants(text)
        for name in names:
            parse_variant(name)
    except VariantError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if not names:
        raise argparse.ArgumentTypeError(
            f"expected method names such as opi,percentile (from {', '.join(METHODS)}), or "
            f"variants such as percentile+opi or spicalib(p=0.995), got {text!r}")
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a method is named twice in {text!r}")
    return names


def _scheduler_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="run on the Dask cluster whose scheduler is at ADDRESS (e.g. "
                        "tcp://10.0.0.5:8786; needs the extra evsim[distributed]; "
                        "docs/scaling.md); results equal the local run's")


def _typed(kind):
    """An argparse type for a ConversionOptions field of type int or float."""
    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
    parse.__name__ = kind.__name__
    return parse


def _conversion_options(parser: argparse.ArgumentParser) -> None:
    """One flag per field of :class:`~evsim.options.ConversionOptions`, from its metadata."""
    from dataclasses import fields

    from .options import ConversionOptions

    _field_flags(parser, fields(ConversionOptions), method_sets=True)


#: Parsers of the value kinds that option fields' metadata names (``parse``).
_VALUE_PARSERS = {"positive": _positive, "non_negative": _non_negative, "threads": _threads,
                  "steps": _steps}


def _field_flags(parser: argparse.ArgumentParser, option_fields, *, method_sets: bool = False,
                 notes: dict[str, str] | None = None) -> None:
    """One flag per field of an options dataclass, built from its metadata: ``help``, and
    ``choices``, ``type`` (``bool``: ``--x``/``--no-x``; ``int``, ``float``) or ``parse``
    (a value kind of :data:`_VALUE_PARSERS`), ``metavar``, ``default_text``. The flag's
    default is the field's, or None when ``method_sets`` (a conversion preset sets it);
    ``notes`` adds a command's own words to a flag's help."""
    for f in option_fields:
        meta, flag = f.metadata, "--" + f.name.replace("_", "-")
        default = None if method_sets else f.default
        words = "as --method sets it" if method_sets else meta.get("default_text", "%(default)s")
        note = (notes or {}).get(f.name)
        text = f"{meta['help']} (default: {words}" + (f"; {note}" if note else "") + ")"
        if meta.get("type") is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default,
                                help=text)
        elif "choices" in meta:
            parser.add_argument(flag, choices=tuple(meta["choices"]), default=default,
                                help=text)
        else:
            kind = _VALUE_PARSERS[meta["parse"]] if "parse" in meta else _typed(meta["type"])
            parser.add_argument(flag, type=kind, default=default, metavar=meta.get("metavar"),
                                help=text)


def _simulation_flags(parser: argparse.ArgumentParser, names: tuple[str, ...],
                      notes: dict[str, str] | None = None) -> None:
    """The flags of ``names``, fields of :class:`~evsim.simulation_options.SimulationOptions`
    marked for the commands (:func:`_field_flags`)."""
    from dataclasses import fields

    from .simulation_options import SimulationOptions

    _field_flags(parser, [f for f in fields(SimulationOptions) if f.name in names],
                 notes=notes)


def _simulation_flag_names() -> tuple[str, ...]:
    """The SimulationOptions fields the commands have flags for (metadata ``cli``)."""
    from dataclasses import fields

    from .simulation_options import SimulationOptions

    return tuple(f.name for f in fields(SimulationOptions) if f.metadata["cli"])


def _engine_options(parser: argparse.ArgumentParser, threads: str) -> None:
    """The flags of how to simulate and count, shared by `run` and `compare`: every
    simulation option's but --checkpoints; ``threads`` ends the help of --threads."""
    from .analysis import CONVENTIONS, ENERGY_TABLES

    _simulation_flags(parser, tuple(name for name in _simulation_flag_names()
                                    if name != "checkpoints"), notes={"threads": threads})
    parser.add_argument("--energy-table", default="float32", choices=sorted(ENERGY_TABLES),
                        help="energy per operation, Horowitz 2014 at 45 nm "
                        "(default: %(default)s)")
    parser.add_argument("--convention", default="reinject", choices=CONVENTIONS,
                        help="analog first layer: computed once and re-injected every step, or "
                        "recomputed every step (default: %(default)s)")


def _simulation_options(parser: argparse.ArgumentParser, T: int = 128) -> None:
    parser.add_argument("--T", type=_positive, default=T, help="time steps (default: %(default)s)")
    _engine_options(parser, threads="results do not depend on it")
    _simulation_flags(parser, ("checkpoints",))
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object on stdout (progress stays on stderr)")


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("network", help="spiking network file (.npz from `evsim convert`)")
    parser.add_argument("data", help=f"'{BUNDLED}' (the bundled Fashion-MNIST test sample) or an "
                        ".npz with an 'images' array (N, C, H, W) and optionally 'labels' (N,)")
    parser.add_argument("--images", type=_positive, default=None, metavar="N",
                        help="use only the first N images")
    _unscaled_option(parser)


#: The flag that silences :class:`~evsim.errors.UnscaledInputWarning`.
UNSCALED_OK = "--unscaled-ok"


def _unscaled_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(UNSCALED_OK, action="store_true",
                        help="the images' range above 1 is what the network was trained on: "
                        "do not warn that they look unscaled")


def _analysis_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--analysis-images", type=_positive, default=100, metavar="N",
                        help="images for the conversion-error plots (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    """The ``evsim`` argument parser with its subcommands."""
    parser = _Parser(prog="evsim", description="Convert trained ANNs into spiking networks, "
                     "simulate them, count SOPs and energy, and write reports.",
                     epilog="examples: evsim demo; evsim convert ann.npz bundled -o snn.npz; "
                     "evsim run snn.npz bundled --T 64; evsim report snn.npz bundled -o report/; "
                     "evsim compare ann.onnx bundled bundled --methods max,percentile -o cmp/; "
                     "evsim explore snn.npz bundled -o page.html")
    parser.add_argument("--version", action="version", version=f"evsim {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_demo_parser, _convert_parser, _run_parser, _report_parser, _compare_parser,
                _explore_parser):
        add(commands)
    return parser


def _demo_parser(commands) -> None:
    from .options import METHODS

    demo = commands.add_parser("demo", help="convert and simulate a bundled model",
                               description=_demo.__doc__)
    demo.add_argument("--model", default=None,
                      help="bundled model (default: the one trained for --method: "
                      + ", ".join(f"{m} {n}" for m, n in DEMO_MODELS.items())
                      + "; fashion_cnn otherwise)")
    demo.add_argument("--method", default="percentile", choices=list(METHODS),
                      help="conversion method (default: %(default)s)")
    demo.add_argument("--task", default="classification",
                      choices=["classification", *TASK_MODELS],
                      help="classification (Fashion-MNIST images) or segmentation / detection "
                      "(Fashion-MNIST scenes, models " + ", ".join(
                          f"{n}_relu and {n}_qcfs" for n in TASK_MODELS.values())
                      + "); default: %(default)s")
    demo.add_argument("--images", type=_positive, default=None, metavar="N",
                      help="use only the first N test images (default: all 1,000 of the "
                      "bundled sample, or 10,000 with --full-test-set; for a task all 300 "
                      f"bundled scenes, or {FULL_TEST_SCENES:,} scenes with --full-test-set)")
    demo.add_argument("--full-test-set", action="store_true",
                      help="use the 10,000 Fashion-MNIST test images (for a task: scenes made "
                      "from them) from the local data (apt-get install dataset-fashion-mnist) "
                      "instead of the bundled sample")
    demo.add_argument("--report", metavar="DIR", default="evsim-demo-report",
                      help="write the report folder (plots, report.md, index.html) to DIR "
                      "(default: %(default)s)")
    demo.add_argument("--no-report", dest="report", action="store_const", const=None,
                      help="print the table only")
    _analysis_option(demo)
    _simulation_options(demo)
    demo.set_defaults(run=_demo)


def _convert_parser(commands) -> None:
    from .options import METHODS

    conv = commands.add_parser("convert", help="convert an ANN file into a spiking network file",
                               description=_convert.__doc__,
                               epilog="Each conversion option overrides what --method sets; "
                               "docs/cli.md lists them with their units.")
    conv.add_argument("model", help="ANN file: evsim .npz or .onnx")
    conv.add_argument("calibration", nargs="?", default=None,
                      help=f"'{BUNDLED}' (1,000 bundled Fashion-MNIST training images) or an "
                      ".npz with an 'images' array (N, C, H, W); not needed by the methods "
                      "that use trained bounds (opi, qcfs, nq)")
    conv.add_argument("-o", "--output", required=True, type=_output_name,
                      help="spiking network file to write (.npz)")
    conv.add_argument("--method", default="percentile", choices=list(METHODS),
                      help="conversion preset (default: %(default)s)")
    conv.add_argument("--calibration-images", type=_positive, default=None, metavar="N",
                      help="use only the first N calibration images")
    conv.add_argument("--batch-size", type=_positive, default=256, metavar="N",
                      help="calibration images per forward chunk (default: %(default)s)")
    _unscaled_option(conv)
    _conversion_options(conv)
    conv.add_argument("--json", action="store_true",
                      help="print one JSON object on stdout (progress stays on stderr)")
    conv.set_defaults(run=_convert)


def _run_parser(commands) -> None:
    run = commands.add_parser("run", help="simulate a spiking network file on data",
                              description=_run.__doc__)
    _data_arguments(run)
    _simulation_options(run)
    _scheduler_option(run)
    run.set_defaults(run=_run)


def _report_parser(commands) -> None:
    report = commands.add_parser("report", help="write a folder of plots, Markdown and HTML",
                                 description=_report.__doc__)
    _data_arguments(report)
    report.add_argument("-o", "--output", required=True, type=_output_name, metavar="DIR",
                        help="folder to write (created if missing)")
    _analysis_option(report)
    _simulation_options(report)
    report.set_defaults(run=_report)


def _compare_parser(commands) -> None:
    from .options import METHODS
    from .variants import MODIFIERS, describe_modifier

    compare = commands.add_parser("compare", help="compare conversion methods on one model",
                                  description=_compare.__doc__,
                                  epilog="A rerun into the same DIR reuses the finished cells; "
                                  "with other inputs it stops and says which changed "
                                  "(--restart discards the saved cells).")
    compare.add_argument("model", help="ANN file: evsim .npz or .onnx")
    compare.add_argument("calibration", help=f"'{BUNDLED}' (1,000 bundled Fashion-MNIST "
                         "training images) or an .npz with an 'images' array (N, C, H, W)")
    compare.add_argument("data", help=f"'{BUNDLED}' (the bundled Fashion-MNIST test sample) or "
                         "an .npz with 'images' (N, C, H, W) and 'labels' (N,)")
    compare.add_argument("-o", "--output", required=True, type=_output_name, metavar="DIR",
                         help="folder to write (created if missing; holds the cells of a "
                         "resumable run)")
    compare.add_argument("--methods", type=_methods, default=["percentile"], metavar="NAMES",
                         help="comma-separated conversion presets (" + ", ".join(METHODS)
                         + ") or variants of them, labelled as written: preset+modifier ("
                         + ", ".join(f"+{m}: {describe_modifier(m)}" for m in MODIFIERS)
                         + ") and (option=value, ...) with ConversionOptions fields or p, the "
                         "percentile as a fraction; e.g. \"percentile, percentile+opi, "
                         "spicalib(p=0.995)\"; @FILE reads them from a file, one per line or "
                         "a JSON list (default: percentile)")
    compare.add_argument("--T", type=_steps, default=[1, 2, 4, 8, 16, 32, 64, 128],
                         metavar="STEPS", help="comma-separated time steps to compare "
                         "(default: 1,2,4,...,128)")
    compare.add_argument("--images", type=_positive, default=None, metavar="N",
                         help="use only the first N test images")
    compare.add_argument("--calibration-images", type=_positive, default=None, metavar="N",
                         help="use only the first N calibration images")
    _unscaled_option(compare)
    _engine_options(compare, threads="1 per task on a cluster; results do not depend on it")
    _scheduler_option(compare)
    compare.add_argument("--restart", action="store_true",
                         help="discard the cells DIR holds from an earlier run and start afresh")
    compare.add_argument("--json", action="store_true",
                         help="print one JSON object on stdout (progress stays on stderr)")
    compare.set_defaults(run=_compare)


def _explore_parser(commands) -> None:
    from .explorer import IMAGES, NEURONS, STEPS

    explore = commands.add_parser("explore", help="write an interactive HTML page to step "
                                  "through a simulation", description=_explore.__doc__)
    explore.add_argument("network", help="spiking network file (.npz from `evsim convert`)")
    explore.add_argument("data", help=f"'{BUNDLED}' (the bundled Fashion-MNIST test sample) or "
                         "an .npz with an 'images' array (N, C, H, W) and optionally 'labels'")
    explore.add_argument("-o", "--output", required=True, type=_output_name, metavar="PAGE",
                         help="HTML file to write (e.g. page.html)")
    explore.add_argument("--images", type=_positive, default=IMAGES, metavar="N",
                         help="the first N images to choose from (default: %(default)s)")
    _unscaled_option(explore)
    explore.add_argument("--T", type=_positive, default=STEPS,
                         help="time steps (default: %(default)s)")
    explore.add_argument("--neurons", type=_positive, default=NEURONS, metavar="K",
                         help="neurons shown per layer, the most active over the images "
                         "(default: %(default)s)")
    explore.add_argument("--layers", default=None, metavar="NAMES",
                         help="comma-separated spiking layers to show (default: all)")
    _simulation_flags(explore, ("encoding", "seed"))
    explore.add_argument("--json", action="store_true",
                         help="print one JSON object on stdout (progress stays on stderr)")
    explore.set_defaults(run=_explore)


def main(argv: list[str] | None = None) -> int:
    """Entry point. Every failure is one line on stderr, never a traceback: exit code 2 for
    a user error (bad arguments, files or data; too little memory), 1 for an internal error
    (a bug: please report it), 130 when interrupted."""
    try:
        args = build_parser().parse_args(argv)
    except KeyboardInterrupt:  # reading the arguments may import Numba (--threads)
        print("evsim: interrupted", file=sys.stderr)
        return 130
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(args.command)
            if getattr(args, "unscaled_ok", False):
                warnings.simplefilter("ignore", UnscaledInputWarning)
            return args.run(args)
    except KeyboardInterrupt:
        print(f"evsim {args.command}: {_interrupted(args)}", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 -- the one place every failure becomes a line
        code, message = _failure(err)
        print(f"evsim {args.command}: {' '.join(message.split())}", file=sys.stderr)
        return code


def _warning_printer(command: str):
    """``warnings.showwarning`` printing one line, ``evsim COMMAND: warning: ...``."""
    def show(message, category, filename, lineno, file=None, line=None):
        if isinstance(message, UnscaledInputWarning):  # the command's way, not Python's
            message = UnscaledInputWarning(message.problem, UNSCALED_OK)
        print(f"evsim {command}: warning: {' '.join(str(message).split())}",
              file=file or sys.stderr)
    return show


def _failure(err: Exception) -> tuple[int, str]:
    """``(exit code, message)`` for an exception that ended a command."""
    if isinstance(err, MemoryError):
        detail = str(err) if isinstance(err, EvsimError) else (
            f"{err}; use a smaller --T or fewer --images")
        return 2, f"out of memory: {detail}"
    if isinstance(err, EvsimError):
        return 2, f"error: {err}"
    if isinstance(err, OSError):
        where = f"{err.filename}: " if err.filename else ""
        return 2, f"error: {where}{err.strerror or err}"
    if isinstance(err, (ValueError, TypeError, KeyError, ImportError)) and _raised_by_evsim(err):
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        return 2, f"error: {message}"
    return 1, (f"internal error: {type(err).__name__}: {err} -- this is a bug in evsim "
               f"{__version__}; please report this with the command you ran")


def _raised_by_evsim(err: BaseException) -> bool:
    """Whether evsim's own code raised ``err`` (an argument check, a missing extra), not a
    library below it."""
    traceback = err.__traceback__
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    package = os.path.dirname(os.path.abspath(__file__))
    return traceback.tb_frame.f_code.co_filename.startswith(package + os.sep)


__all__ = ["main", "build_parser", "CommandError", "DEMO_MODELS", "UNITS"]
