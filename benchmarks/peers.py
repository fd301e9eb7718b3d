"""evsim against the converters users would pick instead, in one process on the same images.

Each bundled model (``fashion_cnn``, ``resnet``, ``vgg_relu``, the MobileNet-v2
``mobilenet`` and the U-Net segmenter ``unet_relu``) is converted three ways with
99.9-percentile normalisation on the same calibration images:

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
``SynOpCounter``, sinabs' synops hooks over the convolutions and dense layers that
read spikes, transposed convolutions not included) beside evsim's exact count, and
the ANN's own score on the same inputs. A tool that fails on a model gets its error
in the table. With ``--threads`` above 1 the event engine also runs at one thread in the
same rounds (row "evsim event, 1 thread"): its speed-up column is the engine's own
speed-up from its threads.

The peers get the same ANN as a torch module (``to_torch``: BatchNorm folded, every
layer a named child). ``mobilenet``: its linear bottlenecks are plain ``nn.Identity``
for the peers (their values pass between layers unspiked) and signed IF neurons
(θ⁻ = θ) in evsim, whose ``percentile`` preset converts them as is. Its ReLU6 layers
stop both peers: SpikingJelly's ``RateCodingRecipe`` puts IF neurons at ``nn.ReLU``
only (an exact type match) and its step-mode adapter then rejects the ``nn.ReLU6``
node (``ValueError``); sinabs' ``from_model`` replaces ``nn.ReLU`` only and would
silently keep the ReLU6 layers analog (this script raises instead). Those rows show
the error, and each peer runs again with every ReLU6 made a ``nn.ReLU``, the change a
user of a ReLU-only converter makes (rows "ReLU6 → ReLU"): an IF neuron saturates at
its threshold, which clips the rate anyway (SpikingJelly's 99.9 % thresholds on
``mobilenet`` are below 6 in 9 of its 10 layers, 7.0 in the last), and the ANN so
changed scores 91.7 % against 91.6 % on the 1,000 bundled test images. ``unet_relu``
(Concat, ConvTranspose2d, nearest Upsample, average pooling) converts in both peers as
is. Its inputs are the first ``--images`` bundled 64 × 64 test scenes, its calibration
200 scenes made from the 1,000 calibration images (``SCENE_CALIBRATION``), and its
score column is the **mIoU** against the scenes' true masks (arg-max class per pixel,
background included; ``docs/tasks.md``), not agreement with the ANN; the ANN's own
mIoU is its "ANN" row. sinabs' ``normalize_weights`` scales each layer's weights and
bias by one factor measured after the layers before it were scaled, so biases lose
the upstream factors and the two branches of an Add or Concat end up at different
scales: on ``mobilenet`` and ``unet_relu`` the normalised ANN itself, before any
spiking, is near chance, and so is sinabs' SNN.

Install the peers without their dependencies, next to ``torch==2.13.0`` (their
dependencies would pull CUDA builds of torch and torchvision; the few they need
at run time, loguru, pbr, requests and h5py, are in evsim's ``test`` extra)::

    pip install -e ".[test,torch]"
    pip install --no-deps spikingjelly==2.0.0 sinabs==3.1.3

    python benchmarks/peers.py [--threads 1] [--images 256] [--T 32] [--rounds 3]
    python benchmarks/peers.py --quick      # smoke: fashion_cnn, 16 images, 1 round
    python benchmarks/peers.py --models mobilenet,unet_relu --images 16 --rounds 1
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

import dataclasses  # noqa: E402
import functools  # noqa: E402
import operator  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import numpy as np  # noqa: E402

import evsim  # noqa: E402
from evsim import layers as L  # noqa: E402
from evsim.convert import prepare  # noqa: E402
from evsim.analysis.segmentation import mean_iou  # noqa: E402
from evsim.data import (bundled_scenes, fashion_mnist_scenes, load_bundled_sample,  # noqa: E402
                        load_fashion_mnist, make_scenes)
from evsim.forward import forward  # noqa: E402
from evsim.models import load_model  # noqa: E402
from evsim.tasks import decode_masks  # noqa: E402
import wide_models  # noqa: E402

MODELS = ("fashion_cnn", "resnet", "vgg_relu", "mobilenet", "unet_relu")
#: Bundled models that segment 64 x 64 Fashion-MNIST scenes (scored by mIoU).
SEGMENTERS = ("unet_relu",)
#: The calibration scenes of a segmenter, as ``examples/compare_tasks.py`` makes them.
SCENE_CALIBRATION = {"n": 200, "seed": 3}


def _parameters(module, layer) -> None:
    """Copy an evsim synapse layer's weight and bias into a torch module of the same shape."""
    import torch
    module.weight.data = torch.from_numpy(np.array(layer.weight, np.float32))
    if layer.bias is not None:
        module.bias.data = torch.from_numpy(np.array(layer.bias, np.float32))


def _torch_module(layer: L.Layer, clip_as_relu: bool):
    """The torch module computing one single-input evsim layer."""
    from torch import nn
    if isinstance(layer, L.Conv2d):
        module = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                           layer.stride, layer.padding, layer.dilation, layer.groups,
                           bias=layer.bias is not None)
    elif isinstance(layer, L.ConvTranspose2d):
        in_channels, out_per_group, *kernel = layer.weight.shape
        module = nn.ConvTranspose2d(in_channels, out_per_group * layer.groups, tuple(kernel),
                                    layer.stride, layer.padding, layer.output_padding,
                                    layer.groups, bias=layer.bias is not None,
                                    dilation=layer.dilation)
    elif isinstance(layer, L.Dense):
        module = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    else:
        return _torch_stateless(layer, clip_as_relu)
    _parameters(module, layer)
    return module


def _torch_stateless(layer: L.Layer, clip_as_relu: bool):
    """The torch module of a parameter-free single-input evsim layer."""
    from torch import nn
    if isinstance(layer, L.ReLU) or (isinstance(layer, L.Clip) and clip_as_relu):
        return nn.ReLU()
    if isinstance(layer, L.Clip):
        return nn.ReLU6() if layer.max_value == 6.0 else nn.Hardtanh(0.0, layer.max_value)
    if isinstance(layer, L.Identity):  # evsim's neurons at a linear bottleneck: x in the ANN
        return nn.Identity()
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
    if isinstance(layer, L.Upsample):
        return nn.Upsample(scale_factor=tuple(float(s) for s in layer.scale), mode=layer.mode,
                           align_corners=layer.align_corners if layer.mode == "bilinear"
                           else None)
    raise TypeError(f"no torch module for {type(layer).__name__}")


def _concat(*args):
    import torch
    return torch.cat(args, 1)


def to_torch(network: evsim.Network, clip_as_relu: bool = False):
    """An equivalent torch module of a BatchNorm-free evsim network (conv, transposed conv,
    dense, ReLU, Clip, pooling, upsampling, Add and Concat), with every layer a direct child
    named like the evsim layer, so that FX tracing and per-layer tools see the same graph.
    Clip(6) becomes ``nn.ReLU6`` (another bound ``nn.Hardtanh(0, bound)``), or ``nn.ReLU``
    with ``clip_as_relu``: the adaptation a user of a ReLU-only converter makes."""
    from torch import nn
    joins = {L.Add: lambda *args: functools.reduce(operator.add, args), L.Concat: _concat}

    class Graph(nn.Module):
        def __init__(self):
            super().__init__()
            self.order = []
            for node in network.nodes[1:]:
                join = joins.get(type(node.layer))
                if join is None:
                    self.add_module(node.name, _torch_module(node.layer, clip_as_relu))
                self.order.append((node.name, tuple(node.inputs), join))

        def forward(self, x):
            values = {network.input_name: x}
            for name, inputs, join in self.order:
                args = [values[i] for i in inputs]
                values[name] = join(*args) if join else getattr(self, name)(args[0])
            return values[network.output_name]

    return Graph().eval()


def _timed(fn, times: list):
    """Call fn, append its wall time to ``times``, return its result."""
    start = time.perf_counter()
    result = fn()
    times.append(time.perf_counter() - start)
    return result


#: Suffix of a peer's name when it converts the network with every ReLU6 (Clip) made a ReLU.
CLIP_AS_RELU = ", ReLU6 → ReLU"

#: Suffix of the event engine's row at one thread, timed in the same rounds when
#: ``--threads`` is more than 1: its speed-up column is the engine's two-thread speed-up
#: measured in one run (one- and two-thread runs minutes apart fall in different spells of
#: a shared host).
ONE_THREAD = ", 1 thread"


class SpikingJelly:
    name = "SpikingJelly 2.0 (CPU)"

    def __init__(self, network, calibration, batch, clip_as_relu: bool = False):
        import torch
        from spikingjelly.activation_based import ann2snn, functional
        self.torch, self.functional = torch, functional
        self.name = SpikingJelly.name + (CLIP_AS_RELU if clip_as_relu else "")
        loader = [torch.from_numpy(calibration[i:i + batch]) for i in range(0, len(calibration),
                                                                           batch)]
        recipe = ann2snn.recipes.RateCodingRecipe(dataloader=loader, mode="99.9%")
        ann = to_torch(network, clip_as_relu)
        self.model = ann2snn.Converter(recipe=recipe).convert(ann).eval()

    def run(self, x, T, batch):
        return self.outputs_at(x, [T], batch)[0]

    def outputs_at(self, x, steps, batch) -> list[np.ndarray]:
        """Summed outputs (images, *output shape) at each of ``steps``, one run per batch."""
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

    def __init__(self, network, calibration, batch, clip_as_relu: bool = False):
        import sinabs
        import torch
        from sinabs.hooks import conv_layer_synops_hook, linear_layer_synops_hook
        from sinabs.utils import normalize_weights
        self.torch = torch
        self.name = Sinabs.name + (CLIP_AS_RELU if clip_as_relu else "")
        ann = to_torch(network, clip_as_relu)
        spiking = (L.ReLU, L.Clip) if clip_as_relu else (L.ReLU,)
        relus = [n.name for n in network if isinstance(n.layer, spiking)]
        params = [network[r].inputs[0] for r in relus]
        normalize_weights(ann, torch.from_numpy(calibration), relus, params, percentile=99.9)
        self.model = sinabs.from_model(ann, input_shape=network.input_shape, batch_size=batch,
                                       add_spiking_output=False).spiking_model.eval()
        _check_all_spiking(self.model, network)
        self.output_shape = network.output_shape
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
                out.append(y.reshape(len(xb), T, *self.output_shape).sum(1).numpy())
        return np.concatenate(out)

    def sops(self, x, T) -> float:
        self.run(x, T, len(x))
        # each hook holds synops per (image, step) of its last forward pass
        return float(sum(float(m.hook_data["layer_synops_per_timestep"]) for m in self.counted)
                     * T)


def _check_all_spiking(model, network) -> None:
    """Raise when sinabs left some of the network's activations analog: ``from_model`` turns
    only ``nn.ReLU`` (and sinabs' NeuromorphicReLU) into spiking layers and silently keeps
    any other activation (ReLU6, Hardtanh), so such a model would run as the ANN."""
    from sinabs.layers import StatefulLayer
    analog = [name for name, module in model.named_children()
              if isinstance(network[name].layer, L.Activation)
              and not isinstance(network[name].layer, L.Identity)
              and not isinstance(module, StatefulLayer)]
    if analog:
        kinds = sorted({type(getattr(model, name)).__name__ for name in analog})
        raise TypeError(f"sinabs.from_model left {len(analog)} activations analog "
                        f"({', '.join(kinds)}: it replaces nn.ReLU only), no spiking layer there")


class Evsim:
    def __init__(self, network, calibration, engine, threads: int = THREADS):
        self.snn = evsim.convert(network, calibration, method="percentile")
        self.engine, self.threads = engine, threads
        self.name = f"evsim {engine}" + (ONE_THREAD if threads != THREADS else "")
        self.last = None

    def run(self, x, T, batch):
        self.last = evsim.simulate(self.snn, x, T=T, engine=self.engine, batch_size=batch,
                                   threads=self.threads, checkpoints=[T])
        return self.last.outputs[-1]

    def sops(self, x, T) -> float:
        return self.last.total_sops() / self.last.n_images

    def firing_rate(self) -> float:
        """Mean spikes per neuron and step of the last run, over all spiking layers."""
        rates, neurons = self.last.firing_rates(), self.last.neurons
        return sum(rates[n] * neurons[n] for n in rates) / sum(neurons[n] for n in rates)


@dataclasses.dataclass(frozen=True)
class Workload:
    """A model and its data: test inputs ``images`` (N, C, H, W), ``truth`` (N,) classes or
    (N, H, W) masks, ``calibration`` inputs (M, C, H, W) and the name of the score."""

    network: evsim.Network
    images: np.ndarray
    truth: np.ndarray
    calibration: np.ndarray
    metric: str

    def score(self, outputs: np.ndarray) -> float:
        """Accuracy (or agreement with the ANN) of class outputs (N, classes), or the mIoU of
        a segmenter's per-pixel outputs (N, classes, H, W) decoded by their arg-max."""
        if self.metric != "mIoU":
            return float((outputs.reshape(len(outputs), -1).argmax(1) == self.truth).mean())
        masks = decode_masks(outputs.reshape(len(outputs), *self.network.output_shape))
        return mean_iou(masks, self.truth, classes=self.network.output_shape[0])


def _scenes(n: int, full_test_set: bool):
    """The first ``n`` Fashion-MNIST test scenes: the bundled 300, or made from the local
    Fashion-MNIST files (the same rules and seed: the first 300 are the bundled ones)."""
    return (fashion_mnist_scenes("test", n, seed=0) if full_test_set
            else bundled_scenes().take(slice(0, n)))


def model_and_data(name, images, labels, calibration, calibration_labels,
                   full_test_set=False) -> Workload:
    """A bundled or wide model with its data. A segmenter reads as many test scenes as there
    are ``images`` and is calibrated on scenes made from the ``calibration`` images and
    their labels (``SCENE_CALIBRATION``); a wide model's labels are its ANN's predictions
    (its weights are random)."""
    if name in SEGMENTERS:
        scenes = _scenes(len(images), full_test_set)
        calibration_scenes = make_scenes(calibration, calibration_labels, **SCENE_CALIBRATION)
        return Workload(prepare(load_model(name)), scenes.images, scenes.masks,
                        calibration_scenes.images, "mIoU")
    if name not in wide_models.MODELS:
        return Workload(prepare(load_model(name)), images, labels, calibration, "accuracy")
    calibration = wide_models.images_for(name, calibration)
    network = prepare(wide_models.build(name, calibration[:64]))
    images = wide_models.images_for(name, images)
    labels = forward(network, images).reshape(len(images), -1).argmax(1)
    return Workload(network, images, labels, calibration, "agreement with the ANN")


def _tools(network, calibration, batch):
    """(label, maker) of every tool; on a network with ReLU6 (Clip) layers each peer is tried
    as is and with them made ReLUs (``CLIP_AS_RELU``)."""
    variants = [False]
    if any(isinstance(node.layer, L.Clip) for node in network):
        variants.append(True)
    makers = []
    for clip_as_relu in variants:
        suffix = CLIP_AS_RELU if clip_as_relu else ""
        makers += [(SpikingJelly.name + suffix,
                    lambda c=clip_as_relu: SpikingJelly(network, calibration, batch, c)),
                   (Sinabs.name + suffix,
                    lambda c=clip_as_relu: Sinabs(network, calibration, batch, c))]
    makers += [("evsim event", lambda: Evsim(network, calibration, "event")),
               ("evsim dense", lambda: Evsim(network, calibration, "dense"))]
    if THREADS > 1:  # its speed-up column is then the event engine's own, in the same rounds
        makers.append(("evsim event" + ONE_THREAD,
                       lambda: Evsim(network, calibration, "event", threads=1)))
    return makers


def bench_model(work: Workload, T, batch, rounds):
    """Rows (tool, ms per image, score, SOPs per image, firing rate) of the tools that
    converted ``work.network``, and {tool: error} of those that failed."""
    images = work.images
    tools, failed = [], {}
    for label, make in _tools(work.network, work.calibration, batch):
        try:
            tools.append(make())
        except Exception as err:  # a peer that cannot convert this model is reported, not fatal
            failed[label] = f"{type(err).__name__}: {err}".splitlines()[0][:160]
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
        rate = tool.firing_rate() if isinstance(tool, Evsim) else None
        sops = tool.sops(images[:min(len(images), 64)], T)
        rows.append((tool.name, 1e3 * seconds / len(images), work.score(outputs[tool.name]),
                     sops, rate))
    return rows, failed


def accuracy_table(names, images, labels, calibration, steps, batch) -> None:
    """Accuracy at several T of SpikingJelly's 99.9 % recipe (with ReLU6 made ReLU, which it
    cannot convert) and evsim's percentile preset, from one run each read at every T."""
    print("| model | tool | " + " | ".join(f"T = {t}" for t in steps) + " |")
    print("|---|---|" + "---:|" * len(steps))
    for name in names:
        network = prepare(load_model(name))
        clip_as_relu = any(isinstance(node.layer, L.Clip) for node in network)
        peer = SpikingJelly(network, calibration, batch, clip_as_relu)
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


def print_rows(name: str, work: Workload, rows, failed) -> None:
    """The table rows of one model: each tool that ran, the ANN, then each failure."""
    event_ms = next((ms for tool, ms, *_ in rows if tool == "evsim event"), None)
    unit = " mIoU" if work.metric == "mIoU" else ""
    for tool, ms, score, sops, rate in rows:
        speed_up = "–" if event_ms is None else f"{ms / event_ms:.2f}x"
        print(f"| {name} | {tool} | {ms:.2f} | {100 * score:.1f} %{unit} | {speed_up} | "
              f"{sops:.3g} | {'' if rate is None else f'{100 * rate:.1f} %'} |")
    ann = work.score(forward(work.network, work.images))
    print(f"| {name} | ANN (evsim.forward, no time steps) | | {100 * ann:.1f} %{unit} | | | |")
    for tool, error in failed.items():
        print(f"| {name} | {tool} | failed: {error} | | | | |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--T", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--full-test-set", action="store_true",
                        help="test images (and scenes) from the local Fashion-MNIST files, not "
                        "the bundled sample")
    parser.add_argument("--quick", action="store_true", help="fashion_cnn, 16 images, 1 round")
    parser.add_argument("--accuracy-T", default=None, metavar="T1,T2,...",
                        help="instead of timing, compare accuracy at these T (one run read at "
                        "each) of SpikingJelly's recipe and evsim's percentile preset "
                        "(classifiers only)")
    args = parser.parse_args()
    if args.quick:
        args.images, args.rounds, args.models, args.batch = 16, 1, "fashion_cnn", 16
    import torch
    torch.set_num_threads(THREADS)
    calibration, calibration_labels = load_bundled_sample("train")
    images, labels = (load_fashion_mnist("test") if args.full_test_set
                      else load_bundled_sample("test"))
    images, labels = images[:args.images], labels[:args.images]
    names = args.models.split(",")
    if args.accuracy_T:
        steps = sorted(int(t) for t in args.accuracy_T.split(","))
        print(f"accuracy (%) at T = {steps} on {len(images)} real Fashion-MNIST test images; "
              f"99.9-percentile conversion on {len(calibration)} training images\n")
        accuracy_table([n for n in names if n not in SEGMENTERS], images, labels, calibration,
                       steps, args.batch)
        skipped = [n for n in names if n in SEGMENTERS]
        if skipped:
            print(f"\n(not a classifier, left out: {', '.join(skipped)})")
        return
    print(f"peer benchmark: T = {args.T}, {len(images)} real Fashion-MNIST test images (for "
          f"the segmenters {', '.join(SEGMENTERS)}: as many 64 x 64 test scenes), batch "
          f"{args.batch}, {THREADS} thread(s) for every tool, median of {args.rounds} "
          f"alternating rounds; 99.9-percentile conversion on {len(calibration)} training "
          f"images (segmenters: {SCENE_CALIBRATION['n']} scenes made from them); "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"numpy {np.__version__}\n")
    print("| model | tool | ms per image | accuracy (segmenters: mIoU) | evsim event speed-up | "
          "SOPs per image (own counter) | firing rate |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in names:
        work = model_and_data(name, images, labels, calibration, calibration_labels,
                              args.full_test_set)
        rows, failed = bench_model(work, args.T, args.batch, args.rounds)
        print_rows(name, work, rows, failed)


if __name__ == "__main__":
    main()
