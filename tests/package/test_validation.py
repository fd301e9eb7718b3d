"""No silent wrong answers: bad images, labels, step counts, batch sizes and graphs are refused."""

import warnings

import numpy as np
import pytest
from dyadic import dyadic, dyadic_threshold

import evsim
from evsim import (Conv2d, Dense, EvsimTypeError, EvsimValueError, Flatten, NetworkBuilder,
                   NeuronSpec, ReLU, SpikingNetwork, UnscaledInputWarning)
from evsim.network import GraphError
from evsim.validate import cgroup_room, check_images, check_labels, simulation_memory


def _snn(time_scheme="synchronous"):
    rng = np.random.default_rng(0)
    b = NetworkBuilder((1, 4, 4))
    b.add_layer(Conv2d(dyadic(rng, (2, 1, 3, 3), low=-2), padding=1), name="conv")
    b.add_layer(ReLU(), name="relu")
    b.add_layer(Flatten(), name="flat")
    b.add_layer(Dense(dyadic(rng, (3, 32))), name="fc")
    net = b.build()
    return SpikingNetwork(net, {"relu": NeuronSpec(dyadic_threshold(rng))},
                          time_scheme=time_scheme), rng


@pytest.mark.parametrize("engine", ["dense", "event"])
@pytest.mark.parametrize("time_scheme", ["synchronous", "temporal"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_images_are_refused_naming_count_and_first_image(engine, time_scheme, bad):
    snn, rng = _snn(time_scheme)
    x = dyadic(rng, (5, 1, 4, 4), low=0)
    x[3, 0, 1, :2] = bad
    x[4, 0, 0, 0] = bad
    with pytest.raises(EvsimValueError, match=r"3 (NaN|infinite).*the first in image 3"):
        evsim.simulate(snn, x, T=4, engine=engine)
    with pytest.raises(EvsimValueError, match="the first in image 3"):
        evsim.forward(snn.network, x)


def test_all_nan_image_gets_no_class():
    snn, _ = _snn()
    with pytest.raises(EvsimValueError, match="16 NaN and 0 infinite value"):
        evsim.simulate(snn, np.full((1, 1, 4, 4), np.nan), T=2)


@pytest.mark.parametrize("images, expected", [
    (np.full((2, 1, 4, 4), 255, np.uint8), r"uint8 with values in \[255, 255\].*/ 255"),
    (np.full((2, 1, 4, 4), 200.0), r"range over \[200, 200\], above 1.*divide them by 255"),
    (np.full((2, 1, 4, 4), 2.5), r"range over \[2.5, 2.5\].*divide them by the largest value"),
])
def test_unscaled_images_draw_a_warning_naming_the_range_and_the_fix(images, expected):
    snn, _ = _snn()
    with pytest.warns(UnscaledInputWarning, match=expected):
        evsim.simulate(snn, images, T=2)


def test_scaled_images_and_rate_encoding_do_not_warn():
    snn, rng = _snn()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnscaledInputWarning)
        evsim.simulate(snn, dyadic(rng, (2, 1, 4, 4), low=0), T=2)
        evsim.simulate(snn, np.ones((2, 1, 4, 4), np.uint8), T=2)  # binary images are fine
        with pytest.raises(ValueError, match="rate encoding needs inputs in"):
            evsim.simulate(snn, np.full((2, 1, 4, 4), 255.0), T=2, encoding="rate")


def test_calibration_check_for_the_converter_names_the_calibration_images():
    with pytest.warns(UnscaledInputWarning, match="^calibration images are uint8"):
        check_images(np.full((3, 1, 4, 4), 255, np.uint8), what="calibration images")
    bad = np.zeros((3, 1, 4, 4))
    bad[2, 0, 0, 0] = np.nan
    with pytest.raises(EvsimValueError, match="^calibration images hold 1 NaN.*image 2"):
        check_images(bad, what="calibration images")


def test_labels_outside_the_output_range_are_refused():
    snn, rng = _snn()
    result = evsim.simulate(snn, dyadic(rng, (3, 1, 4, 4), low=0), T=2)
    assert result.accuracy(np.array([0, 1, 2])).shape == (2,)
    assert result.accuracy(np.array([0.0, 1.0, 2.0])).shape == (2,)
    for labels, bad in [([0, 1, 3], "3 at index 2"), ([-1, 0, 0], "-1 at index 0"),
                        ([0.5, 0, 0], "0.5 at index 0"), ([0, np.nan, 0], "nan at index 1")]:
        with pytest.raises(EvsimValueError, match=r"class indices in \[0, 3\).*" + bad):
            result.accuracy(np.array(labels))
    with pytest.raises(EvsimValueError, match=r"expected \(3,\)"):
        result.accuracy(np.array([0, 1]))
    with pytest.raises(EvsimValueError, match="in \\[0, 10\\)"):
        check_labels(np.array([10]), 10)


@pytest.mark.parametrize("T, error", [(True, EvsimTypeError), (2.5, EvsimTypeError),
                                      (32.0, EvsimTypeError), ("8", EvsimTypeError),
                                      (0, EvsimValueError), (-3, EvsimValueError)])
def test_T_must_be_a_positive_int(T, error):
    snn, rng = _snn()
    x = dyadic(rng, (1, 1, 4, 4), low=0)
    with pytest.raises(error, match="T must be a positive integer") as info:
        evsim.simulate(snn, x, T=T)
    assert ("int(T)" in str(info.value)) == (T == 32.0)
    assert evsim.simulate(snn, x, T=np.int64(3)).T == 3


@pytest.mark.parametrize("batch_size, error", [(0, EvsimValueError), (-1, EvsimValueError),
                                               (True, EvsimTypeError), (1.0, EvsimTypeError)])
def test_batch_size_must_be_at_least_one(batch_size, error):
    snn, rng = _snn()
    x = dyadic(rng, (2, 1, 4, 4), low=0)
    with pytest.raises(error, match="batch_size must be a positive integer"):
        evsim.simulate(snn, x, T=2, batch_size=batch_size)
    with pytest.raises(error, match="batch_size must be a positive integer"):
        evsim.forward(snn.network, x, batch_size=batch_size)


def test_forward_refuses_a_spiking_network_and_says_what_to_do():
    snn, rng = _snn()
    with pytest.raises(EvsimTypeError, match="pass snn.network.*evsim.simulate"):
        evsim.forward(snn, dyadic(rng, (1, 1, 4, 4), low=0))


def test_a_branch_that_never_reaches_the_output_is_refused():
    rng = np.random.default_rng(0)
    b = NetworkBuilder((4,))
    b.add_layer(Dense(dyadic(rng, (4, 4))), name="fc1")
    b.add_layer(ReLU(), name="relu1")
    b.add_layer(Dense(dyadic(rng, (4, 4))), "relu1", name="side")  # read by nothing
    b.add_layer(ReLU(), "side", name="side_relu")
    b.add_layer(Dense(dyadic(rng, (2, 4))), "relu1", name="out")
    with pytest.raises(GraphError, match=r"layer 'side' \(Dense\) never reaches the output "
                                         r"'out' \(and 1 more: \['side_relu'\]\)"):
        b.build()


def test_onnx_import_skips_nodes_no_output_depends_on():
    onnx = pytest.importorskip("onnx")
    from corrupt import onnx_model
    from onnx import helper
    model = onnx_model()
    model.graph.node.append(helper.make_node("Relu", ["c"], ["unused"], name="dead"))
    reference = evsim.io.load_onnx(onnx_model())
    imported = evsim.io.load_onnx(onnx.ModelProto.FromString(model.SerializeToString()))
    assert imported.equals(reference)


def test_memory_for_an_impossible_T_is_refused_before_allocating():
    snn, rng = _snn()
    with pytest.raises(evsim.InsufficientMemoryError, match=r"T = 1000000000000 steps needs at "
                                                             r"least [\d.]+ [TP]B") as info:
        evsim.simulate(snn, dyadic(rng, (1, 1, 4, 4), low=0), T=10 ** 12, engine="event")
    assert info.value.needed > info.value.available > 0
    assert isinstance(info.value, MemoryError)


def test_memory_estimate_counts_what_grows_with_T_and_images():
    snn, _ = _snn()
    run = dict(engine="dense", batch_size=8, checkpoints=4, per_image_counts=False,
               recorded=0, dtype=np.float32)
    small = simulation_memory(snn, 10, 16, **run)
    assert simulation_memory(snn, 10, 32, **run)["SOP counters per step"] == (
        2 * small["SOP counters per step"])
    assert small["outputs at checkpoints"] == 4 * 10 * 3 * 4  # K x images x classes x float32
    assert simulation_memory(snn, 20, 16, **run)["outputs at checkpoints"] == (
        2 * small["outputs at checkpoints"])


def test_cgroup_room_counts_reclaimable_page_cache_as_free(tmp_path):
    (tmp_path / "memory.max").write_text("1000000\n")
    (tmp_path / "memory.current").write_text("900000\n")
    (tmp_path / "memory.stat").write_text("anon 100000\nfile 800000\ninactive_file 700000\n")
    assert cgroup_room(tmp_path) == 1000000 - (900000 - 700000)
    (tmp_path / "memory.stat").unlink()
    assert cgroup_room(tmp_path) == 100000
    (tmp_path / "memory.max").write_text("max\n")
    assert cgroup_room(tmp_path) is None
    assert cgroup_room(tmp_path / "absent") is None
