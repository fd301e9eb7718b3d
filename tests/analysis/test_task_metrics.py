"""Segmentation and detection metrics against values worked out by hand, and mAP against
pycocotools."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from evsim.analysis import (COCO_IOU_THRESHOLDS, average_precision, map50, mean_iou,
                            pixel_accuracy, segmentation_confusion, segmentation_scores)
from evsim.analysis.detection import coco_map
from evsim.errors import EvsimValueError
from evsim.tasks import Detections


def test_miou_and_pixel_accuracy_by_hand():
    truth = np.array([[[0, 0, 1], [1, 2, 2]]])
    predicted = np.array([[[0, 1, 1], [1, 2, 0]]])
    # class 0: TP 1, FP 1 (a 2 called 0), FN 1 (a 0 called 1) -> 1/3
    # class 1: TP 2, FP 1, FN 0 -> 2/3; class 2: TP 1, FP 0, FN 1 -> 1/2
    # class 3: in neither -> no IoU, left out of the mean
    scores = segmentation_scores(predicted, truth, classes=4)
    np.testing.assert_allclose(scores.iou[:3], [1 / 3, 2 / 3, 1 / 2])
    assert np.isnan(scores.iou[3])
    assert scores.miou == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert scores.pixel_accuracy == pytest.approx(4 / 6)
    assert pixel_accuracy(predicted, truth) == pytest.approx(4 / 6)
    assert segmentation_confusion(predicted, truth, 4)[2].tolist() == [1, 0, 1, 0]


def test_miou_counts_a_class_only_predicted_and_pools_all_images():
    truth = np.array([[[0, 0]], [[1, 1]]])
    predicted = np.array([[[0, 3]], [[1, 1]]])
    # over both images: class 0 IoU 1/2, class 1 IoU 1, class 3 (predicted only) IoU 0
    assert mean_iou(predicted, truth, classes=4) == pytest.approx((0.5 + 1 + 0) / 3)
    with pytest.raises(EvsimValueError, match="outside 0..2"):
        mean_iou(predicted, truth, classes=3)


def _detections(boxes, scores, labels):
    return Detections(np.array(boxes, np.float64).reshape(-1, 4), np.array(scores, np.float64),
                      np.array(labels, np.int64))


def test_average_precision_by_hand():
    truth = [np.array([[0, 0, 10, 10]], np.float32)]
    labels = [np.array([0])]
    # the best-scored box is a false positive, the second a hit: precision 1/2 at recall 1
    found = [_detections([[20, 20, 30, 30], [0, 0, 10, 10]], [0.9, 0.8], [0, 0])]
    assert map50(found, truth, labels) == pytest.approx(0.5)
    # two true boxes, one found: precision 1/2 up to recall 1/2, i.e. at 51 of 101 points
    truth2 = [np.array([[0, 0, 10, 10], [40, 40, 50, 50]], np.float32)]
    assert map50(found, truth2, [np.array([0, 0])]) == pytest.approx(51 * 0.5 / 101)
    # IoU exactly 0.5 matches at 0.5 but not at 0.55
    half = [_detections([[0, 0, 10, 5]], [0.7], [0])]
    ap = average_precision(half, truth, labels, iou_thresholds=(0.5, 0.55))
    np.testing.assert_allclose(ap, [[1.0, 0.0]])  # COCO's precision: 1 / (1 + eps)
    # a class with truth but no detection scores 0; one with no truth is left out (NaN)
    other = [_detections([[0, 0, 10, 10]], [0.7], [2])]
    ap = average_precision(other, truth, labels)
    assert ap[0, 0] == 0 and np.isnan(ap[1, 0]) and np.isnan(ap[2, 0])


def _random_case(seed: int, n_images: int, classes: int):
    rng = np.random.default_rng(seed)
    boxes, labels, found = [], [], []
    for _ in range(n_images):
        k = int(rng.integers(0, 5))
        corner = rng.uniform(0, 40, (k, 2))
        truth = np.c_[corner, corner + rng.uniform(2, 20, (k, 2))]
        boxes.append(truth)
        labels.append(rng.integers(0, classes, k))
        near = truth + rng.normal(0, 3, truth.shape) if k else np.zeros((0, 4))
        extra = rng.uniform(0, 40, (int(rng.integers(0, 4)), 2))
        extra = np.c_[extra, extra + rng.uniform(2, 20, extra.shape)]
        candidates = np.r_[near, extra]
        candidates = np.c_[np.minimum(candidates[:, :2], candidates[:, 2:]),
                           np.maximum(candidates[:, :2], candidates[:, 2:])]
        dt_labels = np.r_[labels[-1], rng.integers(0, classes, len(extra))]
        flip = rng.random(len(dt_labels)) < 0.2
        dt_labels[flip] = rng.integers(0, classes, int(flip.sum()))
        found.append(_detections(candidates, rng.random(len(candidates)), dt_labels))
    return found, boxes, labels


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), n_images=st.integers(1, 6), classes=st.integers(1, 4))
def test_numpy_map_agrees_with_pycocotools(seed, n_images, classes):
    pytest.importorskip("pycocotools", reason="needs the coco extra (pycocotools)")
    found, boxes, labels = _random_case(seed, n_images, classes)
    ap = average_precision(found, boxes, labels, iou_thresholds=COCO_IOU_THRESHOLDS)
    reference = coco_map(found, boxes, labels)
    if np.isnan(reference["mAP@.5"]):
        assert not np.isfinite(ap).any()
        return
    assert np.nanmean(ap[:, 0]) == pytest.approx(reference["mAP@.5"], abs=1e-6)
    assert map50(found, boxes, labels) == pytest.approx(reference["mAP@.5"], abs=1e-6)
    assert np.nanmean(ap) == pytest.approx(reference["COCO_mAP"], abs=1e-6)


def test_a_perfect_answer_scores_one_with_both_implementations():
    truth = [np.array([[0, 0, 10, 10], [5, 5, 20, 25]], np.float32), np.zeros((0, 4))]
    labels = [np.array([0, 1]), np.array([], np.int64)]
    found = [_detections(truth[0], [0.9, 0.8], [0, 1]), _detections([], [], [])]
    assert map50(found, truth, labels) == pytest.approx(1.0)
    pytest.importorskip("pycocotools", reason="needs the coco extra (pycocotools)")
    assert coco_map(found, truth, labels) == pytest.approx({"COCO_mAP": 1.0, "mAP@.5": 1.0})
