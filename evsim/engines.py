"""The simulation engines: a registry of runners, each simulating one chunk of images at a time.

An engine is a *runner factory*. :func:`evsim.simulate` checks the request,
lowers the time scheme (:mod:`evsim.timeplan`), calls the factory once
with an :class:`EngineSetup` and then the runner's ``run_chunk`` once per chunk
of images, adding up the :class:`ChunkResult` records it returns; it knows no
engine by name. A new engine (a GPU one, say) plugs in with
:func:`register_engine`, without touching :func:`evsim.simulate`::

    class MyRunner:
        def __init__(self, setup: EngineSetup): ...
        def run_chunk(self, x, first_image, on_steps=None) -> ChunkResult: ...

    register_engine("mine", MyRunner)
    evsim.simulate(snn, images, T=32, engine="mine")

The built-in engines, ``"dense"`` (:class:`evsim.simulate.dense.DenseRunner`) and
``"event"`` (:class:`evsim.simulate.event.EventRunner`), import their modules,
and Numba, only when first used. A registration lives in its process: on a Dask
cluster, register the engine on the workers too.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .errors import EvsimValueError

if TYPE_CHECKING:
    from .signals import SignalPlan
    from .simulation_options import SimulationOptions
    from .result import SpikeTrain
    from .timeplan import TimePlan


@dataclass(frozen=True)
class EngineSetup:
    """What a runner is made for: one simulation, checked and lowered.

    ``time``: the time plan (the network the engine runs, ``time.snn``, already
    lowered to its time scheme; the steps it simulates, ``time.steps_simulated``;
    the steps at which it keeps the accumulated output, ``time.engine_checkpoints``;
    ``time.window`` and ``time.binary`` for the windowed schemes). ``signals``:
    the signal plan of the network (layer classes, synaptic paths). ``options``:
    the simulation options. ``selection``: ``{layer: flat neuron indices}`` to
    record (empty unless the engine records). ``capacity``: the most images of
    one chunk. ``threads``: threads sharing a chunk's images (resolved, ≥ 1).
    """

    time: TimePlan
    signals: SignalPlan
    options: SimulationOptions
    selection: Mapping[str, np.ndarray]
    capacity: int
    threads: int


@dataclass(frozen=True)
class ChunkResult:
    """What one chunk of B images gives, in the public layout of :class:`~evsim.SimResult`.

    ``outputs``: ``(K, B, *output_shape)``, the readout summed up to each of
    the engine's K checkpoints. ``spike_counts``: ``{layer: int64}``, channel
    first, ``(B, *shape)`` with per-image counts, else ``shape`` summed over the
    chunk. ``negative_spikes``: ``{layer: int}`` (SpiCalib's). ``sops`` and
    ``pool_ops``: ``{layer: (steps simulated,) int64}`` summed over the chunk,
    for the layers the engine counts. ``spike_trains`` and ``membrane``: the
    recorded layers' :class:`~evsim.simulate.SpikeTrain` (images numbered within
    the chunk) and membrane traces ``(steps, B, recorded neurons)`` after the reset and,
    in ``membrane_before_reset``, before it. ``pool_spike_counts``: ``{layer: int64}``, each
    spiking max pooling's output spikes, laid out as ``spike_counts`` (optional for an
    engine; NeuroBench's counts of the layers reading a pooling layer use them).
    """

    outputs: np.ndarray
    spike_counts: dict[str, np.ndarray]
    negative_spikes: dict[str, int]
    sops: dict[str, np.ndarray]
    pool_ops: dict[str, np.ndarray]
    spike_trains: dict[str, SpikeTrain] = field(default_factory=dict)
    membrane: dict[str, np.ndarray] = field(default_factory=dict)
    membrane_before_reset: dict[str, np.ndarray] = field(default_factory=dict)
    pool_spike_counts: dict[str, np.ndarray] = field(default_factory=dict)


class Runner(Protocol):
    """An engine made for one simulation (by its factory, from an :class:`EngineSetup`)."""

    def run_chunk(self, x: np.ndarray, first_image: int,
                  on_steps: Callable[[int], None] | None = None) -> ChunkResult:
        """Simulate the images ``x`` ``(B, *input_shape)`` (``x[0]`` is image
        ``first_image`` of the data set: rate-coded spikes are drawn by image index) for
        the plan's steps; ``on_steps(n)`` is called as n more steps are done."""


@dataclass(frozen=True)
class Engine:
    """A registered engine: ``runner(setup)`` makes its :class:`Runner`; ``records``: it can
    keep spike trains and membrane traces (:attr:`SimulationOptions.record`)."""

    name: str
    runner: Callable[[EngineSetup], Runner]
    records: bool = False


_REGISTRY: dict[str, Engine] = {}

#: The engines :func:`evsim.simulate` can run, by name (read-only; see :func:`register_engine`).
ENGINES: Mapping[str, Engine] = MappingProxyType(_REGISTRY)


def register_engine(name: str, runner: Callable[[EngineSetup], Runner], *,
                    records: bool = False) -> Engine:
    """Make ``engine=name`` run ``runner(setup)``'s chunks (a runner class, or a function
    returning one); ``records``: the runner returns spike trains and membrane traces of
    ``setup.selection``. A name already registered is an error."""
    if not isinstance(name, str) or not name:
        raise EvsimValueError(f"an engine's name must be a non-empty string, got {name!r}")
    if name in _REGISTRY:
        raise EvsimValueError(f"an engine named {name!r} is already registered")
    if not callable(runner):
        raise EvsimValueError(f"engine {name!r}: runner must be callable (a runner class or "
                              f"factory), got {type(runner).__name__}")
    _REGISTRY[name] = Engine(name, runner, bool(records))
    return _REGISTRY[name]


def recording_engines() -> tuple[str, ...]:
    """The names of the engines that record spike trains and membrane traces."""
    return tuple(name for name, engine in ENGINES.items() if engine.records)


def zero_counters(signals: SignalPlan, steps: int) -> tuple[dict, dict]:
    """``(sops, pool_ops)``: a zero ``(steps,)`` int64 counter per layer the signal plan
    counts, in its order."""
    sops = {p.layer: np.zeros(steps, np.int64) for p in signals.paths if p.counts == "sops"}
    pool_ops = {p.layer: np.zeros(steps, np.int64) for p in signals.paths
                if p.counts == "pool_ops"}
    return sops, pool_ops


def _builtin(module: str, runner: str) -> Callable[[EngineSetup], Runner]:
    """A factory that imports ``module`` (and so Numba) only when the engine is first used.
    The engines sit above this registry in the package's layers (they import it), so
    the registry names them by module path instead of importing them."""

    def make(setup: EngineSetup) -> Runner:
        return getattr(importlib.import_module(module), runner)(setup)

    make.__qualname__ = f"{module}.{runner}"
    return make


register_engine("dense", _builtin("evsim.simulate.dense", "DenseRunner"), records=True)
register_engine("event", _builtin("evsim.simulate.event", "EventRunner"))


__all__ = ["ENGINES", "Engine", "EngineSetup", "ChunkResult", "Runner", "register_engine",
           "recording_engines", "zero_counters"]
