"""The evsim command on segmentation and detection scenes: run, report, compare, demo --task."""

import json

import numpy as np
import pytest

import evsim
from evsim.cli import main
from evsim.data import bundled_scenes, save_scenes
from evsim.models import load_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_tasks")
    save_scenes(root / "scenes.npz", bundled_scenes().take(slice(0, 3)))
    calibration = bundled_scenes().images[-20:]
    for name in ("unet_relu", "centernet_relu"):
        evsim.save(load_model(name), root / f"{name}.npz")
        evsim.save(evsim.convert(load_model(name), calibration), root / f"snn_{name}.npz")
    evsim.save(evsim.convert(load_model("fashion_cnn"), np.zeros((2, 1, 28, 28), np.float32)),
               root / "snn_classifier.npz")
    return root


def _json(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name, key, metric", [("unet_relu", "miou", "mIoU"),
                                               ("centernet_relu", "map50", "mAP@.5")])
def test_run_reports_the_task_metric(files, capsys, name, key, metric):
    snn = str(files / f"snn_{name}.npz")
    assert main(["run", snn, str(files / "scenes.npz"), "--T", "4"]) == 0
    assert f"| T | {metric} (%) |" in capsys.readouterr().out
    out = _json(capsys, ["run", snn, str(files / "scenes.npz"), "--T", "4", "--json"])
    assert out["metric"] == metric and len(out[key]) == len(out["T"]) and "accuracy" not in out
    assert 0 <= out[f"ann_{key}"] <= 1


def test_bundled_means_the_bundled_scenes_for_a_scene_model(files, capsys):
    out = _json(capsys, ["run", str(files / "snn_unet_relu.npz"), "bundled", "--images", "2",
                         "--T", "2", "--json"])
    assert out["images"] == 2 and "bundled Fashion-MNIST test scenes" in out["data"]


def test_a_classifier_on_scenes_is_refused(files, capsys):
    assert main(["run", str(files / "snn_classifier.npz"), str(files / "scenes.npz")]) == 2
    assert "the network's output (10,) is neither a segmentation" in capsys.readouterr().err


@pytest.mark.slow  # about 80 s: the report's full recording of a 64 x 64 scene
def test_report_shows_the_scenes_side_by_side(files, capsys):
    out = files / "report"
    assert main(["report", str(files / "snn_centernet_relu.npz"), str(files / "scenes.npz"),
                 "--T", "4", "--output", str(out), "--analysis-images", "1"]) == 0
    text = (out / "report.md").read_text()
    assert "## mAP@.5, SOPs and energy versus T" in text and "| T | mAP@.5 (%) |" in text
    assert "## Detection of the first scenes" in text and "SNN's at T = 1, 2, 4" in text
    assert (out / "task_predictions.png").is_file() and (out / "accuracy_vs_T.png").is_file()


def test_compare_reports_the_task_metric(files, capsys):
    out = files / "compare"
    assert main(["compare", str(files / "unet_relu.npz"), "bundled", str(files / "scenes.npz"),
                 "--methods", "percentile,spicalib", "--T", "2,4", "--calibration-images", "20",
                 "--output", str(out)]) == 0
    assert "### mIoU (%)" in (out / "comparison.md").read_text()
    saved = json.loads((out / "comparison.json").read_text())
    assert saved["metric"] == "mIoU" and set(saved["methods"][1]["accuracy"]) == {"2", "4"}


@pytest.mark.parametrize("task, method, model, key", [
    ("segmentation", "percentile", "unet_relu", "miou"),
    ("detection", "qcfs", "centernet_qcfs", "map50")])
def test_demo_runs_a_task_end_to_end(capsys, task, method, model, key):
    out = _json(capsys, ["demo", "--task", task, "--method", method, "--images", "2", "--T",
                         "4", "--no-report", "--json"])
    assert out["model"] == model and len(out[key]) == 3 and out["images"] == 2
    assert "bundled Fashion-MNIST test scenes" in out["data"]


def test_demo_refuses_a_model_of_another_task(capsys):
    assert main(["demo", "--task", "detection", "--model", "unet_relu", "--images", "1",
                 "--no-report"]) == 2
    assert "--task detection: the model answers segmentation" in capsys.readouterr().err


def test_an_onnx_export_converts_and_reports_its_metric(files, capsys):
    """The detector's ONNX file (exported from torch, as a user's would be) through the CLI."""
    from importlib import resources

    with resources.as_file(resources.files("evsim.models") / "centernet_relu.onnx") as onnx:
        assert main(["convert", str(onnx), "bundled", "-o", str(files / "from_onnx.npz"),
                     "--calibration-images", "20"]) == 0
    out = _json(capsys, ["run", str(files / "from_onnx.npz"), str(files / "scenes.npz"),
                         "--T", "4", "--json"])
    assert out["metric"] == "mAP@.5" and len(out["map50"]) == 3
