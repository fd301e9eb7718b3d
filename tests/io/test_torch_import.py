"""evsim.io.torch.from_torch: every mapped module/function matches PyTorch; the rest fail loudly."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import evsim  # noqa: E402
from evsim.io.torch import UnsupportedModuleError, from_torch  # noqa: E402
from evsim.training import QCFS, ClipReLU  # noqa: E402

pytestmark = pytest.mark.torch


class Fn(nn.Module):
    """Applies a function written with torch functionals / tensor methods (traced through)."""

    def __init__(self, fn, *modules: nn.Module):
        super().__init__()
        self.fn, self.inner = fn, nn.ModuleList(modules)

    def forward(self, x):
        return self.fn(x, *self.inner)


class Residual(nn.Module):
    """A ResNet basic block: conv-BN-relu-conv-BN, identity skip, F.relu after the sum."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))

    def forward(self, x):
        out = self.body(x)
        out += x
        return F.relu(out)


def _randomise_batchnorm(module: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            if m.affine:
                m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
    return module.eval()


IMG = (2, 8, 8)
CASES = {
    "conv": (lambda: nn.Conv2d(2, 4, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
             IMG),
    "conv_groups_same": (lambda: nn.Conv2d(2, 4, 3, padding="same", groups=2), IMG),
    "linear": (lambda: nn.Linear(6, 3), (6,)),
    "batchnorm1d": (lambda: nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4)), (6,)),
    "batchnorm2d_no_affine": (lambda: nn.BatchNorm2d(2, affine=False), IMG),
    "nn_relu": (lambda: nn.ReLU(), IMG),
    "F_relu": (lambda: Fn(lambda x: F.relu(x)), IMG),
    "torch_relu": (lambda: Fn(lambda x: torch.relu(x)), IMG),
    "method_relu": (lambda: Fn(lambda x: x.relu()), IMG),
    "clamp_min_is_relu": (lambda: Fn(lambda x: x.clamp(min=0)), IMG),
    "maxpool": (lambda: nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), IMG),
    "F_max_pool2d": (lambda: Fn(lambda x: F.max_pool2d(x, 2)), IMG),
    "avgpool": (lambda: nn.AvgPool2d(3, 2, padding=1, ceil_mode=True,
                                     count_include_pad=False), IMG),
    "F_avg_pool2d": (lambda: Fn(lambda x: F.avg_pool2d(x, 2, 1, 1, count_include_pad=True)),
                     IMG),
    "adaptive_avgpool": (lambda: nn.AdaptiveAvgPool2d(1), IMG),
    "F_adaptive_avg_pool2d": (lambda: Fn(lambda x: F.adaptive_avg_pool2d(x, (1, 1))), IMG),
    "nn_flatten": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(128, 3)), IMG),
    "torch_flatten": (lambda: Fn(lambda x, fc: fc(torch.flatten(x, 1)), nn.Linear(128, 3)), IMG),
    "method_flatten": (lambda: Fn(lambda x, fc: fc(x.flatten(1, 3)), nn.Linear(128, 3)), IMG),
    "view_size": (lambda: Fn(lambda x, fc: fc(x.view(x.size(0), -1)), nn.Linear(128, 3)), IMG),
    "reshape_shape": (lambda: Fn(lambda x, fc: fc(x.reshape(x.shape[0], -1)),
                                 nn.Linear(128, 3)), IMG),
    "operator_add": (lambda: Fn(lambda x, c: c(x) + x, nn.Conv2d(2, 2, 1)), IMG),
    "torch_add": (lambda: Fn(lambda x, c: torch.add(c(x), x), nn.Conv2d(2, 2, 1)), IMG),
    "method_add": (lambda: Fn(lambda x, c: c(x).add(x), nn.Conv2d(2, 2, 1)), IMG),
    "identity_dropout": (lambda: nn.Sequential(nn.Identity(), nn.Dropout(0.5), nn.Dropout2d(),
                                               Fn(lambda x: F.dropout(x, 0.3, training=False)),
                                               nn.ReLU()), IMG),
    "hardtanh": (lambda: nn.Hardtanh(0.0, 0.75), IMG),
    "relu6": (lambda: nn.Sequential(nn.Conv2d(2, 2, 1), nn.ReLU6()), IMG),
    "F_hardtanh_relu6": (lambda: Fn(lambda x: F.relu6(F.hardtanh(x, 0.0, 0.5))), IMG),
    "torch_clamp": (lambda: Fn(lambda x: torch.clamp(x, 0, 0.5)), IMG),
    "method_clamp": (lambda: Fn(lambda x: x.clamp(0.0, 0.25)), IMG),
    "clip_relu": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3), ClipReLU(0.6)), IMG),
    "qcfs": (lambda: nn.Sequential(nn.Conv2d(2, 3, 3), QCFS(levels=4, init=0.9)), IMG),
    "nested_resnet": (lambda: nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Sequential(Residual(4), Residual(4)), nn.AvgPool2d(2),
        nn.Sequential(nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())),
        nn.Linear(4, 3)), IMG),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_forward_matches_torch(case):
    make, shape = CASES[case]
    torch.manual_seed(0)
    module = _randomise_batchnorm(make())
    net = from_torch(module, shape)
    x = np.random.default_rng(1).normal(size=(5,) + shape).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(evsim.forward(net, x), expected, rtol=1e-5, atol=1e-6)


def test_resnet_block_layers_and_names():
    net = from_torch(_randomise_batchnorm(nn.Sequential(nn.Conv2d(2, 4, 1), Residual(4))), IMG)
    kinds = [type(n.layer).__name__ for n in net]
    assert kinds.count("BatchNorm") == 2 and kinds.count("Add") == 1
    assert kinds.count("ReLU") == 2 and net.output_name == "relu"  # the F.relu after the sum
    add = next(n for n in net if type(n.layer).__name__ == "Add")
    assert set(add.inputs) == {"_1_body_4", "_0"}  # the BN output and the skip


def _lstm_module():
    class Recurrent(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(4, 4)

        def forward(self, x):
            return self.lstm(x)[0]

    return Recurrent()


@pytest.mark.parametrize("make, shape, expected", [
    (lambda: nn.Sequential(nn.Linear(4, 4), nn.Tanh()), (4,), r"fx node '_1'.*Tanh"),
    (_lstm_module, (4,), r"fx node 'lstm'.*'lstm'.*LSTM"),
    (lambda: Fn(lambda x: torch.cat([x, x], 1)), (4,), r"fx node 'cat'.*torch\.cat.*"
                                                        r"test_torch_import\.py"),
    (lambda: Fn(lambda x: x * 2), (4,), r"fx node 'mul'.*_operator\.mul"),
    (lambda: Fn(lambda x: x + 1), (4,), r"fx node 'add'.*takes 1"),
    (lambda: nn.Hardtanh(), (4,), r"fx node 'hardtanh'.*clamps to \[-1\.0, 1\.0\]"),
    (lambda: Fn(lambda x: x.view(-1)), (4,), r"fx node 'view'.*reshapes to \(-1,\)"),
    (lambda: Fn(lambda x: torch.flatten(x)), IMG, r"fx node 'flatten'.*dims 0"),
    (lambda: nn.AdaptiveAvgPool2d(2), IMG, r"output size 1"),
    (lambda: nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), IMG, r"reflect"),
])
def test_unsupported_raises_naming_the_node(make, shape, expected):
    with pytest.raises(UnsupportedModuleError, match=expected):
        from_torch(make(), shape)


def test_untraceable_module_raises():
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(UnsupportedModuleError, match="torch.fx cannot trace Branchy"):
        from_torch(Branchy(), (4,))


def test_training_activations_learn_their_bound():
    x = torch.tensor([-1.0, 0.5, 2.0, 7.0])
    for act in (ClipReLU(init=3.0), QCFS(levels=4, init=4.0)):
        act(x).sum().backward()
        assert act.lam.grad is not None and float(act.lam.grad) != 0
    torch.testing.assert_close(ClipReLU(3.0)(x), torch.tensor([0.0, 0.5, 2.0, 3.0]))
    torch.testing.assert_close(QCFS(4, 4.0)(x), torch.tensor([0.0, 1.0, 2.0, 4.0]))
    with pytest.raises(ValueError, match="positive"):
        ClipReLU(0.0)


@pytest.mark.parametrize("method, act", [("opi", ClipReLU), ("qcfs", QCFS)])
def test_trained_bounds_become_thresholds(method, act):
    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 3, 3), act(), nn.AvgPool2d(2), nn.Flatten(),
                           nn.Linear(27, 5), act(), nn.Linear(5, 3)).eval()
    with torch.no_grad():
        module[1].lam.fill_(1.5)
        module[5].lam.fill_(2.25)
    net = from_torch(module, (1, 8, 8))
    snn = evsim.convert(net, method=method)
    assert {name: float(spec.threshold) for name, spec in snn.neurons.items()} == {
        "_1": 1.5, "_5": 2.25}
    for spec in snn.neurons.values():
        assert float(spec.v_init) == float(spec.threshold) / 2
    x = np.random.default_rng(0).random((3, 1, 8, 8)).astype(np.float32)
    assert evsim.simulate(snn, x, T=4).outputs.shape == (3, 3, 3)
