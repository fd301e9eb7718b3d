"""A task's answer at every checkpoint of a simulation.

A :class:`~evsim.SimResult` keeps the output layer's summed values at each
checkpoint ``t`` (``outputs[k]``); the readout at ``t`` is their mean over steps
``1..t`` (:meth:`~evsim.SimResult.mean_output`), the SNN's estimate of the ANN's
output. Decoding it at every checkpoint shows how the answer improves with T. The
result is the same record for the event and dense engines and for the Dask path,
so these functions serve all three.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from .detection import CenterNetHead, Detections, decode_detections
from .segmentation import decode_masks
from ..errors import EvsimTypeError
from ..result import SimResult

__all__ = ["checkpoint_detections", "checkpoint_masks", "checkpoint_readout",
           "decode_checkpoints"]

Answer = TypeVar("Answer")


def _check_result(result: object, what: str) -> SimResult:
    if not isinstance(result, SimResult):
        raise EvsimTypeError(f"{what}: expected a SimResult (from evsim.simulate), got "
                             f"{type(result).__name__}")
    return result


def checkpoint_readout(result: SimResult, k: int) -> np.ndarray:
    """float64 ``(n_images, *output_shape)``: the mean output at checkpoint number ``k``."""
    result = _check_result(result, "checkpoint_readout")
    return result.outputs[k].astype(np.float64) / float(result.checkpoints[k])


def decode_checkpoints(result: SimResult, decode: Callable[[np.ndarray], Answer]
                       ) -> list[Answer]:
    """``[decode(readout at checkpoint k) for each k]``, one readout in memory at a time.

    ``decode`` takes the float64 mean output ``(n_images, *output_shape)``; the list
    is aligned with ``result.checkpoints``.
    """
    result = _check_result(result, "decode_checkpoints")
    return [decode(checkpoint_readout(result, k)) for k in range(len(result.checkpoints))]


def checkpoint_masks(result: SimResult) -> np.ndarray:
    """uint8 ``(K, n_images, H, W)``: :func:`~evsim.tasks.decode_masks` at every checkpoint.

    The network's output must be ``(classes, H, W)``.
    """
    return np.stack(decode_checkpoints(result, decode_masks))


def checkpoint_detections(result: SimResult, head: CenterNetHead, *,
                          score_threshold: float = 0.05, top_k: int = 100,
                          iou_threshold: float = 0.5) -> list[list[Detections]]:
    """:func:`~evsim.tasks.decode_detections` at every checkpoint: ``[k][image]``.

    The network's output must be ``(head.channels, h, w)``.
    """
    return decode_checkpoints(result, lambda readout: decode_detections(
        readout, head, score_threshold=score_threshold, top_k=top_k,
        iou_threshold=iou_threshold))
