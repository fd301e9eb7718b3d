"""Segmentation: the class of every pixel from a readout of per-class scores."""

from __future__ import annotations

import numpy as np

from ..errors import EvsimValueError

__all__ = ["decode_masks"]


def decode_masks(readout: np.ndarray) -> np.ndarray:
    """The arg-max class per pixel of ``readout``.

    Parameters
    ----------
    readout:
        ``(N, classes, H, W)`` per-class scores (logits, probabilities or an SNN's
        mean output: any monotone map gives the same masks), ``2 <= classes <= 256``.
        For Fashion-MNIST scenes channel 0 is background and channel ``1 + c`` class
        ``c``, as in :attr:`evsim.data.Scenes.masks`.

    Returns
    -------
    numpy.ndarray
        uint8 ``(N, H, W)``: the channel with the largest score. Ties go to the
        lowest channel, so a readout that is still all zeros (an SNN before its
        first output spike) decodes to channel 0, background.
    """
    readout = np.asarray(readout)
    if readout.ndim != 4 or not 2 <= readout.shape[1] <= 256:
        raise EvsimValueError(
            f"decode_masks: readout must be (N, classes, H, W) with 2..256 classes, got "
            f"shape {readout.shape}; a segmenter's output layer gives one channel per class")
    if not np.issubdtype(readout.dtype, np.number) or np.isnan(readout).any():
        raise EvsimValueError("decode_masks: readout must be numbers without NaN")
    return readout.argmax(axis=1).astype(np.uint8)
