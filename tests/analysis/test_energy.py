"""Energy accounting, recomputed by hand on tiny networks from recorded spike trains.

Synapse counts here come from explicit loops over kernel taps, never from
evsim's fan-out code, and spike counts from the recorded spike trains.
"""

import dataclasses

import numpy as np
import pytest

import evsim
from evsim import Conv2d, Dense, Flatten, MaxPool2d, NetworkBuilder, NeuronSpec, ReLU
from evsim.analysis import (ENERGY_TABLES, FLOAT16_45NM, FLOAT32_45NM, INT8_45NM, EnergyTable,
                            checkpoint_summary, energy_report, energy_table)

T, B = 6, 3
TABLE = EnergyTable("test table", e_mac_pj=2.0, e_ac_pj=0.5, e_update_pj=0.25)


def _conv_net(seed=0):
    """input (1,4,4) -> conv1 2x3x3 p1 -> relu1 -> conv2 3x3x3 p1 -> relu2 -> flatten -> fc (2)."""
    rng = np.random.default_rng(seed)
    b = NetworkBuilder((1, 4, 4))
    b.add_layer(Conv2d(rng.uniform(0, 0.5, (2, 1, 3, 3)), padding=1), name="conv1")
    b.add_layer(ReLU(), name="relu1")
    b.add_layer(Conv2d(rng.uniform(-0.2, 0.5, (3, 2, 3, 3)), padding=1), name="conv2")
    b.add_layer(ReLU(), name="relu2")
    b.add_layer(Flatten(), name="flatten")
    b.add_layer(Dense(rng.normal(size=(2, 48))), name="fc")
    net = b.build()
    snn = evsim.SpikingNetwork(net, {"relu1": NeuronSpec(0.5), "relu2": NeuronSpec(0.4)})
    return snn, rng.uniform(0, 1, (B, 1, 4, 4)).astype(np.float32)


def _taps_in_bounds(y, x, size=4, k=3, pad=1):
    """Number of (output position, tap) pairs of a stride-1 'same' conv that read input (y, x)."""
    return sum(1 for oy in range(size) for ox in range(size)
               if 0 <= y - oy + pad < k and 0 <= x - ox + pad < k)


def _macs_per_output_channel(size=4, k=3, pad=1):
    """Taps inside the input summed over all output positions of one 'same' conv channel."""
    return sum(1 for oy in range(size) for ox in range(size) for ky in range(k) for kx in range(k)
               if 0 <= oy + ky - pad < size and 0 <= ox + kx - pad < size)


def _spikes(train, steps):
    """Total multiplicity per recorded neuron over steps 1..steps, summed over images."""
    keep = train.steps <= steps
    return np.bincount(train.neurons[keep], weights=train.counts[keep], minlength=48)


def _pool_free_net():
    b = NetworkBuilder((4,))
    b.add_layer(Dense(np.ones((3, 4))), name="d1")
    b.add_layer(ReLU(), name="act")
    b.add_layer(Dense(np.ones((2, 3))), name="out")
    return b.build()


@pytest.fixture(scope="module")
def conv_run():
    snn, x = _conv_net()
    result = evsim.simulate(snn, x, T=T, engine="dense", record=["relu1", "relu2"])
    assert all(c.sum() > 0 for c in result.spike_counts.values())  # the check has spikes to count
    return snn, result


@pytest.mark.parametrize("steps", [T, 3])
def test_report_matches_a_count_by_hand(conv_run, steps):
    snn, result = conv_run
    macs1 = 2 * _macs_per_output_channel()            # 1 input channel, 2 output channels
    macs2 = 3 * 2 * _macs_per_output_channel()        # 2 input channels, 3 output channels
    macs_fc = 48 * 2
    s1 = _spikes(result.spike_trains["relu1"], steps)[:32]
    s2 = _spikes(result.spike_trains["relu2"], steps)
    fan2 = np.array([3 * _taps_in_bounds(y, x) for c in range(2) for y in range(4)
                     for x in range(4)])
    sops2 = float(s1 @ fan2) / B
    sops_fc = 2 * float(s2.sum()) / B
    adds = steps * 2 * 16                             # conv1's 32 currents, re-injected each step
    updates = {"relu1": 32 * steps, "relu2": 48 * steps}

    report = energy_report(snn, result, TABLE, "reinject", steps=steps)
    rows = {r.layer: r for r in report.rows}
    assert list(rows) == ["conv1", "relu1", "conv2", "relu2", "fc"]
    assert (rows["conv1"].ann_macs, rows["conv2"].ann_macs, rows["fc"].ann_macs) == (
        macs1, macs2, macs_fc)
    assert rows["conv1"].snn_macs == macs1 and rows["conv1"].snn_adds == adds
    assert rows["conv2"].snn_sops == pytest.approx(sops2, rel=1e-12)
    assert rows["fc"].snn_sops == pytest.approx(sops_fc, rel=1e-12)
    assert {k: rows[k].neuron_updates for k in updates} == updates

    ann_pj = 2.0 * (macs1 + macs2 + macs_fc)
    snn_pj = 2.0 * macs1 + 0.5 * (adds + sops2 + sops_fc) + 0.25 * (80 * steps)
    assert report.ann_pj == pytest.approx(ann_pj, rel=1e-12)
    assert report.snn_pj == pytest.approx(snn_pj, rel=1e-12)
    assert report.ratio == pytest.approx(snn_pj / ann_pj, rel=1e-12)


def test_recompute_convention_charges_the_head_every_step(conv_run):
    snn, result = conv_run
    reinject = energy_report(snn, result, TABLE, "reinject")
    recompute = energy_report(snn, result, TABLE, "recompute")
    head = 2 * _macs_per_output_channel()
    row = {r.layer: r for r in recompute.rows}["conv1"]
    assert (row.snn_macs, row.snn_adds) == (T * head, 0)
    assert recompute.snn_pj - reinject.snn_pj == pytest.approx(
        (T - 1) * head * 2.0 - T * 32 * 0.5, rel=1e-12)
    assert recompute.ann_pj == reinject.ann_pj


def test_sops_are_not_multiplied_by_the_firing_rate_again(conv_run):
    snn, result = conv_run
    base = energy_report(snn, result, TABLE)
    busier = dataclasses.replace(result, spike_counts={k: 2 * v for k, v in
                                                       result.spike_counts.items()})
    assert energy_report(snn, busier, TABLE).snn_pj == base.snn_pj
    doubled = dataclasses.replace(result, sops={k: 2 * v for k, v in result.sops.items()})
    sop_energy = 0.5 * base.snn_sops
    assert energy_report(snn, doubled, TABLE).snn_pj == pytest.approx(base.snn_pj + sop_energy,
                                                                      rel=1e-12)
    assert "no rate factor" in base.to_markdown()


def test_silent_network_costs_only_its_head_and_updates():
    snn, x = _conv_net()
    silent = evsim.SpikingNetwork(snn.network, {"relu1": NeuronSpec(1e6), "relu2": NeuronSpec(1e6)})
    result = evsim.simulate(silent, x, T=T)
    report = energy_report(silent, result, TABLE)
    assert report.snn_sops == 0
    assert report.snn_pj == pytest.approx(2.0 * 2 * _macs_per_output_channel()
                                          + 0.5 * T * 32 + 0.25 * 80 * T, rel=1e-12)


def test_max_pool_updates_are_charged_as_adds():
    rng = np.random.default_rng(3)
    b = NetworkBuilder((1, 4, 4))
    b.add_layer(Conv2d(rng.uniform(0, 0.6, (2, 1, 3, 3)), padding=1), name="conv1")
    b.add_layer(ReLU(), name="relu1")
    b.add_layer(MaxPool2d(2), name="pool")
    b.add_layer(Flatten(), name="flatten")
    b.add_layer(Dense(rng.normal(size=(3, 8))), name="fc")
    snn = evsim.SpikingNetwork(b.build(), {"relu1": NeuronSpec(0.5)})
    x = rng.uniform(0, 1, (B, 1, 4, 4)).astype(np.float32)
    result = evsim.simulate(snn, x, T=T, engine="dense", record=["relu1"])
    train = result.spike_trains["relu1"]
    counts = np.zeros((B, 2, 4, 4))
    np.add.at(counts, (train.images, train.neurons // 16, train.neurons % 16 // 4,
                       train.neurons % 4), train.counts)
    pool_ops = counts.sum() / B                       # each neuron lies in exactly one window
    # LIPooling: the pooled output's total count is the max of each window's input counts.
    pooled = counts.reshape(B, 2, 2, 2, 2, 2).max(axis=(3, 5)).sum() / B
    rows = {r.layer: r for r in energy_report(snn, result, TABLE).rows}
    assert pool_ops > 0 and rows["pool"].pool_ops == pytest.approx(pool_ops, rel=1e-12)
    assert rows["pool"].snn_ac_pj == pytest.approx(0.5 * pool_ops, rel=1e-12)
    assert rows["fc"].snn_sops == pytest.approx(3 * pooled, rel=1e-12)
    assert rows["pool"].ann_macs == 0 and rows["pool"].ann_pj == 0


def test_rate_coded_input_has_no_analog_head(conv_run):
    snn, _ = conv_run
    x = np.full((2, 1, 4, 4), 0.5, np.float32)
    result = evsim.simulate(snn, x, T=T, encoding="rate")
    report = energy_report(snn, result, TABLE, "recompute")
    rows = {r.layer: r for r in report.rows}
    assert rows["conv1"].snn_macs == 0 and rows["conv1"].snn_adds == 0
    assert rows["conv1"].snn_sops == result.sops["conv1"].sum() / 2 > 0
    assert "no analog head" in report.to_markdown()


def test_markdown_states_its_conventions(conv_run):
    snn, result = conv_run
    text = energy_report(snn, result, FLOAT32_45NM, "reinject").to_markdown()
    for phrase in ("E_MAC = 4.6 pJ", "E_AC = 0.9 pJ", "Horowitz 2014", "re-injected every step",
                   "border-aware", "counted but not charged", f"T = {T}", "| **total** |"):
        assert phrase in text, phrase
    assert "recomputed every step (T·MACs)" in energy_report(snn, result, FLOAT32_45NM,
                                                             "recompute").to_markdown()
    assert "E_update = 0.25 pJ" in energy_report(snn, result, TABLE).to_markdown()


def test_presets_are_horowitz_45nm():
    assert (FLOAT32_45NM.e_mac_pj, FLOAT32_45NM.e_ac_pj) == (4.6, 0.9)
    assert (FLOAT16_45NM.e_mac_pj, FLOAT16_45NM.e_ac_pj) == (1.5, 0.4)
    assert (INT8_45NM.e_mac_pj, INT8_45NM.e_ac_pj) == (0.23, 0.03)
    assert energy_table("int8") is INT8_45NM and set(ENERGY_TABLES) == {"float32", "float16",
                                                                         "int8"}
    with pytest.raises(ValueError, match="unknown energy table 'fp64'"):
        energy_table("fp64")
    with pytest.raises(ValueError, match="e_ac_pj"):
        EnergyTable("bad", 1.0, -1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        FLOAT32_45NM.e_mac_pj = 1.0


def test_report_errors_name_the_parameter(conv_run):
    snn, result = conv_run
    with pytest.raises(ValueError, match="convention"):
        energy_report(snn, result, convention="twice")
    with pytest.raises(ValueError, match=r"steps must be an integer in \[1, 6\]"):
        energy_report(snn, result, steps=7)
    other = evsim.SpikingNetwork(_pool_free_net(), {"act": NeuronSpec(1.0)})
    with pytest.raises(ValueError, match="simulated from this network"):
        energy_report(other, result)


def test_as_dict_is_json_ready_and_consistent(conv_run):
    import json
    snn, result = conv_run
    report = energy_report(snn, result, "float16")
    data = json.loads(json.dumps(report.as_dict()))
    assert data["snn_uj"] == pytest.approx(sum(r["snn_uj"] for r in data["rows"]))
    assert data["snn_uj"] == pytest.approx(report.snn_pj / 1e6)
    assert data["table"]["e_mac_pj"] == 1.5 and data["convention"] == "reinject"


def test_temporal_scheme_counts_whole_windows_by_hand(conv_run):
    snn, _ = conv_run
    _, x = _conv_net()
    temporal = evsim.SpikingNetwork(snn.network, snn.neurons, time_scheme="temporal")
    result = evsim.simulate(temporal, x, T=T, per_image_counts=True)
    n1 = result.spike_counts["relu1"].sum(axis=0).reshape(-1)
    n2 = result.spike_counts["relu2"].sum()
    fan2 = np.array([3 * _taps_in_bounds(y, x_) for c in range(2) for y in range(4)
                     for x_ in range(4)])
    sops = (float(n1 @ fan2) + 2.0 * n2) / B
    report = energy_report(temporal, result, TABLE)
    assert report.snn_sops == pytest.approx(sops, rel=1e-12) and sops > 0
    assert report.snn_pj == pytest.approx(2.0 * 2 * _macs_per_output_channel()
                                          + 0.5 * (T * 32 + sops) + 0.25 * 80 * T, rel=1e-12)
    assert f"complete after {result.latency} steps" in report.to_markdown()
    with pytest.raises(ValueError, match="whole windows"):
        energy_report(temporal, result, TABLE, steps=T - 1)
    summary = checkpoint_summary(temporal, result, table=TABLE)
    assert summary.latency.tolist() == [result.latency] and result.latency > T
    assert "| latency (steps) |" in summary.to_markdown()


def test_checkpoint_summary_is_the_report_at_each_checkpoint(conv_run):
    snn, result = conv_run
    _, x = _conv_net()
    labels = np.array([0, 1, 1])
    summary = checkpoint_summary(snn, result, labels, x, TABLE, "recompute")
    assert summary.steps.tolist() == [1, 2, 4, 6] == summary.latency.tolist()
    for k, t in enumerate(summary.steps):
        by_hand = sum(int(v[:t].sum()) for v in result.sops.values()) / B
        assert summary.sops[k] == pytest.approx(by_hand, rel=1e-12)
        assert summary.snn_pj[k] == energy_report(snn, result, TABLE, "recompute", steps=t).snn_pj
    ann_predictions = evsim.forward(snn.network, x).argmax(axis=1)
    assert summary.ann_accuracy == pytest.approx((ann_predictions == labels).mean())
    assert np.array_equal(summary.accuracy, result.accuracy(labels))
    assert summary.ann_pj == energy_report(snn, result, TABLE).ann_pj
    text = summary.to_markdown()
    assert text.count("\n") == len(summary.steps) + 2 and "latency" not in text
    assert summary.as_dict()["energy_uj_per_image"] == pytest.approx(
        (summary.snn_pj / 1e6).tolist(), rel=1e-15)
