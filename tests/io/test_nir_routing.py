"""NIR 1.x has no concatenation, zero padding or upsampling node: exporting a network with a
Concat, Pad or Upsample is refused, naming the layer."""

from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

import evsim  # noqa: E402
from evsim import Conv2d, NetworkBuilder, NeuronSpec, ReLU, SpikingNetwork  # noqa: E402
from evsim.io.nir import NIRExportError  # noqa: E402
from evsim.layers import Concat, Pad, Upsample  # noqa: E402


def _snn(kind: str) -> SpikingNetwork:
    b = NetworkBuilder((1, 4, 4))
    b.add_layer(Conv2d(np.ones((2, 1, 1, 1))))
    relu = b.add_layer(ReLU())
    if kind == "concat":
        b.add_layer(Concat(), relu, relu, name="joined")
    elif kind == "pad":
        b.add_layer(Pad((1, 0, 0, 1)), name="joined")
    else:
        b.add_layer(Upsample(2, "bilinear"), name="joined")
    b.add_layer(Conv2d(np.ones((1, b.shape("joined")[0], 1, 1))))
    net = b.build()
    return SpikingNetwork(net, {n: NeuronSpec(np.ones(())) for n in net.activations})


@pytest.mark.parametrize("kind,cls,what", [("concat", "Concat", "concatenation"),
                                           ("pad", "Pad", "zero-padding"),
                                           ("upsample", "Upsample", "upsampling")])
def test_export_refuses_naming_the_layer(kind, cls, what):
    with pytest.raises(NIRExportError, match=rf"layer 'joined' \({cls}\): has no NIR "
                                             rf"equivalent: NIR 1.x has no {what} node"):
        evsim.io.to_nir(_snn(kind))
