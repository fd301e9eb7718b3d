"""Box geometry for detection: intersection over union and non-maximum suppression.

Boxes are ``(x0, y0, x1, y1)`` in pixels with ``x0 <= x1`` and ``y0 <= y1``; a box
covers the continuous region ``[x0, x1) × [y0, y1)``, so its area is
``(x1 − x0)(y1 − y0)`` (no "+1", as in COCO and torchvision).
"""

from __future__ import annotations

import numpy as np

from ..errors import EvsimValueError

__all__ = ["box_iou", "check_boxes", "nms"]


def check_boxes(boxes: np.ndarray, what: str) -> np.ndarray:
    """``boxes`` as float64 ``(K, 4)``; raises naming ``what`` unless ``x0 <= x1, y0 <= y1``."""
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise EvsimValueError(f"{what}: boxes must be (K, 4) as (x0, y0, x1, y1), got shape "
                              f"{boxes.shape}")
    if not np.isfinite(boxes).all() or np.any(boxes[:, 2] < boxes[:, 0]) \
            or np.any(boxes[:, 3] < boxes[:, 1]):
        raise EvsimValueError(f"{what}: boxes must be finite with x0 <= x1 and y0 <= y1")
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` intersection over union of two sets of boxes ``(K, 4)``.

    Two empty boxes have IoU 0.
    """
    a, b = check_boxes(a, "box_iou"), check_boxes(b, "box_iou")
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
        iou_threshold: float) -> np.ndarray:
    """Class-wise greedy non-maximum suppression; the indices kept, best score first.

    Boxes are visited by descending score (ties: lower index first); a box is
    dropped when it overlaps an already kept box *of the same label* with IoU
    strictly greater than ``iou_threshold`` (torchvision's ``batched_nms`` rule).
    """
    boxes = check_boxes(boxes, "nms")
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    if scores.shape != (len(boxes),) or labels.shape != (len(boxes),):
        raise EvsimValueError(f"nms: scores {scores.shape} and labels {labels.shape} must be "
                              f"({len(boxes)},), one per box")
    if not 0.0 <= iou_threshold <= 1.0:
        raise EvsimValueError(f"nms: iou_threshold must lie in [0, 1], got {iou_threshold}")
    order = np.argsort(-scores, kind="stable")
    overlaps = box_iou(boxes, boxes) > iou_threshold
    overlaps &= labels[:, None] == labels[None, :]
    suppressed = np.zeros(len(boxes), bool)
    kept = []
    for index in order:
        if not suppressed[index]:
            kept.append(index)
            suppressed |= overlaps[index]
    return np.asarray(kept, np.int64)
