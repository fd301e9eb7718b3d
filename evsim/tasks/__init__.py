"""Decoding a network's readout into a task's answer: class masks and detected boxes.

* :mod:`evsim.tasks.segmentation` -- :func:`decode_masks`, the arg-max class per pixel
  of a readout ``(N, classes, H, W)``;
* :mod:`evsim.tasks.boxes` -- box geometry: :func:`box_iou`, class-wise :func:`nms`;
* :mod:`evsim.tasks.detection` -- the CenterNet-style head (:class:`CenterNetHead`):
  :func:`decode_detections` turns a readout ``(N, classes + 2 [+ 2], h, w)`` into
  :class:`Detections` per image; :func:`centernet_targets` builds the training targets
  the decoder inverts;
* :mod:`evsim.tasks.checkpoints` -- the same at every checkpoint of a
  :class:`~evsim.SimResult` (either engine, or the Dask path):
  :func:`checkpoint_masks`, :func:`checkpoint_detections`, :func:`decode_checkpoints`.

All NumPy; the metrics that score the answers are in :mod:`evsim.analysis.segmentation`,
:mod:`evsim.analysis.detection` and :mod:`evsim.analysis.fidelity`.
"""

from .boxes import box_iou, nms
from .checkpoints import (checkpoint_detections, checkpoint_masks, checkpoint_readout,
                          decode_checkpoints)
from .detection import CenterNetHead, Detections, centernet_targets, decode_detections
from .segmentation import decode_masks

__all__ = [
    "CenterNetHead",
    "Detections",
    "box_iou",
    "centernet_targets",
    "checkpoint_detections",
    "checkpoint_masks",
    "checkpoint_readout",
    "decode_checkpoints",
    "decode_detections",
    "decode_masks",
    "nms",
]
