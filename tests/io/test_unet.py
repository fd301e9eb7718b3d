"""A U-Net-style segmenter exported from torch to ONNX: imports and matches onnxruntime,
converts, and runs on both engines spike for spike and SOP for SOP with the independent
reference (its weights, BatchNorm statistics, thresholds and images on a dyadic grid,
so every sum is exact and the three must agree bit for bit)."""

from __future__ import annotations

import numpy as np
import pytest
from test_onnx_import import export, run_ort

import evsim
import naive_reference as naive
from evsim.convert import prepare
from evsim.io import load_onnx

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class UNet(nn.Module):
    """Two levels down (MaxPool, AvgPool), up by a transposed convolution and by nearest and
    bilinear upsampling, skips joined by Concat, BatchNorm after the first convolutions."""

    def __init__(self, classes: int = 3):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4),
                                  nn.ReLU())
        self.enc2 = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8),
                                  nn.ReLU())
        self.bottom = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.up = nn.Sequential(nn.ConvTranspose2d(8, 8, 2, stride=2), nn.ReLU())
        self.dec1 = nn.Sequential(nn.Conv2d(16, 4, 3, padding=1), nn.ReLU())
        self.dec2 = nn.Sequential(nn.Conv2d(8, 4, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(8, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)                                        # (4, 8, 8)
        e2 = self.enc2(F.max_pool2d(e1, 2))                      # (8, 4, 4)
        b = self.bottom(F.avg_pool2d(e2, 2))                     # (8, 2, 2)
        d1 = self.dec1(torch.cat([self.up(b), e2], dim=1))       # (4, 4, 4)
        d2 = self.dec2(torch.cat([F.interpolate(d1, scale_factor=2, mode="nearest"), e1], 1))
        smooth = F.interpolate(F.avg_pool2d(d2, 2), scale_factor=2, mode="bilinear",
                               align_corners=False)
        return self.head(torch.cat([d2, smooth], dim=1))        # (classes, 8, 8)


def _dyadic_unet(seed: int) -> UNet:
    """Weights k/8; BatchNorm with var + eps = 1 (folding divides by 1), k/8 scales and shifts."""
    torch.manual_seed(seed)
    model = UNet().eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                module.weight.copy_(torch.round(module.weight * 8) / 8)
                if module.bias is not None:
                    module.bias.copy_(torch.round(module.bias * 8) / 8)
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.eps = 2.0 ** -8  # so that var + eps = 1 exactly in float32
                module.running_var.fill_(1 - module.eps)
                module.running_mean.copy_(torch.randint(-2, 3, (n,)) / 8)
                module.weight.copy_(torch.randint(4, 13, (n,)) / 8)
                module.bias.copy_(torch.randint(-2, 3, (n,)) / 8)
    return model


@pytest.mark.parametrize("opset, batchnorm", [(13, "folded"), (17, "kept")])
def test_a_unet_imports_converts_and_runs_exactly_on_both_engines(tmp_path, opset, batchnorm):
    """BatchNorm folded by the exporter (its default in eval mode) or kept in the file."""
    model = _dyadic_unet(opset)
    rng = np.random.default_rng(opset)
    x = (rng.integers(0, 9, size=(3, 1, 8, 8)) / 8).astype(np.float32)
    path = export(model, x, tmp_path / "unet.onnx", "torchscript", opset,
                  do_constant_folding=batchnorm == "folded")
    net = load_onnx(path)
    kinds = {type(node.layer).__name__ for node in net}
    assert {"Concat", "Upsample", "ConvTranspose2d", "MaxPool2d", "AvgPool2d"} <= kinds
    assert ("BatchNorm" in kinds) == (batchnorm == "kept")
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_ort(path, x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(evsim.forward(net, x), expected, rtol=1e-5, atol=1e-5)

    converted = evsim.convert(net, x, method="percentile")   # the real pipeline runs
    assert set(converted.neurons) == set(net.activations)
    # then thresholds k/4 on the folded graph, so that every sum is exact
    folded = prepare(net)
    neurons = {name: evsim.NeuronSpec(np.float64(rng.integers(1, 5) / 4))
               for name in folded.activations}
    snn = evsim.SpikingNetwork(folded, neurons, max_pool="lipooling")
    reference = naive.simulate(snn, x, 12)
    for engine in ("event", "dense"):
        result = evsim.simulate(snn, x, T=12, engine=engine, per_image_counts=True)
        np.testing.assert_array_equal(result.outputs.astype(np.float64), reference.outputs)
        for layer, counts in reference.spike_counts.items():
            np.testing.assert_array_equal(result.spike_counts[layer], counts, err_msg=layer)
        assert result.sops.keys() == reference.sops.keys()
        for layer, sops in reference.sops.items():
            np.testing.assert_array_equal(result.sops[layer], sops, err_msg=layer)
        assert sum(int(s.sum()) for s in result.sops.values()) > 0
