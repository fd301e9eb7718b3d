"""Every plot returns a Figure with the expected panels and marks, and saves as a PNG."""

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure

import evsim
from evsim import AvgPool2d, Conv2d, Dense, Flatten, NetworkBuilder, ReLU
from evsim import plot
from evsim.analysis import conversion_error, energy_report, output_error
from evsim.analysis.energy import EnergyTable

T = 16


@pytest.fixture(scope="module")
def run():
    rng = np.random.default_rng(0)
    b = NetworkBuilder((1, 8, 8))
    b.add_layer(Conv2d(rng.normal(0, 0.5, (4, 1, 3, 3)), padding=1), name="conv1")
    b.add_layer(ReLU(), name="relu1")
    b.add_layer(AvgPool2d(2), name="pool1")
    b.add_layer(Conv2d(rng.normal(0, 0.4, (6, 4, 3, 3)), padding=1), name="conv2")
    b.add_layer(ReLU(), name="relu2")
    b.add_layer(Flatten(), name="flatten")
    b.add_layer(Dense(rng.normal(0, 0.2, (3, 96))), name="fc")
    x = rng.uniform(0, 1, (5, 1, 8, 8)).astype(np.float32)
    snn = evsim.convert(b.build(), x, method="percentile")
    result = evsim.simulate(snn, x, T=T, engine="dense",
                            record={"relu1": [0, 9, 10, 27], "relu2": None},
                            per_image_counts=True)
    return snn, x, result


def _saved(fig: Figure, path) -> None:
    assert isinstance(fig, Figure)
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_spike_raster_marks_every_recorded_spike_of_the_image(run, tmp_path):
    _, _, result = run
    fig = plot.spike_raster(result, "relu2", image=1)
    (ax,) = fig.axes
    (points,) = [c for c in ax.collections if isinstance(c, PathCollection)]
    train = result.spike_trains["relu2"]
    assert len(points.get_offsets()) == int((train.images == 1).sum()) > 0
    _saved(fig, tmp_path / "raster.png")
    with pytest.raises(ValueError, match="record="):
        plot.spike_raster(evsim.simulate(run[0], run[1][:1], T=2), "relu1")


def _by_gid(artists, gid):
    (found,) = [a for a in artists if a.get_gid() == gid]
    return found


def test_membrane_trace_shows_the_potential_before_reset_threshold_and_spikes(run, tmp_path):
    snn, _, result = run
    fig = plot.membrane_trace(result, snn, "relu1", neuron=9, image=0)
    (ax,) = fig.axes
    before = _by_gid(ax.get_lines(), "before_reset")
    np.testing.assert_array_equal(before.get_ydata(),
                                  result.membrane_before_reset["relu1"][:, 0, 1])
    np.testing.assert_array_equal(_by_gid(ax.get_lines(), "after_reset").get_ydata(),
                                  result.membrane["relu1"][:, 0, 1])
    theta = float(snn.threshold("relu1").reshape(-1)[9])
    assert np.allclose(_by_gid(ax.get_lines(), "theta").get_ydata(), theta)
    train = result.spike_trains["relu1"]
    fired = (train.images == 0) & (train.neurons == 1)
    marks = _by_gid(ax.collections, "spikes").get_offsets()
    assert len(marks) == int(fired.sum()) > 0
    np.testing.assert_array_equal(marks[:, 0], train.steps[fired])
    assert np.all(marks[:, 1] >= theta)  # marked where the potential crossed θ
    _saved(fig, tmp_path / "membrane.png")
    with pytest.raises(ValueError, match="neuron 3 of layer 'relu1' was not recorded"):
        plot.membrane_trace(result, snn, "relu1", neuron=3)


def test_membrane_trace_of_a_result_without_pre_reset_potentials(run):
    import dataclasses

    snn, _, result = run
    old = dataclasses.replace(result, membrane_before_reset={})
    (ax,) = plot.membrane_trace(old, snn, "relu1", neuron=9).axes
    assert [ln.get_gid() for ln in ax.get_lines()] == ["after_reset", "theta"]


def test_input_image_and_beside_input_show_the_image(run, tmp_path):
    snn, x, result = run
    fig = plot.beside_input(x[2], lambda ax: plot.spike_raster(result, "relu2", image=2, ax=ax))
    left, right = fig.axes
    np.testing.assert_array_equal(_by_gid(left.get_images(), "input").get_array(), x[2].mean(0))
    assert len(right.collections[0].get_offsets()) > 0
    _saved(fig, tmp_path / "beside.png")
    rgb = np.stack([np.zeros((4, 4)), np.ones((4, 4)), np.full((4, 4), 0.5)])
    (ax,) = plot.input_image(rgb).axes
    assert ax.get_images()[0].get_array().shape == (4, 4, 3)


def test_feature_maps_heatmaps_equal_the_spike_counts(run, tmp_path):
    _, x, result = run
    fig = plot.feature_maps(result, "relu1", image=3, inputs=x)
    counts = result.spike_counts["relu1"][3]                      # (4, 8, 8)
    np.testing.assert_array_equal(fig.axes[0].get_images()[0].get_array(), x[3].mean(0))
    for c in range(4):
        shown = _by_gid(fig.axes[1 + c].get_images(), f"channel {c}").get_array()
        np.testing.assert_array_equal(shown, counts[c])
    _saved(fig, tmp_path / "maps.png")
    with pytest.raises(ValueError, match="channels must be in"):
        plot.feature_maps(result, "relu1", channels=[4])
    summed = evsim.simulate(run[0], x, T=4)
    with pytest.raises(ValueError, match="per_image_counts=True"):
        plot.feature_maps(summed, "relu1")


def test_layer_maps_show_each_layers_busiest_channels(run, tmp_path):
    _, x, result = run
    fig = plot.layer_maps(result, image=1, inputs=x, channels=3)
    assert len(fig.axes) == 3 * 3  # the input row and two layers, 3 columns
    for name in ("relu1", "relu2"):
        counts = result.spike_counts[name][1]
        busiest = sorted(np.argsort(-counts.reshape(len(counts), -1).sum(1),
                                    kind="stable")[:3].tolist())
        for c in busiest:
            shown = [im for ax in fig.axes for im in ax.get_images()
                     if im.get_gid() == f"{name} {c}"]
            np.testing.assert_array_equal(shown[0].get_array(), counts[c])
    _saved(fig, tmp_path / "layers.png")


def test_feature_maps_fold_a_vector_layer_into_one_map():
    net = evsim.Network.sequential((5,), [Dense(np.eye(5)), ReLU(), Dense(np.ones((1, 5)))])
    snn = evsim.SpikingNetwork(net, {"relu1": evsim.NeuronSpec(np.float64(1.0))})
    result = evsim.simulate(snn, np.array([[0.5, 0.25, 1.0, 0.0, 0.75]]), T=8)
    fig = plot.feature_maps(result, "relu1")
    shown = np.ma.filled(fig.axes[0].get_images()[0].get_array().astype(float), np.nan)
    np.testing.assert_array_equal(shown.ravel()[:5], [4, 2, 8, 0, 6])
    assert np.isnan(shown.ravel()[5:]).all() and shown.shape == (2, 3)


def test_spike_animation_has_one_frame_per_step(run, tmp_path):
    from PIL import Image

    snn, x, _ = run
    result = evsim.simulate(snn, x[:2], T=6, engine="dense", record={"relu1": None,
                                                                       "relu2": None})
    path = plot.spike_animation(result, tmp_path / "spikes.gif", image=1, inputs=x[:2])
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 6
    with pytest.raises(ValueError, match="every neuron of layer 'relu1'"):
        plot.spike_animation(run[2], tmp_path / "no.gif", layers=["relu1"])


def test_spikes_per_step_of_the_animation_add_up_to_the_counts(run):
    from evsim.plot import _spikes_per_step

    snn, x, _ = run
    result = evsim.simulate(snn, x[:2], T=6, engine="dense", record={"relu1": None},
                            per_image_counts=True)
    frames = _spikes_per_step(result, "relu1", 1)
    assert frames.shape == (6, 8, 8)
    np.testing.assert_array_equal(frames.sum(axis=0), result.spike_counts["relu1"][1].sum(0))


def test_rate_vs_activation_shows_the_worst_pairs_and_says_how_many(run, tmp_path):
    from evsim.analysis import rate_vs_activation

    snn, x, result = run
    fig = plot.rate_vs_activation(snn, result, x, max_points=100, worst=10)
    pairs = rate_vs_activation(snn, result, x)
    assert len(fig.axes) == 2
    for ax, layer in zip(fig.axes, ["relu1", "relu2"]):
        total = len(x) * result.neurons[layer]
        assert ax.get_title() == f"{layer}: {min(100, total):,} of {total:,} pairs"
        sampled, worst = (c.get_offsets() for c in ax.collections[:2])
        assert len(sampled) + len(worst) == min(100, total) and len(worst) == 10
        rate, act = (a.ravel() for a in pairs[layer])
        error = np.sort(np.abs(rate - act))
        shown_error = np.abs(worst[:, 1] - worst[:, 0])           # (activation, rate) points
        assert np.allclose(np.sort(shown_error), error[-10:])
        assert np.abs(sampled[:, 1] - sampled[:, 0]).max() <= error[-10] + 1e-12
    _saved(fig, tmp_path / "rates.png")
    one = plot.rate_vs_activation(snn, result, x, image=2)
    rate, act = pairs["relu2"][0][2].ravel(), pairs["relu2"][1][2].ravel()
    shown = np.concatenate([c.get_offsets() for c in one.axes[1].collections[:2]])
    assert len(shown) == rate.size
    np.testing.assert_array_equal(np.sort(shown[:, 0]), np.sort(act))
    identity = one.axes[1].get_lines()[0]
    np.testing.assert_array_equal(identity.get_xdata(), identity.get_ydata())


def test_accuracy_vs_T_draws_each_curve_and_the_ann(tmp_path):
    curves = {"max": ([1, 2, 4, 8], [0.1, 0.2, 0.5, 0.7]),
              "percentile": ([1, 2, 4, 8], [0.1, 0.3, 0.6, 0.8])}
    fig = plot.accuracy_vs_T(curves, ann_accuracy=0.9)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 3 and np.allclose(lines[1].get_ydata(), [10, 30, 60, 80])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["max", "percentile", "ANN"]
    _saved(fig, tmp_path / "accuracy.png")
    with pytest.raises(ValueError, match="curve 'bad': 2 checkpoints but 1 accuracies"):
        plot.accuracy_vs_T({"bad": ([1, 2], [0.5])})


def test_accuracy_versus_cost_draws_error_bars_and_rings_the_pareto_front(tmp_path):
    curves = {"a": {"x": [4, 1, 2], "accuracy": [0.9, 0.5, 0.4], "low": [0.8, 0.4, 0.3],
                    "high": [0.95, 0.6, 0.5]},
              "b": {"x": [2, 8], "accuracy": [0.7, 0.7], "low": [0.6, 0.6],
                    "high": [0.8, 0.8]}}
    fig = plot.accuracy_versus_cost(curves, "latency (steps)", ann_accuracy=0.95, n_images=100)
    (ax,) = fig.axes
    first = ax.containers[0]  # the errorbar of 'a', drawn in order of cost
    assert np.allclose(first.lines[0].get_xdata(), [1, 2, 4])
    assert np.allclose(first.lines[0].get_ydata(), [50, 40, 90])
    bars = first.lines[2][0].get_segments()
    assert np.allclose([seg[:, 1] for seg in bars], [[40, 60], [30, 50], [80, 95]])
    rings = [c for c in ax.collections if isinstance(c, PathCollection)][-1]
    # Pareto-optimal: (1, 50 %), (2, 70 %), (4, 90 %); (2, 40 %) and (8, 70 %) are beaten
    assert sorted(map(tuple, rings.get_offsets().tolist())) == [(1, 50), (2, 70), (4, 90)]
    assert "100 images" in ax.get_title() and ax.get_xscale() == "log"
    _, labels = ax.get_legend_handles_labels()
    assert {"a", "b", "ANN", "Pareto-optimal"} == set(labels)
    band = ax.patches[-1]  # the ANN's Wilson interval, shaded
    low, high = evsim.analysis.accuracy_interval(0.95, 100)
    assert np.allclose([band.get_y(), band.get_y() + band.get_height()],
                       [100 * low, 100 * high])
    star = plot.accuracy_versus_cost(curves, "energy", 0.95, 100, ann_cost=3.0).axes[0]
    assert star.collections[-1].get_offsets().tolist() == [[3.0, 95.0]]
    both = plot.accuracy_tradeoffs({"latency": curves, "SOPs": curves}, n_images=100)
    assert [a.get_xlabel() for a in both.axes] == ["latency", "SOPs"]
    _saved(both, tmp_path / "tradeoffs.png")
    with pytest.raises(ValueError, match="curve 'bad': 2 costs but 1 accuracies"):
        plot.accuracy_versus_cost({"bad": {"x": [1, 2], "accuracy": [0.5]}}, "T")


def test_a_task_metric_against_cost_is_labelled_by_its_name_without_a_wilson_band():
    curves = {"spicalib": {"x": [16, 32], "accuracy": [0.50, 0.52]}}
    ax = plot.accuracy_versus_cost(curves, "latency", ann_accuracy=0.53, n_images=200,
                                   metric="mIoU").axes[0]
    assert ax.get_ylabel() == "mIoU (%)" and ax.get_title() == "mIoU versus latency\n200 images"
    assert len(ax.patches) == 0  # mIoU is no fraction of images: no Wilson band for the ANN
    both = plot.accuracy_tradeoffs({"latency": curves}, 0.53, 200, metric="mAP@.5")
    assert both.axes[0].get_ylabel() == "mAP@.5 (%)" and "higher in mAP@.5" in both.get_suptitle()


def test_conversion_and_output_error_plots(run, tmp_path):
    snn, x, result = run
    errors = conversion_error(snn, result, x)
    fig = plot.conversion_error(errors)
    (ax,) = fig.axes
    assert len(ax.containers) == 2 and all(len(c) == 2 for c in ax.containers)
    assert [p.get_height() for p in ax.containers[0]] == [e.rms for e in errors.values()]
    _saved(fig, tmp_path / "error.png")
    out = output_error(snn, result, x)
    fig = plot.output_error(out)
    assert len(fig.axes[0].get_lines()) == 2
    _saved(fig, tmp_path / "output_error.png")


def test_energy_breakdown_stacks_snn_energy_with_reinjection_apart(run, tmp_path):
    snn, _, result = run
    report = energy_report(snn, result)
    fig = plot.energy_breakdown(report)
    (ax,) = fig.axes
    ann, macs, sops, adds = ax.containers
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["ANN", "SNN MACs (analog head)", "SNN synaptic operations (SOPs)",
                      "SNN re-injection adds (analog input, not SOPs)"]
    rows = [r for r in report.rows if r.ann_pj or r.snn_pj]
    assert len(ann) == len(report.rows) - 2              # the two ReLU rows hold no energy
    tops = [sum(c[i].get_height() for c in (macs, sops, adds)) for i in range(len(rows))]
    energies = [r.snn_pj for r in rows]
    assert np.allclose(np.array(tops) / max(tops), np.array(energies) / max(energies))
    injected = [a.get_height() for a in adds]
    assert np.allclose(np.array(injected) / max(tops),
                       np.array([r.snn_adds * 0.9 for r in rows]) / max(energies))
    assert injected[0] > 0 and not any(injected[1:])     # conv1, the analog head, only
    _saved(fig, tmp_path / "energy.png")
    with_updates = energy_report(snn, result, EnergyTable("u", 1.0, 0.1, 0.05))
    assert len(plot.energy_breakdown(with_updates).axes[0].containers) == 5


def test_spike_count_histograms(run, tmp_path):
    _, _, result = run
    fig = plot.spike_count_histogram(result)
    assert len(fig.axes) == 2
    for ax, layer in zip(fig.axes, ["relu1", "relu2"]):
        assert sum(p.get_height() for p in ax.patches) == result.spike_counts[layer].size
    _saved(fig, tmp_path / "counts.png")
    with pytest.raises(ValueError, match="'fc' is not a spiking layer"):
        plot.spike_count_histogram(result, ["fc"])


def test_plots_draw_into_given_axes(run):
    _, _, result = run
    host = Figure()
    ax = host.add_subplot(1, 2, 2)
    assert plot.spike_raster(result, "relu1", ax=ax) is host
    assert plot.accuracy_vs_T({"a": ([1, 2], [0.1, 0.2])}, ax=host.add_subplot(1, 2, 1)) is host
    assert len(host.axes) == 2


def test_raster_shows_a_documented_patch_of_neighbours(run, tmp_path):
    snn, _, result = run
    counts = np.zeros((6, 4, 4), np.int64)
    counts[4, 1, 2] = 3
    neurons, rule = plot.adjacent_neurons((6, 4, 4), counts, size=2)
    assert neurons.tolist() == [4 * 16 + 1 * 4 + 1, 4 * 16 + 1 * 4 + 2,
                                4 * 16 + 2 * 4 + 1, 4 * 16 + 2 * 4 + 2]
    assert rule == "channel 4 (most spikes), its central 2×2 patch (rows 1–2, columns 1–2), " \
                   "row by row"
    whole, rule = plot.adjacent_neurons((6, 4, 4), counts, size=8)
    assert whole.tolist() == list(range(64, 80)) and "the whole 4×4 map" in rule
    vector, rule = plot.adjacent_neurons((10,), np.arange(10), size=2)
    assert vector.tolist() == [6, 7, 8, 9] and rule.startswith("neurons 6–9")
    chosen, rule = plot.adjacent_neurons(snn.network.shape("relu2"),
                                         result.spike_counts["relu2"][1], size=2)
    fig = plot.spike_raster(result, "relu2", image=1, neurons=chosen, rule=rule)
    (ax,) = fig.axes
    assert rule in ax.get_title(loc="left").replace("\n", " ")
    train = result.spike_trains["relu2"]
    shown = (train.images == 1) & np.isin(train.neurons, chosen)   # relu2 recorded in full
    assert len(ax.collections[0].get_offsets()) == int(shown.sum())
    _saved(fig, tmp_path / "patch.png")
    with pytest.raises(ValueError, match="were not recorded"):
        plot.spike_raster(result, "relu1", neurons=[1])


def test_confusion_matrix_counts_and_plot(tmp_path):
    from evsim.analysis import class_accuracy, confusion_matrix

    matrix = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 4)
    assert matrix.tolist() == [[1, 1, 0, 0], [0, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    accuracy = class_accuracy(matrix)
    assert accuracy[:3].tolist() == [0.5, 1.0, 2 / 3] and np.isnan(accuracy[3])
    with pytest.raises(ValueError, match="labels must lie in 0..3"):
        confusion_matrix(np.array([4]), np.array([0]), 4)
    fig = plot.confusion_matrix(matrix, ["a", "b", "c", "d"])
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["1", "1", "1", "1", "2"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c", "d"]
    _saved(fig, tmp_path / "confusion.png")


def _drawn(fig):
    """Draw ``fig`` on an Agg canvas (layout done) and return its renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_legends_sit_outside_the_axes(run):
    snn, x, result = run
    figures = [plot.accuracy_vs_T({"a": ([1, 2, 4], [0.1, 0.5, 0.9])}, ann_accuracy=0.95),
               plot.conversion_error(conversion_error(snn, result, x)),
               plot.output_error(output_error(snn, result, x)),
               plot.energy_breakdown(energy_report(snn, result)),
               plot.membrane_trace(result, snn, "relu1", neuron=9)]
    for fig in figures:
        renderer = _drawn(fig)
        ax = fig.axes[0]
        legend = ax.get_legend()
        assert not _overlaps(legend.get_window_extent(renderer),
                             ax.get_window_extent(renderer)), ax.get_title()
    fig = plot.rate_vs_activation(snn, result, x, max_points=100, worst=10)
    renderer = _drawn(fig)
    (legend,) = fig.legends
    for ax in fig.axes:
        assert not _overlaps(legend.get_window_extent(renderer), ax.get_window_extent(renderer))


def test_task_predictions_draws_masks_by_class_and_boxes_with_labels():
    from evsim.plot import mask_image, task_predictions
    from evsim.tasks import Detections

    images = np.zeros((2, 1, 8, 8), np.float32)
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[0, 2:4, 2:5] = 3
    predicted = masks.copy()
    predicted[1, 0, 0] = 11
    fig = task_predictions(images, list(masks), {"ANN": predicted, "SNN T=4": masks},
                           "segmentation")
    axes = fig.axes
    assert len(axes) == 8 and [ax.get_title() for ax in axes[:4]] == [
        "input", "ground truth", "ANN", "SNN T=4"]
    np.testing.assert_array_equal(axes[2].images[0].get_array(), mask_image(predicted[0]))
    assert tuple(mask_image(masks[0])[2, 2]) != (0, 0, 0) and tuple(mask_image(masks[0])[0, 0]) \
        == (0, 0, 0)
    assert tuple(mask_image(predicted[1])[0, 0]) == tuple(mask_image(np.ones((1, 1)))[0, 0])

    truth = [(np.array([[1, 1, 5, 6]], np.float32), np.array([2])), (np.zeros((0, 4)), [])]
    found = [Detections(np.array([[1.0, 2, 5, 6], [0, 0, 2, 2]]), np.array([0.9, 0.4]),
                        np.array([2, 7])), Detections(np.zeros((0, 4)), np.zeros(0),
                                                      np.zeros(0, np.int64))]
    fig = task_predictions(images, truth, {"ANN": found}, "detection",
                           class_names=[f"c{i}" for i in range(10)])
    boxes = [p for p in fig.axes[2].patches]
    assert [(b.get_x(), b.get_width()) for b in boxes] == [(0.5, 4.0), (-0.5, 2.0)]
    assert [t.get_text() for t in fig.axes[2].texts] == ["c2 0.90", "c7 0.40"]
    assert [t.get_text() for t in fig.axes[1].texts] == ["c2"]
    with pytest.raises(ValueError, match="one entry per image"):
        task_predictions(images, truth[:1], {"ANN": found}, "detection")
    scores = np.linspace(0.3, 0.9, 20)  # a peak in every cell, as at small T
    many = Detections(np.tile([[0.0, 0, 2, 2]], (20, 1)), scores, np.zeros(20, np.int64))
    crowded = task_predictions(images[:1], truth[:1], {"SNN T=1": [many]}, "detection",
                               max_boxes=8).axes[2]
    assert len(crowded.patches) == 8 and crowded.get_xlabel() == "+12 more"
    assert [t.get_text() for t in crowded.texts][0] == "0 0.90"  # the best first


def test_energy_bars_keep_clear_of_the_frame_and_long_names_do_not_overlap(run, tmp_path):
    snn, _, result = run
    report = energy_report(snn, result)
    from dataclasses import replace

    rows = [replace(r, layer="/features/features.12/Conv_output_0_" + r.layer)
            for r in report.rows]
    fig = plot.energy_breakdown(replace(report, rows=rows))
    (ax,) = fig.axes
    top = max(bar.get_y() + bar.get_height() for c in ax.containers for bar in c)
    assert ax.get_ylim()[1] >= 1.05 * top                 # headroom above the tallest bar
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]
    assert len(boxes) > 2
    assert not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:]))
    _saved(fig, tmp_path / "energy_long_names.png")
