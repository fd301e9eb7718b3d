"""Graph rewrites that leave the ANN's function unchanged."""

from __future__ import annotations

import numpy as np

from . import kinds
from . import layers as L
from .network import Network, Node
from .errors import EvsimValueError


def _rewire(nodes: list[Node], old: str, new: str) -> list[Node]:
    return [Node(n.name, n.layer, tuple(new if s == old else s for s in n.inputs)) for n in nodes]


def fold_batchnorm(network: Network) -> Network:
    """Fold every BatchNorm into an adjacent Dense, Conv2d or ConvTranspose2d.

    A BatchNorm is folded backward into the Dense/Conv2d/ConvTranspose2d that feeds it when it
    is that layer's only reader (``W' = W γ/σ``, ``b' = (b − μ) γ/σ + β``),
    otherwise forward into the Dense/Conv2d it alone feeds when that layer has
    no padding (padding would see zeros that BatchNorm never shifted). Any
    other BatchNorm raises a ValueError naming it.
    """
    net = network
    while True:
        bn = next((n for n in net if isinstance(n.layer, L.BatchNorm)), None)
        if bn is None:
            return net
        net = _fold_one(net, bn)


def _fold_one(net: Network, bn: Node) -> Network:
    scale, shift = bn.layer.scale_shift()
    src = net[bn.inputs[0]]
    nodes = list(net.nodes)
    if isinstance(src.layer, _FOLDS_BACKWARD) and net.consumers(src.name) == [bn.name]:
        weight = src.layer.weight.astype(np.float64)
        if isinstance(src.layer, L.ConvTranspose2d):
            bias = np.zeros(src.layer.out_channels)
            weight = _scale_transposed(weight, src.layer.groups, scale)
        else:
            bias = np.zeros(weight.shape[0])
            weight = weight * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
        if src.layer.bias is not None:
            bias = src.layer.bias.astype(np.float64)
        folded = src.layer.replace(weight=weight.astype(src.layer.weight.dtype),
                                   bias=(bias * scale + shift).astype(src.layer.weight.dtype))
        nodes = [Node(n.name, folded, n.inputs) if n.name == src.name else n
                 for n in nodes if n.name != bn.name]
        nodes = _rewire(nodes, bn.name, src.name)
        return Network(nodes, output=src.name if net.output_name == bn.name else net.output_name)

    readers = net.consumers(bn.name)
    dst = net[readers[0]] if len(readers) == 1 else None
    if dst is not None and bn.name != net.output_name and (
            (isinstance(dst.layer, L.Dense) and len(net.shape(bn.name)) == 1)
            or (isinstance(dst.layer, L.Conv2d) and dst.layer.padding == (0, 0))):
        weight = dst.layer.weight.astype(np.float64)
        bias = (np.zeros(weight.shape[0]) if dst.layer.bias is None
                else dst.layer.bias.astype(np.float64))
        if isinstance(dst.layer, L.Dense):
            new_bias = bias + weight @ shift
            weight = weight * scale[None, :]
        else:
            groups, cin_g = dst.layer.groups, weight.shape[1]
            cout_g = weight.shape[0] // groups
            new_bias = bias.copy()
            for g in range(groups):
                rows = slice(g * cout_g, (g + 1) * cout_g)
                chans = slice(g * cin_g, (g + 1) * cin_g)
                new_bias[rows] += np.einsum("oikl,i->o", weight[rows], shift[chans])
                weight[rows] = weight[rows] * scale[chans][None, :, None, None]
        folded = dst.layer.replace(weight=weight.astype(dst.layer.weight.dtype),
                                   bias=new_bias.astype(dst.layer.weight.dtype))
        nodes = [Node(n.name, folded, bn.inputs) if n.name == dst.name else n
                 for n in nodes if n.name != bn.name]
        return Network(nodes, output=net.output_name)

    shared = ", which has other readers" if isinstance(src.layer, _FOLDS_BACKWARD) else ""
    raise EvsimValueError(
        f"BatchNorm '{bn.name}' cannot be folded: it reads '{src.name}' "
        f"({type(src.layer).__name__}{shared}) "
        f"and feeds {readers or 'nothing'}; evsim folds a BatchNorm into the Dense/Conv2d/"
        "ConvTranspose2d before it (its only reader) or into an unpadded Dense/Conv2d that is "
        "its only reader (not into a ConvTranspose2d after it: its border outputs sum fewer "
        "inputs, so the BatchNorm's shift would not be a constant bias)")


#: The synapse kinds a BatchNorm after them (their only reader) folds into.
_FOLDS_BACKWARD = (L.Dense, L.Conv2d, L.ConvTranspose2d)


def _scale_transposed(weight: np.ndarray, groups: int, scale: np.ndarray) -> np.ndarray:
    """A transposed convolution's weight (C_in, C_out/g, KH, KW) with output channel
    ``g·C_out/g + j`` (group g's column j) scaled by ``scale`` (C_out,)."""
    cin, cout_g = weight.shape[:2]
    grouped = weight.reshape(groups, cin // groups, cout_g, *weight.shape[2:])
    return (grouped * scale.reshape(groups, 1, cout_g, 1, 1)).reshape(weight.shape)


def output_head(network: Network) -> L.Layer | None:
    """The network's output head (its output layer if that is a Sigmoid or Softmax), or
    None: apply it to a simulation's mean readout to compare with the ANN's output,
    ``evsim.kinds.apply(head, [result.mean_output()])`` (``docs/conventions.md``)."""
    layer = network[network.output_name].layer
    return layer if kinds.role_of(layer) == kinds.HEAD else None


def drop_output_head(network: Network) -> Network:
    """The network without its output head (a Sigmoid or Softmax that is its output), whose
    output is then the head's input: the readout a spiking network accumulates. The head
    is monotone, so the predicted class is the same; ``docs/conventions.md`` says how
    results are decoded. A head anywhere else raises an EvsimValueError naming it."""
    for node in network:
        if kinds.role_of(node.layer) != kinds.HEAD:
            continue
        readers = network.consumers(node.name)
        if node.name != network.output_name or readers:
            raise EvsimValueError(
                f"{type(node.layer).__name__} '{node.name}' feeds {readers}: a spiking network "
                "cannot carry it (spikes carry rectified linear values, and a sigmoid or "
                "softmax of them is no spike count); evsim applies a Sigmoid or Softmax only "
                "as the network's output, to the accumulated readout")
    if output_head(network) is None:
        return network
    output = network[network.output_name]
    return Network([n for n in network if n.name != output.name], output=output.inputs[0])


def commute_maxpool_activation(network: Network) -> Network:
    """Rewrite ``MaxPool -> activation`` as ``activation -> MaxPool``.

    Max pooling commutes with every non-decreasing activation (ReLU, Clip,
    QCFS), so the ANN's function is unchanged; the spiking network then pools
    spikes, which LIPooling does exactly. Only a MaxPool whose one reader is
    the activation is moved.
    """
    nodes = list(network.nodes)
    for pool in network:
        readers = network.consumers(pool.name)
        if kinds.role_of(pool.layer) != kinds.MAX_POOL or len(readers) != 1:
            continue
        act = network[readers[0]]
        if kinds.role_of(act.layer) != kinds.NEURON:
            continue
        nodes = _rewire(nodes, act.name, pool.name)
        nodes = [Node(act.name, act.layer, pool.inputs) if n.name == act.name
                 else Node(pool.name, pool.layer, (act.name,)) if n.name == pool.name else n
                 for n in nodes]
        output = pool.name if network.output_name == act.name else network.output_name
        return commute_maxpool_activation(Network(nodes, output=output))
    return network


#: Roles that read spikes and so cannot read the currents of a synapse or Add directly.
_NEEDS_SPIKES = (kinds.SYNAPSE, kinds.AVERAGE)


def insert_linear_neurons(network: Network) -> Network:
    """Put an :class:`~evsim.layers.Identity` activation at every linear bottleneck.

    A linear bottleneck is a Dense/Conv2d or Add output (or a Flatten of one) read by a
    Dense/Conv2d or an average pooling with no activation between them, as MobileNet-v2's
    projection convolutions are; its values are currents, which only a spiking layer, an
    Add or the readout can take. The identity node ``<layer>_linear`` (made unique) is put
    between the layer and those readers only, so the ANN's function is unchanged, and
    conversion makes it signed IF neurons with θ⁻ = θ (methods.md §5b). Layers computed
    from the input alone (analog ones) are left alone: they need no spikes. A max pooling or
    a Concat of currents is not rewritten (it stays an error naming the layer).
    """
    current = _current_layers(network)
    taken = {node.name for node in network}
    nodes, added = list(network.nodes), []
    for node in network:
        readers = [r for r in network.consumers(node.name)
                   if current[node.name] and kinds.role_of(network[r].layer) in _NEEDS_SPIKES]
        if not readers:
            continue
        name = f"{node.name}_linear"
        while name in taken:
            name += "_"
        taken.add(name)
        added.append(Node(name, L.Identity(), (node.name,)))
        nodes = [Node(n.name, n.layer, tuple(name if s == node.name else s for s in n.inputs))
                 if n.name in readers else n for n in nodes]
    return network.with_nodes(nodes + added) if added else network


def _current_layers(network: Network) -> dict[str, bool]:
    """Whether each layer carries currents: a synapse or Add (or a Flatten of one) that
    depends on some activation (as :mod:`evsim.signals` classes them with analog input)."""
    spiking: dict[str, bool] = {}
    current: dict[str, bool] = {}
    for node in network:
        role = kinds.role_of(node.layer)
        spiking[node.name] = role == kinds.NEURON or any(spiking[s] for s in node.inputs)
        current[node.name] = spiking[node.name] and (
            role in (kinds.SYNAPSE, kinds.SUM)
            or (role == kinds.RESHAPE and current[node.inputs[0]]))
    return current


__all__ = ["fold_batchnorm", "commute_maxpool_activation", "insert_linear_neurons",
           "drop_output_head", "output_head"]
