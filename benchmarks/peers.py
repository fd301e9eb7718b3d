"""evsim against the converters users would pick instead, in one process on the same images.

Each bundled model (``fashion_cnn``, ``resnet``, ``vgg_relu``) is converted three
ways with 99.9-percentile normalisation on the same calibration images:

- SpikingJelly 2.0: ``ann2snn.Converter(recipe=RateCodingRecipe(mode="99.9%"))``,
  simulated step by step in single-step mode (its standard evaluation loop);
- sinabs: ``normalize_weights(percentile=99.9)`` then ``from_model`` (IAFSqueeze
  neurons, subtractive reset), the T steps folded into the batch;
- evsim: ``convert(method="percentile")``, simulated by the event engine and by
  the dense engine.

All run T = 32 steps on the same test images with the same thread count
(torch, BLAS and Numba), in rounds that alternate the tools; the table gives
the median time per image, the accuracy, the speed-up of evsim's event engine
over each peer, and SOPs per image from each tool's own counter (SpikingJelly's
``SynOpCounter``, sinabs' synops hooks over the spiking layers) beside evsim's
exact count. A tool that fails on a model gets its error in the table.

Install the peers without their dependencies, next to ``torch==2.13.0`` (their
dependencies would pull CUDA builds of torch and torchvision; the few they need
at run time, loguru, pbr, requests and h5py, are in evsim's ``test`` extra)::

    pip install -e ".[test,torch]"
    pip install --no-deps spikingjelly==2.0.0 sinabs==3.1.3

    python benchmarks/peers.py [--threads 1] [--images 256] [--T 32] [--rounds 3]
    python benchmarks/peers.py --quick      # smoke: fashion_cnn, 16 images, 1 round
    python benchmarks/peers.py --models vgg_wide,cifar_wide --images 64   # realistic width

The realistic-width models (``benchmarks/wide_models.py``) have random weights; for them
the accuracy column is the agreement with the ANN's own predictions, and the last column
gives evsim's mean firing rate per neuron and step (5–10 % by construction).
    python benchmarks/peers.py --accuracy-T 16,32,64 --full-test-set --models resnet,vgg_relu
"""

from __future__ import annotations

import argparse
import sys

from threads import set_threads

THREADS = set_threads(sys.argv, default=1)

import operator  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import numpy as np  # noqa: E402

import evsim  # noqa: E402
from evsim import layers as L  # noqa: E402
from evsim.convert import prepare  # noqa: E402
from evsim.data import load_bundled_sample, load_fashion_mnist  # noqa: E402
from evsim.forward import forward  # noqa: E402
from evsim.models import load_model  # noqa: E402
import wide_models  # noqa: E402

MODELS = ("fashion_cnn", "resnet", "vgg_relu")


def to_torch(network: evsim.Network):
    """An equivalent torch module of a BatchNorm-free evsim network (ReLU/Add/pool/conv/dense
    graph), with every layer a direct child named like the evsim layer, so that FX tracing
    and per-layer tools see the same graph."""
    import torch
    from torch import nn

    def module(layer):
        if isinstance(layer, L.Conv2d):
            conv = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                             layer.stride, layer.padding, layer.dilation, layer.groups,
                             bias=layer.bias is not None)
            conv.weight.data = torch.from_numpy(np.array(layer.weight, np.float32))
            if layer.bias is not None:
                conv.bias.data = torch.from_numpy(np.array(layer.bias, np.float32))
            return conv
        if isinstance(layer, L.Dense):
            dense = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
            dense.weight.data = torch.from_numpy(np.array(layer.weight, np.float32))
            if layer.bias is not None:
                dense.bias.data = torch.from_numpy(np.array(layer.bias, np.float32))
            return dense
        if isinstance(layer, L.ReLU):
            return nn.ReLU()
        if isinstance(layer, L.AvgPool2d):
            return nn.AvgPool2d(layer.kernel_size, layer.stride, layer.padding, layer.ceil_mode,
                                layer.count_include_pad)
        if isinstance(layer, L.MaxPool2d):
            return nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding,
                                ceil_mode=layer.ceil_mode)
        if isinstance(layer, L.GlobalAvgPool):
            return nn.AdaptiveAvgPool2d(1)
        if isinstance(layer, L.Flatten):
            return nn.Flatten()
        raise TypeError(f"no torch module for {type(layer).__name__}")

    class Graph(nn.Module):
        def __init__(self):
            super().__init__()
            self.order = []
            for node in network.nodes[1:]:
                if not isinstance(node.layer, L.Add):
                    self.add_module(node.name, module(node.layer))
                self.order.append((node.name, tuple(node.inputs), isinstance(node.layer, L.Add)))

        def forward(self, x):
            values = {network.input_name: x}
            for name, inputs, is_add in self.order:
                args = [values[i] for i in inputs]
                values[name] = (operator.add(*args) if is_add
                                else getattr(self, name)(args[0]))
            return values[network.output_name]

    return Graph().eval()


def _timed(fn, times: list):
    """Call fn, append its wall time to ``times``, return its result."""
    start = time.perf_counter()
    result = fn()
    times.append(time.perf_counter() - start)
    return result


class SpikingJelly:
    name = "SpikingJelly 2.0 (CPU)"

    def __init__(self, network, calibration, batch):
        import torch
        from spikingjelly.activation_based import ann2snn, functional
        self.torch, self.functional = torch, functional
        loader = [torch.from_numpy(calibration[i:i + batch]) for i in range(0, len(calibration),
                                                                           batch)]
        recipe = ann2snn.recipes.RateCodingRecipe(dataloader=loader, mode="99.9%")
        self.model = ann2snn.Converter(recipe=recipe).convert(to_torch(network)).eval()

    def run(self, x, T, batch):
        return self.outputs_at(x, [T], batch)[0]

    def outputs_at(self, x, steps, batch) -> list[np.ndarray]:
        """Summed outputs (images, classes) at each of ``steps``, from one run per batch."""
        torch, out = self.torch, {t: [] for t in steps}
        with torch.no_grad():
            for i in range(0, len(x), batch):
                xb = torch.from_numpy(x[i:i + batch])
                self.functional.reset_net(self.model)
                total = 0
                for t in range(1, max(steps) + 1):
                    total = total + self.model(xb)
                    if t in out:
                        out[t].append(total.numpy().copy())
        return [np.concatenate(out[t]) for t in steps]

    def sops(self, x, T) -> float:
        from spikingjelly.activation_based.op_counter import DispatchCounterMode, SynOpCounter
        counter = SynOpCounter()
        with self.torch.no_grad(), DispatchCounterMode([counter]):
            self.run(x, T, len(x))
        return float(counter.get_total()) / len(x)


class Sinabs:
    name = "sinabs 3.1 (CPU)"

    def __init__(self, network, calibration, batch):
        import sinabs
        import torch
        from sinabs.hooks import conv_layer_synops_hook, linear_layer_synops_hook
        from sinabs.utils import normalize_weights
        self.torch = torch
        ann = to_torch(network)
        relus = [n.name for n in network if isinstance(n.layer, L.ReLU)]
        params = [network[r].inputs[0] for r in relus]
        normalize_weights(ann, torch.from_numpy(calibration), relus, params, percentile=99.9)
        self.model = sinabs.from_model(ann, input_shape=network.input_shape, batch_size=batch,
                                       add_spiking_output=False).spiking_model.eval()
        self.batch = batch
        first = [n.name for n in network if network.input_name in n.inputs]
        self.counted = []  # layers reading spikes (the first reads the analog image)
        for name, module in self.model.named_children():
            if name in first:
                continue
            if isinstance(module, torch.nn.Conv2d):
                module.register_forward_hook(conv_layer_synops_hook)
                self.counted.append(module)
            elif isinstance(module, torch.nn.Linear):
                module.register_forward_hook(linear_layer_synops_hook)
                self.counted.append(module)

    def run(self, x, T, batch):
        import sinabs
        torch, out = self.torch, []
        with torch.no_grad():
            for i in range(0, len(x), batch):
                xb = torch.from_numpy(x[i:i + batch])
                sinabs.utils.set_batch_size(self.model, len(xb))
                sinabs.reset_states(self.model)
                steps = xb.unsqueeze(1).expand(-1, T, *xb.shape[1:]).reshape(-1, *xb.shape[1:])
                y = self.model(steps)
                out.append(y.reshape(len(xb), T, -1).sum(1).numpy())
        return np.concatenate(out)

    def sops(self, x, T) -> float:
        self.run(x, T, len(x))
        # each hook holds synops per (image, step) of its last forward pass
        return float(sum(float(m.hook_data["layer_synops_per_timestep"]) for m in self.counted)
                     * T)


class Evsim:
    def __init__(self, network, calibration, engine):
        self.snn = evsim.convert(network, calibration, method="percentile")
        self.engine = engine
        self.name = f"evsim {engine}"
        self.last = None

    def run(self, x, T, batch):
        self.last = evsim.simulate(self.snn, x, T=T, engine=self.engine, batch_size=batch,
                                   threads=THREADS, checkpoints=[T])
        return self.last.outputs[-1]

    def sops(self, x, T) -> float:
        return self.last.total_sops() / self.last.n_images

    def firing_rate(self) -> float:
        """Mean spikes per neuron and step of the last run, over all spiking layers."""
        rates, neurons = self.last.firing_rates(), self.last.neurons
        return sum(rates[n] * neurons[n] for n in rates) / sum(neurons[n] for n in rates)


def model_and_data(name, images, labels, calibration):
    """(network, test images, labels, calibration images) of a bundled or a wide model; a wide
    model's labels are its ANN's predictions (its weights are random)."""
    if name not in wide_models.MODELS:
        return prepare(load_model(name)), images, labels, calibration
    calibration = wide_models.images_for(name, calibration)
    network = prepare(wide_models.build(name, calibration[:64]))
    images = wide_models.images_for(name, images)
    labels = forward(network, images).reshape(len(images), -1).argmax(1)
    return network, images, labels, calibration


def bench_model(name, images, labels, calibration, T, batch, rounds):
    network, images, labels, calibration = model_and_data(name, images, labels, calibration)
    tools, failed = [], {}
    for label, make in ((SpikingJelly.name, lambda: SpikingJelly(network, calibration, batch)),
                        (Sinabs.name, lambda: Sinabs(network, calibration, batch)),
                        ("evsim event", lambda: Evsim(network, calibration, "event")),
                        ("evsim dense", lambda: Evsim(network, calibration, "dense"))):
        try:
            tools.append(make())
        except Exception as err:  # a peer that cannot convert this model is reported, not fatal
            failed[label] = f"{type(err).__name__}: {err}".splitlines()[0][:120]
            traceback.print_exc(file=sys.stderr)
    for tool in tools:  # warm-up: compile, allocate, first-touch
        tool.run(images[:batch], T, batch)
    times = {tool.name: [] for tool in tools}
    outputs = {}
    for _ in range(rounds):
        for tool in tools:
            outputs[tool.name] = _timed(lambda t=tool: t.run(images, T, batch),
                                        times[tool.name])
    rows = []
    for tool in tools:
        seconds = float(np.median(times[tool.name]))
        accuracy = float((outputs[tool.name].reshape(len(images), -1).argmax(1) == labels).mean())
        rate = tool.firing_rate() if isinstance(tool, Evsim) else None
        sops = tool.sops(images[:min(len(images), 64)], T)
        rows.append((tool.name, 1e3 * seconds / len(images), accuracy, sops, rate))
    return rows, failed


def accuracy_table(names, images, labels, calibration, steps, batch) -> None:
    """Accuracy at several T of SpikingJelly's 99.9 % recipe and evsim's percentile preset,
    from one run each read at every T."""
    print("| model | tool | " + " | ".join(f"T = {t}" for t in steps) + " |")
    print("|---|---|" + "---:|" * len(steps))
    for name in names:
        network = prepare(load_model(name))
        peer = SpikingJelly(network, calibration, batch)
        rows = {peer.name: peer.outputs_at(images, steps, batch)}
        for label, of in (("evsim percentile (all values, default)", "all"),
                          ("evsim percentile (positive values)", "positive")):
            snn = evsim.convert(network, calibration, method="percentile", percentile_of=of)
            result = evsim.simulate(snn, images, T=max(steps), checkpoints=steps,
                                    threads=THREADS)
            rows[label] = list(result.outputs)
        for tool, outputs in rows.items():
            cells = [f"{100 * float((o.reshape(len(images), -1).argmax(1) == labels).mean()):.2f}"
                     for o in outputs]
            print(f"| {name} | {tool} | " + " | ".join(cells) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--T", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--full-test-set", action="store_true",
                        help="test images from the local Fashion-MNIST files, not the bundled "
                        "sample")
    parser.add_argument("--quick", action="store_true", help="fashion_cnn, 16 images, 1 round")
    parser.add_argument("--accuracy-T", default=None, metavar="T1,T2,...",
                        help="instead of timing, compare accuracy at these T (one run read at "
                        "each) of SpikingJelly's recipe and evsim's percentile preset")
    args = parser.parse_args()
    if args.quick:
        args.images, args.rounds, args.models, args.batch = 16, 1, "fashion_cnn", 16
    import torch
    torch.set_num_threads(THREADS)
    calibration = load_bundled_sample("train")[0]
    images, labels = (load_fashion_mnist("test") if args.full_test_set
                      else load_bundled_sample("test"))
    images, labels = images[:args.images], labels[:args.images]
    if args.accuracy_T:
        steps = sorted(int(t) for t in args.accuracy_T.split(","))
        print(f"accuracy (%) at T = {steps} on {len(images)} real Fashion-MNIST test images; "
              f"99.9-percentile conversion on {len(calibration)} training images\n")
        accuracy_table(args.models.split(","), images, labels, calibration, steps, args.batch)
        return
    print(f"peer benchmark: T = {args.T}, {len(images)} real Fashion-MNIST test images, batch "
          f"{args.batch}, {THREADS} thread(s) for every tool, median of {args.rounds} "
          f"alternating rounds; 99.9-percentile conversion on {len(calibration)} training "
          f"images; {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"numpy {np.__version__}\n")
    print("| model | tool | ms per image | accuracy | evsim event speed-up | SOPs per image "
          "(own counter) | firing rate |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in args.models.split(","):
        rows, failed = bench_model(name, images, labels, calibration, args.T, args.batch,
                                   args.rounds)
        event_ms = next(ms for tool, ms, *_ in rows if tool == "evsim event")
        for tool, ms, accuracy, sops, rate in rows:
            print(f"| {name} | {tool} | {ms:.2f} | {100 * accuracy:.1f} % | "
                  f"{ms / event_ms:.2f}x | {sops:.3g} | "
                  f"{'' if rate is None else f'{100 * rate:.1f} %'} |")
        for tool, error in failed.items():
            print(f"| {name} | {tool} | failed: {error} | | | | |")


if __name__ == "__main__":
    main()
