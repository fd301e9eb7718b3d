"""Checking a simulation request: the one check both the local and the Dask path make.

:func:`check_request` takes what :func:`evsim.simulate` was given (the
network, the images, T, the options and ``first_image``) and either raises,
naming what is wrong and what to do, or returns a :class:`SimulationRequest`:
the images as the engines' dtype, the recorded neurons and the lowered time
plan. :func:`evsim.distributed.simulate_on` makes the same check before it
sends anything to a cluster, so a bad request fails the same way, with the
same message, on both paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .encoding import check_rate_inputs
from .errors import EvsimTypeError, EvsimValueError
from .forward import _check_inputs
from .options import warn_if_tuned_for_other_T
from .spiking import SpikingNetwork
from .validate import (check_below_int64, check_images, check_index, check_simulation_memory,
                       check_steps)
from .engines import ENGINES, recording_engines
from .simulation_options import SimulationOptions
from .timeplan import TimePlan, time_plan


@dataclass(frozen=True)
class SimulationRequest:
    """A checked simulation: ``snn`` as given, ``inputs`` ``(B, *input_shape)`` in the
    options' dtype (unscaled), ``T``, ``first_image`` (the index of ``inputs[0]`` in the
    data set), the ``options``, ``selection`` ``{layer: flat neuron indices}`` to record,
    and the ``time`` plan."""

    snn: SpikingNetwork
    inputs: np.ndarray
    T: int
    first_image: int
    options: SimulationOptions
    selection: dict[str, np.ndarray]
    time: TimePlan


def check_request(snn: SpikingNetwork, inputs: np.ndarray, T: int,
                  options: SimulationOptions, first_image: int = 0) -> SimulationRequest:
    """The checked :class:`SimulationRequest`, or an error naming what is wrong; warns
    (:class:`~evsim.options.TunedForOtherTWarning`) when ``snn`` was tuned for another T."""
    if not isinstance(snn, SpikingNetwork):
        raise EvsimTypeError(f"simulate needs a SpikingNetwork (from evsim.convert), got "
                             f"{type(snn).__name__}")
    T = check_steps(T)
    first_image = check_index(first_image, "first_image")
    x = _check_inputs(snn.network, inputs, options.dtype)
    if len(x) == 0:
        raise EvsimValueError("inputs hold no image")
    check_below_int64(first_image + len(x) - 1, "first_image + the number of images - 1 "
                      "(the last image's index)")
    check_images(inputs, encoding=options.encoding)
    if options.encoding == "rate":
        check_rate_inputs(x)
    selection = _selection(snn, options.record)
    time = time_plan(snn, T, options.encoding, options.checkpoints, recording=bool(selection))
    warn_if_tuned_for_other_T(snn, T, time.checkpoints)
    if selection and not ENGINES[options.engine].records:
        raise EvsimValueError("recording spike trains and membrane traces needs "
                              + " or ".join(f"engine={name!r}" for name in recording_engines())
                              + f"; engine {options.engine!r} does not record")
    return SimulationRequest(snn, x, T, first_image, options, selection, time)


def _selection(snn: SpikingNetwork, record: Mapping | None) -> dict[str, np.ndarray]:
    """``{layer: flat neuron indices}`` of the checked ``record`` option, checked against
    ``snn``'s spiking layers and their sizes."""
    out = {}
    for name, neurons in (record or {}).items():
        if name not in snn.neurons:
            raise EvsimValueError(f"cannot record '{name}': only spiking layers are recorded "
                                  f"({list(snn.neurons)})")
        size = int(np.prod(snn.network.shape(name)))
        chosen = np.arange(size) if neurons is None else np.asarray(neurons, dtype=np.int64)
        if chosen.max() >= size:
            raise EvsimValueError(f"record['{name}'] must list flat neuron indices in [0, "
                                  f"{size}), got {list(neurons)!r}")
        out[name] = chosen
    return out


def check_memory(request: SimulationRequest) -> None:
    """Raise :class:`~evsim.errors.InsufficientMemoryError` if simulating ``request`` here
    needs more memory than this machine has (:func:`evsim.validate.simulation_memory`)."""
    options = request.options
    check_simulation_memory(request.snn, len(request.inputs), request.T, engine=options.engine,
                            batch_size=options.batch_size,
                            checkpoints=len(request.time.checkpoints),
                            per_image_counts=options.per_image_counts,
                            recorded=sum(len(v) for v in request.selection.values()),
                            dtype=options.dtype)


__all__ = ["SimulationRequest", "check_request", "check_memory"]
