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

Both learn λ by gradient descent. Needs the ``torch`` extra. The activations
(:mod:`evsim.training.activations`) sit below the importers, which recognise them;
:func:`estimate_noise` (:mod:`evsim.training.noise`) converts and simulates, so it is
loaded when first used.
"""

from __future__ import annotations

from ..extras import require

require("torch", "evsim.training")  # the one message, even when the activations are loaded

from .activations import QCFS, ClipReLU, NoisyQCFS  # noqa: E402


def __getattr__(name: str):
    if name == "estimate_noise":
        from .noise import estimate_noise
        return estimate_noise
    raise AttributeError(f"module 'evsim.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = ["ClipReLU", "QCFS", "NoisyQCFS", "estimate_noise"]
