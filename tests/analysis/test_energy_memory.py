"""The memory-aware energy (Lemaire et al. 2022) on networks small enough to count by hand."""

import numpy as np
import pytest

import evsim
from evsim.analysis import (LEMAIRE_45NM, MemoryEnergyTable, energy_report,
                            memory_energy_report)
from evsim.errors import EvsimValueError


def access(words: int) -> float:
    """One access to a memory of ``words`` 32-bit words: 13.2 + 1.09e-5 · words · 32 pJ."""
    return 13.2 + 1.09e-5 * words * 32


def _convert(builder, *, T, x):
    """θ = 1 everywhere (a trained clip bound of 1), v(0) = 0, one image simulated."""
    snn = evsim.convert(builder.build(), None, method="opi", initial_potential=0.0)
    return snn, evsim.simulate(snn, x, T=T, engine="dense", checkpoints=[T // 2, T])


@pytest.fixture(scope="module")
def dense():
    """x = (1, 0.5) -> Dense 2->2 (identity, the analog head) -> Clip(1) -> Dense 2->2.
    At T = 4 neuron 0 fires at every step (4 spikes), neuron 1 every other one (2)."""
    builder = evsim.NetworkBuilder((2,))
    builder.add_layer(evsim.Dense(np.eye(2, dtype=np.float32)), name="head")
    builder.add_layer(evsim.Clip(1.0), name="if")
    builder.add_layer(evsim.Dense(np.array([[1, 2], [3, 4]], np.float32)), name="out")
    return _convert(builder, T=4, x=np.array([[1.0, 0.5]], np.float32))


def test_a_two_by_two_dense_layer_counted_by_hand(dense):
    snn, result = dense
    assert result.spike_counts["if"].tolist() == [4, 2]
    rows = {(r.layer, r.kind): r for r in memory_energy_report(snn, result).snn_rows}
    head = rows["head", "Dense (analog head)"]
    # once per image: reads 2 inputs, 4 weights, 4 MACs, 4 address adds, writes 2 currents
    assert (head.input_reads, head.weight_reads, head.macs, head.address_adds,
            head.output_writes, head.bias_reads) == (2, 4, 4, 4, 2, 0)
    assert head.memory_pj == pytest.approx(4 * access(2) + 4 * access(4))
    assert head.compute_pj == pytest.approx(4 * (3.1 + 0.1))
    assert head.addressing_pj == pytest.approx(4 * 0.1)
    injected = rows["head", "re-injected current"]  # 2 currents read and added at 4 steps
    assert (injected.input_reads, injected.adds) == (8, 8)
    assert injected.total_pj == pytest.approx(8 * access(2) + 8 * 0.1)
    neurons = rows["if", "IF neurons"]  # 2 neurons x 4 steps updated; 6 spikes reset, queued
    assert (neurons.potential_reads, neurons.potential_writes, neurons.adds,
            neurons.output_writes) == (8, 8, 14, 6)
    assert neurons.total_pj == pytest.approx(16 * access(2) + 6 * access(64) + 14 * 0.1)
    out = rows["out", "Dense"]  # 6 events, each to 2 targets: 12 SOPs
    assert (out.input_reads, out.weight_reads, out.potential_reads, out.potential_writes,
            out.adds, out.address_adds, out.address_macs) == (6, 12, 12, 12, 12, 12, 0)
    assert out.memory_pj == pytest.approx(6 * access(64) + 12 * access(4) + 24 * access(2))
    assert out.compute_pj == pytest.approx(1.2) and out.addressing_pj == pytest.approx(1.2)


def test_an_earlier_step_counts_its_share_and_the_ann_its_one_pass(dense):
    snn, result = dense
    half = {(r.layer, r.kind): r for r in memory_energy_report(snn, result, steps=2).snn_rows}
    # by step 2: neuron 0 fired twice, neuron 1 once: 3 events, 6 SOPs
    assert half["out", "Dense"].input_reads == 3 and half["out", "Dense"].weight_reads == 6
    assert half["if", "IF neurons"].output_writes == 3
    assert half["if", "IF neurons"].potential_reads == 4
    ann = {r.layer: r for r in memory_energy_report(snn, result).ann_rows}
    for name in ("head", "out"):  # Lemaire Eq. 2, 4, 6.2, 12: Nin reads, Nin*Nout weights
        assert (ann[name].input_reads, ann[name].weight_reads, ann[name].macs,
                ann[name].output_writes, ann[name].address_adds) == (2, 4, 4, 2, 4)


def test_a_tiny_convolution_counted_by_hand():
    """A 3x3 image whose centre alone is 1 -> 1x1 conv (the analog head) -> Clip(1) ->
    Conv 1->2, 2x2 kernel, bias: the centre neuron fires at both steps and reaches all 4
    output positions of both channels: 2 events, 16 SOPs."""
    builder = evsim.NetworkBuilder((1, 3, 3))
    builder.add_layer(evsim.Conv2d(np.ones((1, 1, 1, 1), np.float32)), name="head")
    builder.add_layer(evsim.Clip(1.0), name="if")
    builder.add_layer(evsim.Conv2d(np.ones((2, 1, 2, 2), np.float32),
                                   np.zeros(2, np.float32)), name="conv")
    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, 1, 1] = 1.0
    snn, result = _convert(builder, T=2, x=x)
    conv = {r.layer: r for r in memory_energy_report(snn, result).snn_rows}["conv"]
    assert (conv.input_reads, conv.weight_reads, conv.potential_reads, conv.address_adds,
            conv.address_macs, conv.bias_reads) == (2, 16, 16, 16, 4, 16)  # bias: 8 x 2 steps
    assert conv.memory_pj == pytest.approx(
        2 * access(64) + 16 * access(8) + 16 * access(2) + 32 * access(8))
    assert conv.addressing_pj == pytest.approx(16 * 0.1 + 4 * 3.2)


def test_energy_report_shows_it_beside_the_compute_only_figure(dense):
    snn, result = dense
    report = energy_report(snn, result)
    assert report.memory == memory_energy_report(snn, result)
    assert report.snn_pj == energy_report(snn, result, memory=None).snn_pj
    assert "With memory and addressing" in report.to_markdown()
    assert report.as_dict()["memory"]["snn_uj"] == report.memory.snn_pj / 1e6
    cheaper = MemoryEnergyTable("cheap", e_access_pj=1.0, e_access_per_bit_pj=0.0)
    assert memory_energy_report(snn, result, cheaper).snn_pj < report.memory.snn_pj
    assert LEMAIRE_45NM.access_pj(2) == pytest.approx(access(2))
    with pytest.raises(EvsimValueError, match="word_bits"):
        MemoryEnergyTable("bad", word_bits=0)


def test_rate_coded_input_events_are_the_first_layers_sops_over_its_fan_out():
    builder = evsim.NetworkBuilder((3,))
    builder.add_layer(evsim.Dense(np.ones((2, 3), np.float32)), name="in")
    builder.add_layer(evsim.Clip(1.0), name="if")
    builder.add_layer(evsim.Dense(np.ones((2, 2), np.float32)), name="out")
    snn = evsim.convert(builder.build(), None, method="opi", initial_potential=0.0)
    x = np.array([[1.0, 0.5, 0.0]], np.float32)
    result = evsim.simulate(snn, x, T=8, engine="dense", encoding="rate")
    first = {r.layer: r for r in memory_energy_report(snn, result).snn_rows}["in"]
    # every input spike reaches both neurons of 'in': events = SOPs / 2, exactly
    assert result.sops["in"].sum() > 0
    assert first.input_reads == result.sops["in"].sum() / 2 == first.weight_reads / 2
