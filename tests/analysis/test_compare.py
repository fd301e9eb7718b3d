"""compare_methods: the cells it runs, methods that cannot apply, the comparison object, and
resuming from saved cells."""

import json

import numpy as np
import pytest

import evsim
from evsim import METHODS, Comparison, EvsimValueError, compare_methods
from evsim.analysis import energy_report
from evsim.data import load_bundled_sample
from evsim.models import load_model

STEPS = (1, 2, 8)


@pytest.fixture(scope="module")
def data():
    calibration, _ = load_bundled_sample("train")
    images, labels = load_bundled_sample("test")
    return load_model("fashion_cnn"), calibration[:64], images[:40], labels[:40]


@pytest.fixture(scope="module")
def comparison(data):
    network, calibration, images, labels = data
    return compare_methods(network, calibration, images, labels,
                           methods=["percentile", "qcfs", "spicalib",
                                    ("ilif", "spikeconverter", {"time_scheme": "ilif"})],
                           T=[8, 1, 2, 30], batch_size=16)


def test_a_method_independent_of_T_is_one_run_read_at_checkpoints(data, comparison):
    network, calibration, images, labels = data
    snn = evsim.convert(network, calibration, method="percentile")
    run = evsim.simulate(snn, images, T=30, checkpoints=[1, 2, 8, 30])
    row = comparison["percentile"]
    assert comparison.T == (1, 2, 8, 30) and not row.per_T
    assert [row.accuracy[t] for t in comparison.T] == run.accuracy(labels).tolist()
    assert [row.sops[t] for t in comparison.T] == (run.cumulative_sops() / 40).tolist()
    assert row.energy_uj[8] == energy_report(snn, run, steps=8).snn_pj / 1e6
    assert comparison.ann_accuracy == float(
        (evsim.forward(network, images).argmax(1) == labels).mean())
    assert comparison.ann_energy_uj == energy_report(snn, run).ann_pj / 1e6


def test_a_method_whose_options_depend_on_T_runs_once_per_T(data, comparison):
    network, calibration, images, labels = data
    row = comparison["spicalib"]
    assert row.per_T and sorted(row.accuracy) == [1, 2, 8, 30]
    for t in (2, 30):
        snn = evsim.convert(network, calibration, method="spicalib", T=t)
        run = evsim.simulate(snn, images, T=t, checkpoints=[t])
        assert row.accuracy[t] == float(run.accuracy(labels)[-1])
        assert row.options[t]["allowance"] == t / 4


def test_methods_that_cannot_apply_are_reported_with_the_reason(comparison):
    qcfs, ilif = comparison["qcfs"], comparison["ilif"]
    assert not qcfs.applies and set(qcfs.not_applied) == {1, 2, 8, 30}
    assert "needs trained QCFS activations" in qcfs.not_applied[1]
    assert sorted(ilif.accuracy) == [1, 2, 8] and list(ilif.not_applied) == [30]
    assert "at most 24 bits" in ilif.not_applied[30]
    assert ilif.latency[8] > 8  # (D + 1) windows of T steps
    table = comparison.to_markdown()
    assert "| qcfs | n/a | n/a | n/a | n/a |" in table
    assert "- qcfs (any T): method 'qcfs' needs trained QCFS" in table
    assert "- ilif (T = 30): the ilif scheme carries at most 24 bits" in table
    assert "### Latency" in table and "| ANN |" in table


def test_the_comparison_round_trips_through_json_and_plots(comparison):
    text = comparison.to_json()
    assert Comparison.from_json(text) == comparison
    assert json.loads(text)["methods"][0]["accuracy"]["8"] == comparison["percentile"].accuracy[8]
    figure = comparison.plot()
    _, labels = figure.axes[0].get_legend_handles_labels()
    assert set(labels) == {"percentile", "spicalib", "ilif", "ANN", "Pareto-optimal"}
    assert "latency" in figure.axes[0].get_xlabel()
    panels = comparison.plot_tradeoffs().axes
    assert [ax.get_xlabel() for ax in panels] == [label for _, label, _ in evsim.comparison.COSTS]
    with pytest.raises(EvsimValueError, match="not an evsim comparison"):
        Comparison.from_json('{"kind": "sim_result"}')


def test_latency_views_put_a_temporal_scheme_at_its_latency_with_intervals(comparison):
    ilif = comparison["ilif"]
    points = {(p["label"], p["T"]): p for p in comparison.tradeoffs()}
    for t in ilif.accuracy:
        point = points["ilif", t]
        assert point["latency"] == ilif.latency[t] > t  # (D + 1)·T, not the window T
        assert (point["low"], point["high"]) == evsim.analysis.accuracy_interval(
            ilif.accuracy[t], 40)
        assert point["images"] == 40
    assert points["percentile", 8]["latency"] == 8
    assert points["percentile", 8]["memory_energy_uj"] == comparison[
        "percentile"].memory_energy_uj[8] > comparison["percentile"].energy_uj[8]
    curve = comparison._curves("latency")["ilif"]
    assert curve["x"] == [ilif.latency[t] for t in sorted(ilif.accuracy)]
    # each cost's Pareto front: no point is both cheaper and more accurate than a marked one
    for key, _, name in evsim.comparison.COSTS:
        marked = [p for p in points.values() if name in p["pareto"]]
        assert marked and all(not (q[key] <= p[key] and q["accuracy"] >= p["accuracy"] and (
            q[key] < p[key] or q["accuracy"] > p["accuracy"])) for p in marked
                              for q in points.values())
    table = comparison.to_markdown()
    assert "### Accuracy versus latency, SOPs and energy (Pareto view)" in table
    assert "with memory and addressing" in table and "95 % Wilson interval" in table


def test_methods_as_options_overrides_and_options_per_T(data):
    network, calibration, images, labels = data
    gate = METHODS["percentile"].replace(max_pool="gate")
    per_T = {2: METHODS["spicalib"].replace(allowance=0.5),
             8: METHODS["spicalib"].replace(allowance=3.0)}
    result = compare_methods(network, calibration, images[:16], labels[:16],
                             methods=[("gate", gate), ("tuned", per_T),
                                      ("θ/2", "percentile", {"initial_potential": 0.5})],
                             T=[2, 8])
    assert result["gate"].method == "percentile" and not result["gate"].per_T
    assert result["gate"].options[8]["max_pool"] == "gate"
    assert result["tuned"].options[2]["allowance"] == 0.5
    assert result["tuned"].options[8]["allowance"] == 3.0
    assert result["θ/2"].options[2]["initial_potential"] == 0.5
    with pytest.raises(EvsimValueError, match="labels must differ"):
        compare_methods(network, calibration, images, labels, methods=["max", ("max", gate)])
    with pytest.raises(TypeError, match="unknown conversion option"):
        compare_methods(network, calibration, images, labels,
                        methods=[("x", "percentile", {"bogus": 1})])


def test_a_rerun_reuses_saved_cells_and_refuses_other_inputs(data, tmp_path, monkeypatch):
    network, calibration, images, labels = data
    lines = []
    kwargs = dict(methods=["percentile", "spicalib"], T=[1, 4], cells=tmp_path,
                  progress=lines.append)
    first = compare_methods(network, calibration, images, labels, **kwargs)
    assert len(lines) == 3 and not any("reused" in line for line in lines)
    assert len(list(tmp_path.glob("cell-*.json"))) == 3

    def no_simulation(*args, **kwargs):
        raise AssertionError("a saved cell was simulated again")

    monkeypatch.setattr("evsim.comparison.simulate", no_simulation)
    lines.clear()
    again = compare_methods(network, calibration, images, labels, **kwargs)
    assert again == first
    assert len(lines) == 3 and all("reused" in line for line in lines)
    with pytest.raises(EvsimValueError, match=r"cells of another comparison: its images, "
                                              r"labels differ"):
        compare_methods(network, calibration, images[:20], labels[:20], **kwargs)
    monkeypatch.undo()
    fresh = compare_methods(network, calibration, images[:20], labels[:20], restart=True,
                            **kwargs)
    assert fresh.n_images == 20 and len(list(tmp_path.glob("cell-*.json"))) == 3


def test_bad_arguments_are_refused_by_name(data):
    network, calibration, images, labels = data
    with pytest.raises(EvsimValueError, match="methods is empty"):
        compare_methods(network, calibration, images, labels, methods=[])
    with pytest.raises(evsim.EvsimTypeError, match="needs an ANN"):
        compare_methods(evsim.convert(network, calibration), calibration, images, labels)
    with pytest.raises(EvsimValueError, match="shape"):
        compare_methods(network, calibration, images[:, :, :5], labels)
    with pytest.raises(EvsimValueError, match="labels"):
        compare_methods(network, calibration, images, labels[:3])
    with pytest.raises(evsim.EvsimTypeError, match="a method is a preset name"):
        compare_methods(network, calibration, images, labels, methods=[3])
    assert np.isfinite(compare_methods(network, calibration, images[:4], labels[:4],
                                       T=[1]).ann_accuracy)


def test_spicalib_rows_report_their_calibration_spikes():
    """Per image and T, the negative spikes of the run at that T (A = T/4: one run per T)."""
    from evsim.data import load_bundled_sample
    from evsim.models import load_model
    network = load_model("fashion_cnn")
    calibration = load_bundled_sample("train")[0][:100]
    x, labels = load_bundled_sample("test")
    x, labels = x[:16], labels[:16]
    comparison = evsim.compare_methods(network, calibration, x, labels,
                                       methods=["spicalib", "percentile"], T=[8, 16])
    assert comparison["spicalib"].per_T
    for t in (8, 16):
        run = evsim.simulate(evsim.convert(network, calibration, method="spicalib", T=t), x,
                             T=t, checkpoints=[t])
        expected = sum(run.negative_spikes.values()) / len(x)
        assert comparison["spicalib"].calibration_spikes[t] == expected
        assert comparison["percentile"].calibration_spikes[t] == 0
    assert any(comparison["spicalib"].calibration_spikes.values())
    assert "Calibration spikes per image" in comparison.to_markdown()


@pytest.fixture(scope="module")
def tiny():
    """Dense 6 -> 5, ReLU, Dense 5 -> 3, and 8 images in [0, 1] (the dense engine: no
    compilation)."""
    rng = np.random.default_rng(0)
    builder = evsim.NetworkBuilder((6,))
    builder.add_layer(evsim.Dense(rng.normal(0, 0.5, (5, 6)).astype(np.float32),
                                  np.full(5, 0.1, np.float32)))
    builder.add_layer(evsim.ReLU())
    builder.add_layer(evsim.Dense(rng.normal(0, 0.5, (3, 5)).astype(np.float32)))
    images = rng.random((8, 6)).astype(np.float32)
    return builder.build(), images, rng.integers(0, 3, 8)


def test_a_T_among_the_overrides_runs_the_method_at_that_T_only(tiny):
    network, images, labels = tiny
    result = compare_methods(network, images, images, labels, engine="dense", T=[2, 4],
                             methods=[("s4", "spicalib", {"T": 4}),
                                      ("p4", "percentile", {"T": np.int64(4)})])
    snn = evsim.convert(network, images, method="spicalib", T=4)
    run = evsim.simulate(snn, images, T=4, checkpoints=[4], engine="dense")
    assert result["s4"].accuracy == {4: float(run.accuracy(labels)[-1])}
    assert result["s4"].options[4] == snn.options
    assert result["s4"].options[4]["allowance"] == 1.0
    assert result["p4"].options[4]["T"] == 4 and sorted(result["p4"].accuracy) == [4]
    for row in ("s4", "p4"):
        assert result[row].not_applied == {2: "its options were chosen for T = 4 only"}


def test_numpy_override_values_key_saved_cells_as_plain_ones(tiny, tmp_path, monkeypatch):
    network, images, labels = tiny
    kwargs = dict(engine="dense", T=[2], cells=tmp_path)
    first = compare_methods(network, images, images, labels,
                            methods=[("b", "percentile", {"burst": np.int64(2)})], **kwargs)
    assert first["b"].options[2]["burst"] == 2

    def no_simulation(*args, **kwargs):
        raise AssertionError("a saved cell was simulated again")

    monkeypatch.setattr("evsim.comparison.simulate", no_simulation)
    again = compare_methods(network, images, images, labels,
                            methods=[("b", "percentile", {"burst": 2})], **kwargs)
    assert again == first


def test_a_changed_energy_table_of_the_same_name_is_not_mixed_with_saved_cells(tiny, tmp_path):
    network, images, labels = tiny
    kwargs = dict(engine="dense", T=[2], cells=tmp_path)
    compare_methods(network, images, images, labels,
                    energy=evsim.analysis.EnergyTable("mine", 1.0, 0.5), **kwargs)
    with pytest.raises(EvsimValueError, match="its settings differ"):
        compare_methods(network, images, images, labels,
                        energy=evsim.analysis.EnergyTable("mine", 2.0, 0.5), **kwargs)


def test_ilif_with_rate_input_is_reported_not_raised(tiny):
    network, images, labels = tiny
    result = compare_methods(network, images, images, labels, engine="dense",
                             encoding="rate", T=[2, 4],
                             methods=["percentile",
                                      ("k", "spikeconverter", {"time_scheme": "ilif"})])
    assert sorted(result["percentile"].accuracy) == [2, 4]
    assert not result["k"].applies and set(result["k"].not_applied) == {2, 4}
    assert "runs with encoding='analog', not 'rate'" in result["k"].not_applied[2]
    assert "- k (any T): the ilif scheme sends binary codes" in result.to_markdown()


def _comparison(rows) -> Comparison:
    return Comparison(T=(1, 2, 4), methods=tuple(rows), ann_accuracy=0.5, ann_energy_uj=None,
                      n_images=4, engine="dense", encoding="analog", seed=0,
                      energy_table="float32", convention="reinject", network_hash="0",
                      evsim_version="0")


def test_the_not_run_list_says_which_T_each_reason_holds_at():
    never = evsim.comparison.MethodResult("never", "spikeconverter", True,
                                          not_applied={1: "too few", 2: "too few", 4: "bits"})
    table = _comparison([never]).to_markdown()
    assert "- never (T = 1, 2): too few" in table and "- never (T = 4): bits" in table
    assert "any T" not in table


def test_a_comparison_where_no_method_ran_leaves_no_earlier_plot(tmp_path):
    from evsim.report import write_comparison_report

    ran = evsim.comparison.MethodResult("p", "percentile", False,
                                        accuracy={1: 0.25, 2: 0.5, 4: 0.75})
    never = evsim.comparison.MethodResult("q", "qcfs", False,
                                          not_applied=dict.fromkeys((1, 2, 4), "no QCFS"))
    (tmp_path / "accuracy_vs_T.png").write_bytes(b"an earlier version's plot against T")
    write_comparison_report(tmp_path, _comparison([ran]))
    assert (tmp_path / "accuracy_tradeoffs.png").is_file()
    assert not (tmp_path / "accuracy_vs_T.png").exists()
    report = write_comparison_report(tmp_path, _comparison([never]))
    assert report.images == () and not (tmp_path / "accuracy_tradeoffs.png").exists()
    assert "accuracy_tradeoffs.png" not in (tmp_path / "report.md").read_text()
