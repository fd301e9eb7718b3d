"""Conversion options: one frozen, validated record of every choice :func:`evsim.convert` makes.

A conversion method is a preset over a few orthogonal components
(normalisation, neuron, initial potential, reset, pooling, time scheme).
:class:`ConversionOptions` holds one value per component, checks it when it
is made, and documents its unit and allowed values; :data:`METHODS` maps
each method name to its preset instance. Change a preset with keywords::

    evsim.convert(network, calibration, method="percentile", burst=2)
    evsim.convert(network, calibration, options=dataclasses.replace(METHODS["opi"], burst=2))

The ``evsim convert`` command builds one flag per field from the field
metadata here, so the command and the API cannot drift apart.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType

import numpy as np

from .errors import EvsimTypeError, EvsimValueError
from .spiking import BURST_MAX, MAX_POOLS, RESETS, TIME_SCHEMES

NORMALIZATIONS = ("max", "percentile", "braincog", "trained")
PERCENTILE_OF = ("all", "positive")
POTENTIAL_UNITS = ("threshold", "absolute")


class OptionError(EvsimValueError):
    """A conversion option (or an argument of convert/tune) has a value it cannot take.

    ``option`` is the Python name (``"burst"``, ``"T"``, ``"calibration_inputs"``);
    ``problem`` completes the sentence. ``str(error)`` is ``"<option> <problem>"``,
    so a command-line tool can name its own flag instead (:mod:`evsim.cli` does).
    """

    def __init__(self, option: str, problem: str):
        super().__init__(f"{option} {problem}")
        self.option = option
        self.problem = problem


class TunedForOtherTWarning(UserWarning):
    """A spiking network whose options were chosen for one T is simulated or read at another."""


def _meta(help: str, **cli) -> dict:
    return {"help": help, **cli}


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _finite_number(value) -> bool:
    return (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(float(value)))


@dataclass(frozen=True)
class ConversionOptions:
    """Every component of an ANN-to-SNN conversion, checked when made.

    Attributes
    ----------
    normalization:
        How each activation layer's scale λ, and so its threshold θ = λ, is
        chosen: ``"max"`` (Diehl 2015) or ``"percentile"`` (Rueckauer 2017)
        of its ANN activations on calibration data; ``"braincog"``: the rule
        of SpiCalib's published code (:func:`evsim.calibrate.braincog_scales`:
        the calibration pass clips every activation at Γ = ``burst``, and λ
        is the p-point of all values of each 100-image batch, zeros included,
        the largest over batches, so λ ≤ Γ); or ``"trained"``: the bound
        learned by a Clip/QCFS activation (calibration data unused).
    percentile:
        p, in per cent, in (0, 100], for ``"percentile"`` and ``"braincog"``
        normalisation. A mapping ``{layer: p}`` gives one value per activation
        layer. Default 99.9.
    percentile_of:
        The activations a ``"percentile"`` is taken over: ``"all"`` of them,
        zeros included (default; as SpikingJelly's and BrainCog's converters
        do), or the ``"positive"`` ones (as the SNN Conversion Toolbox does,
        giving a higher λ: more latency, less clipping).
    channelwise:
        One λ per output channel instead of one per layer (Kim 2020).
    reset:
        ``"subtract"`` (reset by subtraction, keeps the surplus) or
        ``"zero"`` (Diehl 2015).
    initial_potential:
        v(0), in units of ``initial_potential_unit``; 0.5 with unit
        ``"threshold"`` is OPI's θ/2. Any finite number.
    initial_potential_unit:
        ``"threshold"``: v(0) = initial_potential × θ (default);
        ``"absolute"``: v(0) = initial_potential, in activation units.
    burst:
        Γ, the most spikes a neuron emits in one step: an integer in
        1..64 (:data:`BURST_MAX`); 1 is the plain IF neuron.
    allowance:
        SpiCalib's allowance A, in time steps, ≥ 0; 0 turns calibration
        off. ``None`` means "T/4 of the T the network is converted for"
        (the ``spicalib`` preset; the best A measured on two models lay
        between T/8 and T/4), so :func:`evsim.convert` then needs ``T``.
    max_pool:
        Spiking max pooling: ``"lipooling"`` (exact, default) or ``"gate"``
        (the spike-count gate baseline).
    time_scheme:
        ``"synchronous"`` steps (default); ``"temporal"`` separation (T is a
        window: each layer integrates one window, then fires in the next);
        ``"ilif"``: temporal separation with inverse-leaky binary firing,
        T = K bits per window [unverified reading of SpikeConverter].
    T:
        The number of time steps these options were chosen for, when any of
        them depends on it (SpiCalib's allowance, options from
        :func:`evsim.tune.tune`); ``None`` when none does. Running such a
        network at another T warns (:func:`warn_if_tuned_for_other_T`).
    """

    normalization: str = field(default="percentile", metadata=_meta(
        "how thresholds are chosen: max or percentile of the ANN activations on the "
        "calibration images, or the trained clip/QCFS bound (calibration unused)",
        choices=NORMALIZATIONS))
    percentile: float | Mapping[str, float] = field(default=99.9, metadata=_meta(
        "p in (0, 100] of percentile normalisation, per cent", type=float, metavar="P"))
    percentile_of: str = field(default="all", metadata=_meta(
        "the activations a percentile is taken over: all of them (zeros included) or the "
        "positive ones", choices=PERCENTILE_OF))
    channelwise: bool = field(default=False, metadata=_meta(
        "one threshold per channel instead of per layer", type=bool))
    reset: str = field(default="subtract", metadata=_meta(
        "after a spike: subtract θ, or reset to zero", choices=RESETS))
    initial_potential: float = field(default=0.0, metadata=_meta(
        "v(0), as a fraction of θ (or in activation units with --initial-potential-unit "
        "absolute)", type=float, metavar="X"))
    initial_potential_unit: str = field(default="threshold", metadata=_meta(
        "unit of --initial-potential", choices=POTENTIAL_UNITS))
    burst: int = field(default=1, metadata=_meta(
        f"Γ, the most spikes per neuron per step: an integer in 1..{BURST_MAX}", type=int,
        metavar="G"))
    allowance: float | None = field(default=0.0, metadata=_meta(
        "SpiCalib's allowance A in time steps (0 turns calibration off; spicalib's default "
        "is T/4)", type=float, metavar="A"))
    max_pool: str = field(default="lipooling", metadata=_meta(
        "spiking max pooling: exact lateral inhibition, or the spike-count gate",
        choices=MAX_POOLS))
    time_scheme: str = field(default="synchronous", metadata=_meta(
        "synchronous steps, or temporal separation (T is a window; ilif: T bits per window)",
        choices=TIME_SCHEMES))
    T: int | None = field(default=None, metadata=_meta(
        "time steps the network will run, for options chosen for one T (spicalib's "
        "allowance); running it at another T warns", type=int, metavar="T"))

    def __post_init__(self):
        for name, allowed in (("normalization", NORMALIZATIONS), ("percentile_of", PERCENTILE_OF),
                              ("reset", RESETS),
                              ("initial_potential_unit", POTENTIAL_UNITS),
                              ("max_pool", MAX_POOLS), ("time_scheme", TIME_SCHEMES)):
            value = getattr(self, name)
            if value not in allowed:
                raise OptionError(name, f"must be one of {', '.join(allowed)}; got {value!r}")
        object.__setattr__(self, "percentile", _check_percentile(self.percentile))
        if self.normalization == "braincog" and self.channelwise:
            raise OptionError("normalization", "'braincog' takes one λ per layer: it cannot be "
                              "channel-wise")
        if not isinstance(self.channelwise, (bool, np.bool_)):
            raise OptionError("channelwise", f"must be True or False, got {self.channelwise!r}")
        object.__setattr__(self, "channelwise", bool(self.channelwise))
        if not _finite_number(self.initial_potential):
            raise OptionError("initial_potential", "must be a finite number, got "
                              f"{self.initial_potential!r}")
        object.__setattr__(self, "initial_potential", float(self.initial_potential))
        if not (_is_integer(self.burst) and 1 <= self.burst <= BURST_MAX):
            raise OptionError("burst", f"(Γ) must be an integer in 1..{BURST_MAX}, got "
                              f"{self.burst!r}")
        object.__setattr__(self, "burst", int(self.burst))
        if self.allowance is not None:
            if not (_finite_number(self.allowance) and self.allowance >= 0):
                raise OptionError("allowance", "(SpiCalib's A, in steps) must be a finite "
                                  f"number >= 0, got {self.allowance!r}")
            object.__setattr__(self, "allowance", float(self.allowance))
        if self.T is not None:
            if not (_is_integer(self.T) and self.T >= 1):
                raise OptionError("T", f"must be a positive integer, got {self.T!r}")
            object.__setattr__(self, "T", int(self.T))

    def as_dict(self) -> dict:
        """The options as a JSON-ready dict (what :attr:`SpikingNetwork.options` stores)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if isinstance(self.percentile, Mapping):
            out["percentile"] = dict(self.percentile)
        return out

    @classmethod
    def from_dict(cls, values: Mapping) -> ConversionOptions:
        """Options from :meth:`as_dict` output (unknown keys are an error naming them)."""
        return cls(**_check_names(values))

    def replace(self, **changes) -> ConversionOptions:
        """A copy with ``changes`` applied (checked like the constructor)."""
        return replace(self, **_check_names(changes))


class PerLayer(Mapping):
    """An immutable ``{layer: value}`` mapping (a per-layer option): hashable and picklable,
    so options holding one can be dictionary keys and travel to Dask workers; it equals a dict
    of the same items."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, float]):
        self._values = dict(values)

    def __getitem__(self, layer: str) -> float:
        return self._values[layer]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __hash__(self) -> int:
        return hash(frozenset(self._values.items()))

    def __repr__(self) -> str:
        return f"PerLayer({self._values!r})"


def _check_percentile(value):
    if isinstance(value, Mapping):
        checked = {}
        for layer, p in value.items():
            if not (_finite_number(p) and 0 < p <= 100):
                raise OptionError("percentile", f"for layer '{layer}' must be in (0, 100], got "
                                  f"{p!r}")
            checked[str(layer)] = float(p)
        return PerLayer(checked)
    if not (_finite_number(value) and 0 < value <= 100):
        raise OptionError("percentile", f"must be a number in (0, 100] (per cent), got {value!r}")
    return float(value)


def option_names() -> tuple[str, ...]:
    """The field names of :class:`ConversionOptions`, in order."""
    return tuple(f.name for f in fields(ConversionOptions))


def checked_names(record: type, values: Mapping, what: str) -> dict:
    """``values`` as a dict, after checking that each key is a field of the dataclass
    ``record`` (``what``: the options' name in the error, e.g. "conversion")."""
    names = [f.name for f in fields(record)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise EvsimTypeError(f"unknown {what} option(s) {', '.join(unknown)}; options are "
                             f"{', '.join(names)}")
    return dict(values)


def _check_names(values: Mapping) -> dict:
    return checked_names(ConversionOptions, values, "conversion")


#: Method presets: each name maps to the complete options it converts with.
METHODS: Mapping[str, ConversionOptions] = MappingProxyType({
    # Diehl 2015: max normalisation, reset to zero.
    "max": ConversionOptions(normalization="max", reset="zero"),
    # Rueckauer 2017: p = 99.9, reset by subtraction.
    "percentile": ConversionOptions(),
    # Spiking-YOLO (Kim 2020): one λ per channel.
    "channelwise": ConversionOptions(channelwise=True),
    # OPI (Bu 2022): trained clip bound, v(0) = θ/2.
    "opi": ConversionOptions(normalization="trained", initial_potential=0.5),
    "qcfs": ConversionOptions(normalization="trained", initial_potential=0.5),
    # NQ trains with noise (evsim.training.NoisyQCFS) and converts exactly like QCFS.
    "nq": ConversionOptions(normalization="trained", initial_potential=0.5),
    # SpikeConverter-style [unverified reading, methods.md §4]: temporal separation with
    # v(0) = θ/2, so spike counts are the round-to-nearest W-level quantised ANN.
    "spikeconverter": ConversionOptions(time_scheme="temporal", initial_potential=0.5),
    # SpiCalib (Li et al. 2022) as its code runs: λ by BrainCog's rule (p = 99 %, the
    # CIFAR-10 example's, calibration clipped at Γ = 5), burst IF (Γ = 5), calibration with
    # A = T/4 unless given or tuned, LIPooling.
    "spicalib": ConversionOptions(normalization="braincog", percentile=99.0, burst=5,
                                  allowance=None, max_pool="lipooling"),
})


def preset(method: str) -> ConversionOptions:
    """The options of ``method`` (a key of :data:`METHODS`)."""
    if method not in METHODS:
        raise OptionError("method", f"{method!r} is unknown; choose one of {', '.join(METHODS)}")
    return METHODS[method]


def tuned_for(snn) -> int | None:
    """The T a spiking network's options were chosen for, or None when nothing depends on T."""
    steps = snn.options.get("T") if isinstance(snn.options, Mapping) else None
    return int(steps) if steps is not None else None


def steps_message(snn, T: int, checkpoints=None) -> str:
    """Why reading ``snn`` at ``T`` steps (or at earlier ``checkpoints``) misleads; '' if not.

    A network whose options were chosen for one T (SpiCalib's allowance, tuned
    options) is not the network a conversion for another T gives: its accuracy
    at another T, or at earlier checkpoints of one run, understates the method.
    """
    chosen = tuned_for(snn)
    if chosen is None:
        return ""
    if getattr(snn, "time_scheme", "synchronous") != "synchronous":
        checkpoints = None  # a windowed scheme has one checkpoint: T, the window
    earlier = [int(c) for c in (checkpoints if checkpoints is not None else []) if c < T]
    if T != chosen:
        return (f"this network's options were chosen for T = {chosen} (SpiCalib's allowance or "
                f"tuning) but it runs for T = {T}; convert it for T = {T} to measure the method "
                "there")
    if earlier:
        return (f"this network's options were chosen for T = {chosen}; the earlier checkpoints "
                f"({', '.join(map(str, earlier))}) show it cut short, not a network converted for "
                "those T")
    return ""


def warn_if_tuned_for_other_T(snn, T: int, checkpoints=None) -> None:
    """Warn (:class:`TunedForOtherTWarning`) when :func:`steps_message` has something to say."""
    message = steps_message(snn, T, checkpoints)
    if message:
        warnings.warn(message, TunedForOtherTWarning, stacklevel=2)


__all__ = ["ConversionOptions", "METHODS", "NORMALIZATIONS", "POTENTIAL_UNITS", "BURST_MAX",
           "PERCENTILE_OF", "OptionError", "TunedForOtherTWarning", "option_names", "preset",
           "tuned_for", "steps_message", "warn_if_tuned_for_other_T"]
