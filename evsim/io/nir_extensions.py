"""evsim's NIR extension nodes: what NIR 1.0 cannot say, written so other readers refuse it.

NIR 1.0 has no max pooling. ``to_nir(snn, extensions=True)`` writes a spiking
max pool as an ``EvsimMaxPool2d`` node: kernel, stride and padding as
``nir.SumPool2d`` has them, plus ``ceil_mode`` and ``mode`` (``"lipooling"``:
the cumulative output count is the max of the cumulative input counts per
window, methods.md §3; ``"gate"``: the spike-count gate). Padding never wins.
Its input and output carry spikes of amplitude 1, like every NIR edge.

Readers that do not know the node fail loudly: ``nir.read`` rejects the
unknown type (an ``AssertionError`` in nir 1.0.8), and in-memory graphs reach
other tools' converters as a node class they do not map. :func:`read_graph`
reads a file holding such nodes; :func:`evsim.io.load_nir` uses it.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from .. import layers as L
from ..extras import require
from ..errors import EvsimValueError

MAX_POOL_TYPE = "EvsimMaxPool2d"


@functools.cache
def max_pool_node(nir) -> type:
    """The ``EvsimMaxPool2d`` node class, built on the installed ``nir.NIRNode``."""

    @dataclass(eq=False)
    class EvsimMaxPool2d(nir.NIRNode):
        """Spiking max pooling over (C, H, W) spike counts (an evsim extension of NIR).

        ``input_shape`` is (C, H, W); ``kernel_size``, ``stride``, ``padding``
        are (2,) integer arrays; ``mode`` is ``"lipooling"`` or ``"gate"``.
        """

        input_shape: np.ndarray
        kernel_size: np.ndarray
        stride: np.ndarray
        padding: np.ndarray
        ceil_mode: bool
        mode: str

        def __post_init__(self):
            self.input_shape = np.asarray(self.input_shape, dtype=np.int64).reshape(-1)
            for name in ("kernel_size", "stride", "padding"):
                setattr(self, name, np.asarray(getattr(self, name), np.int64).reshape(2))
            self.ceil_mode = bool(self.ceil_mode)
            self.mode = self.mode.decode() if isinstance(self.mode, bytes) else str(self.mode)
            if self.mode not in ("lipooling", "gate"):
                raise EvsimValueError(f"{MAX_POOL_TYPE}: mode must be 'lipooling' or 'gate', got "
                                      f"{self.mode!r}")
            if self.input_shape.size != 3:
                raise EvsimValueError(f"{MAX_POOL_TYPE}: input_shape must be (C, H, W), got "
                                      f"{tuple(self.input_shape)}")
            out = self.layer().output_shape([tuple(int(s) for s in self.input_shape)])
            self.input_type = {"input": self.input_shape.copy()}
            self.output_type = {"output": np.array(out)}

        def layer(self) -> L.MaxPool2d:
            """The evsim layer this node stands for."""
            return L.MaxPool2d(tuple(int(k) for k in self.kernel_size),
                               tuple(int(s) for s in self.stride),
                               tuple(int(p) for p in self.padding), ceil_mode=self.ceil_mode)

    EvsimMaxPool2d.__name__ = EvsimMaxPool2d.__qualname__ = MAX_POOL_TYPE
    return EvsimMaxPool2d


def read_graph(nir, path: str | os.PathLike):
    """Read an HDF5 NIR file whose top-level graph may hold evsim's extension nodes.

    Standard nodes are built by nir itself (``nir.dict2NIRNode``); the graph is
    built without nir's type check, as :func:`evsim.io.load_nir` always does.
    """
    h5py = require("h5py", "reading NIR files")
    from nir.serialization import hdf2dict

    with h5py.File(path, "r") as f:
        data = hdf2dict(f["node"])
    if data.get("type") != "NIRGraph":
        raise EvsimValueError(f"the top-level node is {data.get('type')!r}, not a NIRGraph")
    extension = max_pool_node(nir)
    nodes = {}
    for name, node in data["nodes"].items():
        if node.get("type") == MAX_POOL_TYPE:
            fields = {k: v for k, v in node.items() if k not in ("type", "metadata")}
            nodes[name] = extension(**fields, metadata=node.get("metadata", {}))
        else:
            nodes[name] = nir.dict2NIRNode(node)
    edges = [tuple(e.decode() if isinstance(e, bytes) else str(e) for e in edge)
             for edge in data["edges"]]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=data.get("metadata", {}),
                        type_check=False)


__all__ = ["MAX_POOL_TYPE", "max_pool_node", "read_graph"]
