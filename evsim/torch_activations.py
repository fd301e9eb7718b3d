"""The PyTorch activations of :mod:`evsim.training` (import them from there):
:class:`ClipReLU`, :class:`QCFS` and :class:`NoisyQCFS`, with the learned bound λ that
conversion takes as threshold.

A module of its own, below the importers: :func:`evsim.io.torch.from_torch` recognises
them, and :mod:`evsim.training` converts and simulates. Needs the ``torch`` extra.
"""

from __future__ import annotations

from .errors import EvsimValueError
from .extras import require

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


__all__ = ["ClipReLU", "QCFS", "NoisyQCFS"]
