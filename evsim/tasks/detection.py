"""Detection with a CenterNet-style head: per-class centre heatmaps and box sizes.

The head layout (:class:`CenterNetHead`) is one output tensor ``(N, channels, h, w)``
on a grid ``stride`` times coarser than the input ``(H, W) = (h·stride, w·stride)``:

=====================  =================================================================
channels               meaning at grid cell ``(i, j)`` (row ``i``, column ``j``)
=====================  =================================================================
``0 .. classes−1``     centre heatmap of each class: a *logit* by default (a converted
                       network's readout, its Sigmoid dropped by conversion), or a
                       probability with ``heatmap="probabilities"``
``classes, +1``        box width and height ``(bw, bh)``, in **input pixels**
``classes+2, +3``      (``offset=True`` only) sub-cell centre offset ``(dx, dy)`` in
                       grid cells, in [0, 1)
=====================  =================================================================

A box's centre is ``cx = (j + dx)·stride``, ``cy = (i + dy)·stride`` (``dx = dy =
0.5``, the cell's centre, without the offset channels), and the box is ``(cx − bw/2,
cy − bh/2, cx + bw/2, cy + bh/2)``, clipped to the input. :func:`centernet_targets`
builds exactly these targets from ground-truth boxes, so a network trained on them
is decoded by :func:`decode_detections`.

Decoding (:func:`decode_detections`), per image: the score is the sigmoid of the
heatmap logit (or the probability itself); a *peak* is a cell whose score equals the
maximum of its 3 × 3 neighbourhood in the same class (CenterNet's max-pool "NMS")
and is at least ``score_threshold``; the ``top_k`` highest peaks over all classes are
turned into boxes; class-wise greedy NMS at ``iou_threshold`` (:func:`~evsim.tasks.nms`)
removes duplicates; the result is sorted by descending score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .boxes import nms
from ..errors import EvsimTypeError, EvsimValueError

__all__ = ["CenterNetHead", "Detections", "centernet_targets", "decode_detections"]

_HEATMAP_KINDS = ("logits", "probabilities")


@dataclass(frozen=True)
class CenterNetHead:
    """The layout of a CenterNet-style detection readout (see the module docstring).

    ``classes`` heatmap channels (>= 1), then size ``(bw, bh)`` in input pixels, then,
    when ``offset``, the centre offset ``(dx, dy)`` in cells; ``stride`` input pixels
    per grid cell; ``heatmap`` says whether the heatmap holds logits or probabilities.
    """

    classes: int = 10
    stride: int = 4
    offset: bool = True
    heatmap: str = "logits"

    def __post_init__(self) -> None:
        for name in ("classes", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise EvsimValueError(f"CenterNetHead: {name} must be an int >= 1, got {value!r}")
        if not isinstance(self.offset, bool):
            raise EvsimTypeError(f"CenterNetHead: offset must be True or False, got "
                                 f"{self.offset!r}")
        if self.heatmap not in _HEATMAP_KINDS:
            raise EvsimValueError(f"CenterNetHead: heatmap must be one of {_HEATMAP_KINDS}, "
                                  f"got {self.heatmap!r}")

    @property
    def channels(self) -> int:
        """Channels of the readout: ``classes + 2``, plus 2 with the offset."""
        return self.classes + 2 + (2 if self.offset else 0)

    def split(self, readout: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(scores (N, classes, h, w) in [0, 1], size (N, 2, h, w), offset or None)``."""
        readout = np.asarray(readout, dtype=np.float64)
        if readout.ndim != 4 or readout.shape[1] != self.channels:
            raise EvsimValueError(
                f"CenterNetHead: the readout must be (N, {self.channels}, h, w) for "
                f"{self.classes} classes {'with' if self.offset else 'without'} offset, got "
                f"shape {readout.shape}")
        if np.isnan(readout).any():
            raise EvsimValueError("CenterNetHead: the readout holds NaN")
        heat = readout[:, :self.classes]
        scores = 1.0 / (1.0 + np.exp(-heat)) if self.heatmap == "logits" else heat
        size = readout[:, self.classes:self.classes + 2]
        offset = readout[:, self.classes + 2:] if self.offset else None
        return scores, size, offset


@dataclass(frozen=True, eq=False)
class Detections:
    """The boxes found in one image, best score first.

    ``boxes`` float64 ``(K, 4)`` as ``(x0, y0, x1, y1)`` in input pixels, ``scores``
    float64 ``(K,)`` in [0, 1], ``labels`` int64 ``(K,)`` class indices.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        k = len(self.boxes)
        if self.boxes.dtype != np.float64 or self.boxes.shape != (k, 4):
            raise EvsimValueError(f"Detections: boxes must be float64 (K, 4), got "
                                  f"{self.boxes.dtype} {self.boxes.shape}")
        if self.scores.dtype != np.float64 or self.scores.shape != (k,):
            raise EvsimValueError(f"Detections: scores must be float64 ({k},), got "
                                  f"{self.scores.dtype} {self.scores.shape}")
        if self.labels.dtype != np.int64 or self.labels.shape != (k,):
            raise EvsimValueError(f"Detections: labels must be int64 ({k},), got "
                                  f"{self.labels.dtype} {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.boxes)


def _peaks(scores: np.ndarray) -> np.ndarray:
    """Boolean, shape of ``scores (..., h, w)``: cells equal to their 3 × 3 neighbourhood's max."""
    h, w = scores.shape[-2:]
    pad = [(0, 0)] * (scores.ndim - 2) + [(1, 1), (1, 1)]
    padded = np.pad(scores, pad, constant_values=-np.inf)
    neighbourhood = np.full_like(scores, -np.inf)
    for dy in range(3):
        for dx in range(3):
            np.maximum(neighbourhood, padded[..., dy:dy + h, dx:dx + w], out=neighbourhood)
    return scores >= neighbourhood


def _decode_image(scores: np.ndarray, candidates: np.ndarray, size: np.ndarray,
                  offset: np.ndarray | None, head: CenterNetHead, top_k: int,
                  iou_threshold: float) -> Detections:
    """One image: ``scores (classes, h, w)``, the peaks above the threshold ``candidates``
    (bool, same shape), ``size (2, h, w)``, ``offset (2, h, w)``."""
    _, h, w = scores.shape
    flat = np.flatnonzero(candidates)
    flat = flat[np.argsort(-scores.ravel()[flat], kind="stable")[:top_k]]
    labels, rows, columns = np.unravel_index(flat, scores.shape)
    if offset is None:
        dx = dy = np.full(len(flat), 0.5)
    else:
        dx, dy = offset[0, rows, columns], offset[1, rows, columns]
    cx, cy = (columns + dx) * head.stride, (rows + dy) * head.stride
    half_w, half_h = size[0, rows, columns] / 2, size[1, rows, columns] / 2
    boxes = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1)
    boxes = np.clip(boxes, 0, np.array([w, h, w, h], np.float64) * head.stride)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])  # a negative size gives an empty box
    kept = nms(boxes, scores.ravel()[flat], labels, iou_threshold)
    return Detections(boxes[kept].reshape(-1, 4), scores.ravel()[flat][kept],
                      labels[kept].astype(np.int64))


def decode_detections(readout: np.ndarray, head: CenterNetHead, *,
                      score_threshold: float = 0.05, top_k: int = 100,
                      iou_threshold: float = 0.5) -> list[Detections]:
    """Boxes per image from a CenterNet-style readout (rules in the module docstring).

    Parameters
    ----------
    readout:
        ``(N, head.channels, h, w)``: the network's output (an ANN's, or an SNN's mean
        output at a checkpoint).
    head:
        Its layout: classes, stride, offset channels, logits or probabilities.
    score_threshold:
        Lowest score (in [0, 1], after the sigmoid) a peak must reach. Keep it low
        for mAP (which needs the whole precision–recall curve), e.g. 0.05; raise it
        (e.g. 0.3) to draw boxes.
    top_k:
        At most this many peaks per image, over all classes (COCO scores at most 100).
    iou_threshold:
        Class-wise NMS: a box overlapping a better one of its class with IoU above
        this is dropped.

    Returns
    -------
    list of Detections
        One per image, boxes in input pixels, best score first.
    """
    if not isinstance(head, CenterNetHead):
        raise EvsimTypeError(f"decode_detections: head must be a CenterNetHead, got "
                             f"{type(head).__name__}")
    if not 0.0 <= score_threshold <= 1.0:
        raise EvsimValueError(f"decode_detections: score_threshold must lie in [0, 1], got "
                              f"{score_threshold}")
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
        raise EvsimValueError(f"decode_detections: top_k must be an int >= 1, got {top_k!r}")
    scores, size, offset = head.split(readout)
    candidates = _peaks(scores) & (scores >= score_threshold)
    return [_decode_image(scores[i], candidates[i], size[i],
                          None if offset is None else offset[i], head, top_k, iou_threshold)
            for i in range(len(scores))]


def _draw_gaussian(heat: np.ndarray, cx: float, cy: float, sigma_x: float,
                   sigma_y: float) -> None:
    """``heat (h, w) = max(heat, exp(−dx²/2σx² − dy²/2σy²))`` around the peak cell."""
    h, w = heat.shape
    rows, columns = np.arange(h)[:, None], np.arange(w)[None, :]
    gauss = np.exp(-((columns - cx) ** 2) / (2 * sigma_x ** 2)
                   - ((rows - cy) ** 2) / (2 * sigma_y ** 2))
    np.maximum(heat, gauss, out=heat)


def centernet_targets(boxes: list[np.ndarray], labels: list[np.ndarray], head: CenterNetHead,
                      input_size: tuple[int, int], alpha: float = 0.54
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training targets that :func:`decode_detections` inverts, for N images.

    Parameters
    ----------
    boxes, labels:
        Per image, ``(K, 4)`` boxes ``(x0, y0, x1, y1)`` in input pixels and ``(K,)``
        classes (e.g. :attr:`evsim.data.Scenes.boxes` and ``box_labels``).
    head:
        The layout (classes, stride, offset).
    input_size:
        ``(H, W)``, multiples of ``head.stride``.
    alpha:
        Gaussian spread: σ = α·(box side)/(6·stride) per axis, in cells (TTFNet's rule).

    Returns
    -------
    heatmap, size, offset, centres
        float32 ``(N, classes, h, w)`` in [0, 1], exactly 1 at each box's centre cell
        (the maximum where Gaussians overlap); float32 ``(N, 2, h, w)`` box width and
        height at the centre cells (0 elsewhere); float32 ``(N, 2, h, w)`` centre
        offsets ``(dx, dy)`` in [0, 1) (0 elsewhere); bool ``(N, h, w)``, the cells
        where size and offset are to be learnt. Where two centres share a cell, the
        later box's size and offset win.
    """
    height, width = input_size
    if height % head.stride or width % head.stride:
        raise EvsimValueError(f"centernet_targets: input_size {input_size} must be multiples "
                              f"of the stride {head.stride}")
    if len(boxes) != len(labels):
        raise EvsimValueError(f"centernet_targets: {len(boxes)} box arrays but {len(labels)} "
                              "label arrays; give one of each per image")
    h, w = height // head.stride, width // head.stride
    heatmap = np.zeros((len(boxes), head.classes, h, w), np.float32)
    size = np.zeros((len(boxes), 2, h, w), np.float32)
    offset = np.zeros((len(boxes), 2, h, w), np.float32)
    centres = np.zeros((len(boxes), h, w), bool)
    for n, (image_boxes, image_labels) in enumerate(zip(boxes, labels)):
        image_labels = np.asarray(image_labels, np.int64)
        if image_labels.size and (image_labels.min() < 0 or image_labels.max() >= head.classes):
            raise EvsimValueError(f"centernet_targets: labels of image {n} must lie in "
                                  f"0..{head.classes - 1}")
        for (x0, y0, x1, y1), label in zip(np.asarray(image_boxes, np.float64), image_labels):
            cx, cy = (x0 + x1) / 2 / head.stride, (y0 + y1) / 2 / head.stride
            j, i = min(int(cx), w - 1), min(int(cy), h - 1)
            heat = heatmap[n, label]
            _draw_gaussian(heat, j, i, max(alpha * (x1 - x0) / (6 * head.stride), 1e-3),
                           max(alpha * (y1 - y0) / (6 * head.stride), 1e-3))
            size[n, :, i, j] = (x1 - x0, y1 - y0)
            offset[n, :, i, j] = (cx - j, cy - i)
            centres[n, i, j] = True
    return heatmap, size, offset, centres
