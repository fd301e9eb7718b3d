"""Decoding readouts into masks and boxes: by hand, round trips, and at every checkpoint of
both engines' results."""

import numpy as np
import pytest

import evsim
from evsim import Conv2d, NetworkBuilder, ReLU
from evsim.analysis import (checkpoint_confusions, detection_fidelity, detection_vs_t, map50,
                            scores_from_confusion, segmentation_fidelity, segmentation_vs_t)
from evsim.data import bundled_scenes
from evsim.errors import EvsimValueError
from evsim.tasks import (CenterNetHead, box_iou, centernet_targets, checkpoint_detections,
                         checkpoint_masks, decode_detections, decode_masks, nms)


def test_masks_are_the_argmax_and_ties_go_to_background():
    readout = np.zeros((1, 3, 2, 2))
    readout[0, 2, 0, 1] = 1.0
    readout[0, 1, 1, 1] = -0.5          # below the zeros of channels 0 and 2
    readout[0, :2, 1, 0] = 2.0          # a tie between channels 0 and 1
    assert decode_masks(readout).tolist() == [[[0, 2], [0, 0]]]
    with pytest.raises(EvsimValueError, match="classes"):
        decode_masks(np.zeros((1, 1, 2, 2)))


def test_nms_keeps_the_best_box_per_overlapping_group_of_one_class():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [1, 0, 11, 10], [20, 20, 30, 30]])
    # IoU(box 0, box 1) = 90 / 110 = 0.82: box 1 goes; box 2 is another class and stays
    assert box_iou(boxes[:1], boxes[1:2])[0, 0] == pytest.approx(90 / 110)
    kept = nms(boxes, np.array([0.9, 0.8, 0.7, 0.95]), np.array([0, 0, 1, 0]), 0.5)
    assert kept.tolist() == [3, 0, 2]
    assert nms(boxes, np.array([0.9, 0.8, 0.7, 0.95]), np.array([0, 0, 1, 0]), 0.9).tolist() \
        == [3, 0, 1, 2]


def test_decoding_a_head_by_hand():
    head = CenterNetHead(classes=2, stride=4, offset=True, heatmap="probabilities")
    readout = np.zeros((1, 6, 4, 4))
    readout[0, 1, 1, 2] = 0.9            # class 1 peak at row 1, column 2
    readout[0, 1, 1, 3] = 0.6            # its neighbour: not a 3 x 3 maximum
    readout[0, 0, 3, 0] = 0.2            # below the threshold
    readout[0, 2:4, 1, 2] = (8, 6)       # width, height in input pixels
    readout[0, 4:6, 1, 2] = (0.25, 0.5)  # centre offset in cells
    found = decode_detections(readout, head, score_threshold=0.3)[0]
    # centre ((2 + 0.25) * 4, (1 + 0.5) * 4) = (9, 6)
    assert found.boxes.tolist() == [[5, 3, 13, 9]]
    assert found.scores.tolist() == [0.9] and found.labels.tolist() == [1]
    # logits: a logit of 0 is a score of 0.5; a huge box is clipped to the 16 x 16 input
    logits = CenterNetHead(classes=2, stride=4, offset=False)
    readout = np.full((1, 4, 4, 4), -9.0)
    readout[0, 0, 0, 0] = 0.0
    readout[0, 2:4] = 100.0
    found = decode_detections(readout, logits, score_threshold=0.3)[0]
    assert found.boxes.tolist() == [[0, 0, 16, 16]] and found.scores.tolist() == [0.5]
    with pytest.raises(EvsimValueError, match=r"\(N, 4, h, w\)"):
        decode_detections(np.zeros((1, 6, 4, 4)), logits)


def test_targets_decode_back_to_the_scenes_boxes():
    scenes = bundled_scenes().take(slice(0, 120))
    head = CenterNetHead(classes=10, stride=4, heatmap="probabilities")
    heatmap, size, offset, centres = centernet_targets(scenes.boxes, scenes.box_labels, head,
                                                       (64, 64))
    assert heatmap.shape == (120, 10, 16, 16) and heatmap.max() == 1.0
    assert centres.sum() <= sum(len(b) for b in scenes.boxes)
    found = decode_detections(np.concatenate([heatmap, size, offset], axis=1), head,
                              score_threshold=0.5)
    assert map50(found, scenes.boxes, scenes.box_labels) > 0.97
    exact = [i for i in range(120) if len(found[i]) == len(scenes.boxes[i])]
    assert len(exact) > 110
    for i in exact:
        order = np.lexsort(found[i].boxes.T[::-1])
        truth = np.lexsort(scenes.boxes[i].T[::-1])
        np.testing.assert_allclose(found[i].boxes[order], scenes.boxes[i][truth], atol=1e-4)


def _segmenter(detector: bool = False):
    """input (1, 6, 6) -> 3x3 conv (4) -> ReLU -> 1x1 conv (3 classes); as a ``detector``,
    channels 1 and 2 are box sizes of 6 to 12 pixels."""
    rng = np.random.default_rng(0)
    b = NetworkBuilder((1, 6, 6))
    b.add_layer(Conv2d(rng.uniform(-0.5, 1, (4, 1, 3, 3)), padding=1), name="conv")
    b.add_layer(ReLU(), name="relu")
    weights, bias = rng.uniform(-1, 1, (3, 4, 1, 1)), rng.uniform(-0.2, 0.2, 3)
    if detector:
        weights[1:] = np.abs(weights[1:]) * 2
        bias[1:] = 6.0
    b.add_layer(Conv2d(weights, bias), name="out")
    images = rng.uniform(0, 1, (5, 1, 6, 6)).astype(np.float32)
    return evsim.convert(b.build(), images, method="max"), images


@pytest.mark.parametrize("engine", ["event", "dense"])
def test_masks_at_every_checkpoint_of_both_engines(engine):
    snn, images = _segmenter()
    result = evsim.simulate(snn, images, T=128, checkpoints=[1, 8, 128], engine=engine)
    masks = checkpoint_masks(result)
    assert masks.shape == (3, 5, 6, 6) and masks.dtype == np.uint8
    for k, step in enumerate(result.checkpoints):
        np.testing.assert_array_equal(masks[k], decode_masks(result.mean_output(step)))
    ann = evsim.forward(snn.network, images)
    fidelity = segmentation_fidelity(result, ann)
    assert fidelity.checkpoints.tolist() == [1, 8, 128]
    assert fidelity.mse[-1] < fidelity.mse[0] and fidelity.agreement[-1] >= 0.9
    curve = segmentation_vs_t(result, decode_masks(ann))
    np.testing.assert_allclose(curve.pixel_accuracy, fidelity.agreement)
    assert curve.miou[-1] > curve.miou[0]
    # shards: the confusion matrices of two halves add up to the whole's
    halves = [evsim.simulate(snn, part, T=128, checkpoints=[1, 8, 128], engine=engine)
              for part in (images[:2], images[2:])]
    summed = sum(checkpoint_confusions(r, decode_masks(ann)[s])
                 for r, s in zip(halves, (slice(0, 2), slice(2, 5))))
    for k in range(3):
        assert scores_from_confusion(summed[k]).miou == pytest.approx(curve.miou[k])


@pytest.mark.parametrize("engine", ["event", "dense"])
def test_boxes_at_every_checkpoint_of_both_engines(engine):
    snn, images = _segmenter(detector=True)  # 3 output channels: a 1-class head, no offset
    head = CenterNetHead(classes=1, stride=2, offset=False)
    result = evsim.simulate(snn, images, T=64, checkpoints=[2, 64], engine=engine)
    per_checkpoint = checkpoint_detections(result, head, score_threshold=0.3)
    assert len(per_checkpoint) == 2 and all(len(found) == 5 for found in per_checkpoint)
    for k, step in enumerate(result.checkpoints):
        direct = decode_detections(result.mean_output(step), head, score_threshold=0.3)
        for a, b in zip(per_checkpoint[k], direct):
            np.testing.assert_array_equal(a.boxes, b.boxes)
    ann = evsim.forward(snn.network, images)
    fidelity = detection_fidelity(result, ann, head, score_threshold=0.3)
    assert fidelity.mse[-1] < fidelity.mse[0] and fidelity.agreement[-1] > 0.5
    truth = decode_detections(ann, head, score_threshold=0.3)
    curve = detection_vs_t(result, head, [d.boxes for d in truth], [d.labels for d in truth],
                           score_threshold=0.3)
    np.testing.assert_allclose(curve.map50, fidelity.agreement)


@pytest.mark.slow
def test_masks_of_the_dask_path_equal_the_local_ones():
    distributed = pytest.importorskip("distributed")
    snn, images = _segmenter()
    local = evsim.simulate(snn, images, T=32, checkpoints=[4, 32], engine="dense")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=1,
                            dashboard_address=":0") as client:
        shards = evsim.simulate(snn, images, T=32, checkpoints=[4, 32], engine="dense",
                                client=client, batch_size=2)
    np.testing.assert_array_equal(checkpoint_masks(shards), checkpoint_masks(local))
    truth = decode_masks(evsim.forward(snn.network, images))
    np.testing.assert_array_equal(checkpoint_confusions(shards, truth),
                                  checkpoint_confusions(local, truth))
