"""Graph rewrites keep the ANN's function: BatchNorm folding and MaxPool/activation commuting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import evsim
from evsim import layers as L
from evsim.network import NetworkBuilder
from evsim.passes import commute_maxpool_activation, fold_batchnorm

FAST = settings(max_examples=25, deadline=None, derandomize=True)


def _bn(rng, n, eps=1e-5):
    return L.BatchNorm(rng.uniform(0.5, 2.0, n) * rng.choice([-1, 1], n), rng.standard_normal(n),
                       rng.standard_normal(n), rng.uniform(0.1, 3.0, n), eps=eps)


def _assert_same_function(before, after, rng, n=6):
    x = rng.standard_normal((n,) + before.input_shape)
    want = evsim.forward(before, x, dtype=np.float64)
    got = evsim.forward(after, x, dtype=np.float64)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def _kinds(net):
    return [type(n.layer).__name__ for n in net]


# ----------------------------------------------------------------------------
# fold_batchnorm
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("groups,bias", [(1, True), (1, False), (2, True), (4, False)])
def test_backward_fold_conv_bn(groups, bias):
    rng = np.random.default_rng(groups * 2 + bias)
    b = NetworkBuilder((4, 6, 5))
    b.add_layer(L.Conv2d(rng.standard_normal((8, 4 // groups, 3, 3)),
                         rng.standard_normal(8) if bias else None,
                         stride=(2, 1), padding=1, groups=groups), name="conv")
    b.add_layer(_bn(rng, 8), name="bn")
    b.add_layer(L.ReLU(), name="relu")
    b.add_layer(L.Flatten(), name="flat")
    b.add_layer(L.Dense(rng.standard_normal((3, 8 * 3 * 5))), name="fc")
    net = b.build()
    folded = fold_batchnorm(net)
    assert "BatchNorm" not in _kinds(folded)
    assert "bn" not in folded and "conv" in folded
    assert isinstance(folded["conv"].layer, L.Conv2d)
    assert folded["conv"].layer.groups == groups
    assert folded["conv"].layer.bias is not None
    assert folded["relu"].inputs == ("conv",)
    assert folded.output_name == "fc"
    _assert_same_function(net, folded, rng)
    # the input network is unchanged (immutable)
    assert "bn" in net


def test_backward_fold_dense_bn_as_output():
    rng = np.random.default_rng(5)
    net = evsim.Network.sequential((7,), [L.Dense(rng.standard_normal((4, 7)),
                                                  rng.standard_normal(4)), _bn(rng, 4, eps=1e-3)],
                                   names=["fc", "bn"])
    folded = fold_batchnorm(net)
    assert _kinds(folded) == ["Input", "Dense"]
    assert folded.output_name == "fc"
    _assert_same_function(net, folded, rng)


def test_forward_fold_bn_into_unpadded_conv():
    rng = np.random.default_rng(6)
    b = NetworkBuilder((4, 6, 6))
    b.add_layer(_bn(rng, 4), name="bn_in")
    b.add_layer(L.Conv2d(rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6),
                         stride=(1, 2), dilation=(2, 1), groups=2), name="conv")
    b.add_layer(L.ReLU(), name="relu")
    net = b.build()
    folded = fold_batchnorm(net)
    assert _kinds(folded) == ["Input", "Conv2d", "ReLU"]
    assert folded["conv"].inputs == ("input",)
    _assert_same_function(net, folded, rng)


def test_forward_fold_bn1d_into_dense():
    rng = np.random.default_rng(7)
    b = NetworkBuilder((2, 3, 3))
    b.add_layer(L.Conv2d(rng.standard_normal((3, 2, 3, 3))), name="conv")
    b.add_layer(L.ReLU(), name="relu")
    b.add_layer(L.Flatten(), name="flat")
    b.add_layer(_bn(rng, 3), name="bn")
    b.add_layer(L.Dense(rng.standard_normal((5, 3))), name="fc")
    net = b.build()
    folded = fold_batchnorm(net)
    assert "BatchNorm" not in _kinds(folded)
    assert folded["fc"].inputs == ("flat",)
    assert folded["fc"].layer.bias is not None
    _assert_same_function(net, folded, rng)


def test_bn_after_conv_with_two_readers_folds_forward():
    # conv feeds both bn and an Add, so the fold must go forward into the unpadded conv2
    rng = np.random.default_rng(8)
    b = NetworkBuilder((2, 5, 5))
    b.add_layer(L.Conv2d(rng.standard_normal((3, 2, 3, 3)), padding=1), name="conv1")
    b.add_layer(_bn(rng, 3), name="bn")
    b.add_layer(L.Conv2d(rng.standard_normal((3, 3, 1, 1))), name="conv2")
    b.add_layer(L.Add(), "conv2", "conv1", name="add")
    net = b.build()
    folded = fold_batchnorm(net)
    assert "BatchNorm" not in _kinds(folded)
    assert folded["conv2"].inputs == ("conv1",)
    _assert_same_function(net, folded, rng)


def test_several_batchnorms_all_folded():
    rng = np.random.default_rng(9)
    b = NetworkBuilder((3, 6, 6))
    b.add_layer(_bn(rng, 3), name="bn0")
    b.add_layer(L.Conv2d(rng.standard_normal((4, 3, 3, 3))), name="c1")
    b.add_layer(_bn(rng, 4), name="bn1")
    b.add_layer(L.QCFS(lam=2.0, levels=1000), name="q")
    b.add_layer(L.Conv2d(rng.standard_normal((4, 4, 3, 3)), padding=1), name="c2")
    b.add_layer(_bn(rng, 4), name="bn2")
    b.add_layer(L.ReLU(), name="r")
    net = b.build()
    folded = fold_batchnorm(net)
    assert _kinds(folded) == ["Input", "Conv2d", "QCFS", "Conv2d", "ReLU"]
    assert [n.name for n in folded] == ["input", "c1", "q", "c2", "r"]
    # c1 carries both folds; compare before the (discontinuous) QCFS
    x = rng.standard_normal((4, 3, 6, 6))
    _, a = evsim.forward(net, x, activations=["bn1"], dtype=np.float64)
    _, f = evsim.forward(folded, x, activations=["c1"], dtype=np.float64)
    np.testing.assert_allclose(f["c1"], a["bn1"], rtol=1e-10, atol=1e-10)


def test_folding_float32_weights_stays_float32():
    rng = np.random.default_rng(10)
    net = evsim.Network.sequential(
        (2, 4, 4), [L.Conv2d(rng.standard_normal((3, 2, 3, 3)).astype(np.float32)),
                    _bn(rng, 3)])
    folded = fold_batchnorm(net)
    conv = folded.nodes[1].layer
    assert conv.weight.dtype == np.float32 and conv.bias.dtype == np.float32
    x = rng.standard_normal((3, 2, 4, 4))
    np.testing.assert_allclose(evsim.forward(folded, x, dtype=np.float64),
                               evsim.forward(net, x, dtype=np.float64), rtol=1e-5, atol=1e-5)


def test_unfoldable_batchnorm_raises_naming_it():
    rng = np.random.default_rng(11)
    b = NetworkBuilder((2, 5, 5))
    b.add_layer(L.ReLU(), name="relu")
    b.add_layer(L.Add(), "input", "relu", name="add")
    b.add_layer(_bn(rng, 2), name="the_bn")
    b.add_layer(L.Conv2d(rng.standard_normal((2, 2, 3, 3)), padding=1), name="padded")
    net = b.build()
    with pytest.raises(ValueError, match="'the_bn'") as err:
        fold_batchnorm(net)
    assert "add" in str(err.value) and "padded" in str(err.value)


def test_unfoldable_batchnorm_as_output_or_two_readers():
    rng = np.random.default_rng(12)
    net = evsim.Network.sequential((3, 4, 4), [L.ReLU(), _bn(rng, 3)], names=["relu", "bnout"])
    with pytest.raises(ValueError, match="'bnout'"):
        fold_batchnorm(net)
    b = NetworkBuilder((3, 4, 4))
    b.add_layer(_bn(rng, 3), name="bn2")
    b.add_layer(L.Conv2d(rng.standard_normal((3, 3, 1, 1))), name="c1")
    b.add_layer(L.Conv2d(rng.standard_normal((3, 3, 1, 1))), "bn2", name="c2")
    b.add_layer(L.Add(), "c1", "c2", name="add")
    with pytest.raises(ValueError, match="'bn2'"):
        fold_batchnorm(b.build())


# ----------------------------------------------------------------------------
# commute_maxpool_activation
# ----------------------------------------------------------------------------

@st.composite
def pool_act_cases(draw):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    ceil = draw(st.booleans())
    c = draw(st.integers(1, 3))
    h = draw(st.integers(max(1, kernel[0] - 2 * padding[0]), 7))
    w = draw(st.integers(max(1, kernel[1] - 2 * padding[1]), 7))
    act = draw(st.sampled_from(["relu", "clip", "qcfs"]))
    bound = draw(st.sampled_from([0.5, 1.0, 2.5]))
    levels = draw(st.integers(1, 8))
    tail = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    return (kernel, stride, padding, ceil, (c, h, w), act, bound, levels, tail, seed)


@FAST
@given(pool_act_cases())
def test_commute_maxpool_activation_keeps_forward(case):
    kernel, stride, padding, ceil, shape, act, bound, levels, tail, seed = case
    rng = np.random.default_rng(seed)
    activation = {"relu": L.ReLU(), "clip": L.Clip(bound),
                  "qcfs": L.QCFS(lam=bound, levels=levels)}[act]
    b = NetworkBuilder(shape)
    b.add_layer(L.Conv2d(rng.standard_normal((shape[0], shape[0], 1, 1))), name="conv")
    b.add_layer(L.MaxPool2d(kernel, stride, padding, ceil_mode=ceil), name="pool")
    b.add_layer(activation, "pool", name="act")
    if tail:
        b.add_layer(L.Flatten(), name="flat")
        b.add_layer(L.Dense(rng.standard_normal((2, int(np.prod(b.shape("flat")))))),
                    name="fc")
    net = b.build()
    new = commute_maxpool_activation(net)
    assert [type(n.layer).__name__ for n in new][:4] == ["Input", "Conv2d",
                                                         type(activation).__name__, "MaxPool2d"]
    assert new["act"].inputs == ("conv",) and new["pool"].inputs == ("act",)
    assert new.output_name == ("fc" if tail else "pool")
    if tail:
        assert new["flat"].inputs == ("pool",)
    assert new.output_shape == net.output_shape
    x = rng.standard_normal((4,) + shape) * 2
    # max commutes exactly with a non-decreasing function: bit-equal results
    np.testing.assert_array_equal(evsim.forward(new, x, dtype=np.float64),
                                  evsim.forward(net, x, dtype=np.float64))


def test_commute_leaves_shared_maxpool_alone_and_handles_chains():
    rng = np.random.default_rng(13)
    b = NetworkBuilder((2, 6, 6))
    b.add_layer(L.MaxPool2d(2), name="pool")
    b.add_layer(L.ReLU(), name="r1")
    b.add_layer(L.Clip(1.0), "pool", name="r2")
    b.add_layer(L.Add(), "r1", "r2", name="add")
    net = b.build()
    assert commute_maxpool_activation(net).equals(net)

    b = NetworkBuilder((2, 6, 6))
    b.add_layer(L.MaxPool2d(2, 1, 1), name="pool")
    b.add_layer(L.ReLU(), name="r1")
    b.add_layer(L.QCFS(lam=1.0, levels=3), name="q")
    net = b.build()
    new = commute_maxpool_activation(net)
    assert [n.name for n in new] == ["input", "r1", "q", "pool"]
    assert new.output_name == "pool"
    x = rng.standard_normal((3, 2, 6, 6))
    np.testing.assert_array_equal(evsim.forward(new, x, dtype=np.float64),
                                  evsim.forward(net, x, dtype=np.float64))
