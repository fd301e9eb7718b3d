"""NeuroBench's synaptic operations through a Concat: a convolution (grouped or not) or a
dense layer reading concatenated spikes counts what the same synapses split per input and
summed by an Add count."""

import numpy as np
import pytest
from dyadic import dyadic

import evsim
from evsim.analysis.neurobench import neurobench_metrics
from evsim.layers import Concat, Upsample


def _pair(reader: str, groups: int, seed: int):
    """The network with a Concat, the one with split synapses (summed by an Add, or for a
    grouped convolution each group's spikes concatenated), and images."""
    rng = np.random.default_rng(seed)
    weight = dyadic(rng, (2, 4 // groups, 3, 3), bits=2, kmax=2)  # some zero taps
    dense = dyadic(rng, (3, 4 * 16), bits=2, kmax=2)
    first = dyadic(rng, (2, 1, 3, 3), bits=2, kmax=3) + 0.25
    nets = []
    for split in (False, True):
        b = evsim.NetworkBuilder((1, 4, 4))
        b.add_layer(evsim.Conv2d(first, padding=1, bias=np.full(2, 0.5)), name="c1")
        a = b.add_layer(evsim.ReLU(), name="a")
        b.add_layer(evsim.AvgPool2d(2), a, name="pool")
        b.add_layer(Upsample(2, "nearest"), name="up")
        if reader == "conv":
            b.add_layer(evsim.ReLU(), name="b")
        parts = [("a", slice(0, 2)), ("up", slice(2, 4))]
        if reader == "conv" and not split:
            b.add_layer(Concat(), "a", "b", name="cat")
            b.add_layer(evsim.Conv2d(weight, padding=1, groups=groups), name="conv")
            if groups == 2:
                b.add_layer(evsim.ReLU(), name="out")
        elif reader == "conv":
            per = 2 // groups
            for k, rows in enumerate((slice(0, per), slice(per, 2))):
                w = weight[rows] if groups == 2 else weight[:, 2 * k:2 * k + 2]
                b.add_layer(evsim.Conv2d(w, padding=1), "a" if k == 0 else "b", name=f"o{k}")
            if groups == 2:
                b.add_layer(evsim.ReLU(), "o0", name="r0")
                b.add_layer(evsim.ReLU(), "o1", name="r1")
                b.add_layer(Concat(), "r0", "r1", name="out")
            else:
                b.add_layer(evsim.Add(), "o0", "o1", name="out")
        elif not split:
            b.add_layer(Concat(), "a", "up", name="cat")
            b.add_layer(evsim.Flatten())
            b.add_layer(evsim.Dense(dense), name="out")
        else:
            for k, (src, cols) in enumerate(parts):
                b.add_layer(evsim.Flatten(), src, name=f"f{k}")
                b.add_layer(evsim.Dense(dense[:, cols.start * 16:cols.stop * 16]), name=f"o{k}")
            b.add_layer(evsim.Add(), "o0", "o1", name="out")
        net = b.build()
        nets.append(evsim.SpikingNetwork(net, {n: evsim.NeuronSpec(np.full((), 0.5))
                                               for n in net.activations}))
    image = dyadic(rng, (2, 1, 4, 4), bits=3, low=0, kmax=8)
    return nets, image


@pytest.mark.parametrize("reader,groups", [("conv", 1), ("conv", 2), ("dense", 1)])
@pytest.mark.parametrize("seed", [0, 1])
def test_concat_counts_as_the_split_synapses(reader, groups, seed):
    (joined, split), image = _pair(reader, groups, seed)
    metrics = [neurobench_metrics(snn, evsim.simulate(snn, image, T=6, engine="dense",
                                                      record=list(snn.neurons)), image)
               for snn in (joined, split)]
    ops = [m["SynapticOperations"] for m in metrics]
    assert ops[0]["Effective_ACs"] == ops[1]["Effective_ACs"] > 0
    assert ops[0]["Dense"] == ops[1]["Dense"]
    assert metrics[0]["ActivationSparsity"] == metrics[1]["ActivationSparsity"]
