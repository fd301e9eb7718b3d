"""Activation statistics for normalisation: the scale λ of each activation layer."""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from .forward import forward
from .network import Network

STATISTICS = ("max", "percentile")


def _layer_lambda(values: np.ndarray, statistic: str, percentile: float) -> float:
    positive = values[values > 0]
    if positive.size == 0:
        return 0.0
    if statistic == "max":
        return float(positive.max())
    return float(np.percentile(positive, percentile))


def activation_scales(network: Network, inputs: np.ndarray, *, statistic: str = "percentile",
                      percentile: float | Mapping[str, float] = 99.9, channelwise: bool = False,
                      batch_size: int = 256, progress: bool = False) -> dict[str, np.ndarray]:
    """λ for every activation layer from its ANN outputs on ``inputs``.

    Parameters
    ----------
    network:
        The ANN (activations are read after the activation function).
    inputs:
        Calibration images ``(B, *input_shape)``, from training data.
    statistic:
        ``"max"`` (Diehl 2015) or ``"percentile"`` of the positive activations
        (Rueckauer 2017).
    percentile:
        p in (0, 100] for ``statistic="percentile"``, 99.9 by default; or
        ``{layer: p}`` with one value per activation layer.
    channelwise:
        One λ per channel (axis 0 of the layer's shape) instead of per layer.
    batch_size:
        Images per forward chunk.
    progress:
        Show a progress bar (stderr) over the images.

    Returns
    -------
    ``{layer: λ}``: float64 scalars, or arrays ``(C, 1, 1)`` / ``(N,)`` when
    ``channelwise``. A layer (or channel) that never activates gets λ = 1 and a
    warning naming it.
    """
    if statistic not in STATISTICS:
        raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    names = network.activations
    if isinstance(percentile, Mapping):
        missing = set(names) - set(percentile)
        if missing:
            raise ValueError(f"percentile has no value for layer(s) {sorted(missing)}")
        per_layer = {name: float(percentile[name]) for name in names}
    else:
        per_layer = dict.fromkeys(names, float(percentile))
    for name, p in per_layer.items():
        if not 0 < p <= 100:
            raise ValueError(f"percentile for layer '{name}' must be in (0, 100], got {p}")
    acts = _activations(network, inputs, names, batch_size, progress)
    scales = {}
    for name in names:
        values = acts.pop(name)
        if channelwise:
            per_channel = np.moveaxis(values, 1, 0).reshape(values.shape[1], -1)
            lam = np.array([_layer_lambda(c, statistic, per_layer[name]) for c in per_channel])
            silent = np.flatnonzero(lam == 0)
            if silent.size:
                warnings.warn(f"layer '{name}': {silent.size} channel(s) never activate on the "
                              f"calibration data (first {silent[:5].tolist()}); using λ = 1",
                              stacklevel=2)
                lam[silent] = 1.0
            scales[name] = lam.reshape((-1,) + (1,) * (values.ndim - 2))
        else:
            lam = _layer_lambda(values, statistic, per_layer[name])
            if lam == 0:
                warnings.warn(f"layer '{name}' never activates on the calibration data; "
                              "using λ = 1", stacklevel=2)
                lam = 1.0
            scales[name] = np.float64(lam)
    return scales


def _activations(network: Network, inputs: np.ndarray, names: list[str], batch_size: int,
                 progress: bool) -> dict[str, np.ndarray]:
    """The ANN outputs of ``names`` on ``inputs``, chunk by chunk under an optional progress bar."""
    if not progress:
        return forward(network, inputs, activations=names, batch_size=batch_size)[1]
    from tqdm.auto import tqdm

    parts: dict[str, list] = {name: [] for name in names}
    with tqdm(total=len(inputs), unit="image", desc="calibrate") as bar:
        for start in range(0, len(inputs), batch_size):
            chunk = inputs[start:start + batch_size]
            _, acts = forward(network, chunk, activations=names, batch_size=batch_size)
            for name in names:
                parts[name].append(acts[name])
            bar.update(len(chunk))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


__all__ = ["activation_scales", "STATISTICS"]
