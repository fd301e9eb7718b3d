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

Both learn λ by gradient descent. Needs the ``torch`` extra.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from .extras import require
from .errors import EvsimValueError

torch = require("torch", "evsim.training")
nn = torch.nn


def _bound(init: float) -> nn.Parameter:
    value = float(init)
    if not value > 0:
        raise EvsimValueError(f"the initial bound λ must be positive, got {init}")
    return nn.Parameter(torch.tensor(value))


class ClipReLU(nn.Module):
    """``clamp(x, 0, λ)`` with a trainable bound λ (``lam``), differentiable in λ."""

    def __init__(self, init: float = 4.0):
        super().__init__()
        self.lam = _bound(init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.relu(x), self.lam)

    def extra_repr(self) -> str:
        return f"lam={float(self.lam.detach()):.4g}"


class _QCFSFunction(torch.autograd.Function):
    """QCFS with the straight-through floor, its gradient written out (fewer passes on CPU).

    It is the gradient autograd derives for ``q = z + (floor(z) − z).detach()``,
    ``y = λ clamp(q, 0, L) / L`` with ``z = x L / λ + shift``: with the mask
    m = [0 ≤ floor(z) ≤ L], ∂y/∂x = m and ∂y/∂λ = clamp(floor(z), 0, L)/L − m x/λ.
    """

    @staticmethod
    def forward(ctx, x, lam, levels: int, shift: float):
        q = torch.floor(x * levels / lam + shift)
        ctx.save_for_backward(x, lam, q)
        ctx.levels = levels
        return lam * torch.clamp(q, 0, levels) / levels

    @staticmethod
    def backward(ctx, grad):
        x, lam, q = ctx.saved_tensors
        levels = ctx.levels
        grad_x = torch.where((q >= 0) & (q <= levels), grad, 0)
        grad_lam = (grad * torch.clamp(q, 0, levels)).sum() / levels - (grad_x * x).sum() / lam
        return grad_x, grad_lam, None, None


class QCFS(nn.Module):
    """``λ clamp(floor(x L / λ + shift), 0, L) / L`` with trainable λ and L ``levels``.

    The floor passes gradients straight through, so λ and the layers below
    train as with a clipped ReLU (∂/∂x = 1 where 0 ≤ floor(x L/λ + shift) ≤ L).
    """

    def __init__(self, levels: int = 4, init: float = 8.0, shift: float = 0.5):
        super().__init__()
        if int(levels) < 1:
            raise EvsimValueError(f"levels must be >= 1, got {levels}")
        self.levels = int(levels)
        self.shift = float(shift)
        self.lam = _bound(init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _QCFSFunction.apply(x, self.lam, self.levels, self.shift)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, lam={float(self.lam.detach()):.4g}, shift={self.shift}"


class NoisyQCFS(QCFS):
    """QCFS with NQ's residual-error noise: ``QCFS(x) − σ ε``, ε ~ N(0, 1), in training only.

    ``sigma`` is a buffer (0 at first); :func:`estimate_noise` sets it. At
    inference (``eval()``) the module is exactly a QCFS, and it converts as one.
    """

    def __init__(self, levels: int = 4, init: float = 8.0, shift: float = 0.5):
        super().__init__(levels, init, shift)
        self.register_buffer("sigma", torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if self.training and float(self.sigma) > 0:
            out = out - self.sigma * torch.randn_like(out)
        return out

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, sigma={float(self.sigma):.4g}"


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
    import numpy as np

    from . import convert, forward, simulate
    from .io.torch import from_torch, module_layer_names

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
