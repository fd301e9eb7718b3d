"""Training-time activations for conversion-friendly ANNs (PyTorch modules).

Train an ANN with these in place of ReLU and :func:`evsim.io.torch.from_torch`
maps them to evsim's :class:`~evsim.layers.Clip` and
:class:`~evsim.layers.QCFS` with the learned bound λ, which the ``"opi"`` and
``"qcfs"`` conversion methods take as thresholds.

- :class:`ClipReLU` is OPI's threshold-clipped ReLU (TCL): ``clamp(x, 0, λ)``.
- :class:`QCFS` is the quantisation-clip-floor-shift activation
  ``λ clamp(floor(x L / λ + shift), 0, L) / L`` with a straight-through floor.

Both learn λ by gradient descent. Needs the ``torch`` extra.
"""

from __future__ import annotations

try:
    import torch
    from torch import nn
except ImportError as err:  # pragma: no cover - exercised only without torch
    raise ImportError("evsim.training needs PyTorch: pip install evsim[torch]") from err


def _bound(init: float) -> nn.Parameter:
    value = float(init)
    if not value > 0:
        raise ValueError(f"the initial bound λ must be positive, got {init}")
    return nn.Parameter(torch.tensor(value))


class ClipReLU(nn.Module):
    """``clamp(x, 0, λ)`` with a trainable bound λ (``lam``), differentiable in λ."""

    def __init__(self, init: float = 4.0):
        super().__init__()
        self.lam = _bound(init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.relu(x), self.lam)

    def extra_repr(self) -> str:
        return f"lam={float(self.lam):.4g}"


class QCFS(nn.Module):
    """``λ clamp(floor(x L / λ + shift), 0, L) / L`` with trainable λ and L ``levels``.

    The floor passes gradients straight through, so λ and the layers below
    train as with a clipped ReLU.
    """

    def __init__(self, levels: int = 4, init: float = 8.0, shift: float = 0.5):
        super().__init__()
        if int(levels) < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        self.levels = int(levels)
        self.shift = float(shift)
        self.lam = _bound(init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x * self.levels / self.lam + self.shift
        q = z + (torch.floor(z) - z).detach()  # straight-through floor
        return self.lam * torch.clamp(q, 0, self.levels) / self.levels

    def extra_repr(self) -> str:
        return f"levels={self.levels}, lam={float(self.lam):.4g}, shift={self.shift}"


__all__ = ["ClipReLU", "QCFS"]
