"""Activation statistics for normalisation: the scale λ of each activation layer.

:func:`activation_scales` gives the classic rules (max; a percentile of all
activations, zeros included, as SpikingJelly and BrainCog take it, or of the
positive ones, as the SNN Conversion Toolbox does; per layer or per channel);
:func:`braincog_scales` gives λ exactly as BrainCog's burst/SpiCalib converter
computes it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from .forward import _check_inputs, _forward_chunk, forward
from .network import Network
from .threads import one_blas_thread, sharing_threads
from .errors import EvsimValueError

STATISTICS = ("max", "percentile")
#: Which activations a percentile is taken over.
PERCENTILE_OF = ("all", "positive")


def _layer_lambda(values: np.ndarray, statistic: str, percentile: float, of: str) -> float:
    positive = values[values > 0]
    if positive.size == 0:
        return 0.0
    if statistic == "max":
        return float(positive.max())
    if of == "all":
        lam = float(np.percentile(values, percentile))
        if lam > 0:
            return lam
        # more than (100 - p) % of the values are zero: a threshold of 0 is no threshold
    return float(np.percentile(positive, percentile))


def _kth_smallest(values: np.ndarray, k: int) -> np.floating:
    """``np.sort(values)[k]`` of a 1-D array, without sorting it.

    A p-point of calibration lies near the top of millions of values, many of them equal
    (zeros, clipped ones), where NumPy's selection is slow (0.17 s for 1.25 M clipped
    ReLU outputs). So the values below an estimate taken from a strided sample are
    counted, and only those at or above it are selected from; when the counts show the
    estimate too high (or NaNs present), the whole array is.
    """
    n = values.size
    sample = np.sort(values[::max(1, n // 8192)])
    at = int(k / n * sample.size) - max(8, sample.size // 64)  # safely below rank k
    if at > 0:
        low = sample[at]
        below = np.count_nonzero(values < low)
        equal = np.count_nonzero(values == low)
        if below <= k:
            if k < below + equal:
                return low
            higher = values[values > low]
            if below + equal + higher.size == n:  # else NaNs, which sort last
                return np.partition(higher, k - below - equal)[k - below - equal]
    return np.partition(values, k)[k]


def activation_scales(network: Network, inputs: np.ndarray, *, statistic: str = "percentile",
                      percentile: float | Mapping[str, float] = 99.9, percentile_of: str = "all",
                      channelwise: bool = False, batch_size: int = 256,
                      progress: bool = False) -> dict[str, np.ndarray]:
    """λ for every activation layer from its ANN outputs on ``inputs``.

    An activation with a negative slope (LeakyReLU, the identity of a linear bottleneck)
    becomes signed neurons whose spikes carry ±θ: its λ is taken of the magnitudes ``|a|``
    of its outputs, so that θ covers both signs (methods.md §5b).

    Parameters
    ----------
    network:
        The ANN (activations are read after the activation function).
    inputs:
        Calibration images ``(B, *input_shape)``, from training data.
    statistic:
        ``"max"`` (Diehl 2015) or ``"percentile"`` (Rueckauer 2017).
    percentile:
        p in (0, 100] for ``statistic="percentile"``, 99.9 by default; or
        ``{layer: p}`` with one value per activation layer.
    percentile_of:
        ``"all"`` activations of the layer on the calibration images, zeros
        included (as SpikingJelly's and BrainCog's converters take it), or
        only the ``"positive"`` ones (as the SNN Conversion Toolbox does; λ is
        then higher). When more than (100 − p) % of the values are zero,
        ``"all"`` would give λ = 0, and the positive values are used.
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
        raise EvsimValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    if percentile_of not in PERCENTILE_OF:
        raise EvsimValueError(
            f"percentile_of must be one of {PERCENTILE_OF}, got {percentile_of!r}")
    names = network.activations
    per_layer = _per_layer(percentile, names, "percentile")
    for name, p in per_layer.items():
        if not 0 < p <= 100:
            raise EvsimValueError(f"percentile for layer '{name}' must be in (0, 100], got {p}")
    acts = _activations(network, inputs, names, batch_size, progress)
    scales = {}
    for name in names:
        values = acts.pop(name)
        if network[name].layer.negative_slope > 0:  # signed neurons: λ covers both signs
            values = np.abs(values)
        if channelwise:
            per_channel = np.moveaxis(values, 1, 0).reshape(values.shape[1], -1)
            lam = np.array([_layer_lambda(c, statistic, per_layer[name], percentile_of)
                            for c in per_channel])
            silent = np.flatnonzero(lam == 0)
            if silent.size:
                warnings.warn(f"layer '{name}': {silent.size} channel(s) never activate on the "
                              f"calibration data (first {silent[:5].tolist()}); using λ = 1",
                              stacklevel=2)
                lam[silent] = 1.0
            scales[name] = lam.reshape((-1,) + (1,) * (values.ndim - 2))
        else:
            lam = _layer_lambda(values, statistic, per_layer[name], percentile_of)
            if lam == 0:
                warnings.warn(f"layer '{name}' never activates on the calibration data; "
                              "using λ = 1", stacklevel=2)
                lam = 1.0
            scales[name] = np.float64(lam)
    return scales


def _per_layer(value: float | Mapping[str, float], names: list[str],
               what: str) -> dict[str, float]:
    """``{layer: value}`` from one value for all layers or a mapping that must cover ``names``;
    ``what`` names the parameter in the error."""
    if not isinstance(value, Mapping):
        return dict.fromkeys(names, float(value))
    missing = set(names) - set(value)
    if missing:
        raise EvsimValueError(f"{what} has no value for layer(s) {sorted(missing)}")
    return {name: float(value[name]) for name in names}


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


def braincog_scales(network: Network, inputs: np.ndarray, *, p: float | Mapping[str, float] = 0.99,
                    clip: float | None = 5.0, batch_size: int = 100) -> dict[str, np.float64]:
    """λ for every activation layer by BrainCog's rule (the published SpiCalib normalisation).

    This reproduces ``HookScale`` and ``Convertor.register_hook`` /
    ``get_percentile`` in BrainCog's ``braincog/base/conversion/convertor.py``
    (repository BrainCog-X/Brain-Cog, commit
    08fe6458831120d28364bc5f69d427071fc69cd7; the same ``HookScale`` backs
    its ``PercentConvertor``), the code behind SpiCalib's paper:

    1. The ANN runs on ``inputs`` in consecutive batches of ``batch_size``
       images (BrainCog: the calibration data loader's batches; its CIFAR-10
       example uses one batch of 100 training images).
    2. After every activation layer the output is clipped from above at
       ``clip`` (BrainCog passes its burst limit Γ, 5 in the example), in
       activation units, and the **clipped** tensor is what the next layers
       receive: the clip propagates through the calibration pass.
    3. Per batch and layer, all values of the clipped output tensor of the
       whole batch, zeros included, are sorted and the value at index
       ``int(N * p) - 1`` is taken (N = batch images × neurons).
    4. λ is the maximum of that value over the batches.

    BrainCog hooks only ``nn.ReLU`` modules; here every activation layer
    (ReLU, Clip, QCFS) is one. So λ ≤ ``clip``, and a spiking layer with
    threshold λ and burst limit Γ covers activations up to Γλ.

    Parameters
    ----------
    network:
        The ANN (activations are read after the activation function).
    inputs:
        Calibration images ``(B, *input_shape)``, from training data.
    p:
        BrainCog's ``p``, a fraction in (0, 1] (its examples use 0.99; its
        defaults 0.9995 and 0.9999); not a percentage. ``{layer: p}`` gives
        one value per activation layer.
    clip:
        The bound applied during the calibration pass (Γ); ``None`` for no clip.
    batch_size:
        Images per batch; the last batch may be smaller.

    Returns
    -------
    ``{layer: λ}`` as float64 scalars (float32 values, as computed). Where the
    p-point is 0 on every batch (fewer than a fraction 1 − p of the values are
    positive) BrainCog would divide by zero; here λ is then the largest
    (clipped) value the layer reached, or 1 if it never activates, with a
    warning naming the layer.
    """
    names = set(network.activations)
    per_layer = _per_layer(p, network.activations, "p")
    for name, fraction in per_layer.items():
        if not 0 < fraction <= 1:
            raise EvsimValueError(f"p is a fraction in (0, 1] (BrainCog's convention), got "
                                  f"{fraction} for layer '{name}'")
    if clip is not None and not float(clip) > 0:
        raise EvsimValueError(f"clip must be positive or None, got {clip}")
    if int(batch_size) < 1:
        raise EvsimValueError(f"batch_size must be >= 1, got {batch_size}")
    x = _check_inputs(network, inputs, np.float32)
    if len(x) == 0:
        raise EvsimValueError("braincog_scales needs at least one calibration image")
    bound = None if clip is None else np.float32(clip)
    scales = dict.fromkeys(network.activations, np.float32(0))
    largest = dict.fromkeys(network.activations, np.float32(0))

    def observe(name: str, out: np.ndarray) -> np.ndarray:
        """Record a layer's p-point and maximum; later layers read the clipped values."""
        if name not in names:
            return out
        if bound is not None:
            out = np.minimum(out, bound)
        flat = out.reshape(-1)
        k = int(flat.size * per_layer[name]) - 1
        if k < 0:
            raise EvsimValueError(f"layer '{name}': int(N * p) - 1 = {k} with N = "
                                  f"{flat.size} values per batch; raise p or batch_size")
        point = _kth_smallest(flat, k)
        scales[name] = max(scales[name], point)
        largest[name] = max(largest[name], flat.max())
        return out

    threads = sharing_threads(None)
    with one_blas_thread():  # as in forward: results independent of the core count
        for start in range(0, len(x), int(batch_size)):
            _forward_chunk(network, x[start:start + int(batch_size)], set(), threads, observe)
    result = {}
    for name, lam in scales.items():
        if lam == 0:
            fallback = largest[name] if largest[name] > 0 else np.float32(1)
            warnings.warn(f"layer '{name}': the p = {per_layer[name]} point of its activations is "
                          "0 on every "
                          f"calibration batch; using λ = {float(fallback):.4g} (its largest "
                          "value, or 1 if it never activates)", stacklevel=2)
            lam = fallback
        result[name] = np.float64(lam)
    return result


__all__ = ["activation_scales", "braincog_scales", "STATISTICS", "PERCENTILE_OF"]
