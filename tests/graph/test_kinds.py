"""Layer kinds' rules (evsim.kinds): the registry, its checks, and the deprecated old names."""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest

import evsim
from evsim import kinds
from evsim import layers as L
from evsim.errors import EvsimTypeError, EvsimValueError
from evsim.network import NetworkBuilder
from evsim.signals import EVENTS, plan

EXPECTED_ROLES = {"input": kinds.INPUT, "dense": kinds.SYNAPSE, "conv2d": kinds.SYNAPSE,
                  "avgpool2d": kinds.AVERAGE, "maxpool2d": kinds.MAX_POOL,
                  "globalavgpool": kinds.AVERAGE, "flatten": kinds.RESHAPE, "add": kinds.SUM,
                  "batchnorm": kinds.FOLD, "relu": kinds.NEURON, "clip": kinds.NEURON,
                  "qcfs": kinds.NEURON}
EXPECTED_ROLES.update({"concat": kinds.CONCAT, "pad": kinds.AVERAGE,
                       "upsample": kinds.AVERAGE})
EXPECTED_ROLES.update({"leaky_relu": kinds.NEURON, "identity": kinds.NEURON})
EXPECTED_ROLES.update({"conv_transpose2d": kinds.SYNAPSE, "sigmoid": kinds.HEAD,
                       "softmax": kinds.HEAD})


def test_every_saved_kind_has_rules_with_its_role():
    assert set(L.LAYER_KINDS) == set(EXPECTED_ROLES)
    for name, record in L.LAYER_KINDS.items():
        assert kinds.rules_of(record).role == EXPECTED_ROLES[name], name


def test_rules_are_looked_up_along_the_class_hierarchy():
    @dataclass(frozen=True, eq=False)
    class MyReLU(L.ReLU):
        kind: ClassVar[str] = "my_relu"

    assert kinds.rules_of(MyReLU()) is kinds.rules_of(L.ReLU())
    x = np.array([[-1.0, 0.5, 3.0]], np.float32)
    np.testing.assert_array_equal(kinds.apply(MyReLU(), [x]), [[0.0, 0.5, 3.0]])


def test_an_unregistered_kind_is_refused_by_name():
    @dataclass(frozen=True, eq=False)
    class Mystery(L.Layer):
        kind: ClassVar[str] = "mystery"

    with pytest.raises(EvsimTypeError, match="Mystery is not a layer kind.*register"):
        kinds.rules_of(Mystery())


def test_rules_must_be_complete_for_their_role():
    with pytest.raises(EvsimValueError, match="role must be one of"):
        kinds.KindRules("teleport")
    with pytest.raises(EvsimValueError, match="synapse kind needs forward, fanout"):
        kinds.KindRules(kinds.SYNAPSE)
    with pytest.raises(EvsimValueError, match="average kind needs .*weights"):
        kinds.KindRules(kinds.AVERAGE, forward=lambda *a: None, spatial=lambda *a: None)
    with pytest.raises(EvsimTypeError, match="Layer subclass"):
        kinds.register(int, kinds.rules_of(L.ReLU))
    with pytest.raises(EvsimTypeError, match="KindRules"):
        kinds.register(L.ReLU, "relu")


def test_a_registered_kind_in_an_existing_role_runs_through_forward_signals_and_engines():
    """A new neuron kind needs only a record and its rules: both engines run it."""
    @dataclass(frozen=True, eq=False)
    class HalfClip(L.Clip):
        """clip(x, 0, max_value) computed as ReLU then min: the same values as Clip."""
        kind: ClassVar[str] = "half_clip"

    calls = []

    def half_clip(layer, inputs, threads, out, per_image):
        calls.append(len(inputs[0]))
        return np.minimum(np.maximum(inputs[0], 0), inputs[0].dtype.type(layer.max_value))

    kinds.register(HalfClip, kinds.KindRules(kinds.NEURON, half_clip, per_image=True))
    rng = np.random.default_rng(3)
    weights = [rng.normal(size=(6, 5)).astype(np.float32),
               rng.normal(size=(3, 6)).astype(np.float32)]
    x = rng.uniform(size=(4, 5)).astype(np.float32)

    def network(activation):
        b = NetworkBuilder((5,))
        b.add_layer(L.Dense(weights[0]), name="fc1")
        b.add_layer(activation, name="act")
        b.add_layer(L.Dense(weights[1]), name="fc2")
        return b.build()

    net, reference = network(HalfClip(1.5)), network(L.Clip(1.5))
    np.testing.assert_array_equal(evsim.forward(net, x), evsim.forward(reference, x))
    assert calls == [len(x)]  # the registered rule computed it
    assert plan(net).classes["act"] == EVENTS
    snn, ref_snn = evsim.convert(net, x), evsim.convert(reference, x)
    for engine in ("dense", "event"):
        got = evsim.simulate(snn, x, T=8, engine=engine)
        want = evsim.simulate(ref_snn, x, T=8, engine=engine)
        np.testing.assert_array_equal(got.outputs, want.outputs)
        np.testing.assert_array_equal(got.spike_counts["act"], want.spike_counts["act"])
        assert got.total_sops() == want.total_sops() > 0


def test_apply_refuses_out_for_a_kind_that_cannot_write_into_it():
    x = np.zeros((1, 1, 2, 2), np.float32)
    with pytest.raises(EvsimTypeError, match="MaxPool2d cannot write into a given out"):
        kinds.apply(L.MaxPool2d(2), [x], out=np.empty((1, 1, 1, 1), np.float32))
    with pytest.raises(EvsimTypeError, match="no forward rule for Input"):
        kinds.apply(L.Input((1, 2, 2)), [x])


def test_evsim_ops_is_a_deprecated_alias_of_ann_ops_and_kinds_apply():
    sys.modules.pop("evsim.ops", None)
    with pytest.warns(DeprecationWarning, match="evsim.ops is deprecated"):
        ops = importlib.import_module("evsim.ops")
    assert ops.apply is kinds.apply and ops.conv2d is evsim.ann_ops.conv2d
    assert set(ops.WRITES_OUT) == {L.Add, L.Conv2d, L.Dense}
    x = np.array([[-2.0, 0.5, 9.0]], np.float32)
    np.testing.assert_array_equal(ops.activation(L.Clip(4.0), x), [[0.0, 0.5, 4.0]])


def test_dense_spiking_maxpool_is_a_deprecated_alias_of_evsim_pooling():
    from evsim import pooling
    from evsim.simulate import dense
    layer = L.MaxPool2d(2)
    incoming = np.array([[[[1, 0], [2, 1]]]], np.int32)
    states = [(np.zeros((1, 1, 2, 2), np.int64), np.zeros((1, 1, 1, 1), np.int64))
              for _ in range(2)]
    with pytest.warns(DeprecationWarning, match="moved to evsim.pooling"):
        old = dense.spiking_maxpool("lipooling", layer, incoming, *states[0])
    new = pooling.spiking_maxpool("lipooling", layer, incoming, *states[1])
    np.testing.assert_array_equal(old, new)
    assert new.tolist() == [[[[2]]]]
