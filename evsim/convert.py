"""ANN-to-SNN conversion: methods are presets over a few orthogonal components.

Components (keyword options of :func:`convert`):

``normalization``
    How each activation layer's scale λ (and so its threshold θ = λ) is
    chosen: ``"max"`` or ``"percentile"`` of its activations on calibration
    data, or ``"trained"`` (the bound learned by a Clip/QCFS activation).
``percentile``, ``channelwise``
    p for percentile normalisation (default 99.9); one λ per channel.
``reset``
    ``"subtract"`` or ``"zero"``.
``initial_potential``, ``initial_potential_unit``
    v(0) as a fraction of θ (``"threshold"``, default) or in activation
    units (``"absolute"``).
``burst``
    Γ, the most spikes per neuron per step.
``allowance``
    SpiCalib's allowance A in steps (0, the default, turns calibration off).
``max_pool``
    ``"lipooling"`` (exact, default) or ``"gate"``.
``time_scheme``
    ``"synchronous"`` (default), ``"temporal"`` (temporal separation: T is
    a window, each layer integrates one window then fires in the next), or
    ``"ilif"`` (temporal separation with inverse-leaky binary firing: T = K
    bits per window, methods.md §4 [unverified]; with ``method=
    "spikeconverter"`` the initial potential then defaults to 0, so values
    are truncated to K bits).

A method name picks defaults for these; any explicit keyword overrides it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import layers as L
from .calibrate import activation_scales
from .network import Network
from .passes import commute_maxpool_activation, fold_batchnorm
from .signals import check_spiking_graph
from .spiking import MAX_POOLS, RESETS, TIME_SCHEMES, NeuronSpec, SpikingNetwork

NORMALIZATIONS = ("max", "percentile", "trained")

DEFAULTS: dict = {
    "normalization": "percentile",
    "percentile": 99.9,
    "channelwise": False,
    "reset": "subtract",
    "initial_potential": 0.0,
    "initial_potential_unit": "threshold",
    "burst": 1,
    "allowance": 0.0,
    "max_pool": "lipooling",
    "time_scheme": "synchronous",
}

#: Method presets: each maps to the component values it sets.
METHODS: dict[str, dict] = {
    "max": {"normalization": "max", "reset": "zero"},
    "percentile": {"normalization": "percentile", "percentile": 99.9, "reset": "subtract"},
    "channelwise": {"normalization": "percentile", "percentile": 99.9, "channelwise": True},
    "opi": {"normalization": "trained", "initial_potential": 0.5},
    "qcfs": {"normalization": "trained", "initial_potential": 0.5},
    # NQ trains with noise (evsim.training.NoisyQCFS) and converts exactly like QCFS.
    "nq": {"normalization": "trained", "initial_potential": 0.5},
    # SpikeConverter-style [unverified reading, methods.md §4]: temporal separation with
    # v(0) = θ/2, so spike counts are the round-to-nearest W-level quantised ANN.
    "spikeconverter": {"time_scheme": "temporal", "initial_potential": 0.5},
    # SpiCalib (Li et al. 2022): burst IF (Γ = 5) + calibration + LIPooling; p and A from
    # Bayesian optimisation when validation data is given, else p = 99.9, A = T/2 [unverified].
    "spicalib": {"normalization": "percentile", "percentile": 99.9, "burst": 5,
                 "max_pool": "lipooling"},
}

#: Activation types a method needs (their trained bound becomes θ).
_NEEDS_TRAINED = {"opi": (L.Clip, L.QCFS), "qcfs": (L.QCFS,), "nq": (L.QCFS,)}


def _resolve(method: str, options: Mapping) -> dict:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown conversion option(s) {sorted(unknown)}; "
                        f"options are {sorted(DEFAULTS)}")
    resolved = {**DEFAULTS, **METHODS[method], **options}
    checks = {"normalization": NORMALIZATIONS, "reset": RESETS, "max_pool": MAX_POOLS,
              "initial_potential_unit": ("threshold", "absolute"),
              "time_scheme": TIME_SCHEMES}
    for key, allowed in checks.items():
        if resolved[key] not in allowed:
            raise ValueError(f"{key} must be one of {allowed}, got {resolved[key]!r}")
    return resolved


def prepare(network: Network) -> Network:
    """The graph conversion simulates: BatchNorm folded, MaxPool moved after activations."""
    return commute_maxpool_activation(fold_batchnorm(network))


def convert(network: Network, calibration_inputs: np.ndarray | None = None,
            method: str = "percentile", *, T: int | None = None,
            validation: tuple[np.ndarray, np.ndarray] | None = None, batch_size: int = 256,
            **options) -> SpikingNetwork:
    """Convert an ANN into a spiking network.

    Parameters
    ----------
    network:
        The trained ANN. BatchNorm is folded and ``MaxPool -> activation`` is
        reordered (they commute) before conversion.
    calibration_inputs:
        Images ``(B, *input_shape)`` from the training data, used to choose λ
        for ``max``/``percentile`` normalisation; not needed for ``"trained"``.
    method:
        A preset: ``"max"`` (Diehl 2015: max norm, reset to zero),
        ``"percentile"`` (Rueckauer 2017: p = 99.9, reset by subtraction,
        default), ``"channelwise"`` (per-channel p = 99.9), ``"opi"`` (trained
        clip bound, v(0) = θ/2), ``"qcfs"`` and ``"nq"`` (trained QCFS bound,
        v(0) = θ/2),
        ``"spikeconverter"`` (percentile normalisation, temporal separation,
        v(0) = θ/2; simulate with T = the window length), ``"spicalib"``
        (burst Γ = 5, SpiCalib, LIPooling; needs ``T``).
    T:
        The number of steps the network will run, for methods whose
        parameters depend on it (SpiCalib: allowance A = T/2 by default).
    validation:
        ``(images, labels)`` held out from the training data: with
        ``method="spicalib"``, p and A (those not given as options) are chosen
        by Bayesian optimisation of the accuracy at ``T``
        (:func:`evsim.tune.tune`; needs optuna; for another score, call
        :func:`~evsim.tune.tune` and pass its ``options``).
    batch_size:
        Images per forward chunk during calibration.
    **options:
        Component overrides; see the module docstring.

    Returns
    -------
    A :class:`SpikingNetwork`; its ``options`` record every component used.
    """
    if validation is not None:
        if method != "spicalib":
            raise ValueError(f"validation data is used to tune method 'spicalib', not "
                             f"'{method}'")
        if T is None:
            raise ValueError("tuning with validation= needs T=, the steps it scores at")
        search = tuple(k for k in ("percentile", "allowance") if k not in options)
        if not search:
            raise ValueError("validation= tunes the percentile and the allowance, but both "
                             "are given; drop validation= or one of them")
        from .tune import tune
        options = {**options, **tune(network, calibration_inputs, validation, T=T,
                                     method=method, search=search, **options).options}
    if method == "spicalib" and "allowance" not in options:
        if T is None:
            raise ValueError("method 'spicalib' needs T= (the allowance A defaults to T/2 and "
                             "is tuned for that T) or an explicit allowance=")
        options.setdefault("allowance", T / 2)
    if method == "spikeconverter" and options.get("time_scheme") == "ilif":
        options = {"initial_potential": 0.0, **options}
    opts = _resolve(method, options)
    net = prepare(network)
    acts = {n.name: n.layer for n in net if isinstance(n.layer, L.Activation)}
    if not acts:
        raise ValueError("the network has no activation layer (ReLU, Clip or QCFS) to convert")

    needed = _NEEDS_TRAINED.get(method)
    if needed is not None:
        for name, layer in acts.items():
            if not isinstance(layer, needed):
                raise ValueError(
                    f"method '{method}' needs trained {' or '.join(c.__name__ for c in needed)} "
                    f"activations, but layer '{name}' is {type(layer).__name__}; train with "
                    "evsim's training activations or pick 'percentile'")

    if opts["normalization"] == "trained":
        lam = {}
        for name, layer in acts.items():
            if layer.bound is None:
                raise ValueError(f"normalization='trained' needs a trained bound, but layer "
                                 f"'{name}' is an unbounded {type(layer).__name__}")
            lam[name] = np.float64(layer.bound)
    else:
        if calibration_inputs is None:
            raise ValueError(f"method '{method}' ({opts['normalization']} normalisation) needs "
                             "calibration_inputs: a few hundred training images")
        lam = activation_scales(net, calibration_inputs, statistic=opts["normalization"],
                                percentile=opts["percentile"], channelwise=opts["channelwise"],
                                batch_size=batch_size)

    neurons = {}
    for name, theta in lam.items():
        theta = np.asarray(theta, dtype=np.float32)
        v0 = (theta * np.float32(opts["initial_potential"])
              if opts["initial_potential_unit"] == "threshold"
              else np.asarray(opts["initial_potential"], dtype=np.float32))
        neurons[name] = NeuronSpec(threshold=theta, v_init=v0, reset=opts["reset"],
                                   burst=opts["burst"], allowance=opts["allowance"])
    snn = SpikingNetwork(net, neurons, max_pool=opts["max_pool"],
                         time_scheme=opts["time_scheme"], method=method, options=opts)
    check_spiking_graph(snn)
    return snn


__all__ = ["convert", "prepare", "METHODS", "DEFAULTS", "NORMALIZATIONS"]
