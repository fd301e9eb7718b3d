"""Training-time activations for conversion-friendly ANNs (PyTorch modules).

Train an ANN with these in place of ReLU and :func:`evsim.io.torch.from_torch`
maps them to evsim's :class:`~evsim.layers.Clip` and
:class:`~evsim.layers.QCFS` with the learned bound λ, which the ``"opi"`` and
``"qcfs"`` conversion methods take as thresholds.

- :class:`ClipReLU` is OPI's threshold-clipped ReLU (TCL): ``clamp(x, 0, λ)``.
- :class:`QCFS` is the quantisation-clip-floor-shift activation
  ``λ clamp(floor(x L / λ + shift), 0, L) / L`` with a straight-through floor.
- :class:`NoisyQCFS` is NQ's training activation (methods.md §5): QCFS minus
  Gaussian noise ``σ ε`` in training mode, with σ re-estimated each epoch by
  :func:`estimate_noise`, which simulates the network as an SNN with evsim's
  dense engine (at T = 4 as NQ's paper code, or at several T).

Both learn λ by gradient descent. Needs the ``torch`` extra. The activations are
defined in :mod:`evsim.torch_activations`, below the importers that recognise them;
:func:`estimate_noise` converts and simulates, so this module sits above the engines.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from .errors import EvsimValueError
from .extras import require
from .torch_activations import QCFS, ClipReLU, NoisyQCFS

torch = require("torch", "evsim.training")
nn = torch.nn


def estimate_noise(model: nn.Module, images, input_shape, *, T: int | Sequence[int] = 4,
                   batch_size: int = 128) -> dict[str, float]:
    """Set every :class:`NoisyQCFS`'s σ to the std of its ANN-minus-SNN residual; return them.

    The whole network is converted as QCFS (θ = λ, v(0) = θ/2, subtractive
    reset) and simulated for ``T`` steps on ``images`` (held out from the
    training batches; NumPy ``(B, *input_shape)``) with evsim's dense engine,
    upstream layers spiking; the noise-free ANN runs on the same images.
    σ_l = std(a_l − θ_l N_l / T) over neurons and images.

    ``T`` may be a sequence of step counts: σ_l is then the largest of the
    per-T values. NQ's paper code estimates at T = 4 only, where the first
    spiking layer (constant analog input, T = L) reproduces the QCFS grid
    exactly and so gets σ = 0; a larger T in the sequence adds that layer's
    rounding mismatch (its T + 1 levels against the L-level grid), so the
    network cannot learn to rely on the exact grid and the SNN holds its
    accuracy at every T. Returns ``{module path: σ}``.
    """
    from .convert import convert
    from .forward import forward
    from .io.torch import from_torch, module_layer_names
    from .simulate import simulate

    noisy = {path: m for path, m in model.named_modules() if isinstance(m, NoisyQCFS)}
    if not noisy:
        raise EvsimValueError("the model has no NoisyQCFS activation to estimate noise for")
    steps = [T] if isinstance(T, numbers.Real) else list(T)
    if not steps or any(not isinstance(t, numbers.Integral) or t < 1 for t in steps):
        raise EvsimValueError(f"T must be a positive int or a non-empty sequence of them, got {T}")
    names = module_layer_names(model, input_shape)
    snn = convert(from_torch(model, input_shape), method="qcfs")
    images = np.asarray(images, dtype=np.float32)
    layers = [names[path] for path in noisy]
    _, ann = forward(snn.network, images, activations=layers)
    sigmas = dict.fromkeys(noisy, 0.0)
    for t in steps:
        result = simulate(snn, images, T=int(t), per_image_counts=True, batch_size=batch_size)
        for path in noisy:
            layer = names[path]
            rate = snn.neurons[layer].threshold * result.spike_counts[layer] / int(t)
            sigma = float(np.std(ann[layer].astype(np.float64) - rate))
            sigmas[path] = max(sigmas[path], sigma)
    for path, module in noisy.items():
        module.sigma.fill_(sigmas[path])
    return sigmas


__all__ = ["ClipReLU", "QCFS", "NoisyQCFS", "estimate_noise"]
