"""Accuracy (or a task's metric), SOPs and energy per image at every checkpoint of one run,
beside the ANN's."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..forward import forward
from ..result import SimResult
from ..spiking import WINDOWED, SpikingNetwork
from .energy import FLOAT32_45NM, EnergyTable, energy_report, energy_table, energy_unit
from .task_score import METRIC_KEYS, TaskScore
from ..errors import EvsimValueError


@dataclass(frozen=True)
class CheckpointSummary:
    """What stopping the simulation at each checkpoint gives and costs, per image.

    ``steps`` ``(K,)``; ``latency`` ``(K,)`` steps until that output is
    complete (equal to ``steps`` except in the temporal scheme, where T is a
    window and the latency is (D + 1) T); ``accuracy`` ``(K,)`` in [0, 1]
    (None without labels);
    ``sops`` ``(K,)`` synaptic operations per image over steps 1..t;
    ``snn_pj`` ``(K,)`` SNN energy per image over those steps (picojoules,
    :func:`~evsim.analysis.energy_report` with ``steps=t``); ``ann_accuracy``,
    ``ann_macs`` and ``ann_pj`` for the ANN; ``table`` and ``convention`` as
    used for the energies; ``metric`` names what ``accuracy`` holds: ``"accuracy"``,
    or a task's metric (``"mIoU"``, ``"mAP@.5"``, :class:`~evsim.analysis.TaskScore`).
    """

    steps: np.ndarray
    latency: np.ndarray
    accuracy: np.ndarray | None
    sops: np.ndarray
    snn_pj: np.ndarray
    ann_accuracy: float | None
    ann_macs: int
    ann_pj: float
    table: EnergyTable
    convention: str
    metric: str = "accuracy"

    def to_markdown(self) -> str:
        """A Markdown table: T (and the latency where it differs), accuracy, SOPs per image,
        energy per image; the ANN last."""
        unit, scale = energy_unit(max(float(self.snn_pj.max()), self.ann_pj))
        latency = not np.array_equal(self.latency, self.steps)
        lines = ["| T | " + ("latency (steps) | " if latency else "") + f"{self.metric} (%) | "
                 f"SOPs per image | energy per image ({unit}) |",
                 "|---:|" + ("---:|" if latency else "") + "---:|---:|---:|"]
        for k, step in enumerate(self.steps):
            accuracy = "–" if self.accuracy is None else f"{100 * self.accuracy[k]:.2f}"
            lines.append(f"| {step} | " + (f"{self.latency[k]} | " if latency else "")
                         + f"{accuracy} | {self.sops[k]:.4g} | {self.snn_pj[k] / scale:.4g} |")
        accuracy = "–" if self.ann_accuracy is None else f"{100 * self.ann_accuracy:.2f}"
        lines.append("| ANN | " + ("| " if latency else "") + f"{accuracy} | {self.ann_macs:.4g} "
                     f"MACs | {self.ann_pj / scale:.4g} |")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """JSON-ready: accuracies as fractions in [0, 1], energies in µJ per image (the key
        names say so), SOPs and MACs per image. A task's metric is under its own key
        (``"miou"``, ``"map50"``, and ``"ann_miou"``, ...) with ``"metric"`` naming it."""
        key = METRIC_KEYS.get(self.metric, "accuracy")
        task = {} if key == "accuracy" else {"metric": self.metric}
        return {"T": self.steps.tolist(), "latency": self.latency.tolist(), **task,
                key: None if self.accuracy is None else self.accuracy.tolist(),
                "sops_per_image": self.sops.tolist(),
                "energy_uj_per_image": (self.snn_pj / 1e6).tolist(),
                f"ann_{key}": self.ann_accuracy, "ann_macs": self.ann_macs,
                "ann_energy_uj": self.ann_pj / 1e6, "energy_table": self.table.name,
                "convention": self.convention}


def checkpoint_summary(snn: SpikingNetwork, result: SimResult,
                       labels: np.ndarray | TaskScore | None = None,
                       inputs: np.ndarray | None = None, table: str | EnergyTable = FLOAT32_45NM,
                       convention: str = "reinject") -> CheckpointSummary:
    """Accuracy (with ``labels``), SOPs and energy per image at each checkpoint of ``result``.

    ``labels``: the classes ``(N,)``, or a :class:`~evsim.analysis.TaskScore` for scenes
    (then its metric, mIoU or mAP@.5, takes accuracy's place). ``inputs`` (the
    simulated images) gives the ANN's accuracy on the same images when ``labels`` are
    given too.
    """
    table = energy_table(table)
    reports = [energy_report(snn, result, table, convention, steps=int(t))
               for t in result.checkpoints]
    sops = result.cumulative_sops() / result.n_images
    task = isinstance(labels, TaskScore)
    accuracy = (None if labels is None else labels.curve(result) if task
                else result.accuracy(labels))
    ann_accuracy = None
    if labels is not None and inputs is not None:
        output = forward(snn.network, inputs)
        ann_accuracy = (labels.score(output) if task else float(
            (output.reshape(len(inputs), -1).argmax(axis=1) == np.asarray(labels)).mean()))
    latency = (np.array([result.latency]) if result.time_scheme in WINDOWED
               else result.checkpoints.copy())
    return CheckpointSummary(result.checkpoints.copy(), latency, accuracy, sops,
                             np.array([r.snn_pj for r in reports]), ann_accuracy,
                             reports[-1].ann_macs, reports[-1].ann_pj, table, convention,
                             labels.metric if task else "accuracy")


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> np.ndarray:
    """``(n_classes, n_classes)`` int64 counts: row = true class, column = predicted class."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape or labels.ndim != 1:
        raise EvsimValueError(f"labels {labels.shape} and predictions {predictions.shape} must be "
                              "1-D and of equal length")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise EvsimValueError(f"{name} must lie in 0..{n_classes - 1}, got "
                                  f"{values.min()}..{values.max()}")
    matrix = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(matrix, (labels.astype(np.int64), predictions.astype(np.int64)), 1)
    return matrix


def class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Accuracy per true class (fraction) from a confusion matrix; NaN for absent classes."""
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / np.maximum(totals, 1), np.nan)


__all__ = ["CheckpointSummary", "checkpoint_summary", "confusion_matrix", "class_accuracy"]
