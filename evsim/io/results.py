"""A :class:`~evsim.result.SimResult` in evsim's ``.npz`` format (no pickle).

The JSON header (kind ``"sim_result"``) holds every scalar field, the
``macs``, ``neurons`` and ``negative_spikes`` tables, the conversion options and the layer names
of each per-layer table in order; the arrays are ``checkpoints``,
``outputs`` and ``<table>/<layer>`` (``spike_counts``, ``sops``,
``pool_ops``, ``recorded``, ``membrane``, ``membrane_before_reset``,
``pool_spike_counts``: listed only where it holds layers), and
``spike_trains/<layer>/{steps,images,neurons,counts}``. Every array keeps its
dtype and shape, so a loaded result equals the saved one field for field.
"""

from __future__ import annotations

import numpy as np

from ..errors import EvsimFileError
from ..result import SimResult, SpikeTrain

#: Scalar fields, stored in the header as JSON, with the type they are read back as.
_SCALARS = {"T": int, "n_images": int, "engine": str, "encoding": str, "dtype": str,
            "time_scheme": str, "latency": int, "seed": int, "first_image": int,
            "batch_size": int, "per_image_counts": bool, "network_hash": str, "method": str,
            "evsim_version": str}
#: Per-layer tables of arrays.
_TABLES = ("spike_counts", "sops", "pool_ops", "recorded", "membrane", "membrane_before_reset",
           "pool_spike_counts")
#: Tables written only where they hold layers (so files without them stay as they were).
_OPTIONAL = ("pool_spike_counts",)
_TRAIN = ("steps", "images", "neurons", "counts")


def result_payload(result: SimResult) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON header (without format and version) and the arrays that store ``result``."""
    fields = {name: kind(getattr(result, name)) for name, kind in _SCALARS.items()}
    header = {"kind": "sim_result", "result": fields, "options": result.options,
              "macs": {k: int(v) for k, v in result.macs.items()},
              "neurons": {k: int(v) for k, v in result.neurons.items()},
              "negative_spikes": {k: int(v) for k, v in result.negative_spikes.items()},
              "layers": {table: list(getattr(result, table)) for table in _TABLES
                         if table not in _OPTIONAL or getattr(result, table)},
              "spike_trains": list(result.spike_trains)}
    arrays = {"checkpoints": np.asarray(result.checkpoints),
              "outputs": np.asarray(result.outputs)}
    for table in _TABLES:
        for layer, value in getattr(result, table).items():
            arrays[f"{table}/{layer}"] = np.asarray(value)
    for layer, train in result.spike_trains.items():
        for part in _TRAIN:
            arrays[f"spike_trains/{layer}/{part}"] = np.asarray(getattr(train, part))
    return header, arrays


def read_result(path, header: dict, arrays: dict[str, np.ndarray]) -> SimResult:
    """The SimResult stored by :func:`result_payload` (``header`` already checked as evsim's)."""
    def array(key: str) -> np.ndarray:
        if key not in arrays:
            raise EvsimFileError(path, f"missing array '{key}' in the evsim result file")
        return arrays[key]

    fields = header["result"]
    scalars = {}
    for name, kind in _SCALARS.items():
        value = fields[name]
        if type(value) is not kind:
            raise EvsimFileError(path, f"field '{name}' is {value!r}, not a {kind.__name__}")
        scalars[name] = value
    layers = header["layers"]
    # files written before membrane_before_reset or pool_spike_counts existed lack them
    tables = {table: {layer: array(f"{table}/{layer}") for layer in layers.get(table, ())}
              for table in _TABLES}
    trains = {layer: SpikeTrain(*(array(f"spike_trains/{layer}/{part}") for part in _TRAIN))
              for layer in header["spike_trains"]}
    return SimResult(checkpoints=array("checkpoints"), outputs=array("outputs"),
                     macs={k: int(v) for k, v in header["macs"].items()},
                     neurons={k: int(v) for k, v in header["neurons"].items()},
                     negative_spikes={k: int(v)
                                      for k, v in header.get("negative_spikes", {}).items()},
                     options=dict(header["options"]), spike_trains=trains, **tables, **scalars)


__all__ = ["result_payload", "read_result"]
