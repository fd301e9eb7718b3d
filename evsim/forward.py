"""The ANN reference forward pass in NumPy."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from . import kinds
from .errors import EvsimTypeError, EvsimValueError
from .network import Network
from .spiking import SpikingNetwork
from .threads import one_blas_thread, sharing_threads
from .validate import check_batch_size, check_finite


def _check_inputs(network: Network, inputs: np.ndarray, dtype) -> np.ndarray:
    x = np.asarray(inputs)
    if x.dtype.kind not in "fiub":
        raise EvsimTypeError(f"inputs must be numeric, got dtype {x.dtype}")
    if x.shape[1:] != network.input_shape:
        if x.shape == network.input_shape:
            raise EvsimValueError(f"inputs have shape {x.shape}, a single image; add a batch "
                                  f"axis: inputs[None] has shape {(1,) + x.shape}")
        raise EvsimValueError(f"inputs have shape {x.shape}; the network expects "
                              f"(batch, {', '.join(map(str, network.input_shape))})")
    return x.astype(dtype, copy=False)


def forward(network: Network, inputs: np.ndarray, *, activations: bool | Iterable[str] = False,
            batch_size: int = 256, dtype=np.float32, threads: int | None = None):
    """Run the ANN on a batch.

    Parameters
    ----------
    network:
        The ANN (BatchNorm may still be present; it is applied as is).
    inputs:
        Array ``(B, *network.input_shape)``, batch first, channel first; NaN
        and infinite values are refused.
    activations:
        ``True`` to also return every layer's output, or an iterable of layer
        names to return only those.
    batch_size:
        Images per chunk (bounds memory).
    dtype:
        Computation dtype, float32 by default.
    threads:
        Threads sharing each chunk's images, with BLAS held to one thread when
        ``threadpoolctl`` is installed (extra ``threads``), so that results do
        not depend on the thread count nor on the machine's number of cores
        (BLAS's own threads round differently); they do depend on
        ``batch_size``, as BLAS rounds a GEMM by its shape. Default: every core
        this process may use with ``threadpoolctl``, else 1 (BLAS then uses the
        cores itself).

    Returns
    -------
    The output ``(B, *network.output_shape)``; with ``activations``, a pair
    ``(output, {layer name: (B, *shape)})``.
    """
    if isinstance(network, SpikingNetwork):
        raise EvsimTypeError("forward runs an ANN, but got a SpikingNetwork: pass snn.network "
                             "for the ANN it was converted from, or simulate it with "
                             "evsim.simulate(snn, inputs)")
    if not isinstance(network, Network):
        raise EvsimTypeError(f"forward needs a Network, got {type(network).__name__}")
    batch_size = check_batch_size(batch_size)
    n_threads = sharing_threads(threads)
    x = _check_inputs(network, inputs, dtype)
    check_finite(x)
    if activations is True:
        keep = {n.name for n in network}
    elif activations is False:
        keep = set()
    else:
        keep = set(activations)
        for name in keep:
            network[name]
    outputs, kept = [], {name: [] for name in keep}
    with one_blas_thread():
        for start in range(0, max(len(x), 1), batch_size):
            values = _forward_chunk(network, x[start:start + batch_size], keep, n_threads)
            outputs.append(values[network.output_name])
            for name in keep:
                kept[name].append(values[name])
    output = np.concatenate(outputs) if outputs else np.empty((0,) + network.output_shape, dtype)
    if activations is False:
        return output
    return output, {name: np.concatenate(parts) for name, parts in kept.items()}


def _forward_chunk(network: Network, x: np.ndarray, keep: set[str], threads: int,
                   visit: Callable[[str, np.ndarray], np.ndarray] | None = None
                   ) -> dict[str, np.ndarray]:
    """Every layer's output on ``x`` (those no later layer reads dropped, unless in
    ``keep`` or the network's output); ``visit(name, output)``, if given, sees each output
    and returns what later layers read instead. Call under :func:`one_blas_thread`."""
    values: dict[str, np.ndarray] = {network.input_name: x}
    remaining = {n.name: len(network.consumers(n.name)) for n in network}
    for node in network.nodes[1:]:
        out = kinds.apply(node.layer, [values[s] for s in node.inputs], threads)
        values[node.name] = out if visit is None else visit(node.name, out)
        for src in node.inputs:
            remaining[src] -= 1
            if remaining[src] == 0 and src not in keep and src != network.output_name:
                del values[src]
    return values


__all__ = ["forward"]
