"""ANN-to-SNN conversion: a method is a preset of :class:`~evsim.options.ConversionOptions`.

:func:`convert` never searches options: :func:`evsim.tune.tune` does, and
returns options to convert with.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from . import layers as L
from .calibrate import activation_scales, braincog_scales
from .errors import ClipBoundWarning, EvsimTypeError, EvsimValueError
from .network import Network
from .options import METHODS, NORMALIZATIONS, ConversionOptions, OptionError, preset
from .passes import (commute_maxpool_activation, drop_output_head, fold_batchnorm,
                     insert_linear_neurons)
from .signals import check_spiking_graph
from .spiking import NeuronSpec, SpikingNetwork
from .validate import check_images

#: Activation types a method needs (their trained bound becomes θ).
#: Images per calibration batch of BrainCog's rule (its CIFAR-10 example's loader batch).
BRAINCOG_BATCH = 100
TRAINED_ACTIVATIONS = {"opi": (L.Clip, L.QCFS), "qcfs": (L.QCFS,), "nq": (L.QCFS,)}


def prepare(network: Network) -> Network:
    """The graph conversion simulates: an output Sigmoid/Softmax dropped (the readout is its
    input), BatchNorm folded, MaxPool moved after activations, an identity activation at
    every linear bottleneck (:func:`~evsim.passes.insert_linear_neurons`)."""
    return insert_linear_neurons(commute_maxpool_activation(fold_batchnorm(
        drop_output_head(network))))


def resolve(method: str = "percentile", options: ConversionOptions | None = None,
            T: int | None = None, **overrides) -> ConversionOptions:
    """The complete options a conversion uses: ``options`` (default: the ``method`` preset)
    with ``overrides`` applied, and SpiCalib's allowance set from ``T`` when it is left open.

    Raises :class:`~evsim.options.OptionError` naming the option at fault.
    """
    base = preset(method)
    if options is None:
        options = base
    elif not isinstance(options, ConversionOptions):
        raise OptionError("options", "must be a ConversionOptions (evsim.options) or None, got "
                          f"{type(options).__name__}; pass single options as keywords")
    if method == "spikeconverter" and overrides.get("time_scheme") == "ilif":
        # iLIF truncates values to K bits: start from 0, not θ/2, unless told otherwise.
        overrides = {"initial_potential": 0.0, **overrides}
    options = options.replace(**overrides)
    if T is not None:
        if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
            raise OptionError("T", f"must be a positive integer, got {T!r}")
        if options.T is not None and options.T != T:
            raise OptionError("T", f"is {T} but the options were chosen for T = {options.T}; "
                              "drop one of them")
    if options.allowance is None:
        steps = T if T is not None else options.T
        if steps is None:
            raise OptionError("T", f"is needed by method '{method}': its allowance A defaults "
                              "to T/4 and is set for that T (or give an explicit allowance)")
        options = options.replace(allowance=steps / 4, T=int(steps))
    return options


def convert(network: Network, calibration_inputs: np.ndarray | None = None,
            method: str = "percentile", options: ConversionOptions | None = None, *,
            T: int | None = None, batch_size: int = 256, progress: bool = False,
            **overrides) -> SpikingNetwork:
    """Convert an ANN into a spiking network.

    Parameters
    ----------
    network:
        The trained ANN (an :class:`~evsim.network.Network`). BatchNorm is
        folded and ``MaxPool -> activation`` is reordered (they commute)
        before conversion.
    calibration_inputs:
        Images ``(B, *input_shape)`` from the training data (B ≥ 1), used to
        choose λ for ``max``/``percentile`` normalisation; not used by
        ``"trained"`` normalisation (``opi``, ``qcfs``, ``nq``).
    method:
        A preset (:data:`~evsim.options.METHODS`): ``"max"`` (Diehl 2015: max
        norm, reset to zero), ``"percentile"`` (Rueckauer 2017: p = 99.9,
        reset by subtraction, default; p of all activations, zeros included),
        ``"channelwise"`` (per-channel p = 99.9), ``"opi"`` (trained clip
        bound, v(0) = θ/2), ``"qcfs"`` and ``"nq"`` (trained QCFS bound,
        v(0) = θ/2), ``"spikeconverter"`` (percentile normalisation, temporal
        separation, v(0) = θ/2; simulate with T = the window length),
        ``"spicalib"`` (λ by BrainCog's rule with p = 99 %, burst Γ = 5,
        SpiCalib with A = T/4, LIPooling; needs ``T`` or an ``allowance``).
    options:
        A complete :class:`~evsim.options.ConversionOptions` to use instead of
        the preset (e.g. ``evsim.tune.tune(...).options``); ``method`` still
        names the conversion and checks the activations it needs.
    T:
        The number of steps the network will run, for options that depend on
        it (SpiCalib's allowance A = T/4 by default); recorded in the
        options, and running at another T then warns.
    batch_size:
        Images per forward chunk during calibration (≥ 1).
    progress:
        Show a progress bar (stderr) over the calibration images.
    **overrides:
        Single options changed from the preset, by field name of
        :class:`~evsim.options.ConversionOptions` (``burst=2``,
        ``initial_potential=0.5``, ...).

    Returns
    -------
    A :class:`SpikingNetwork`; its ``options`` record every component used
    (:meth:`ConversionOptions.as_dict`).

    Raises
    ------
    OptionError
        An option, ``T``, ``batch_size`` or the calibration images are not
        usable; the message names which.
    """
    _check_arguments(network, batch_size, overrides)
    opts = resolve(method, options, T, **overrides)
    net = prepare(network)
    acts = _activations(net, method)
    if opts.normalization == "trained":
        lam = _trained_scales(acts)
    else:
        lam = _calibrated_scales(net, calibration_inputs, method, opts, batch_size, progress)
    snn = SpikingNetwork(net, _neuron_specs(lam, acts, opts), max_pool=opts.max_pool,
                         time_scheme=opts.time_scheme, method=method, options=opts.as_dict())
    check_spiking_graph(snn)
    return snn


def _check_arguments(network, batch_size, overrides: dict) -> None:
    """Raise for what :func:`convert` cannot take: a network that is not an ANN, a batch size
    that is not a positive integer, a ``validation`` set (that is tuning)."""
    if "validation" in overrides:
        raise EvsimTypeError("convert() does not tune: call evsim.tune.tune(network, calibration, "
                             "validation, T=...) and convert with its options: "
                             "evsim.convert(network, calibration, method, options=found.options)")
    if not isinstance(network, Network):
        if isinstance(network, SpikingNetwork):
            raise EvsimTypeError("convert needs an ANN (evsim.Network), but this is already a "
                                 "SpikingNetwork: simulate it with evsim.simulate")
        raise EvsimTypeError(f"convert needs an ANN (evsim.Network), got "
                             f"{type(network).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or (
            batch_size < 1):
        raise OptionError("batch_size", f"must be a positive integer, got {batch_size!r}")


def _activations(net: Network, method: str) -> dict[str, L.Activation]:
    """The activation layers of ``net`` by name, checked to be of the types ``method`` needs."""
    acts = {name: net[name].layer for name in net.activations}
    if not acts:
        raise EvsimValueError("the network has no activation layer (ReLU, Clip or QCFS) to convert")
    needed = TRAINED_ACTIVATIONS.get(method)
    if needed is not None:
        for name, layer in acts.items():
            if not isinstance(layer, needed):
                raise EvsimValueError(
                    f"method '{method}' needs trained {' or '.join(c.__name__ for c in needed)} "
                    f"activations, but layer '{name}' is {type(layer).__name__}; train with "
                    "evsim's training activations or pick 'percentile'" + _keep_opi_hint(method))
    return acts


def _keep_opi_hint(method: str) -> str:
    """How to keep a trained method's initial potential θ/2 on a network without trained
    bounds (percentile thresholds, v(0) = θ/2), in the API and on the command line."""
    if preset(method).initial_potential != 0.5:
        return ""
    return (" (to keep its initial potential θ/2, use method='percentile', "
            "initial_potential=0.5: `--method percentile --initial-potential 0.5` in evsim "
            "convert, `percentile+opi` in evsim compare --methods)")


def _trained_scales(acts: dict[str, L.Activation]) -> dict[str, np.float64]:
    """λ of each activation layer: its trained bound."""
    lam = {}
    for name, layer in acts.items():
        if layer.bound is None:
            raise EvsimValueError(f"normalization='trained' needs a trained bound, but layer "
                                  f"'{name}' is an unbounded {type(layer).__name__}")
        lam[name] = np.float64(layer.bound)
    return lam


def _calibrated_scales(net: Network, calibration_inputs: np.ndarray | None, method: str,
                       opts: ConversionOptions, batch_size: int, progress: bool) -> dict:
    """λ of each activation layer from its activations on ``calibration_inputs`` (checked),
    by the normalisation ``opts`` names."""
    if calibration_inputs is None:
        raise OptionError("calibration_inputs", f"are needed by method '{method}' "
                          f"({opts.normalization} normalisation): a few hundred training "
                          "images")
    if len(calibration_inputs) == 0:
        raise OptionError("calibration_inputs", "hold no image; pass a few hundred "
                          "training images to choose the thresholds on")
    check_images(calibration_inputs, what="calibration images")
    if opts.normalization == "braincog":
        fraction = ({k: v / 100 for k, v in opts.percentile.items()}
                    if isinstance(opts.percentile, Mapping) else opts.percentile / 100)
        return braincog_scales(net, calibration_inputs, p=fraction, clip=float(opts.burst),
                               batch_size=BRAINCOG_BATCH)
    return activation_scales(net, calibration_inputs, statistic=opts.normalization,
                             percentile=opts.percentile, percentile_of=opts.percentile_of,
                             channelwise=opts.channelwise, batch_size=batch_size,
                             progress=progress)


def _neuron_specs(lam: dict, acts: dict[str, L.Activation],
                  opts: ConversionOptions) -> dict[str, NeuronSpec]:
    """The neurons replacing each activation layer: θ = λ, v(0), reset, Γ and A as ``opts``
    say (Γ within a trained bound); signed neurons with θ⁻ = θ / α where the activation has
    a negative slope α > 0 (LeakyReLU, the identity of a linear bottleneck)."""
    neurons = {}
    for name, theta in lam.items():
        theta = np.asarray(theta, dtype=np.float32)
        v0 = (theta * np.float32(opts.initial_potential)
              if opts.initial_potential_unit == "threshold"
              else np.asarray(opts.initial_potential, dtype=np.float32))
        slope = acts[name].negative_slope
        signed = slope > 0
        if signed and opts.allowance > 0:
            raise OptionError("allowance", f"is {opts.allowance}, but layer '{name}' "
                              f"({type(acts[name]).__name__}) becomes signed neurons, which "
                              "SpiCalib cannot calibrate; use allowance=0")
        neurons[name] = NeuronSpec(
            threshold=theta, v_init=v0, reset=opts.reset,
            burst=_burst_within_bound(opts.burst, acts[name], theta),
            allowance=opts.allowance,
            negative_threshold=(theta / np.float64(slope)).astype(np.float32) if signed else None)
        if opts.time_scheme == "ilif":
            _warn_if_codes_pass_bound(name, acts[name], theta)
    return neurons


def _burst_within_bound(burst: int, layer: L.Activation, theta: np.ndarray) -> int:
    """Γ for a layer: a Clip/QCFS-trained activation never exceeds its bound b, so neither
    may the spikes of one step: at most ⌊b / θ⌋ of them (at least 1), with the largest θ of
    the layer (one Γ per layer)."""
    if layer.bound is None or burst == 1:
        return burst
    return int(min(burst, max(1, np.floor(np.float64(layer.bound) / float(np.max(theta))))))


def _warn_if_codes_pass_bound(name: str, layer: L.Activation, theta: np.ndarray) -> None:
    """iLIF codes carry values up to almost 2θ: say so when that passes a trained bound (the
    warning points at the caller of :func:`convert`)."""
    if layer.bound is not None and 2 * float(np.max(theta)) > layer.bound:
        warnings.warn(f"layer '{name}': the ilif scheme's codes carry values up to almost "
                      f"2θ = {2 * float(np.max(theta)):.4g}, above the trained bound "
                      f"{layer.bound:.4g} of its {type(layer).__name__}; values between them "
                      "pass unclipped (the ANN clips them). Lower the thresholds below half "
                      "the bound to keep the bound", ClipBoundWarning, stacklevel=4)


__all__ = ["convert", "prepare", "resolve", "METHODS", "NORMALIZATIONS", "ConversionOptions",
           "TRAINED_ACTIVATIONS"]
