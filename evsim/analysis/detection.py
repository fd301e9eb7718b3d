"""Detection metrics: COCO-style mean average precision, in NumPy and with pycocotools.

:func:`average_precision` follows COCO's evaluation (``pycocotools.cocoeval``,
``iouType="bbox"``, area range "all", no crowd boxes) step for step, so its figures
are comparable with papers and agree with :func:`coco_map` (a test holds them to
1e-6):

1. Per image and class, the detections are sorted by descending score (stable) and
   the first ``max_detections`` (100) kept.
2. Per IoU threshold ``t``, each detection in that order is matched to the
   not-yet-matched ground-truth box of its class with the highest IoU ``>= t``
   (:func:`~evsim.tasks.box_iou`, areas without "+1"); unmatched detections are false
   positives.
3. Per class, the detections of all images are sorted by descending score (stable,
   images in order); precision and recall follow from the running true- and
   false-positive counts, precision is made non-increasing from the right, and AP is
   the mean of the precision at the 101 recall points 0, 0.01, …, 1 (0 beyond the
   highest recall reached).
4. mAP is the mean AP over the classes with at least one ground-truth box; a class
   with ground truth but no detection has AP 0.

Names: ``"COCO_mAP"`` is mAP over IoU thresholds 0.50:0.05:0.95, the metric
NeuroBench calls ``COCO_mAP``; ``"mAP@.5"`` is mAP at IoU 0.5 (PASCAL-VOC-like, with
COCO's 101-point interpolation).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import EvsimValueError
from ..extras import require
from ..result import SimResult
from ..tasks import CenterNetHead, Detections, box_iou, checkpoint_detections

__all__ = ["COCO_IOU_THRESHOLDS", "DetectionCurve", "average_precision", "coco_map",
           "detection_vs_t", "map50"]

#: COCO's IoU thresholds, 0.50:0.05:0.95, computed as pycocotools computes them.
COCO_IOU_THRESHOLDS = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1)
_RECALL_POINTS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1)


def _check_inputs(detections: Sequence[Detections], boxes: Sequence[np.ndarray],
                  labels: Sequence[np.ndarray]) -> None:
    if not len(detections) == len(boxes) == len(labels):
        raise EvsimValueError(f"average precision: {len(detections)} detection lists, "
                              f"{len(boxes)} box arrays and {len(labels)} label arrays; give "
                              "one of each per image")
    for i, (image_boxes, image_labels) in enumerate(zip(boxes, labels)):
        if np.shape(image_boxes) != (len(image_labels), 4):
            raise EvsimValueError(f"average precision: image {i} has boxes "
                                  f"{np.shape(image_boxes)} for {len(image_labels)} labels")


def _match(ious: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """bool ``(thresholds, D)``: which detections match a ground-truth box.

    ``ious`` ``(D, G)``: detections in matching order (by class, best score first),
    −1 between a detection and a true box of another class.
    """
    matched = np.zeros((len(thresholds), len(ious)), bool)
    for t, threshold in enumerate(thresholds):
        threshold = min(threshold, 1 - 1e-10)
        taken = np.zeros(ious.shape[1], bool)
        for d in np.flatnonzero((ious >= threshold).any(axis=1)):
            candidates = np.where(~taken & (ious[d] >= threshold), ious[d], -1.0)
            if candidates.max() >= 0:
                # pycocotools keeps the highest IoU, and the later box among equals
                best = len(candidates) - 1 - int(np.argmax(candidates[::-1]))
                taken[best] = matched[t, d] = True
    return matched


def _image_matches(found: Detections, truth_boxes: np.ndarray, truth_labels: np.ndarray,
                   thresholds: np.ndarray, max_detections: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image: the scores, labels and matches ``(thresholds, D)`` of its detections,
    by class, best score first, at most ``max_detections`` per class."""
    order = np.argsort(-found.scores, kind="mergesort")
    order = order[np.argsort(found.labels[order], kind="mergesort")]
    labels = found.labels[order]
    first = np.searchsorted(labels, labels, side="left")
    order = order[np.arange(len(order)) - first < max_detections]
    ious = box_iou(found.boxes[order], truth_boxes)
    ious[found.labels[order][:, None] != truth_labels[None, :]] = -1.0
    return found.scores[order], found.labels[order], _match(ious, thresholds)


def _precision_at_recall_points(scores: np.ndarray, matched: np.ndarray,
                                n_truth: int) -> np.ndarray:
    """``(thresholds,)`` AP: the mean precision at the 101 recall points (COCO's accumulate)."""
    order = np.argsort(-scores, kind="mergesort")
    true_pos = np.cumsum(matched[:, order], axis=1).astype(np.float64)
    false_pos = np.cumsum(~matched[:, order], axis=1).astype(np.float64)
    ap = np.zeros(len(matched))
    for t in range(len(matched)):
        recall = true_pos[t] / n_truth
        precision = true_pos[t] / (false_pos[t] + true_pos[t] + np.spacing(1))
        precision = np.maximum.accumulate(precision[::-1])[::-1]
        points = np.searchsorted(recall, _RECALL_POINTS, side="left")
        reached = points < len(precision)
        ap[t] = precision[points[reached]].sum() / len(_RECALL_POINTS)
    return ap


def average_precision(detections: Sequence[Detections], boxes: Sequence[np.ndarray],
                      labels: Sequence[np.ndarray], *,
                      iou_thresholds: Sequence[float] = (0.5,),
                      max_detections: int = 100) -> np.ndarray:
    """Per-class AP, COCO's rules (module docstring): float64 ``(classes, thresholds)``.

    ``detections`` (one :class:`~evsim.tasks.Detections` per image) are scored against
    the ground truth ``boxes`` ``(K_i, 4)`` and ``labels`` ``(K_i,)`` of each image.
    The classes are ``0 .. max label + 1`` over truth and detections; a class with no
    ground-truth box has AP NaN. ``np.nanmean`` over classes gives mAP.
    """
    _check_inputs(detections, boxes, labels)
    thresholds = np.asarray(iou_thresholds, np.float64)
    truth_labels = [np.asarray(x, np.int64) for x in labels]
    parts = [_image_matches(found, np.asarray(image_boxes, np.float64), image_labels,
                            thresholds, max_detections)
             for found, image_boxes, image_labels in zip(detections, boxes, truth_labels)]
    scores = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0)
    found_labels = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    matched = (np.concatenate([p[2] for p in parts], axis=1) if parts
               else np.zeros((len(thresholds), 0), bool))
    all_truth = np.concatenate(truth_labels) if truth_labels else np.zeros(0, np.int64)
    classes = 1 + int(max(all_truth.max(initial=-1), found_labels.max(initial=-1)))
    n_truth = np.bincount(all_truth, minlength=classes)
    ap = np.full((classes, len(thresholds)), np.nan)
    for c in np.flatnonzero(n_truth):
        mine = found_labels == c  # images in order, best score first within each
        ap[c] = _precision_at_recall_points(scores[mine], matched[:, mine], int(n_truth[c]))
    return ap


def map50(detections: Sequence[Detections], boxes: Sequence[np.ndarray],
          labels: Sequence[np.ndarray]) -> float:
    """mAP at IoU 0.5 (``"mAP@.5"``): the mean AP over classes with ground truth; NaN if none."""
    ap = average_precision(detections, boxes, labels, iou_thresholds=(0.5,))
    return float(np.nanmean(ap)) if np.isfinite(ap).any() else float("nan")


def _coco_dataset(boxes: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                  scores: Sequence[np.ndarray] | None, classes: int) -> dict:
    annotations = []
    for image, (image_boxes, image_labels) in enumerate(zip(boxes, labels)):
        for k, ((x0, y0, x1, y1), label) in enumerate(zip(np.asarray(image_boxes, float),
                                                          image_labels)):
            entry = {"id": len(annotations) + 1, "image_id": image + 1,
                     "category_id": int(label) + 1, "bbox": [x0, y0, x1 - x0, y1 - y0],
                     "area": (x1 - x0) * (y1 - y0), "iscrowd": 0}
            if scores is not None:
                entry["score"] = float(scores[image][k])
            annotations.append(entry)
    return {"images": [{"id": i + 1} for i in range(len(boxes))],
            "categories": [{"id": c + 1} for c in range(classes)],
            "annotations": annotations}


def coco_map(detections: Sequence[Detections], boxes: Sequence[np.ndarray],
             labels: Sequence[np.ndarray]) -> dict[str, float]:
    """``{"COCO_mAP": mAP@[.5:.95], "mAP@.5": mAP@.5}`` from ``pycocotools`` (extra ``coco``).

    Arguments as for :func:`average_precision`; classes without ground truth are
    left out as pycocotools leaves them out; NaN when no image has ground truth.
    """
    _check_inputs(detections, boxes, labels)
    coco = require("pycocotools.coco", "evsim.analysis.coco_map")
    cocoeval = require("pycocotools.cocoeval", "evsim.analysis.coco_map")
    all_labels = [np.asarray(x, np.int64) for x in labels] + [d.labels for d in detections]
    classes = 1 + max((int(x.max()) for x in all_labels if x.size), default=-1)
    truth, found = coco.COCO(), coco.COCO()
    truth.dataset = _coco_dataset(boxes, labels, None, classes)
    found.dataset = _coco_dataset([d.boxes for d in detections],
                                  [d.labels for d in detections],
                                  [d.scores for d in detections], classes)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth.createIndex()
        found.createIndex()
        evaluation = cocoeval.COCOeval(truth, found, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [float("nan") if s < 0 else float(s) for s in evaluation.stats[:2]]
    return {"COCO_mAP": stats[0], "mAP@.5": stats[1]}


@dataclass(frozen=True)
class DetectionCurve:
    """``checkpoints`` ``(K,)``; ``map50`` ``(K,)`` NumPy mAP@.5 at each; ``coco_map``
    ``(K,)`` mAP@[.5:.95] (NumPy, COCO's rules) at each."""

    checkpoints: np.ndarray
    map50: np.ndarray
    coco_map: np.ndarray


def detection_vs_t(result: SimResult, head: CenterNetHead, boxes: Sequence[np.ndarray],
                   labels: Sequence[np.ndarray], *, score_threshold: float = 0.05,
                   top_k: int = 100, iou_threshold: float = 0.5) -> DetectionCurve:
    """mAP@.5 and mAP@[.5:.95] of the decoded boxes at every checkpoint of ``result``.

    ``boxes``/``labels``: the ground truth of the simulated images (e.g.
    ``scenes.boxes``, ``scenes.box_labels``); decoding as
    :func:`~evsim.tasks.decode_detections`.
    """
    per_checkpoint = checkpoint_detections(result, head, score_threshold=score_threshold,
                                           top_k=top_k, iou_threshold=iou_threshold)
    map50s, coco_maps = [], []
    for found in per_checkpoint:
        ap = average_precision(found, boxes, labels, iou_thresholds=COCO_IOU_THRESHOLDS)
        valid = np.isfinite(ap[:, 0])
        map50s.append(float(ap[valid, 0].mean()) if valid.any() else float("nan"))
        coco_maps.append(float(ap[valid].mean()) if valid.any() else float("nan"))
    return DetectionCurve(result.checkpoints.copy(), np.array(map50s), np.array(coco_maps))
