"""Segmentation metrics: mean intersection over union (mIoU) and pixel accuracy.

Convention (that of PASCAL VOC and Cityscapes evaluation, which papers quote):
one confusion matrix is accumulated over **all pixels of all images**; the IoU of
class ``c`` is ``TP / (TP + FP + FN)`` from it; **mIoU is the mean over the classes
whose union is non-zero** (present in the ground truth or in the prediction),
**background included** (class 0 of a :class:`~evsim.data.Scenes` mask). A class in
neither has no IoU (NaN) and does not count. Pixel accuracy is the fraction of all
pixels whose predicted class equals the true one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EvsimValueError
from ..result import SimResult
from ..tasks import decode_checkpoints, decode_masks

__all__ = ["SegmentationCurve", "SegmentationScores", "checkpoint_confusions", "mean_iou",
           "pixel_accuracy", "scores_from_confusion", "segmentation_confusion",
           "segmentation_scores", "segmentation_vs_t"]


def _check_masks(predicted: np.ndarray, truth: np.ndarray, classes: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if predicted.shape != truth.shape:
        raise EvsimValueError(f"segmentation metrics: predicted masks {predicted.shape} and "
                              f"true masks {truth.shape} must have the same shape")
    for name, masks in (("predicted", predicted), ("true", truth)):
        if not np.issubdtype(masks.dtype, np.integer):
            raise EvsimValueError(f"segmentation metrics: {name} masks must be integer class "
                                  f"indices, got {masks.dtype}")
        if masks.size and (masks.min() < 0 or masks.max() >= classes):
            raise EvsimValueError(f"segmentation metrics: {name} masks hold classes outside "
                                  f"0..{classes - 1}; pass classes= the number of classes")
    return predicted, truth


def segmentation_confusion(predicted: np.ndarray, truth: np.ndarray,
                           classes: int) -> np.ndarray:
    """int64 ``(classes, classes)`` pixel counts over all images: row = true, column = predicted.

    ``predicted`` and ``truth`` are integer masks of one shape, e.g. ``(N, H, W)``.
    """
    predicted, truth = _check_masks(predicted, truth, classes)
    pairs = truth.astype(np.int64).ravel() * classes + predicted.astype(np.int64).ravel()
    return np.bincount(pairs, minlength=classes * classes).reshape(classes, classes)


@dataclass(frozen=True)
class SegmentationScores:
    """``miou`` and ``pixel_accuracy`` in [0, 1]; ``iou`` ``(classes,)``, NaN where a class is
    in neither the prediction nor the ground truth (see the module docstring)."""

    miou: float
    pixel_accuracy: float
    iou: np.ndarray


def scores_from_confusion(confusion: np.ndarray) -> SegmentationScores:
    """The scores of a confusion matrix ``(classes, classes)`` (row true, column predicted).

    Confusion matrices add up, so the scores of a data set simulated in several runs
    are those of the sum of the runs' matrices (:func:`checkpoint_confusions`).
    """
    confusion = np.asarray(confusion)
    if confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]:
        raise EvsimValueError(f"scores_from_confusion: expected a square matrix, got shape "
                              f"{confusion.shape}")
    hits = np.diag(confusion).astype(np.float64)
    union = confusion.sum(axis=0) + confusion.sum(axis=1) - hits
    iou = np.divide(hits, union, out=np.full(len(hits), np.nan), where=union > 0)
    total = confusion.sum()
    return SegmentationScores(
        miou=float(np.nanmean(iou)) if (union > 0).any() else float("nan"),
        pixel_accuracy=float(hits.sum() / total) if total else float("nan"),
        iou=iou)


def segmentation_scores(predicted: np.ndarray, truth: np.ndarray,
                        classes: int = 11) -> SegmentationScores:
    """mIoU, pixel accuracy and per-class IoU of ``predicted`` masks against ``truth``.

    ``classes`` is the number of classes, background included (11 for Fashion-MNIST
    scenes).
    """
    return scores_from_confusion(segmentation_confusion(predicted, truth, classes))


def mean_iou(predicted: np.ndarray, truth: np.ndarray, classes: int = 11) -> float:
    """mIoU over all pixels, the mean over classes with a non-zero union (background included)."""
    return segmentation_scores(predicted, truth, classes).miou


def pixel_accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """The fraction of pixels whose predicted class is the true one."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if predicted.shape != truth.shape or truth.size == 0:
        raise EvsimValueError(f"pixel_accuracy: predicted {predicted.shape} and true "
                              f"{truth.shape} masks must have one non-empty shape")
    return float((predicted == truth).mean())


@dataclass(frozen=True)
class SegmentationCurve:
    """``checkpoints`` ``(K,)`` steps; ``miou`` and ``pixel_accuracy`` ``(K,)`` at each."""

    checkpoints: np.ndarray
    miou: np.ndarray
    pixel_accuracy: np.ndarray


def checkpoint_confusions(result: SimResult, truth: np.ndarray,
                          classes: int | None = None) -> np.ndarray:
    """int64 ``(K, classes, classes)``: the confusion matrix of the arg-max masks at every
    checkpoint of ``result`` against ``truth`` ``(n_images, H, W)``.

    ``classes`` defaults to the network's output channels. Add the matrices of several
    runs (image shards) and pass each checkpoint's sum to :func:`scores_from_confusion`.
    """
    if classes is None:
        classes = int(result.outputs.shape[2])
    return np.stack(decode_checkpoints(result, lambda readout: segmentation_confusion(
        decode_masks(readout), truth, classes)))


def segmentation_vs_t(result: SimResult, truth: np.ndarray,
                      classes: int | None = None) -> SegmentationCurve:
    """mIoU and pixel accuracy of the arg-max masks at every checkpoint of ``result``.

    ``truth``: integer ``(n_images, H, W)`` masks of the simulated images;
    ``classes`` defaults to the network's output channels.
    """
    scores = [scores_from_confusion(c) for c in checkpoint_confusions(result, truth, classes)]
    return SegmentationCurve(result.checkpoints.copy(),
                             np.array([s.miou for s in scores]),
                             np.array([s.pixel_accuracy for s in scores]))
