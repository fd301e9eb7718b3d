"""from_torch maps torch.cat along the channels, nn.ZeroPad2d / F.pad (constant 0) and
nn.Upsample / F.interpolate (nearest, bilinear, integer scales) and matches PyTorch; other
configurations are errors naming the fx node."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import evsim  # noqa: E402
from evsim.io.torch import UnsupportedModuleError, from_torch  # noqa: E402

pytestmark = pytest.mark.torch


class _Routing(nn.Module):
    def __init__(self, cin, scale, mode, align, pad, by_module):
        super().__init__()
        self.conv = nn.Conv2d(cin, 2, 3, padding=1)
        self.mode, self.align, self.scale, self.pad_by = mode, align, scale, pad
        options = {"align_corners": align} if mode == "bilinear" else {}
        self.up = nn.Upsample(scale_factor=scale, mode=mode, **options) if by_module else None
        self.zero = nn.ZeroPad2d(pad)
        left, right, top, bottom = pad
        self.crop = nn.Conv2d(2, 3, (1 + top + bottom, 1 + left + right))

    def forward(self, x):
        y = torch.relu(self.conv(x))
        options = {"align_corners": self.align} if self.mode == "bilinear" else {}
        up = (self.up(y) if self.up is not None else
              F.interpolate(y, scale_factor=self.scale, mode=self.mode, **options))
        cropped = torch.relu(self.crop(F.pad(y, self.pad_by) + self.zero(y)))
        return torch.cat([up, F.interpolate(torch.cat((y, cropped), 1), scale_factor=self.scale,
                                            mode="nearest")], dim=1)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(cin=st.integers(1, 3), h=st.integers(2, 5), w=st.integers(2, 5),
       scale=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       mode=st.sampled_from(["nearest", "bilinear"]), align=st.booleans(),
       pad=st.tuples(*[st.integers(0, 2)] * 4), by_module=st.booleans())
def test_cat_pad_upsample_match_torch(cin, h, w, scale, mode, align, pad, by_module):
    torch.manual_seed(h * 10 + w)
    module = _Routing(cin, scale, mode, align and mode == "bilinear", pad, by_module).eval()
    net = from_torch(module, (cin, h, w))
    x = np.random.default_rng(0).normal(size=(3, cin, h, w)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(evsim.forward(net, x), want, rtol=1e-5, atol=1e-5)
    kinds = [type(n.layer).__name__ for n in net]
    assert kinds.count("Concat") == 2 and kinds.count("Pad") == 2
    assert kinds.count("Upsample") == 2


@pytest.mark.parametrize("fn,expected", [
    (lambda x: torch.cat([x, x], dim=2), "dim=1"),
    (lambda x: F.pad(x, (1, 1, 1, 1), mode="reflect"), "mode 'reflect'"),
    (lambda x: F.pad(x, (1, 1, 1, 1), value=1.0), "value 1.0"),
    (lambda x: F.pad(x, (-1, 1, 1, 1)), ">= 0"),
    (lambda x: F.interpolate(x, scale_factor=1.5), "integer scales"),
    (lambda x: F.interpolate(x, scale_factor=2, mode="bicubic"), "mode 'bicubic'"),
])
def test_unsupported_routing_names_the_node(fn, expected):
    class M(nn.Module):
        def forward(self, x):
            return fn(x)

    with pytest.raises(UnsupportedModuleError, match="fx node") as info:
        from_torch(M(), (2, 4, 4))
    assert expected in str(info.value)
