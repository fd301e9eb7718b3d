"""Train the models the method comparison uses, on real Fashion-MNIST, and bundle them.

One VGG-style CNN trained four ways, as the papers do — with MaxPool and plain
ReLU (the classic baselines), with MaxPool and OPI's trainable clip (TCL),
with AvgPool and QCFS (L = 4), with AvgPool and NQ's noisy QCFS (σ estimated
each epoch with evsim's dense engine) — plus a small residual network, a narrow
MobileNet-v2 (inverted residual blocks: 1x1 expansion, depthwise 3x3, ReLU6,
linear 1x1 projections) and a denoising network (dense prediction, for
SpiCalib's output-fidelity claim).

Training uses images 0..54,999 of the training set; images 55,000..59,999 are
held out and make every choice (the epoch kept, NQ's σ; Bayesian optimisation
in the comparison uses them too). The test set is only measured, never used
to choose. The VGGs train for 30 epochs with SGD (Nesterov momentum, cosine
schedule), the residual network for 20 and the MobileNet for 12 with Adam
(one-cycle schedule), all on images shifted by up to 2 pixels and flipped
left-right; the epoch with the
best held-out accuracy is kept (for NQ: the best held-out SNN accuracy at
T = 4 among the last third of the epochs, as NQ's paper code keeps its best
SNN epoch). The denoiser keeps its 6-epoch Adam recipe. Each recipe is meant
to fit 30 minutes on 2 CPU cores; ``--time-batches`` measures the time per
epoch on your machine (docs/methods.md lists what we measured). Each model is written to
``evsim/models/<name>.npz`` with ``<name>.json`` (recipe, selection, ANN test
accuracy or MSE) and ``<name>.md``. From the repository root::

    python examples/train_method_models.py --model all
    python examples/train_method_models.py --model vgg_nq --device cuda
    python examples/train_method_models.py --time-batches 200 --threads 1   # s/epoch
    python examples/train_method_models.py --smoke          # CI: tiny, temporary output
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import platform
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import evsim
from evsim.data import load_bundled_sample, load_fashion_mnist
from evsim.io.torch import from_torch
from evsim.training import QCFS, ClipReLU, NoisyQCFS, estimate_noise

OUT = Path(__file__).resolve().parents[1] / "evsim" / "models"
INPUT_SHAPE = (1, 28, 28)
TRAIN_END = 55_000
SEED = 0
NOISE = 0.3  # std of the Gaussian noise the denoiser removes
BATCH = 128
SHIFT = 2  # augmentation: random shifts of up to this many pixels
NQ_SIGMA_T = (4,)  # NQ's σ from an SNN pass at T = 4, as the paper's code (see --nq-sigma-T)
NQ_SIGMA_IMAGES = 256  # held-out images for σ
NQ_SELECT_IMAGES = 1000  # held-out images for the SNN accuracy that picks NQ's epoch


def _activation(kind: str) -> tuple[str, nn.Module]:
    return {"relu": ("relu", nn.ReLU()), "tcl": ("clip", ClipReLU(4.0)),
            "qcfs": ("qcfs", QCFS(4, 8.0)), "nq": ("qcfs", NoisyQCFS(4, 8.0))}[kind]


def vgg(activation: str, pool: str) -> nn.Sequential:
    """conv16-conv16-pool-conv32-conv32-pool-conv64-pool-fc10, BatchNorm after each conv.

    Modules are named so that evsim's layer names read: conv1, bn1, relu1 (clip1
    for TCL, qcfs1 for QCFS and NQ), pool1, ..., flatten, fc.
    """
    layers, cin, block = [], 1, 1
    for i, (cout, pool_after) in enumerate(((16, False), (16, True), (32, False), (32, True),
                                             (64, True)), start=1):
        act_name, act = _activation(activation)
        layers += [(f"conv{i}", nn.Conv2d(cin, cout, 3, padding=1, bias=False)),
                   (f"bn{i}", nn.BatchNorm2d(cout)), (f"{act_name}{i}", act)]
        if pool_after:
            layers.append((f"pool{block}", nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)))
            block += 1
        cin = cout
    layers += [("flatten", nn.Flatten()), ("fc", nn.Linear(64 * 3 * 3, 10))]
    return nn.Sequential(OrderedDict(layers))


class Block(nn.Module):
    """A residual block: conv1-bn1-relu1-conv2-bn2, plus the identity, then relu2."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = nn.ReLU()

    def forward(self, x):
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))) + x)


def resnet() -> nn.Sequential:
    """conv16 - block16 - avgpool - conv32 - block32 - avgpool - fc10 (layers block1_conv1, ...)."""
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 16, 3, padding=1, bias=False)), ("bn1", nn.BatchNorm2d(16)),
        ("relu1", nn.ReLU()), ("block1", Block(16)), ("pool1", nn.AvgPool2d(2)),
        ("conv2", nn.Conv2d(16, 32, 3, padding=1, bias=False)), ("bn2", nn.BatchNorm2d(32)),
        ("relu2", nn.ReLU()), ("block2", Block(32)), ("pool2", nn.AvgPool2d(2)),
        ("flatten", nn.Flatten()), ("fc", nn.Linear(32 * 7 * 7, 10))]))


class InvertedResidual(nn.Module):
    """MobileNet-v2's block: expand (1x1) - ReLU6 - depthwise 3x3 - ReLU6 - project (1x1).

    The projection is linear (BatchNorm, no activation); the input is added back
    when the block keeps the shape (stride 1, as many channels out as in).
    """

    def __init__(self, channels_in: int, channels_out: int, stride: int, expansion: int):
        super().__init__()
        hidden = channels_in * expansion
        self.expand = nn.Conv2d(channels_in, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.relu1 = nn.ReLU6()
        self.depthwise = nn.Conv2d(hidden, hidden, 3, stride, padding=1, groups=hidden,
                                   bias=False)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.relu2 = nn.ReLU6()
        self.project = nn.Conv2d(hidden, channels_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels_out)
        self.residual = stride == 1 and channels_in == channels_out

    def forward(self, x):
        hidden = self.relu2(self.bn2(self.depthwise(self.relu1(self.bn1(self.expand(x))))))
        out = self.bn3(self.project(hidden))
        return out + x if self.residual else out


def mobilenet() -> nn.Sequential:
    """A narrow MobileNet-v2: a stride-2 stem, four inverted residual blocks, a 1x1 head.

    conv1 (16, stride 2: 14x14) - block1 (16, expansion 4, residual) - block2 (24,
    stride 2: 7x7) - block3 (24, residual) - block4 (32) - conv2 (1x1, 64) - 7x7
    average pool - fc10; BatchNorm after every conv, ReLU6 after all but the projections.
    """
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 16, 3, stride=2, padding=1, bias=False)),
        ("bn1", nn.BatchNorm2d(16)), ("relu1", nn.ReLU6()),
        ("block1", InvertedResidual(16, 16, 1, 4)), ("block2", InvertedResidual(16, 24, 2, 4)),
        ("block3", InvertedResidual(24, 24, 1, 4)), ("block4", InvertedResidual(24, 32, 1, 4)),
        ("conv2", nn.Conv2d(32, 64, 1, bias=False)), ("bn2", nn.BatchNorm2d(64)),
        ("relu2", nn.ReLU6()), ("pool", nn.AvgPool2d(7)), ("flatten", nn.Flatten()),
        ("fc", nn.Linear(64, 10))]))


def denoiser() -> nn.Sequential:
    """A fully convolutional denoiser: three conv-ReLU layers and a 1-channel output conv4."""
    layers = []
    for i, (cin, cout) in enumerate(((1, 16), (16, 16), (16, 16)), start=1):
        layers += [(f"conv{i}", nn.Conv2d(cin, cout, 3, padding=1)), (f"relu{i}", nn.ReLU())]
    return nn.Sequential(OrderedDict([*layers, ("conv4", nn.Conv2d(16, 1, 3, padding=1))]))


#: name -> (description, builder, epochs, recipe: "sgd" or "adam", augment)
MODELS = {
    "vgg_relu": ("VGG-style CNN, MaxPool, ReLU (classic baselines)",
                 lambda: vgg("relu", "max"), 30, "sgd", True),
    "vgg_tcl": ("VGG-style CNN, MaxPool, trainable clip (OPI's TCL)",
                lambda: vgg("tcl", "max"), 30, "sgd", True),
    "vgg_qcfs": ("VGG-style CNN, AvgPool, QCFS L = 4", lambda: vgg("qcfs", "avg"), 30, "sgd", True),
    "vgg_nq": ("VGG-style CNN, AvgPool, NQ's noisy QCFS L = 4", lambda: vgg("nq", "avg"), 30,
               "sgd", True),
    "resnet": ("small residual CNN, AvgPool, ReLU", resnet, 20, "adam", True),
    "mobilenet": ("narrow MobileNet-v2: inverted residual blocks, ReLU6, linear bottlenecks",
                  mobilenet, 12, "adam", True),
    "denoiser": (f"denoiser: Gaussian noise σ = {NOISE} in, clean image out", denoiser, 6,
                 "adam", False),
}


def noisy(images: np.ndarray, seed: int) -> np.ndarray:
    """The denoiser's input: images plus Gaussian noise, clipped to [0, 1] (seeded)."""
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0, NOISE, images.shape), 0, 1).astype(np.float32)


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to SHIFT pixels (zero fill) and flip half of them left-right.

    The random numbers come from a CPU generator, so CPU and GPU runs see the same draws.
    """
    b, _, h, w = x.shape
    shift = torch.randint(0, 2 * SHIFT + 1, (2, b), generator=generator).to(x.device)
    flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
    padded = F.pad(x, (SHIFT,) * 4)
    rows = shift[0][:, None] + torch.arange(h, device=x.device)
    cols = shift[1][:, None] + torch.arange(w, device=x.device)
    out = padded[torch.arange(b, device=x.device)[:, None, None], 0, rows[:, :, None],
                 cols[:, None, :]]
    return torch.where(flip[:, None, None], out.flip(-1), out)[:, None]


def _optimiser(recipe: str, model: nn.Module, steps: int):
    if recipe == "adam":
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 3e-3, total_steps=steps)
        return optimiser, schedule, {"optimizer": "Adam", "lr": 3e-3,
                                     "schedule": "OneCycleLR per batch", "weight_decay": 1e-4}
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps)
    return optimiser, schedule, {"optimizer": "SGD, Nesterov momentum 0.9", "lr": 0.05,
                                 "schedule": "cosine to 0 per batch", "weight_decay": 5e-4}


@torch.no_grad()
def _held_out_score(name: str, model: nn.Module, held_out: np.ndarray, labels: np.ndarray,
                    device: str) -> float:
    """Held-out accuracy (for the denoiser: MSE) of the ANN in eval mode."""
    model.eval()
    scores = []
    for start in range(0, len(held_out), 1000):
        clean = held_out[start:start + 1000]
        if name == "denoiser":
            out = model(torch.from_numpy(noisy(clean, SEED + 2)).to(device)).cpu().numpy()
            scores.append(float(np.sum((out - clean) ** 2)) / clean[0].size)
        else:
            out = model(torch.from_numpy(clean).to(device)).argmax(1).cpu().numpy()
            scores.append(float(np.sum(out == labels[start:start + 1000])))
    return sum(scores) / len(held_out)


def _snn_accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, T: int) -> float:
    snn = evsim.convert(from_torch(model, INPUT_SHAPE), method="nq")
    return float(evsim.simulate(snn, images, T=T, checkpoints=[T]).accuracy(labels)[-1])


def train(name: str, epochs: int, data: dict, device: str, time_batches: int | None = None,
          sigma_steps: tuple[int, ...] = NQ_SIGMA_T, recipe_name: str | None = None,
          augmentation: bool | None = None) -> tuple[nn.Module, dict]:
    """Train model ``name``; return it (the kept epoch, eval mode) and its card's fields.

    With ``time_batches``, train only 10 + that many batches and return the median
    seconds per batch after the first 10 instead (the budget check).
    """
    description, build, _, default_recipe, default_augment = MODELS[name]
    augmentation = default_augment if augmentation is None else augmentation
    torch.manual_seed(SEED)
    model = build().to(device)
    regression = name == "denoiser"
    images = data["images"]
    inputs = noisy(images, SEED) if regression else images
    x_all = torch.from_numpy(inputs).to(device)
    targets = torch.from_numpy(images if regression else data["labels"]).to(device)
    batches_per_epoch = math.ceil(len(images) / BATCH)
    optimiser, schedule, recipe = _optimiser(recipe_name or default_recipe, model,
                                             epochs * batches_per_epoch)
    recipe["augmentation"] = (f"random shift up to {SHIFT} px, left-right flip"
                              if augmentation else "none")
    loss_fn = nn.MSELoss() if regression else nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(SEED)
    held_out, held_labels = data["held_out"], data["held_out_labels"]
    select_from = epochs - max(1, epochs // 3) if name == "vgg_nq" else 0
    best, best_state, history, sigmas = -math.inf, None, [], []
    for epoch in range(epochs):
        if name == "vgg_nq" and epoch > 0:  # first epoch: σ = 0
            model.eval()
            sigma = estimate_noise(model, held_out[:NQ_SIGMA_IMAGES], INPUT_SHAPE, T=sigma_steps)
            sigmas.append({path: round(s, 5) for path, s in sigma.items()})
        model.train()
        order = torch.randperm(len(images), generator=generator).to(device)
        durations = []
        for i, batch in enumerate(order.split(BATCH)):
            if time_batches is not None and i == 10 + time_batches:  # 10 warm-up batches
                timing = {"seconds_per_batch": float(np.median(durations[10:])),
                          "fastest_batch": min(durations[10:]),
                          "batches_per_epoch": batches_per_epoch}
                if name == "vgg_nq":  # σ estimation and SNN selection, once per epoch
                    start = time.perf_counter()
                    estimate_noise(model.eval(), held_out[:NQ_SIGMA_IMAGES], INPUT_SHAPE,
                                   T=sigma_steps)
                    timing["sigma_seconds"] = time.perf_counter() - start
                    start = time.perf_counter()
                    _snn_accuracy(model, held_out[-NQ_SELECT_IMAGES:],
                                  held_labels[-NQ_SELECT_IMAGES:], T=4)
                    timing["selection_seconds"] = time.perf_counter() - start
                return model, timing
            start = time.perf_counter()
            x = augment(x_all[batch], generator) if augmentation else x_all[batch]
            optimiser.zero_grad()
            loss = loss_fn(model(x), targets[batch])
            loss.backward()
            optimiser.step()
            schedule.step()
            durations.append(time.perf_counter() - start)
        held = _held_out_score(name, model, held_out, held_labels, device)
        entry = {"epoch": epoch + 1, "loss": round(float(loss.detach()), 4)}
        if regression:
            entry["held_out_mse"] = round(held, 6)
            score = -held
        else:
            entry["held_out_accuracy"] = score = round(held, 4)
        if name == "vgg_nq" and epoch >= select_from:
            chosen = held_out[-NQ_SELECT_IMAGES:], held_labels[-NQ_SELECT_IMAGES:]
            entry["held_out_snn_T4"] = score = round(_snn_accuracy(model, *chosen, T=4), 4)
        if epoch >= select_from and score > best:
            best, best_state = score, copy.deepcopy(model.state_dict())
            kept = epoch + 1
        history.append(entry)
        print(f"  {name} epoch {epoch + 1}/{epochs}: {entry}", flush=True)
    model.load_state_dict(best_state)
    model.eval()
    recipe.update(epochs=epochs, batch_size=BATCH, seed=SEED, train_images=len(images),
                  held_out=f"training images {TRAIN_END}..{TRAIN_END + len(held_out) - 1}",
                  selection=("held-out SNN accuracy at T = 4 (1,000 images, last "
                             f"{epochs - select_from} epochs)" if name == "vgg_nq" else
                             "held-out MSE" if regression else "held-out ANN accuracy"),
                  kept_epoch=kept, torch_version=torch.__version__)
    if name == "vgg_nq":
        recipe.update(nq_sigma_T=list(sigma_steps), nq_sigma_images=NQ_SIGMA_IMAGES)
    info = {"description": description, "recipe": recipe, "history": history}
    if sigmas:
        info["nq_sigma_per_epoch"] = sigmas
    return model, info


def evaluate(name: str, network: evsim.Network, test_images, test_labels) -> dict:
    if name == "denoiser":
        clean = test_images
        out = evsim.forward(network, noisy(clean, SEED + 1))
        return {"test_mse": float(np.mean((out - clean) ** 2)),
                "noisy_input_mse": float(np.mean((noisy(clean, SEED + 1) - clean) ** 2))}
    correct = int((evsim.forward(network, test_images).argmax(1) == test_labels).sum())
    sample, sample_labels = load_bundled_sample("test")
    logits = evsim.forward(network, sample)
    sample_correct = int((logits.argmax(1) == sample_labels).sum())
    return {"test_accuracy": correct / len(test_labels), "test_correct": correct,
            "test_images": len(test_labels), "sample_correct": sample_correct,
            "sample_accuracy": sample_correct / len(sample_labels),
            "sample_logits_first4": [[round(float(v), 5) for v in row] for row in logits[:4]]}


def card(name: str, info: dict) -> str:
    metric = (f"test MSE {info['test_mse']:.5f} (noisy input: {info['noisy_input_mse']:.5f})"
              if "test_mse" in info else
              f"ANN test accuracy {info['test_accuracy']:.4f} "
              f"({info['test_correct']}/{info['test_images']})")
    recipe = ", ".join(f"{k} {v}" for k, v in info["recipe"].items())
    kept = next(e for e in info["history"] if e["epoch"] == info["recipe"]["kept_epoch"])
    kept = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in kept.items() if k != "epoch")
    layers = ", ".join(node.name for node in info["network"].nodes[1:])
    return (f"# {name}\n\n{info['description']}.\n\n- {metric}\n- kept epoch "
            f"{info['recipe']['kept_epoch']} of {info['recipe']['epochs']}: {kept}\n- layers: "
            f"{layers}\n- parameters: {info['parameters']}\n"
            f"- training time: {info['training_seconds']:.0f} s on {info['machine']} "
            f"({info['date']})\n- recipe: {recipe}\n\nRetrain: "
            f"`python examples/train_method_models.py --model {name}`\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all", choices=["all", *MODELS])
    parser.add_argument("--epochs", type=int, default=None, help="override the model's epochs")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--recipe", choices=["sgd", "adam"], default=None,
                        help="override the model's optimiser recipe")
    parser.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                        help="override the model's augmentation (shifts and flips)")
    parser.add_argument("--nq-sigma-T", type=int, nargs="+", default=list(NQ_SIGMA_T),
                        metavar="T", help="NQ: step counts whose largest residual std is σ "
                        f"(default {' '.join(map(str, NQ_SIGMA_T))}; the paper's code: 4)")
    parser.add_argument("--time-batches", type=int, default=None, metavar="N",
                        help="only time N training batches per model (median after 10 "
                        "warm-up batches) and print s/epoch and the recipe's total")
    parser.add_argument("--smoke", action="store_true",
                        help="1 epoch on 1,000 images into a temporary directory")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # CUDA lacks deterministic kernels for some ops; there a warning replaces the error.
    torch.use_deterministic_algorithms(True, warn_only=args.device != "cpu")
    images, labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    data = {"images": images[:TRAIN_END], "labels": labels[:TRAIN_END],
            "held_out": images[TRAIN_END:], "held_out_labels": labels[TRAIN_END:]}
    if args.smoke:
        data = {"images": images[:1000], "labels": labels[:1000],
                "held_out": images[TRAIN_END:TRAIN_END + 1000],
                "held_out_labels": labels[TRAIN_END:TRAIN_END + 1000]}
        test_images, test_labels = test_images[:500], test_labels[:500]
    names = list(MODELS) if args.model == "all" else [args.model]
    if args.time_batches:
        for name in names:
            _, timing = train(name, 1, data, args.device, time_batches=args.time_batches,
                              sigma_steps=tuple(args.nq_sigma_T), recipe_name=args.recipe,
                              augmentation=args.augment)
            per_epoch = timing["seconds_per_batch"] * timing["batches_per_epoch"]
            epochs = args.epochs or MODELS[name][2]
            total = epochs * per_epoch
            extra = ""
            if "sigma_seconds" in timing:
                total += (epochs - 1) * timing["sigma_seconds"]
                total += max(1, epochs // 3) * timing["selection_seconds"]
                extra = (f" + σ estimate {timing['sigma_seconds']:.0f} s and SNN selection "
                         f"{timing['selection_seconds']:.0f} s per epoch")
            print(f"{name}: {1000 * timing['seconds_per_batch']:.1f} ms per batch (median; "
                  f"fastest {1000 * timing['fastest_batch']:.1f}), "
                  f"{per_epoch:.0f} s per epoch{extra}; {epochs} epochs {total / 60:.1f} "
                  f"min on {args.threads} thread(s) ({args.device})", flush=True)
        return
    out = args.out or (Path(tempfile.mkdtemp(prefix="evsim-models-")) if args.smoke else OUT)
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        # in smoke mode NQ gets a second epoch so that its σ estimation runs
        epochs = (2 if name == "vgg_nq" else 1) if args.smoke else (args.epochs or MODELS[name][2])
        start = time.perf_counter()
        model, info = train(name, epochs, data, args.device, sigma_steps=tuple(args.nq_sigma_T),
                            recipe_name=args.recipe, augmentation=args.augment)
        seconds = time.perf_counter() - start
        model = model.cpu()
        network = from_torch(model, INPUT_SHAPE)
        with torch.no_grad():
            check = test_images[:256]
            reference = model(torch.from_numpy(noisy(check, 0) if name == "denoiser"
                                               else check)).numpy()
        got = evsim.forward(network, noisy(check, 0) if name == "denoiser" else check)
        # A quantised activation turns a last-bit float difference at a level boundary
        # into a whole level, so compare predictions rather than every value.
        agree = (np.mean(np.abs(got - reference)) < 1e-3 if name == "denoiser"
                 else np.mean(got.argmax(1) == reference.argmax(1)) >= 0.99)
        if not agree:
            raise RuntimeError(f"{name}: evsim.forward differs from torch (largest "
                               f"difference {np.abs(got - reference).max():.3g})")
        where = (f"{torch.cuda.get_device_name(args.device)} (torch {torch.__version__})"
                 if args.device.startswith("cuda") else
                 f"{platform.machine()} CPU, {args.threads} torch thread(s)")
        info.update(name=name, parameters=int(sum(p.numel() for p in model.parameters())),
                    training_seconds=round(seconds, 1), date=str(datetime.date.today()),
                    machine=where, **evaluate(name, network, test_images, test_labels))
        (out / f"{name}.md").write_text(card(name, {**info, "network": network}))
        evsim.save(network, out / f"{name}.npz")
        (out / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
        print(f"{name}: {seconds:.0f} s, " + ", ".join(f"{k} {v}" for k, v in info.items()
                                                      if k.startswith("test")), flush=True)


if __name__ == "__main__":
    main()
