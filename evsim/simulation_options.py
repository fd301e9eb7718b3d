"""Simulation options: one frozen, validated record of how :func:`evsim.simulate` runs.

:class:`SimulationOptions` holds every choice of a simulation that is not the
data itself (the network, the images, ``T`` and the images' place in the data
set, ``first_image``, are given per call). It checks each value when made and
documents its unit and allowed values; :func:`evsim.simulate`, the report, the
method comparison, tuning and the Dask path all take it whole::

    options = SimulationOptions(engine="dense", encoding="rate", seed=3)
    evsim.simulate(snn, images, T=64, options=options)
    evsim.simulate(snn, images, T=64, engine="dense", encoding="rate", seed=3)  # the same

The ``evsim run``, ``report``, ``demo`` and ``compare`` commands build one flag
per field marked ``cli`` from the field metadata here (:mod:`evsim.cli`), so the
commands and the API cannot drift apart. This module imports no engine (nor
Numba): the engines are named through the registry :data:`~evsim.engines.ENGINES`.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

import numpy as np

from .options import OptionError, PerLayer, checked_names
from .signals import ENCODINGS
from .threads import thread_count
from .validate import INT64_MAX, check_batch_size
from .engines import ENGINES

#: The floating-point types a simulation can compute in.
DTYPES = ("float32", "float64")


def _meta(help: str, cli: bool = False, **flag) -> dict:
    """Field metadata: ``help`` (the option's meaning and unit), whether the commands have a
    flag for it, and how the flag parses (``choices``, ``parse``: one of the value kinds
    :mod:`evsim.cli` knows, ``metavar``, ``default_text``)."""
    return {"help": help, "cli": cli, **flag}


def _is_integer(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class SimulationOptions:
    """How to simulate: engine, input encoding, what to keep, and how to share the work.

    Attributes
    ----------
    engine:
        A name of :data:`~evsim.engines.ENGINES`: ``"event"``
        (default, as in the ``evsim`` command): the event-driven Numba
        engine (compiled on first use; one image per thread; exact SOPs of
        the accumulates it performs); ``"dense"``: the NumPy reference
        engine (readable; the one that records traces).
    encoding:
        ``"analog"`` (default): the image is layer 1's input at every step,
        its first layers are computed once (MACs). ``"rate"``: Bernoulli
        spikes with probability equal to the pixel value (inputs in [0, 1]),
        drawn from a counter-based generator keyed by ``(seed, image, step,
        pixel)``, so results do not depend on chunking or threads.
    checkpoints:
        Steps at which to keep the accumulated output (positive integers,
        kept sorted without repeats; each at most T); ``None`` (default):
        1, 2, 4, ..., T. Accuracy versus T comes from one run.
    record:
        Spiking layers whose spike trains and membrane traces to keep: a name,
        a list of names, or ``{name: flat neuron indices or None for all}``
        (kept as ``{name: tuple of indices or None}``). Memory for these grows
        with T; nothing else does. Needs an engine that records (``"dense"``).
    per_image_counts:
        Keep spike counts per image ``(B, *shape)`` instead of summed.
    seed:
        Seed of the rate encoder (an integer ≥ 0).
    batch_size:
        Images simulated together (≥ 1; bounds memory).
    dtype:
        ``float32`` (default) or ``float64`` (kept as a ``numpy.dtype``).
    threads:
        Threads sharing the images of a chunk (default ``None``: every core
        this process may use); results do not depend on it. The analog head
        and the dense engine's convolutions run one GEMM per group of images
        on these threads, with BLAS held to one thread when ``threadpoolctl``
        is installed (it is in the ``test`` extra); without it, BLAS also uses
        its own threads (``OPENBLAS_NUM_THREADS``), and float results of
        networks that are not on a dyadic grid may then depend on them.
    progress:
        Show a progress bar (stderr) in images, advancing during a chunk as
        its steps run (on a Dask cluster: as shards finish).
    """

    engine: str = field(default="event", metadata=_meta(
        "simulation engine", cli=True, choices=ENGINES))
    encoding: str = field(default="analog", metadata=_meta(
        "input encoding", cli=True, choices=ENCODINGS))
    checkpoints: tuple[int, ...] | None = field(default=None, metadata=_meta(
        "comma-separated steps at which to report accuracy, SOPs and energy (--T is always "
        "one)", cli=True, parse="steps", metavar="STEPS", default_text="1, 2, 4, ..., T"))
    record: Mapping[str, tuple[int, ...] | None] | None = field(default=None, metadata=_meta(
        "spiking layers whose spike trains and membrane traces to keep"))
    per_image_counts: bool = field(default=False, metadata=_meta(
        "keep spike counts per image instead of summed over the images"))
    seed: int = field(default=0, metadata=_meta(
        "seed of the rate encoding's random spikes", cli=True, parse="non_negative",
        metavar="N"))
    batch_size: int = field(default=128, metadata=_meta(
        "images simulated together; bounds memory", cli=True, parse="positive", metavar="N"))
    dtype: np.dtype = field(default=np.dtype(np.float32), metadata=_meta(
        "floating-point type of the simulation: float32 or float64"))
    threads: int | None = field(default=None, metadata=_meta(
        "threads sharing the images of a chunk", cli=True, parse="threads", metavar="N",
        default_text="every core this process may use"))
    progress: bool = field(default=False, metadata=_meta(
        "show a progress bar on stderr"))

    def __post_init__(self):
        for name, allowed in (("engine", tuple(ENGINES)), ("encoding", ENCODINGS)):
            value = getattr(self, name)
            if value not in allowed:
                raise OptionError(name, f"must be one of {', '.join(allowed)}; got {value!r}")
        if self.checkpoints is not None:
            object.__setattr__(self, "checkpoints", _checked_steps(self.checkpoints))
        object.__setattr__(self, "record", _checked_record(self.record))
        for name in ("per_image_counts", "progress"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise OptionError(name, f"must be True or False, got {getattr(self, name)!r}")
            object.__setattr__(self, name, bool(getattr(self, name)))
        if not (_is_integer(self.seed) and 0 <= self.seed <= INT64_MAX):
            raise OptionError("seed", f"must be an integer >= 0 and below 2**63, got "
                              f"{self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "batch_size", check_batch_size(self.batch_size))
        object.__setattr__(self, "dtype", _checked_dtype(self.dtype))
        if self.threads is not None:
            object.__setattr__(self, "threads", thread_count(self.threads))

    def replace(self, **changes) -> SimulationOptions:
        """A copy with ``changes`` applied (checked like the constructor; unknown names are
        an error naming them)."""
        return replace(self, **_check_names(changes))


def _checked_steps(checkpoints) -> tuple[int, ...]:
    try:
        steps = list(checkpoints)
    except TypeError:
        raise OptionError("checkpoints", f"must be steps (positive integers) or None, got "
                          f"{checkpoints!r}") from None
    bad = [step for step in steps if not (_is_integer(step) and 1 <= step <= INT64_MAX)]
    if bad or not steps:
        raise OptionError("checkpoints", f"must be steps (positive integers), got {steps!r}")
    return tuple(sorted({int(step) for step in steps}))


def _checked_record(record) -> PerLayer | None:
    """``record`` as ``{layer: tuple of flat neuron indices, or None for all}``; the layers and
    the indices' upper bound are checked against the network (:mod:`evsim.request`)."""
    if record is None:
        return None
    if isinstance(record, str):
        record = [record]
    if not isinstance(record, Mapping):
        try:
            record = dict.fromkeys(record)
        except TypeError:
            raise OptionError("record", "must be a layer name, a list of names or {name: "
                              f"neuron indices or None}}, got {record!r}") from None
    checked = {}
    for name, neurons in record.items():
        if not isinstance(name, str):
            raise OptionError("record", f"names spiking layers (strings), got {name!r}")
        if neurons is None:
            checked[name] = None
            continue
        try:
            chosen = np.asarray(neurons, dtype=np.int64)
        except (TypeError, ValueError):
            chosen = np.zeros((0,), np.int64)
        if chosen.ndim != 1 or chosen.size == 0 or chosen.min() < 0:
            raise OptionError(f"record['{name}']", f"must list flat neuron indices >= 0, got "
                              f"{neurons!r}")
        checked[name] = tuple(int(i) for i in chosen)
    return PerLayer(checked)


def _checked_dtype(dtype) -> np.dtype:
    try:
        checked = np.dtype(dtype)
    except TypeError:
        checked = None
    if checked is None or checked.name not in DTYPES:
        raise OptionError("dtype", f"must be float32 or float64, got {dtype!r}")
    return checked


def simulation_option_names() -> tuple[str, ...]:
    """The field names of :class:`SimulationOptions`, in order."""
    return tuple(f.name for f in fields(SimulationOptions))


def _check_names(values: Mapping) -> dict:
    return checked_names(SimulationOptions, values, "simulation")


def resolve_simulation(options: SimulationOptions | None = None,
                       **overrides) -> SimulationOptions:
    """``options`` (default: :class:`SimulationOptions()`) with single ``overrides`` applied,
    by field name; how every function that simulates folds its keywords into one record."""
    if options is None:
        return SimulationOptions(**_check_names(overrides))
    if not isinstance(options, SimulationOptions):
        raise OptionError("options", "must be a SimulationOptions (evsim.simulation_options) or "
                          f"None, got {type(options).__name__}; pass single options as keywords")
    return options.replace(**overrides) if overrides else options


__all__ = ["SimulationOptions", "resolve_simulation", "simulation_option_names", "DTYPES"]
