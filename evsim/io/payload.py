"""What evsim's file format stores of an object: a JSON header and named NumPy arrays.

:func:`evsim.save` writes them (:mod:`evsim.io.native`) and :func:`evsim.io.content_hash`
hashes them (:mod:`evsim.io.hashing`). A network stores each node's kind, inputs and
attributes in the header and its parameter arrays as ``node/<layer>/<field>``; a spiking
network adds ``neuron/<layer>/<field>``; a result is stored as :mod:`evsim.io.results`
describes.
"""

from __future__ import annotations

import numpy as np

from ..errors import EvsimTypeError
from ..network import Network
from ..result import SimResult
from ..spiking import SpikingNetwork
from .results import result_payload


def network_payload(network: Network) -> tuple[dict, dict[str, np.ndarray]]:
    """The graph's JSON header (nodes in order, output) and its parameter arrays."""
    nodes, arrays = [], {}
    for node in network:
        layer_arrays = node.layer.arrays()
        nodes.append({"name": node.name, "kind": node.layer.kind, "inputs": list(node.inputs),
                      "attributes": node.layer.attributes(), "arrays": sorted(layer_arrays)})
        for key, value in layer_arrays.items():
            arrays[f"node/{node.name}/{key}"] = value
    return {"output": network.output_name, "nodes": nodes}, arrays


def payload(obj) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON header (without format and version) and the arrays that store ``obj``."""
    if isinstance(obj, SpikingNetwork):
        graph, arrays = network_payload(obj.network)
        header = {"kind": "spiking_network", "graph": graph, "max_pool": obj.max_pool,
                  "time_scheme": obj.time_scheme, "method": obj.method,
                  "options": obj.options, "neurons": {}}
        for name, spec in obj.neurons.items():
            header["neurons"][name] = spec.attributes()
            arrays[f"neuron/{name}/threshold"] = spec.threshold
            arrays[f"neuron/{name}/v_init"] = spec.v_init
            if spec.signed:
                arrays[f"neuron/{name}/negative_threshold"] = spec.negative_threshold
        return header, arrays
    if isinstance(obj, Network):
        graph, arrays = network_payload(obj)
        return {"kind": "network", "graph": graph}, arrays
    if isinstance(obj, SimResult):
        return result_payload(obj)
    raise EvsimTypeError(f"can save a Network, SpikingNetwork or SimResult, not "
                         f"{type(obj).__name__}")


__all__ = ["payload", "network_payload"]
