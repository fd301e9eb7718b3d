"""Fidelity of a spiking network's task answer to its ANN's, at every checkpoint.

What SpiCalib optimises is the SNN's *output*, not only its top class, so two
numbers per checkpoint ``t`` (readout = mean output over steps ``1..t``):

* ``mse``: the mean squared difference between the SNN's readout and the ANN's
  output, over all images and output values;
* ``agreement``: how often the decoded answers agree — for segmentation the fraction
  of pixels whose arg-max class equals the ANN's; for detection the mAP@.5 of the
  SNN's boxes scored with the ANN's boxes (decoded with the same settings) as the
  ground truth (:func:`~evsim.analysis.detection.map50`; NaN when the ANN finds no box).

The ANN's output is what ``evsim.forward(snn.network, images)`` returns for the
simulated images: the network after conversion, whose output head (a Sigmoid or
Softmax) was dropped, so both sides are logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EvsimValueError
from ..result import SimResult
from ..tasks import (CenterNetHead, checkpoint_readout, decode_checkpoints, decode_detections,
                     decode_masks)
from .detection import map50

__all__ = ["TaskFidelity", "detection_fidelity", "segmentation_fidelity"]


@dataclass(frozen=True)
class TaskFidelity:
    """``checkpoints`` ``(K,)``; ``mse`` ``(K,)`` readout against ANN output; ``agreement``
    ``(K,)`` in [0, 1] (pixel agreement or mAP@.5 against the ANN's boxes)."""

    checkpoints: np.ndarray
    mse: np.ndarray
    agreement: np.ndarray


def _check_ann_output(result: SimResult, ann_output: np.ndarray) -> np.ndarray:
    ann_output = np.asarray(ann_output, np.float64)
    expected = (result.n_images,) + result.outputs.shape[2:]
    if ann_output.shape != expected:
        raise EvsimValueError(f"fidelity: the ANN output has shape {ann_output.shape} but the "
                              f"result's readout is {expected}; pass evsim.forward("
                              "snn.network, images) of the simulated images")
    return ann_output


def _mse(result: SimResult, ann_output: np.ndarray) -> np.ndarray:
    return np.array([((checkpoint_readout(result, k) - ann_output) ** 2).mean()
                     for k in range(len(result.checkpoints))])


def segmentation_fidelity(result: SimResult, ann_output: np.ndarray) -> TaskFidelity:
    """Readout MSE and pixel agreement of the arg-max masks with the ANN's, per checkpoint."""
    ann_output = _check_ann_output(result, ann_output)
    ann_masks = decode_masks(ann_output)
    agreement = decode_checkpoints(result, lambda readout: float(
        (decode_masks(readout) == ann_masks).mean()))
    return TaskFidelity(result.checkpoints.copy(), _mse(result, ann_output),
                        np.array(agreement))


def detection_fidelity(result: SimResult, ann_output: np.ndarray, head: CenterNetHead, *,
                       score_threshold: float = 0.05, top_k: int = 100,
                       iou_threshold: float = 0.5) -> TaskFidelity:
    """Readout MSE and mAP@.5 of the SNN's boxes against the ANN's boxes, per checkpoint.

    Both sides are decoded by :func:`~evsim.tasks.decode_detections` with these settings.
    """
    ann_output = _check_ann_output(result, ann_output)
    settings = dict(score_threshold=score_threshold, top_k=top_k, iou_threshold=iou_threshold)
    ann = decode_detections(ann_output, head, **settings)
    truth_boxes, truth_labels = [d.boxes for d in ann], [d.labels for d in ann]
    agreement = decode_checkpoints(result, lambda readout: map50(
        decode_detections(readout, head, **settings), truth_boxes, truth_labels))
    return TaskFidelity(result.checkpoints.copy(), _mse(result, ann_output),
                        np.array(agreement))
