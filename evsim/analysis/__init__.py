"""Analysis of simulation results: spike statistics, conversion error, operation and energy counts.

* :mod:`evsim.analysis.stats` -- firing rates, silent/saturated neurons,
  per-step sparsity, inter-spike intervals, first-spike times, conversion
  error per layer and of the output versus T;
* :mod:`evsim.analysis.energy` -- ANN MACs against the SNN's exact SOPs,
  energy tables (Horowitz 2014 presets) and :func:`energy_report`;
* :mod:`evsim.analysis.energy_memory` -- energy with memory accesses and addressing
  (Lemaire et al. 2022) from the same exact counts (:func:`memory_energy_report`);
* :mod:`evsim.analysis.confidence` -- the Wilson 95 % interval of an accuracy
  (:func:`wilson_interval`); :mod:`evsim.analysis.pareto` -- the Pareto-optimal points of
  accuracy against a cost (:func:`pareto_optimal`);
* :mod:`evsim.analysis.summary` -- accuracy, SOPs and energy per image at
  every checkpoint (:func:`checkpoint_summary`);
* :mod:`evsim.analysis.segmentation` -- mIoU and pixel accuracy (:func:`segmentation_scores`,
  :func:`segmentation_vs_t`);
* :mod:`evsim.analysis.detection` -- COCO-style mAP in NumPy (:func:`average_precision`,
  :func:`map50`, :func:`detection_vs_t`) and with pycocotools (:func:`coco_map`, extra
  ``coco``);
* :mod:`evsim.analysis.fidelity` -- a task answer's fidelity to the ANN at every
  checkpoint (:func:`segmentation_fidelity`, :func:`detection_fidelity`);
* :mod:`evsim.analysis.task_score` -- a scenes file's task (segmentation or detection,
  from the network's output) and its metric in place of accuracy (:func:`task_score`);
* :mod:`evsim.analysis.neurobench` -- the NeuroBench 2.3.0 metrics
  (:func:`neurobench_metrics`), pure NumPy; it replays max pooling with the dense engine,
  so it is loaded when one of its names is first used (the ``evsim`` command's help loads
  no engine).
"""

from .pareto import pareto_optimal
from .confidence import CONFIDENCE, accuracy_interval, wilson_interval
from .energy_memory import (LEMAIRE_45NM, MemoryEnergyReport, MemoryEnergyRow,
                            MemoryEnergyTable, memory_energy_report)
from .energy import (CONVENTIONS, ENERGY_TABLES, FLOAT16_45NM, FLOAT32_45NM, INT8_45NM,
                     EnergyReport, EnergyRow, EnergyTable, ann_adds, ann_macs, energy_report,
                     energy_table, energy_unit)
from .stats import (LayerErrorStats, OutputErrorStats, conversion_error, counts_per_image,
                    first_spike_times, interspike_intervals, isi_cv, layer_firing_rates,
                    neuron_firing_rates, output_error, rate_vs_activation, saturated_fraction,
                    silent_fraction, recorded_train, snn_rates, sparsity_per_step,
                    spikes_per_step)
from .summary import CheckpointSummary, checkpoint_summary, class_accuracy, confusion_matrix
from .detection import (COCO_IOU_THRESHOLDS, DetectionCurve, average_precision, coco_map,
                        detection_vs_t, map50)
from .fidelity import TaskFidelity, detection_fidelity, segmentation_fidelity
from .segmentation import (SegmentationCurve, SegmentationScores, checkpoint_confusions,
                           mean_iou, pixel_accuracy, scores_from_confusion,
                           segmentation_confusion, segmentation_scores, segmentation_vs_t)
from .task_score import TASKS, TaskScore, task_score

_NEUROBENCH = ("neurobench_metrics", "neurobench_static_metrics", "NEUROBENCH_VERSION")


def __getattr__(name: str):
    if name not in _NEUROBENCH:
        raise AttributeError(f"module 'evsim.analysis' has no attribute {name!r}")
    from . import neurobench

    value = getattr(neurobench, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NEUROBENCH))

__all__ = [
    "counts_per_image", "recorded_train", "neuron_firing_rates", "layer_firing_rates",
    "silent_fraction", "saturated_fraction",
    "spikes_per_step", "sparsity_per_step", "interspike_intervals", "isi_cv",
    "first_spike_times", "snn_rates", "rate_vs_activation", "conversion_error",
    "LayerErrorStats", "output_error", "OutputErrorStats",
    "EnergyTable", "FLOAT32_45NM", "FLOAT16_45NM", "INT8_45NM", "ENERGY_TABLES", "energy_table",
    "ann_macs", "ann_adds", "EnergyRow", "EnergyReport", "energy_report", "energy_unit",
    "CONVENTIONS", "MemoryEnergyTable", "LEMAIRE_45NM", "MemoryEnergyRow", "MemoryEnergyReport",
    "memory_energy_report", "CheckpointSummary", "checkpoint_summary", "confusion_matrix",
    "class_accuracy", "CONFIDENCE", "wilson_interval", "accuracy_interval",
    "pareto_optimal",
    "SegmentationScores", "SegmentationCurve", "segmentation_confusion", "segmentation_scores",
    "mean_iou", "pixel_accuracy", "segmentation_vs_t", "checkpoint_confusions",
    "scores_from_confusion",
    "COCO_IOU_THRESHOLDS", "average_precision", "map50", "coco_map", "DetectionCurve",
    "detection_vs_t", "TaskFidelity", "segmentation_fidelity", "detection_fidelity",
    "TASKS", "TaskScore", "task_score",
    "neurobench_metrics", "neurobench_static_metrics", "NEUROBENCH_VERSION",
]
