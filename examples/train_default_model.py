"""Train evsim's bundled default model, a small CNN for Fashion-MNIST, and export it.

Trains with PyTorch on the CPU (2 threads, fixed seeds, deterministic algorithms)
on the full 60 000-image Fashion-MNIST training set, exports the result to an
evsim :class:`~evsim.network.Network` (BatchNorm kept as records with running
statistics; evsim folds it itself), checks that :func:`evsim.forward` agrees with
the torch model, and evaluates ANN accuracy on the 10 000-image test set and the
1000-image bundled sample. Writes ``fashion_cnn.npz``, ``fashion_cnn.json``
(metadata) and ``fashion_cnn.md`` (model card) to ``--out``, by default
``evsim/models/``. Needs the Fashion-MNIST IDX files (see
:func:`evsim.data.load_fashion_mnist`). From the repository root::

    PYTHONPATH=. python examples/train_default_model.py

``--smoke`` trains 1 epoch on 2000 images and writes to a temporary directory
unless ``--out`` is given; CI uses it to check that the script still runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn

import evsim
from evsim.data import CLASS_NAMES, load_bundled_sample, load_fashion_mnist
from evsim.layers import AvgPool2d, BatchNorm, Conv2d, Dense, Flatten, ReLU
from evsim.network import Network, NetworkBuilder

MODEL_NAME = "fashion_cnn"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "evsim" / "models"
ARCHITECTURE = ("conv1 1->16 3x3 p1 - BN - ReLU - avgpool 2 - conv2 16->32 3x3 p1 - BN - ReLU - "
                "avgpool 2 - conv3 32->32 3x3 p1 - BN - ReLU - flatten - fc 1568->10")
INPUT_SHAPE = (1, 28, 28)
THREADS = 2
SEED = 0
EPOCHS = 15
BATCH_SIZE = 128
LR = 3e-3
WEIGHT_DECAY = 1e-4
SMOKE_IMAGES = 2000
CHECK_IMAGES = 512
CHECK_TOLERANCE = 1e-4


def build_torch_model() -> nn.Sequential:
    """The CNN, with module names equal to the exported evsim layer names."""
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 16, 3, padding=1, bias=False)),
        ("bn1", nn.BatchNorm2d(16)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.AvgPool2d(2)),
        ("conv2", nn.Conv2d(16, 32, 3, padding=1, bias=False)),
        ("bn2", nn.BatchNorm2d(32)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.AvgPool2d(2)),
        ("conv3", nn.Conv2d(32, 32, 3, padding=1, bias=False)),
        ("bn3", nn.BatchNorm2d(32)),
        ("relu3", nn.ReLU()),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(32 * 7 * 7, 10)),
    ]))


def train(model: nn.Module, images: np.ndarray, labels: np.ndarray, epochs: int) -> None:
    """Adam with a one-cycle schedule and random horizontal flips; prints per-epoch loss."""
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(SEED)
    steps_per_epoch = -(-len(x) // BATCH_SIZE)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=LR, epochs=epochs, steps_per_epoch=steps_per_epoch)
    model.train()
    for epoch in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for first in range(0, len(x), BATCH_SIZE):
            batch = order[first:first + BATCH_SIZE]
            xb, yb = x[batch], y[batch]
            flip = torch.rand(len(batch), generator=generator) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = nn.functional.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(x):.4f} "
              f"({time.perf_counter() - start:.1f} s)", flush=True)


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.float32)


def export(model: nn.Sequential) -> Network:
    """The evsim Network equal to ``model`` in eval mode, layer for layer."""
    builder = NetworkBuilder(INPUT_SHAPE)
    for name, module in model.named_children():
        if isinstance(module, nn.Conv2d):
            layer = Conv2d(_array(module.weight), None, stride=module.stride,
                           padding=module.padding, dilation=module.dilation,
                           groups=module.groups)
        elif isinstance(module, nn.BatchNorm2d):
            layer = BatchNorm(_array(module.weight), _array(module.bias),
                              _array(module.running_mean), _array(module.running_var),
                              eps=module.eps)
        elif isinstance(module, nn.ReLU):
            layer = ReLU()
        elif isinstance(module, nn.AvgPool2d):
            layer = AvgPool2d(module.kernel_size, module.stride)
        elif isinstance(module, nn.Flatten):
            layer = Flatten()
        elif isinstance(module, nn.Linear):
            layer = Dense(_array(module.weight), _array(module.bias))
        else:
            raise TypeError(f"cannot export module '{name}' of type {type(module).__name__}")
        builder.add_layer(layer, name=name)
    return builder.build()


def check_export(model: nn.Module, network: Network, images: np.ndarray) -> float:
    """Max |torch - evsim| logit difference; raises unless within tolerance with equal argmax."""
    model.eval()
    with torch.no_grad():
        expected = model(torch.from_numpy(images)).numpy()
    got = evsim.forward(network, images)
    diff = float(np.max(np.abs(expected - got)))
    flips = int(np.sum(expected.argmax(1) != got.argmax(1)))
    if diff >= CHECK_TOLERANCE or flips:
        raise RuntimeError(f"exported network disagrees with torch on {len(images)} test images: "
                           f"max |diff| {diff:.3g} (tolerance {CHECK_TOLERANCE}), "
                           f"{flips} argmax differences")
    return diff


def count_correct(network: Network, images: np.ndarray, labels: np.ndarray) -> int:
    """Number of images whose evsim.forward argmax equals the label."""
    return int(np.sum(evsim.forward(network, images).argmax(1) == labels))


def model_card(info: dict) -> str:
    """The human-readable Markdown card for the metadata ``info``."""
    recipe = info["recipe"]
    return f"""# {info['name']}

{info['description']}

| | |
|---|---|
| Architecture | {info['architecture']} |
| Input | {info['input']} |
| Parameters | {info['parameters']} |
| ANN test accuracy (10 000 images) | {info['test_accuracy']:.4f} ({info['test_correct']}/10000) |
| ANN bundled-sample accuracy (first 1000 test images) | {info['sample_accuracy']:.3f} ({info['sample_correct']}/1000) |
| Training time | {info['training_seconds']:.0f} s ({info['script_seconds']:.0f} s for the whole script) |
| Machine | {info['machine']['cpu_cores']} CPU cores, {info['machine']['torch_threads']} torch threads, {info['machine']['platform']} |
| Date | {info['date']} |

Recipe: {recipe['optimizer']}, lr {recipe['lr']}, {recipe['schedule']}, {recipe['epochs']} epochs,
batch {recipe['batch_size']}, weight decay {recipe['weight_decay']}, seed {recipe['seed']},
augmentation: {recipe['augmentation']}, torch {recipe['torch_version']}, training images
{recipe['train_images']}.

BatchNorm layers are stored unfolded with their running statistics. Load with
`evsim.models.load_model("{info['name']}")`; metadata in `{info['name']}.json`.

Retrain (needs the Fashion-MNIST IDX files, e.g. `apt-get install dataset-fashion-mnist`):

    {info['retrain']}
"""


def main() -> None:
    script_start = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"training epochs (default {EPOCHS}; 1 with --smoke)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"output directory (default {DEFAULT_OUT}; a temporary one with "
                             "--smoke)")
    parser.add_argument("--smoke", action="store_true",
                        help=f"quick check: 1 epoch on {SMOKE_IMAGES} training images")
    args = parser.parse_args()
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    epochs = args.epochs or (1 if args.smoke else EPOCHS)
    out = args.out or (Path(tempfile.mkdtemp(prefix="evsim_smoke_")) if args.smoke
                       else DEFAULT_OUT)

    torch.set_num_threads(THREADS)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)

    train_images, train_labels = load_fashion_mnist(
        "train", limit=SMOKE_IMAGES if args.smoke else None)
    test_images, test_labels = load_fashion_mnist("test")
    sample_images, sample_labels = load_bundled_sample("test")

    model = build_torch_model()
    train_start = time.perf_counter()
    train(model, train_images, train_labels, epochs)
    training_seconds = time.perf_counter() - train_start

    network = export(model)
    diff = check_export(model, network, test_images[:CHECK_IMAGES])
    print(f"export check: max |torch - evsim| = {diff:.2e} on {CHECK_IMAGES} test images")
    test_correct = count_correct(network, test_images, test_labels)
    sample_correct = count_correct(network, sample_images, sample_labels)
    print(f"ANN accuracy: test {test_correct / len(test_labels):.4f}, "
          f"bundled sample {sample_correct / len(sample_labels):.3f}")

    info = {
        "name": MODEL_NAME,
        "description": "Small CNN for Fashion-MNIST with BatchNorm, ReLU and average pooling; "
                       "evsim's bundled default model for conversion to a spiking network.",
        "architecture": ARCHITECTURE,
        "input": "float32 (N, 1, 28, 28) in [0, 1], as evsim.data returns it (no normalisation)",
        "layers": [node.name for node in network.nodes[1:]],
        "classes": list(CLASS_NAMES),
        "parameters": sum(a.size for n in network for a in n.layer.arrays().values()),
        "recipe": {
            "optimizer": "Adam",
            "lr": LR,
            "schedule": "OneCycleLR (cosine, max lr at 30 %, per batch)",
            "epochs": epochs,
            "batch_size": BATCH_SIZE,
            "weight_decay": WEIGHT_DECAY,
            "augmentation": "random horizontal flip",
            "seed": SEED,
            "train_images": len(train_images),
            "torch_version": torch.__version__,
        },
        "training_seconds": round(training_seconds, 1),
        "script_seconds": round(time.perf_counter() - script_start, 1),
        "machine": {"cpu_cores": os.cpu_count(), "torch_threads": THREADS,
                    "platform": f"{platform.system()} {platform.machine()}"},
        "test_accuracy": test_correct / len(test_labels),
        "test_correct": test_correct,
        "sample_accuracy": sample_correct / len(sample_labels),
        "sample_correct": sample_correct,
        "export_max_abs_diff": diff,
        "date": datetime.date.today().isoformat(),
        "retrain": "PYTHONPATH=. python examples/train_default_model.py"
                   + (" --smoke" if args.smoke else "")
                   + (f" --epochs {epochs}" if epochs != (1 if args.smoke else EPOCHS) else ""),
    }
    out.mkdir(parents=True, exist_ok=True)
    evsim.save(network, out / f"{MODEL_NAME}.npz")
    (out / f"{MODEL_NAME}.json").write_text(json.dumps(info, indent=2) + "\n")
    (out / f"{MODEL_NAME}.md").write_text(model_card(info))
    print(f"wrote {out / MODEL_NAME}.npz/.json/.md; training {training_seconds:.0f} s, "
          f"whole script {time.perf_counter() - script_start:.0f} s")


if __name__ == "__main__":
    main()
