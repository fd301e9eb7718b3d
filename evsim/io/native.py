"""evsim's own file format: one ``.npz`` with NumPy arrays plus a JSON header.

No pickle: the header is UTF-8 JSON stored as a uint8 array named
``__evsim__``; every parameter array is stored under ``node/<layer>/<field>``
(and ``neuron/<layer>/<field>`` for a spiking network; a
:class:`~evsim.simulate.SimResult` as :mod:`evsim.io.results` describes).
Loading uses ``allow_pickle=False``; saving then loading gives back identical
arrays. Files are written atomically and read errors name the file.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from ..errors import EvsimFileError, EvsimTypeError, EvsimValueError
from ..layers import LAYER_KINDS
from ..network import Network, Node
from ..simulate.result import SimResult
from ..spiking import NeuronSpec, SpikingNetwork
from .atomic import atomic_file
from .errors import reading
from .results import read_result, result_payload

FORMAT_VERSION = 1
_HEADER = "__evsim__"


def _network_payload(network: Network) -> tuple[dict, dict[str, np.ndarray]]:
    nodes, arrays = [], {}
    for node in network:
        layer_arrays = node.layer.arrays()
        nodes.append({"name": node.name, "kind": node.layer.kind, "inputs": list(node.inputs),
                      "attributes": node.layer.attributes(), "arrays": sorted(layer_arrays)})
        for key, value in layer_arrays.items():
            arrays[f"node/{node.name}/{key}"] = value
    return {"output": network.output_name, "nodes": nodes}, arrays


def _payload(obj) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON header (without format and version) and the arrays that store ``obj``."""
    if isinstance(obj, SpikingNetwork):
        graph, arrays = _network_payload(obj.network)
        header = {"kind": "spiking_network", "graph": graph, "max_pool": obj.max_pool,
                  "time_scheme": obj.time_scheme, "method": obj.method,
                  "options": obj.options, "neurons": {}}
        for name, spec in obj.neurons.items():
            header["neurons"][name] = spec.attributes()
            arrays[f"neuron/{name}/threshold"] = spec.threshold
            arrays[f"neuron/{name}/v_init"] = spec.v_init
        return header, arrays
    if isinstance(obj, Network):
        graph, arrays = _network_payload(obj)
        return {"kind": "network", "graph": graph}, arrays
    if isinstance(obj, SimResult):
        return result_payload(obj)
    raise EvsimTypeError(f"can save a Network, SpikingNetwork or SimResult, not "
                         f"{type(obj).__name__}")


def save(obj: Network | SpikingNetwork | SimResult, path: str | os.PathLike) -> None:
    """Write a Network, SpikingNetwork or SimResult to ``path`` (``.npz`` is appended if
    missing); :func:`load` reads it back exactly.

    The file is replaced atomically (:mod:`evsim.io.atomic`): an interrupted
    save leaves the old file intact. Missing parent folders are created.
    """
    header, arrays = _payload(obj)
    header.update(format="evsim", version=FORMAT_VERSION)
    try:
        text = json.dumps(header, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise EvsimValueError(f"cannot save: conversion options must be JSON values ({err})"
                              ) from None
    arrays[_HEADER] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    _write_npz(path, arrays)


def content_hash(obj: Network | SpikingNetwork) -> str:
    """SHA-256 (hex) of everything :func:`save` stores of ``obj``: the same for a network
    and its saved-and-loaded copy, different as soon as one value differs."""
    header, arrays = _payload(obj)
    digest = hashlib.sha256(json.dumps(header, sort_keys=True, default=repr).encode("utf-8"))
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"\0{key}\0{array.dtype.str}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def array_digest(array: np.ndarray) -> str:
    """SHA-256 (hex) of an array's dtype, shape and values (e.g. to recognise a data set)."""
    x = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{x.dtype.str}\0{x.shape}\0".encode())
    digest.update(x.tobytes())
    return digest.hexdigest()


def _write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    name = os.fspath(path)
    with atomic_file(name if name.endswith(".npz") else name + ".npz") as stream:
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
    with reading(path, "evsim .npz file"):
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        header = _header(path, arrays)
        if header.get("kind") == "sim_result":
            return read_result(path, header, arrays)
        try:
            network = _build_network(header["graph"], arrays, path)
            if header["kind"] == "network":
                return network
            neurons = {name: NeuronSpec(threshold=arrays[f"neuron/{name}/threshold"],
                                        v_init=arrays[f"neuron/{name}/v_init"], **attrs)
                       for name, attrs in header["neurons"].items()}
            return SpikingNetwork(network, neurons, max_pool=header["max_pool"],
                                  time_scheme=header["time_scheme"], method=header["method"],
                                  options=header["options"])
        except KeyError as err:
            raise EvsimFileError(path, f"missing entry {err} in the evsim file") from None


def _header(path, arrays: dict) -> dict:
    """The JSON header of an evsim file, removed from ``arrays``."""
    if _HEADER not in arrays:
        raise EvsimFileError(path, "no evsim header; is this a file written by evsim.save?")
    try:
        header = json.loads(arrays.pop(_HEADER).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise EvsimFileError(path, f"corrupt evsim header ({err})") from None
    if not isinstance(header, dict) or header.get("format") != "evsim" or not isinstance(
            header.get("version"), int) or header["version"] > FORMAT_VERSION:
        shown = (header.get("format"), header.get("version")) if isinstance(header, dict) else ()
        raise EvsimFileError(path, f"unsupported format/version {shown}; this evsim reads "
                             f"evsim files up to version {FORMAT_VERSION}")
    return header


__all__ = ["save", "load", "content_hash", "array_digest", "FORMAT_VERSION"]
