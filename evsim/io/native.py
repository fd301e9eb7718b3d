"""evsim's own file format: one ``.npz`` with NumPy arrays plus a JSON header.

No pickle: the header is UTF-8 JSON stored as a uint8 array named
``__evsim__``; every parameter array is stored under ``node/<layer>/<field>``
(and ``neuron/<layer>/<field>`` for a spiking network; a
:class:`~evsim.result.SimResult` as :mod:`evsim.io.results` describes).
Loading uses ``allow_pickle=False``; saving then loading gives back identical
arrays. Files are written atomically and read errors name the file.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..errors import EvsimFileError, EvsimValueError
from ..layers import LAYER_KINDS
from ..network import Network, Node
from ..result import SimResult
from ..spiking import NeuronSpec, SpikingNetwork
from .atomic import atomic_file
from .errors import reading
from .hashing import array_digest, content_hash  # re-exported: defined here up to evsim 0.1
from .npz import NpzArchive
from .payload import payload
from .results import read_result

FORMAT_VERSION = 1
_HEADER = "__evsim__"


def save(obj: Network | SpikingNetwork | SimResult, path: str | os.PathLike) -> None:
    """Write a Network, SpikingNetwork or SimResult to ``path`` (``.npz`` is appended if
    missing); :func:`load` reads it back exactly.

    The file is replaced atomically (:mod:`evsim.io.atomic`): an interrupted
    save leaves the old file intact. Missing parent folders are created.
    """
    header, arrays = payload(obj)
    header.update(format="evsim", version=FORMAT_VERSION)
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise EvsimValueError(f"cannot save: conversion options must be JSON values ({err})"
                              ) from None
    arrays[_HEADER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _write_npz(path, arrays)


def npz_path(path: str | os.PathLike) -> str:
    """The file :func:`save` writes for ``path``: ``.npz`` appended if missing. A path with no
    file name ('', a folder's 'out/', '.npz') is refused: it would write a hidden '.npz'."""
    name = os.fspath(path)
    target = name if name.endswith(".npz") else name + ".npz"
    if os.path.basename(target) == ".npz":
        raise EvsimFileError(name or "''", "has no file name; give one, e.g. 'snn.npz'")
    return target


def _write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    with atomic_file(npz_path(path)) as stream:
        np.savez_compressed(stream, **arrays)


def _build_network(graph: dict, arrays: dict, path) -> Network:
    nodes = []
    for entry in graph["nodes"]:
        cls = LAYER_KINDS.get(entry["kind"])
        if cls is None:
            raise EvsimFileError(path, f"layer '{entry['name']}' has unknown kind "
                                 f"'{entry['kind']}' (written by a newer evsim?)")
        kwargs = dict(entry["attributes"])
        for key in entry["arrays"]:
            kwargs[key] = arrays[f"node/{entry['name']}/{key}"]
        for key, value in kwargs.items():
            if isinstance(value, list):
                kwargs[key] = tuple(value)
        nodes.append(Node(entry["name"], cls(**kwargs), tuple(entry["inputs"])))
    return Network(nodes, output=graph["output"])


def load(path: str | os.PathLike) -> Network | SpikingNetwork | SimResult:
    """Read a file written by :func:`save`.

    Raises :class:`~evsim.errors.EvsimFileError`, naming the file and what is
    wrong, for a missing, damaged or foreign file.
    """
    with reading(path, "evsim .npz file"), NpzArchive(path) as arrays:
        header = _header(path, arrays)
        if header.get("kind") == "sim_result":
            _check_result_sizes(header, arrays)
            return read_result(path, header, arrays)
        try:
            network = _build_network(header["graph"], arrays, path)
            if header["kind"] == "network":
                return network
            neurons = {name: NeuronSpec(threshold=arrays[f"neuron/{name}/threshold"],
                                        v_init=arrays[f"neuron/{name}/v_init"],
                                        negative_threshold=arrays.get(
                                            f"neuron/{name}/negative_threshold"), **attrs)
                       for name, attrs in header["neurons"].items()}
            return SpikingNetwork(network, neurons, max_pool=header["max_pool"],
                                  time_scheme=header["time_scheme"], method=header["method"],
                                  options=header["options"])
        except KeyError as err:
            raise EvsimFileError(path, f"missing entry {err} in the evsim file") from None


def _header(path, arrays: NpzArchive) -> dict:
    """The JSON header of an evsim file."""
    if _HEADER not in arrays:
        raise EvsimFileError(path, "no evsim header; is this a file written by evsim.save?")
    try:
        header = json.loads(arrays[_HEADER].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EvsimFileError(path, f"corrupt evsim header ({err})") from None
    if not isinstance(header, dict) or header.get("format") != "evsim" or not isinstance(
            header.get("version"), int) or header["version"] > FORMAT_VERSION:
        shown = (header.get("format"), header.get("version")) if isinstance(header, dict) else ()
        raise EvsimFileError(path, f"unsupported format/version {shown}; this evsim reads "
                             f"evsim files up to version {FORMAT_VERSION}")
    return header


def _check_result_sizes(header: dict, arrays: NpzArchive) -> None:
    """Refuse, before decompressing them, per-layer tables of a result larger than its header
    allows: counts of at most ``n_images`` × neurons, counters of at most T steps, traces of
    at most T × ``n_images`` × neurons."""
    fields, neurons = header["result"], header["neurons"]
    images, steps = max(int(fields["n_images"]), 1), max(int(fields["T"]), 1)
    largest = max([int(n) for n in neurons.values()] or [0])
    bounds = {"spike_counts": images * largest, "pool_spike_counts": images * largest,
              "sops": steps, "pool_ops": steps, "recorded": largest,
              "membrane": steps * images * largest,
              "membrane_before_reset": steps * images * largest}
    for table, layers in header["layers"].items():
        for layer in layers:
            key = f"{table}/{layer}"
            if table in bounds and key in arrays:
                declared = arrays.declared(key)
                if int(np.prod(declared.shape, dtype=object)) > bounds[table]:
                    raise EvsimFileError(arrays.path, f"array '{key}' declares shape "
                                         f"{declared.shape}, more than a result of "
                                         f"{images} images, T = {steps} and layers of at "
                                         f"most {largest} neurons can hold")


__all__ = ["save", "load", "content_hash", "array_digest", "FORMAT_VERSION"]
