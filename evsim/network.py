"""The ANN graph: named layer records wired into a directed acyclic graph.

A :class:`Network` is immutable. It holds its nodes in topological order and
knows every node's per-image output shape; building one validates the graph
(every layer must reach the output) and every layer's shapes, and errors name
the layer and the shapes involved.

Build one with :class:`NetworkBuilder`, which reads like a model definition::

    b = NetworkBuilder(input_shape=(1, 28, 28))
    b.add_layer(Conv2d(w1, b1, padding=1), name="conv1")
    b.add_layer(ReLU(), name="relu1")
    skip = b.last
    b.add_layer(Conv2d(w2, b2, padding=1), name="conv2")
    b.add_layer(Add(), "conv2", skip, name="res1")
    ...
    network = b.build()
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import EvsimError
from .layers import Activation, Input, Layer, Shape, ShapeError


class GraphError(EvsimError, ValueError):
    """The graph is malformed (unknown input, cycle, duplicate name, ...)."""


@dataclass(frozen=True, eq=False)
class Node:
    """One layer in the graph: a unique ``name``, its record, and the names of its inputs."""

    name: str
    layer: Layer
    inputs: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise GraphError(f"node name must be a non-empty string without '/', got {self.name!r}")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        arity = type(self.layer).arity
        n = len(self.inputs)
        if (arity >= 0 and n != arity) or (arity < 0 and n < 2):
            want = "two or more" if arity < 0 else str(arity)
            raise GraphError(f"layer '{self.name}' ({type(self.layer).__name__}) takes {want} "
                             f"input(s), got {n}: {list(self.inputs)}")


class Network:
    """An ANN as an immutable DAG of :class:`Node` with one input and one output.

    Parameters
    ----------
    nodes:
        The nodes, in any order; exactly one must hold an :class:`~evsim.layers.Input`.
    output:
        Name of the output node; defaults to the only node that no other node
        consumes. Every other node must reach it (:class:`GraphError` names one
        that does not: its operations would be counted for nothing).
    """

    def __init__(self, nodes: Iterable[Node], output: str | None = None):
        nodes = list(nodes)
        by_name: dict[str, Node] = {}
        for node in nodes:
            if node.name in by_name:
                raise GraphError(f"two layers are named '{node.name}'")
            by_name[node.name] = node
        for node in nodes:
            for src in node.inputs:
                if src not in by_name:
                    raise GraphError(f"layer '{node.name}' reads '{src}', which does not exist")
        inputs = [n.name for n in nodes if isinstance(n.layer, Input)]
        if len(inputs) != 1:
            raise GraphError(f"a network needs exactly one Input layer, found {inputs or 'none'}")
        self._nodes = tuple(_topological_order(nodes, by_name))
        self._by_name = {n.name: n for n in self._nodes}
        self._consumers: dict[str, list[str]] = {n.name: [] for n in self._nodes}
        for node in self._nodes:
            for src in node.inputs:
                self._consumers[src].append(node.name)
        if output is None:
            sinks = [n.name for n in self._nodes if not self._consumers[n.name]]
            if len(sinks) != 1:
                raise GraphError(f"the network has {len(sinks)} unconsumed layers {sinks}; a "
                                 "network has one output, and every other layer must reach it")
            output = sinks[0]
        if output not in self._by_name:
            raise GraphError(f"output '{output}' is not a layer of the network")
        _check_all_reach(self._nodes, self._by_name, output)
        self.input_name: str = inputs[0]
        self.output_name: str = output
        self._shapes: dict[str, Shape] = {}
        for node in self._nodes:
            in_shapes = [self._shapes[s] for s in node.inputs]
            try:
                self._shapes[node.name] = tuple(node.layer.output_shape(in_shapes))
            except ShapeError as err:
                given = ", ".join(f"'{s}' {self._shapes[s]}" for s in node.inputs)
                raise ShapeError(f"layer '{node.name}' ({type(node.layer).__name__}): {err}"
                                 + (f" [inputs: {given}]" if given else "")) from None

    # -- access ----------------------------------------------------------------
    @property
    def nodes(self) -> tuple[Node, ...]:
        """All nodes in topological order (the input first)."""
        return self._nodes

    def __getitem__(self, name: str) -> Node:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no layer named '{name}'; layers are {list(self._by_name)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __iter__(self):
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def shape(self, name: str) -> Shape:
        """Per-image output shape of layer ``name``."""
        self[name]
        return self._shapes[name]

    def consumers(self, name: str) -> list[str]:
        """Names of the layers that read ``name``'s output, in topological order."""
        self[name]
        return list(self._consumers[name])

    @property
    def input_shape(self) -> Shape:
        return self._shapes[self.input_name]

    @property
    def output_shape(self) -> Shape:
        return self._shapes[self.output_name]

    @property
    def activations(self) -> list[str]:
        """Names of the activation layers (the ones that become spiking neurons)."""
        return [n.name for n in self._nodes if isinstance(n.layer, Activation)]

    def with_nodes(self, nodes: Iterable[Node], output: str | None = None) -> Network:
        """A new network from ``nodes`` keeping this output name unless another is given."""
        return Network(nodes, output=output or self.output_name)

    def equals(self, other: Network) -> bool:
        """True when both graphs have the same nodes, wiring, attributes and arrays, bit for bit."""
        if not isinstance(other, Network) or len(self) != len(other):
            return False
        if self.output_name != other.output_name:
            return False
        for a, b in zip(self._nodes, other._nodes):
            if (a.name, a.inputs, type(a.layer)) != (b.name, b.inputs, type(b.layer)):
                return False
            if a.layer.attributes() != b.layer.attributes():
                return False
            arrays_a, arrays_b = a.layer.arrays(), b.layer.arrays()
            if arrays_a.keys() != arrays_b.keys():
                return False
            for key, value in arrays_a.items():
                other_value = arrays_b[key]
                if value.dtype != other_value.dtype or not np.array_equal(value, other_value):
                    return False
        return True

    def summary(self) -> str:
        """A table of layers, their inputs, output shapes and parameter counts."""
        rows = [("layer", "kind", "inputs", "output shape", "params")]
        for node in self._nodes:
            params = sum(a.size for a in node.layer.arrays().values())
            rows.append((node.name, type(node.layer).__name__, ", ".join(node.inputs) or "-",
                         str(self._shapes[node.name]), str(params)))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Network({len(self)} layers, input {self.input_shape}, "
                f"output '{self.output_name}' {self.output_shape})")

    @classmethod
    def sequential(cls, input_shape: Sequence[int], layers: Sequence[Layer],
                   names: Sequence[str] | None = None) -> Network:
        """A chain ``input -> layers[0] -> layers[1] -> ...``."""
        builder = NetworkBuilder(input_shape)
        for i, layer in enumerate(layers):
            builder.add_layer(layer, name=None if names is None else names[i])
        return builder.build()


def _check_all_reach(nodes: tuple[Node, ...], by_name: dict[str, Node], output: str) -> None:
    """Raise GraphError naming the first layer whose result never reaches ``output``.

    Such a branch would be computed, and its MACs, SOPs and energy counted,
    without changing the output.
    """
    live, stack = {output}, [output]
    while stack:
        for src in by_name[stack.pop()].inputs:
            if src not in live:
                live.add(src)
                stack.append(src)
    dead = [n for n in nodes if n.name not in live]
    if dead:
        first = dead[0]
        others = f" (and {len(dead) - 1} more: {[n.name for n in dead[1:4]]})" if len(
            dead) > 1 else ""
        raise GraphError(f"layer '{first.name}' ({type(first.layer).__name__}) never reaches the "
                         f"output '{output}'{others}: it would be computed and its operations "
                         "counted without changing the output; remove it or make the output "
                         "depend on it")


def _topological_order(nodes: list[Node], by_name: dict[str, Node]) -> list[Node]:
    order: list[Node] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    for root in nodes:
        if state.get(root.name) == 2:
            continue
        stack = [(root, 0)]
        while stack:
            node, i = stack.pop()
            if i == 0:
                if state.get(node.name) == 2:
                    continue
                state[node.name] = 1
            if i < len(node.inputs):
                stack.append((node, i + 1))
                src = by_name[node.inputs[i]]
                if state.get(src.name) == 1:
                    raise GraphError(f"the graph has a cycle through '{src.name}'")
                if state.get(src.name) != 2:
                    stack.append((src, 0))
            else:
                state[node.name] = 2
                order.append(node)
    return order


class NetworkBuilder:
    """Builds a :class:`Network` one layer at a time.

    ``add_layer(layer, *inputs, name=None)`` appends a layer reading the named
    inputs, or the most recently added layer when none are given, and returns
    the new layer's name. Names default to ``<kind><n>`` (``conv2d1``, ``relu2``, ...).
    """

    def __init__(self, input_shape: Sequence[int], input_name: str = "input"):
        self._nodes: list[Node] = [Node(input_name, Input(tuple(input_shape)))]
        self._counts: dict[str, int] = {}
        self._network_shapes: dict[str, Shape] = {input_name: tuple(int(s) for s in input_shape)}
        self.last: str = input_name
        self.input: str = input_name

    def add_layer(self, layer: Layer, *inputs: str, name: str | None = None) -> str:
        """Append ``layer`` reading ``inputs`` (default: the last layer); return its name."""
        if isinstance(layer, Input):
            raise GraphError("a network has exactly one Input; it is created by the builder")
        if name is None:
            self._counts[layer.kind] = self._counts.get(layer.kind, 0) + 1
            name = f"{layer.kind}{self._counts[layer.kind]}"
            while name in self._network_shapes:
                self._counts[layer.kind] += 1
                name = f"{layer.kind}{self._counts[layer.kind]}"
        if name in self._network_shapes:
            raise GraphError(f"a layer named '{name}' already exists")
        inputs = inputs or (self.last,)
        for src in inputs:
            if src not in self._network_shapes:
                raise GraphError(f"layer '{name}' reads '{src}', which has not been added")
        node = Node(name, layer, tuple(inputs))
        try:
            shape = tuple(layer.output_shape([self._network_shapes[s] for s in inputs]))
        except ShapeError as err:
            given = ", ".join(f"'{s}' {self._network_shapes[s]}" for s in inputs)
            raise ShapeError(f"layer '{name}' ({type(layer).__name__}): {err} "
                             f"[inputs: {given}]") from None
        self._network_shapes[name] = shape
        self._nodes.append(node)
        self.last = name
        return name

    def shape(self, name: str) -> Shape:
        """Per-image output shape of an added layer."""
        return self._network_shapes[name]

    def build(self, output: str | None = None) -> Network:
        """The finished network; ``output`` defaults to the last added layer."""
        return Network(self._nodes, output=output or self.last)


__all__ = ["Node", "Network", "NetworkBuilder", "GraphError"]
