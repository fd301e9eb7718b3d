"""A segmentation or detection task's metric, in place of accuracy, for scenes data.

A scenes file (:func:`evsim.data.save_scenes`) holds both masks and boxes; the
network's output says which task it answers (:func:`task_score`):

- ``(classes, H, W)`` with the input's ``H × W``: **segmentation**, scored by mIoU of
  the arg-max masks (:func:`~evsim.analysis.segmentation_scores`);
- ``(classes + 2 [+ 2], H / s, W / s)`` for a stride ``s > 1``: **detection** with a
  CenterNet-style head (:class:`~evsim.tasks.CenterNetHead`: ``classes`` heatmap logits,
  box size, and with 4 extra channels the centre offset), scored by mAP@.5
  (:func:`~evsim.analysis.map50`).

A :class:`TaskScore` goes wherever class labels go in :func:`checkpoint_summary`,
:func:`evsim.compare_methods` and :func:`evsim.report.write_report`, which then report
its metric versus T.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.scenes import Scenes
from ..errors import EvsimTypeError, EvsimValueError
from ..result import SimResult
from ..tasks import CenterNetHead, checkpoint_detections, checkpoint_masks, decode_detections
from ..tasks import decode_masks
from .detection import map50
from .segmentation import mean_iou

__all__ = ["METRIC_KEYS", "TASKS", "TaskScore", "task_score"]

#: The tasks a scenes file can score, and the metric each reports.
TASKS = {"segmentation": "mIoU", "detection": "mAP@.5"}
#: Each metric's key in JSON (``--json``, ``CheckpointSummary.as_dict``).
METRIC_KEYS = {"mIoU": "miou", "mAP@.5": "map50"}


@dataclass(frozen=True, eq=False)
class TaskScore:
    """Ground truth of ``scenes`` and how to score a network's readout against it.

    ``task`` is ``"segmentation"`` or ``"detection"``; ``head`` the detection
    readout's layout (None for segmentation); ``classes`` the segmentation output's
    channels (background included).
    """

    task: str
    scenes: Scenes
    head: CenterNetHead | None = None
    classes: int = 11

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise EvsimValueError(f"TaskScore: task must be one of {tuple(TASKS)}, got "
                                  f"{self.task!r}")
        if not isinstance(self.scenes, Scenes):
            raise EvsimTypeError(f"TaskScore: scenes must be Scenes, got "
                                 f"{type(self.scenes).__name__}")
        if (self.task == "detection") != isinstance(self.head, CenterNetHead):
            raise EvsimValueError("TaskScore: detection needs a CenterNetHead, segmentation none")

    @property
    def metric(self) -> str:
        """The metric's name: ``"mIoU"`` or ``"mAP@.5"``."""
        return TASKS[self.task]

    @property
    def key(self) -> str:
        """The metric's JSON key: ``"miou"`` or ``"map50"``."""
        return METRIC_KEYS[self.metric]

    def __len__(self) -> int:
        return len(self.scenes)

    def take(self, n: int) -> TaskScore:
        """The score of the first ``n`` scenes."""
        return TaskScore(self.task, self.scenes.take(slice(0, n)), self.head, self.classes)

    def answers(self, readout: np.ndarray, score_threshold: float = 0.05):
        """Decoded answers of a readout ``(N, *output_shape)``: masks ``(N, H, W)`` or one
        :class:`~evsim.tasks.Detections` per image (boxes scoring ``score_threshold`` or
        more; the metric uses 0.05, pictures read better with 0.3)."""
        if self.task == "segmentation":
            return decode_masks(readout)
        return decode_detections(readout, self.head, score_threshold=score_threshold)

    def score(self, readout: np.ndarray) -> float:
        """The metric (a fraction in [0, 1]) of a readout ``(N, *output_shape)``, e.g. the
        ANN's output (:func:`evsim.forward`)."""
        return self._score(self.answers(np.asarray(readout, np.float64)))

    def _score(self, answers) -> float:
        if self.task == "segmentation":
            return mean_iou(answers, self.scenes.masks, self.classes)
        return map50(answers, self.scenes.boxes, self.scenes.box_labels)

    def curve(self, result: SimResult) -> np.ndarray:
        """``(K,)`` the metric at every checkpoint of ``result`` (a run on these scenes)."""
        if result.n_images != len(self.scenes):
            raise EvsimValueError(f"TaskScore: the result simulated {result.n_images} images, "
                                  f"the scenes are {len(self.scenes)}")
        answers = (checkpoint_masks(result) if self.task == "segmentation" else
                   checkpoint_detections(result, self.head))
        return np.array([self._score(a) for a in answers])

    def digest_arrays(self) -> list[np.ndarray]:
        """The arrays that define the ground truth (for content hashes)."""
        if self.task == "segmentation":
            return [self.scenes.masks]
        counts = np.array([len(b) for b in self.scenes.boxes], np.int64)
        return [np.concatenate(self.scenes.boxes), np.concatenate(self.scenes.box_labels),
                counts, np.array([self.head.channels, self.head.stride])]


def task_score(output_shape: tuple[int, ...], input_shape: tuple[int, ...], scenes: Scenes,
               *, classes: int = 10) -> TaskScore:
    """The task a network with ``output_shape`` answers on ``scenes`` (module docstring).

    Raises :class:`~evsim.errors.EvsimValueError` naming the shapes when the output fits
    neither a per-pixel segmentation nor a CenterNet-style detection head.
    """
    output_shape, input_shape = tuple(output_shape), tuple(input_shape)
    if len(output_shape) == 3 and len(input_shape) == 3:
        channels, h, w = output_shape
        height, width = input_shape[1:]
        if (h, w) == (height, width) and channels == classes + 1:
            return TaskScore("segmentation", scenes, classes=channels)
        stride = height // h if h else 0
        if (stride > 1 and h * stride == height and w * stride == width
                and channels in (classes + 2, classes + 4)):
            head = CenterNetHead(classes, stride, offset=channels == classes + 4)
            return TaskScore("detection", scenes, head)
    raise EvsimValueError(
        f"scenes data: the network's output {output_shape} is neither a segmentation "
        f"({classes + 1}, H, W) with the input's H × W nor a CenterNet-style detection head "
        f"({classes + 2} or {classes + 4}, H/s, W/s) for input {input_shape}; scenes score "
        "only those two tasks")
