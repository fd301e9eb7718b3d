"""Train the models the method comparison uses, on real Fashion-MNIST, and bundle them.

One VGG-style CNN trained four ways, as the papers do — with MaxPool and plain
ReLU (the classic baselines), with MaxPool and OPI's trainable clip (TCL),
with AvgPool and QCFS (L = 4), with AvgPool and NQ's noisy QCFS (σ estimated
each epoch with evsim's dense engine) — plus a small residual network and a
denoising network (dense prediction, for SpiCalib's output-fidelity claim).

Each trains in under 10 minutes on 2 cores on training images 0..54,999;
images 55,000..59,999 are held out (NQ's σ estimation and Bayesian
optimisation use them; the test set is never used for choices). Each model is
written to ``evsim/models/<name>.npz`` with ``<name>.json`` (recipe, ANN test
accuracy or MSE) and ``<name>.md``. From the repository root::

    python examples/train_method_models.py --model all
    python examples/train_method_models.py --model vgg_nq --epochs 8
    python examples/train_method_models.py --smoke          # CI: tiny, temporary output
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import evsim
from evsim.data import load_fashion_mnist
from evsim.io.torch import from_torch
from evsim.training import QCFS, ClipReLU, NoisyQCFS, estimate_noise

OUT = Path(__file__).resolve().parents[1] / "evsim" / "models"
INPUT_SHAPE = (1, 28, 28)
TRAIN_END = 55_000
SEED = 0
THREADS = 2
NOISE = 0.3  # std of the Gaussian noise the denoiser removes


def _activation(kind: str) -> nn.Module:
    return {"relu": nn.ReLU, "tcl": lambda: ClipReLU(4.0), "qcfs": lambda: QCFS(4, 8.0),
            "nq": lambda: NoisyQCFS(4, 8.0)}[kind]()


def vgg(activation: str, pool: str) -> nn.Sequential:
    """conv16-conv16-pool-conv32-conv32-pool-conv64-pool-fc10, BatchNorm after each conv."""
    layers, cin = [], 1
    for cout, pool_after in ((16, False), (16, True), (32, False), (32, True), (64, True)):
        layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                   _activation(activation)]
        if pool_after:
            layers.append(nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2))
        cin = cout
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(64 * 3 * 3, 10))


class Block(nn.Module):
    """A residual block: conv-BN-ReLU-conv-BN, plus the identity, then ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels))
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.body(x) + x)


def resnet() -> nn.Sequential:
    """stem conv16 - block16 - avgpool - conv32 - block32 - avgpool - fc10."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16),
                         nn.ReLU(), Block(16), nn.AvgPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32),
                         nn.ReLU(), Block(32), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 10))


def denoiser() -> nn.Sequential:
    """A fully convolutional denoiser: three conv-ReLU layers and a 1-channel output conv."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 1, 3, padding=1))


MODELS = {
    "vgg_relu": ("VGG-style CNN, MaxPool, ReLU (classic baselines)", lambda: vgg("relu", "max"), 6),
    "vgg_tcl": ("VGG-style CNN, MaxPool, trainable clip (OPI's TCL)", lambda: vgg("tcl", "max"), 6),
    "vgg_qcfs": ("VGG-style CNN, AvgPool, QCFS L = 4", lambda: vgg("qcfs", "avg"), 6),
    "vgg_nq": ("VGG-style CNN, AvgPool, NQ's noisy QCFS L = 4", lambda: vgg("nq", "avg"), 6),
    "resnet": ("small residual CNN, AvgPool, ReLU", resnet, 8),
    "denoiser": (f"denoiser: Gaussian noise σ = {NOISE} in, clean image out", denoiser, 6),
}


def noisy(images: np.ndarray, seed: int) -> np.ndarray:
    """The denoiser's input: images plus Gaussian noise, clipped to [0, 1] (seeded)."""
    rng = np.random.default_rng(seed)
    return np.clip(images + rng.normal(0, NOISE, images.shape), 0, 1).astype(np.float32)


def train(name: str, epochs: int, images, labels, held_out) -> tuple[nn.Module, dict]:
    description, build, _ = MODELS[name]
    torch.manual_seed(SEED)
    model = build()
    regression = name == "denoiser"
    inputs = noisy(images, SEED) if regression else images
    targets = torch.from_numpy(images) if regression else torch.from_numpy(labels)
    x_all = torch.from_numpy(inputs)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * int(np.ceil(len(images) / 128))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 3e-3, total_steps=steps)
    loss_fn = nn.MSELoss() if regression else nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(SEED)
    sigmas = []
    for epoch in range(epochs):
        if name == "vgg_nq" and epoch > 0:  # first epoch: σ = 0
            model.eval()
            sigmas.append(estimate_noise(model, held_out[:256], INPUT_SHAPE, T=4))
        model.train()
        for batch in torch.randperm(len(images), generator=generator).split(128):
            optimiser.zero_grad()
            loss = loss_fn(model(x_all[batch]), targets[batch])
            loss.backward()
            optimiser.step()
            schedule.step()
        print(f"  {name} epoch {epoch + 1}/{epochs}: loss {float(loss.detach()):.4f}",
              flush=True)
    model.eval()
    recipe = {"optimizer": "Adam", "lr": 3e-3, "schedule": "OneCycleLR per batch",
              "epochs": epochs, "batch_size": 128, "weight_decay": 1e-4, "seed": SEED,
              "train_images": len(images), "held_out": f"training images {TRAIN_END}..59999",
              "torch_version": torch.__version__}
    if sigmas:
        recipe["nq_sigma_per_epoch"] = sigmas
    return model, {"description": description, "recipe": recipe}


def evaluate(name: str, network: evsim.Network, test_images, test_labels) -> dict:
    if name == "denoiser":
        clean = test_images
        out = evsim.forward(network, noisy(clean, SEED + 1))
        return {"test_mse": float(np.mean((out - clean) ** 2)),
                "noisy_input_mse": float(np.mean((noisy(clean, SEED + 1) - clean) ** 2))}
    correct = int((evsim.forward(network, test_images).argmax(1) == test_labels).sum())
    return {"test_accuracy": correct / len(test_labels), "test_correct": correct}


def card(name: str, info: dict) -> str:
    metric = (f"test MSE {info['test_mse']:.5f} (noisy input: {info['noisy_input_mse']:.5f})"
              if "test_mse" in info else
              f"ANN test accuracy {info['test_accuracy']:.4f} ({info['test_correct']}/10000)")
    recipe = ", ".join(f"{k} {v}" for k, v in info["recipe"].items()
                       if k != "nq_sigma_per_epoch")
    return (f"# {name}\n\n{info['description']}.\n\n- {metric}\n- parameters: "
            f"{info['parameters']}\n- training time: {info['training_seconds']:.0f} s on "
            f"{THREADS} CPU threads ({info['date']})\n- recipe: {recipe}\n\nRetrain: "
            f"`python examples/train_method_models.py --model {name}`\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all", choices=["all", *MODELS])
    parser.add_argument("--epochs", type=int, default=None, help="override the model's epochs")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--smoke", action="store_true",
                        help="1 epoch on 1,000 images into a temporary directory")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    images, labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    held_out = images[TRAIN_END:]
    images, labels = images[:TRAIN_END], labels[:TRAIN_END]
    out = args.out or (Path(tempfile.mkdtemp(prefix="evsim-models-")) if args.smoke else OUT)
    out.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        images, labels, test_images, test_labels = (images[:1000], labels[:1000],
                                                    test_images[:500], test_labels[:500])
    names = list(MODELS) if args.model == "all" else [args.model]
    for name in names:
        # in smoke mode NQ gets a second epoch so that its σ estimation runs
        epochs = (2 if name == "vgg_nq" else 1) if args.smoke else (args.epochs or MODELS[name][2])
        start = time.perf_counter()
        model, info = train(name, epochs, images, labels, held_out)
        seconds = time.perf_counter() - start
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
        info.update(name=name, parameters=int(sum(p.numel() for p in model.parameters())),
                    training_seconds=round(seconds, 1), date=str(datetime.date.today()),
                    machine=f"{platform.machine()}, {THREADS} torch threads",
                    **evaluate(name, network, test_images, test_labels))
        evsim.save(network, out / f"{name}.npz")
        (out / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
        (out / f"{name}.md").write_text(card(name, info))
        print(f"{name}: {seconds:.0f} s, " + ", ".join(f"{k} {v}" for k, v in info.items()
                                                      if k.startswith("test")), flush=True)


if __name__ == "__main__":
    main()
