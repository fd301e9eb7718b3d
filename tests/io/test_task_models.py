"""The bundled segmentation and detection models: evsim's ANN equals ONNX Runtime on their
ONNX export, and the event engine equals the dense engine on their spiking versions."""

from importlib import resources

import numpy as np
import pytest

import evsim
from evsim.analysis import task_score
from evsim.data import bundled_scenes
from evsim.models import available_models, load_model, model_info

TASK_MODELS = ("unet_relu", "unet_qcfs", "centernet_relu", "centernet_qcfs")


@pytest.fixture(scope="module")
def scenes():
    return bundled_scenes().take(slice(0, 4))


def _onnx_path(name):
    return resources.files("evsim.models").joinpath(f"{name}.onnx")


@pytest.mark.parametrize("name", TASK_MODELS)
def test_a_task_model_is_bundled_with_its_card(name, scenes):
    assert name in available_models()
    info = model_info(name)
    network = load_model(name)
    score = task_score(network.output_shape, network.input_shape, scenes)
    assert score.task == ("segmentation" if name.startswith("unet") else "detection")
    assert ("test_miou" if score.task == "segmentation" else "test_map50") in info
    assert info["recipe"]["kept_epoch"] in [e["epoch"] for e in info["history"]]
    assert 10_000 < info["parameters"] < 100_000


@pytest.mark.parametrize("name", TASK_MODELS)
def test_the_ann_equals_onnx_runtime(name, scenes):
    ort = pytest.importorskip("onnxruntime")
    with resources.as_file(_onnx_path(name)) as path:
        reference = ort.InferenceSession(str(path)).run(None, {"input": scenes.images})[0]
        imported = evsim.forward(evsim.load(path), scenes.images)
    got = evsim.forward(load_model(name), scenes.images)
    # QCFS turns a last-bit float difference at a level boundary into a whole level: allow
    # a few such outputs, no more.
    close = np.isclose(got, reference, rtol=1e-4, atol=1e-4)
    assert close.mean() > (0.999 if name.endswith("qcfs") else 1 - 1e-9)
    np.testing.assert_allclose(imported, got, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, method", [("unet_relu", "percentile"), ("unet_qcfs", "qcfs"),
                                          ("centernet_relu", "spicalib"),
                                          ("centernet_qcfs", "qcfs")])
def test_event_engine_equals_dense_engine(name, method, scenes):
    snn = evsim.convert(load_model(name), bundled_scenes().images[-20:], method=method, T=4)
    x = scenes.images[:2]
    dense = evsim.simulate(snn, x, T=4, engine="dense")
    event = evsim.simulate(snn, x, T=4, engine="event")
    # spike for spike and SOP for SOP; the readout sums floats (learned thresholds, the
    # analog first layer's GEMM) in another order, so it agrees to rounding
    diff = evsim.difference(dense, event)
    assert diff["spikes"] == 0 and diff["sops"] == {} and event.total_sops() > 0
    np.testing.assert_allclose(event.outputs, dense.outputs, rtol=1e-5, atol=1e-4)
