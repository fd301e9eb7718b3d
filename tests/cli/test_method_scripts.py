"""The scripts behind the method comparison still run (smoke mode, real data)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evsim.data import find_fashion_mnist

ROOT = Path(__file__).resolve().parents[2]
needs_data = pytest.mark.skipif(find_fashion_mnist() is None,
                                reason="needs the Fashion-MNIST files "
                                "(apt-get install dataset-fashion-mnist)")


def _run(script, *args):
    done = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
@needs_data
def test_training_script_smoke(tmp_path):
    pytest.importorskip("torch")
    import json

    import evsim

    out = _run("train_method_models.py", "--smoke", "--out", str(tmp_path))
    for name in ("vgg_relu", "vgg_tcl", "vgg_qcfs", "vgg_nq", "resnet", "mobilenet", "denoiser"):
        assert (tmp_path / f"{name}.npz").is_file() and f"{name}:" in out
        info = json.loads((tmp_path / f"{name}.json").read_text())
        assert info["recipe"]["kept_epoch"] in [e["epoch"] for e in info["history"]]
    nq = json.loads((tmp_path / "vgg_nq.json").read_text())
    assert len(nq["nq_sigma_per_epoch"]) == 1 and "held_out_snn_T4" in nq["history"][-1]
    names = [node.name for node in evsim.load(tmp_path / "vgg_qcfs.npz").nodes]
    assert names[1:4] == ["conv1", "bn1", "qcfs1"] and names[-1] == "fc"
    assert "block1_conv1" in [n.name for n in evsim.load(tmp_path / "resnet.npz").nodes]
    mobilenet = evsim.load(tmp_path / "mobilenet.npz")
    assert mobilenet["block2_depthwise"].layer.groups == 64
    assert mobilenet["add"].inputs == ("block1_bn3", "relu1")
    assert "sample_correct" in json.loads((tmp_path / "mobilenet.json").read_text())


@pytest.mark.slow
@needs_data
def test_comparison_smoke(tmp_path):
    _run("compare_methods.py", "--smoke", "--out", str(tmp_path))
    text = (tmp_path / "results.md").read_text()
    assert "| method | model | ANN | T=1 | T=2 | T=4 |" in text
    assert "## The papers' claims against these numbers" in text
    claims = text.split("## The papers' claims against these numbers")[1].split("###")[0]
    bullets = [line for line in claims.splitlines() if line.startswith("- ")]
    assert len(bullets) == 8  # SpiCalib, OPI, SpikeConverter, NQ×2, QCFS, LIPooling, denoiser
    assert all(("**supported**" in b) != ("**not supported**" in b) for b in bullets)
    assert (tmp_path / "results.png").is_file() and (tmp_path / "results.json").is_file()


@pytest.mark.slow
@needs_data
def test_task_training_script_smoke(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import evsim

    out = _run("train_task_models.py", "--smoke", "--out", str(tmp_path))
    for name, key in (("unet_relu", "test_miou"), ("unet_qcfs", "test_miou"),
                      ("centernet_relu", "test_map50"), ("centernet_qcfs", "test_map50")):
        assert (tmp_path / f"{name}.onnx").is_file() and f"{name}:" in out
        info = json.loads((tmp_path / f"{name}.json").read_text())
        assert key in info and info["recipe"]["kept_epoch"] == 1
    network = evsim.load(tmp_path / "centernet_qcfs.npz")
    assert network.output_shape == (12, 16, 16) and "upqcfs1" in [n.name for n in network.nodes]


@pytest.mark.slow
@needs_data
def test_task_comparison_smoke(tmp_path):
    _run("compare_tasks.py", "--smoke", "--trials", "2", "--out", str(tmp_path))
    text = (tmp_path / "results_tasks.md").read_text()
    assert "| method | model | ANN mIoU (%) | T=1 | T=2 | T=4 |" in text
    assert "| method | model | ANN mAP@.5 (%) | T=1 | T=2 | T=4 |" in text
    claims = text.split("## SpiCalib's claims against these numbers")[1].split("## Notes")[0]
    bullets = [line for line in claims.splitlines() if line.startswith("- ")]
    # three claims for each SpiCalib row (BO-tuned and fixed), then "state of the art"
    assert len(bullets) == 7 and claims.count("With **SpiCalib") == 2
    tuned = text.split("## SpiCalib's p and A by Bayesian optimisation (2 trials per T)")[1]
    assert sum(line.startswith("| segmentation |") for line in tuned.splitlines()) == 3
    assert all(sum(v in b for v in ("**supported**", "**not supported**",
                                     "**not testable here**")) == 1 for b in bullets)
    saved = json.loads((tmp_path / "results_tasks.json").read_text())
    assert saved["scenes"] == 4 and saved["trials"] == 2
    assert set(saved["results"]) == {"segmentation", "detection"}


@pytest.mark.slow
@needs_data
def test_mobilenet_script_smoke(tmp_path):
    """The MobileNet-v2 measurement's smoke run: its section names every method and the ANN,
    and replaces the old MobileNet-v2 section of a results file (nothing else)."""
    import importlib.util
    import json

    _run("mobilenet_conversion.py", "--smoke", "--out", str(tmp_path))
    text = (tmp_path / "mobilenet.md").read_text()
    data = json.loads((tmp_path / "mobilenet.json").read_text())
    assert text.startswith("## MobileNet-v2") and "| ANN |" in text
    assert [row["label"] for row in data["methods"]] == [
        line.split(" | ")[0][2:]
        for line in text.split("### Accuracy (%)")[1].split("###")[0].splitlines()
        if line.startswith("| ") and not line.startswith(("| method", "| ANN"))]
    assert data["n_images"] == 20 and data["depth"] > 0
    spec = importlib.util.spec_from_file_location("mobilenet_conversion",
                                                  ROOT / "examples" / "mobilenet_conversion.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    results = tmp_path / "results.md"
    results.write_text("# R\n\n## A\nkeep\n\n## MobileNet-v2, old\nSTALE\n\n## B\nkeep too\n")
    script.write_docs(text, results)
    written = results.read_text()
    assert "STALE" not in written and written.count("keep") == 2 and text in written
    low, high = script.wilson(92, 100)
    assert 0.85 < low < 0.92 < high < 0.96
