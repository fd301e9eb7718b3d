"""A scenes file's task metric (mIoU, mAP@.5) in place of accuracy: TaskScore, the summary,
compare_methods."""

import numpy as np
import pytest

import evsim
from evsim.analysis import (TaskScore, checkpoint_summary, detection_vs_t, map50, mean_iou,
                            segmentation_vs_t, task_score)
from evsim.data import bundled_scenes
from evsim.models import load_model
from evsim.tasks import CenterNetHead, decode_detections, decode_masks


@pytest.fixture(scope="module")
def scenes():
    return bundled_scenes().take(slice(0, 3))


@pytest.mark.parametrize("output, task, head", [
    ((11, 64, 64), "segmentation", None),
    ((12, 16, 16), "detection", CenterNetHead(10, 4, offset=False)),
    ((14, 16, 16), "detection", CenterNetHead(10, 4, offset=True)),
    ((12, 32, 32), "detection", CenterNetHead(10, 2, offset=False)),
])
def test_the_output_shape_names_the_task(scenes, output, task, head):
    score = task_score(output, (1, 64, 64), scenes)
    assert score.task == task and score.head == head
    assert score.metric == {"segmentation": "mIoU", "detection": "mAP@.5"}[task]


@pytest.mark.parametrize("output", [(10,), (11, 32, 32), (13, 16, 16), (12, 15, 15)])
def test_other_outputs_are_refused_with_the_shapes(scenes, output):
    with pytest.raises(ValueError, match=r"neither a segmentation \(11, H, W\)"):
        task_score(output, (1, 64, 64), scenes)


def test_a_detection_score_needs_a_head(scenes):
    with pytest.raises(ValueError, match="CenterNetHead"):
        TaskScore("detection", scenes)
    with pytest.raises(ValueError, match="task must be one of"):
        TaskScore("pose", scenes)


def _snn(name, scenes):
    network = load_model(name)
    return evsim.convert(network, bundled_scenes().images[-20:], method="percentile")


def test_the_summary_reports_miou_versus_T(scenes):
    snn = _snn("unet_relu", scenes)
    result = evsim.simulate(snn, scenes.images, T=4)
    score = task_score(snn.network.output_shape, snn.network.input_shape, scenes)
    summary = checkpoint_summary(snn, result, score, scenes.images)
    np.testing.assert_array_equal(summary.accuracy, segmentation_vs_t(result, scenes.masks).miou)
    ann = decode_masks(evsim.forward(snn.network, scenes.images))
    assert summary.ann_accuracy == mean_iou(ann, scenes.masks)
    assert summary.metric == "mIoU" and "| T | mIoU (%) |" in summary.to_markdown()
    values = summary.as_dict()
    assert values["metric"] == "mIoU" and values["miou"] == summary.accuracy.tolist()
    assert "accuracy" not in values and values["ann_miou"] == summary.ann_accuracy


def test_compare_methods_reports_map_versus_T(scenes):
    network = load_model("centernet_relu")
    score = task_score(network.output_shape, network.input_shape, scenes)
    comparison = evsim.compare_methods(network, bundled_scenes().images[-20:], scenes.images,
                                       score, methods=["percentile"], T=[2, 4])
    snn = evsim.convert(network, bundled_scenes().images[-20:], method="percentile")
    result = evsim.simulate(snn, scenes.images, T=4, checkpoints=[2, 4])
    curve = detection_vs_t(result, score.head, scenes.boxes, scenes.box_labels).map50
    assert comparison.metric == "mAP@.5"
    assert comparison["percentile"].accuracy == {2: curve[0], 4: curve[1]}
    ann = decode_detections(evsim.forward(network, scenes.images), score.head)
    assert comparison.ann_accuracy == map50(ann, scenes.boxes, scenes.box_labels)
    text = comparison.to_markdown()
    assert "### mAP@.5 (%) on 3 images\n" in text and "Wilson" not in text.split("###")[1]
    assert comparison.interval(0.5) == (0.5, 0.5)  # no binomial interval for mAP
    again = evsim.Comparison.from_json(comparison.to_json())
    assert again.metric == "mAP@.5"
