"""The bundled real model, converted and simulated on real Fashion-MNIST test images."""

import pytest

import evsim
from evsim.data import load_bundled_sample
from evsim.models import load_model


@pytest.fixture(scope="module")
def converted():
    network = load_model("fashion_cnn")
    calibration, _ = load_bundled_sample("train")
    images, labels = load_bundled_sample("test")
    snn = evsim.convert(network, calibration, method="percentile")
    ann = evsim.forward(network, images).argmax(axis=1)
    return snn, images, labels, ann


@pytest.fixture(scope="module")
def event_result(converted):
    snn, images, _, _ = converted
    return evsim.simulate(snn, images, T=128, engine="event")


def test_percentile_conversion_is_within_one_point_at_T128(converted, event_result):
    _, _, labels, ann = converted
    ann_accuracy = (ann == labels).mean()
    snn_accuracy = event_result.accuracy(labels)[-1]
    assert event_result.checkpoints[-1] == 128
    assert snn_accuracy >= ann_accuracy - 0.01, (snn_accuracy, ann_accuracy)


@pytest.mark.slow
def test_engines_agree_on_the_real_model(converted, event_result):
    """Float sums differ in order between engines: predictions must agree; report the rest."""
    snn, images, _, _ = converted
    dense = evsim.simulate(snn, images, T=128, engine="dense")
    diff = evsim.difference(dense, event_result)
    total_spikes = sum(int(c.sum()) for c in dense.spike_counts.values())
    total_sops = dense.total_sops()
    print(f"\nreal model, 1000 images, T=128: {diff['spikes']} of {total_spikes} spikes differ, "
          f"SOP differences {diff['sops']} of {total_sops}, max output difference "
          f"{diff['outputs']:.3g}, {diff['predictions']} predictions differ")
    assert diff["predictions"] == 0
    assert diff["spikes"] <= 1e-5 * total_spikes
