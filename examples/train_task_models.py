"""Train the bundled segmentation and detection models on Fashion-MNIST scenes, and bundle them.

Two small fully convolutional networks for 64x64 scenes (:mod:`evsim.data.scenes`:
one to four Fashion-MNIST items pasted on a black canvas), each in a plain-ReLU
variant (for the classic conversions, percentile, channel-wise, SpiCalib) and a
QCFS variant (L = 4, AvgPool, for QCFS and OPI at low T):

- ``unet_relu`` / ``unet_qcfs``: a U-Net-style segmenter, 11 logits per pixel
  (background and the 10 classes), an encoder of two average-pooled stages, a
  ConvTranspose2d and a nearest Upsample on the way up, each followed by a
  Concat skip;
- ``centernet_relu`` / ``centernet_qcfs``: a CenterNet-style one-stage detector
  at stride 4, 12 output channels on a 16x16 grid: channels 0..9 are the class
  heatmaps' logits (the sigmoid is applied by decoding, not in the network),
  channels 10, 11 the box width and height in input pixels; an item's centre is
  the cell ``floor(c / 4)`` of its box centre ``c``.

Training scenes come from the training split (items 0..54,999), held-out scenes
(which pick the epoch kept) from items 55,000..59,999, test scenes from the test
split; all seeded. Adam with a one-cycle schedule, batch 64, one thread. Each model
is written to ``evsim/models/<name>.npz`` with ``<name>.json`` (recipe, history,
ANN test metric) and ``<name>.md``. From the repository root::

    python examples/train_task_models.py --model unet_relu
    python examples/train_task_models.py --time-batches 20   # s/epoch per model
    python examples/train_task_models.py --smoke             # CI: tiny, temporary output
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
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
from evsim.data import load_fashion_mnist
from evsim.data.scenes import make_scenes
from evsim.io.torch import from_torch
from evsim.training import QCFS

OUT = Path(__file__).resolve().parents[1] / "evsim" / "models"
SIZE = 64  # scene side, pixels
CLASSES = 10
STRIDE = 4  # the detector's output stride
TRAIN_END = 55_000
SEED = 0
BATCH = 64
LR = 3e-3
SIGMA = 1.0  # std of the Gaussian around each centre on the heatmap, in cells


def _act(kind: str) -> nn.Module:
    return nn.ReLU() if kind == "relu" else QCFS(4, 8.0)


class _Named(nn.Module):
    """Registers conv<i>, bn<i> and relu<i> (qcfs<i>) so that evsim's layer names read."""

    def _block(self, name: str, cin: int, cout: int, transposed: bool = False) -> None:
        """``name`` is ``<i>`` (a 3x3 convolution) or ``up<i>`` (a 2x2 stride-2 transposed one)."""
        prefix, i = ("up", name[2:]) if transposed else ("", name)
        setattr(self, f"{prefix}conv{i}",
                nn.ConvTranspose2d(cin, cout, 2, stride=2, bias=False) if transposed else
                nn.Conv2d(cin, cout, 3, padding=1, bias=False))
        setattr(self, f"{prefix}bn{i}", nn.BatchNorm2d(cout))
        setattr(self, f"{prefix}{self.kind}{i}", _act(self.kind))

    def _run(self, name: str, x: torch.Tensor) -> torch.Tensor:
        prefix, i = ("up", name[2:]) if name.startswith("up") else ("", name)
        for part in ("conv", "bn", self.kind):
            x = getattr(self, f"{prefix}{part}{i}")(x)
        return x


class UNet(_Named):
    """conv1 16@64² - pool1 - conv2 32@32² - pool2 - conv3 32@16² - upconv1 (ConvTranspose
    2x2, stride 2) 32@32² ‖ conv2 - conv4 16@32² - up (nearest) 64² ‖ conv1 - conv5 16@64²
    - head (1x1) 11 logits per pixel; BatchNorm after every (transposed) convolution."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self._block("1", 1, 16)
        self.pool1 = nn.AvgPool2d(2)
        self._block("2", 16, 32)
        self.pool2 = nn.AvgPool2d(2)
        self._block("3", 32, 32)
        self._block("up1", 32, 32, transposed=True)
        self._block("4", 64, 16)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self._block("5", 32, 16)
        self.head = nn.Conv2d(16, CLASSES + 1, 1)

    def forward(self, x):
        e1 = self._run("1", x)
        e2 = self._run("2", self.pool1(e1))
        m = self._run("up1", self._run("3", self.pool2(e2)))
        d2 = self._run("4", torch.cat([m, e2], 1))
        return self.head(self._run("5", torch.cat([self.up(d2), e1], 1)))


class CenterNet(_Named):
    """conv1 16@64² - pool1 - conv2 32@32² - pool2 - conv3 32@16² - pool3 - conv4 64@8²
    - upconv1 (ConvTranspose 2x2, stride 2) 32@16² ‖ conv3 - conv5 32@16² - head (1x1):
    10 heatmap logits + width, height per cell; BatchNorm after every convolution."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self._block("1", 1, 16)
        self.pool1 = nn.AvgPool2d(2)
        self._block("2", 16, 32)
        self.pool2 = nn.AvgPool2d(2)
        self._block("3", 32, 32)
        self.pool3 = nn.AvgPool2d(2)
        self._block("4", 32, 64)
        self._block("up1", 64, 32, transposed=True)
        self._block("5", 64, 32)
        self.head = nn.Conv2d(32, CLASSES + 2, 1)

    def forward(self, x):
        s = self._run("3", self.pool2(self._run("2", self.pool1(self._run("1", x)))))
        deep = self._run("up1", self._run("4", self.pool3(s)))
        return self.head(self._run("5", torch.cat([deep, s], 1)))


#: name -> (description, builder, epochs)
MODELS = {
    "unet_relu": ("U-Net-style segmenter, 11 classes per pixel, ReLU",
                  lambda: UNet("relu"), 8),
    "unet_qcfs": ("U-Net-style segmenter, 11 classes per pixel, QCFS L = 4",
                  lambda: UNet("qcfs"), 8),
    "centernet_relu": ("CenterNet-style detector, stride 4, 10 heatmaps + box size, ReLU",
                       lambda: CenterNet("relu"), 12),
    "centernet_qcfs": ("CenterNet-style detector, stride 4, 10 heatmaps + box size, QCFS L = 4",
                       lambda: CenterNet("qcfs"), 12),
}


def detection_targets(boxes, labels, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heatmaps (N, 10, 16, 16), sizes (N, 2, 16, 16) and centre masks (N, 16, 16).

    Each box puts a Gaussian (std :data:`SIGMA` cells, peak 1 at its centre cell)
    on its class's heatmap (the maximum where two overlap) and its width and
    height (pixels) at its centre cell.
    """
    grid = SIZE // STRIDE
    heat = np.zeros((n, CLASSES, grid, grid), np.float32)
    size = np.zeros((n, 2, grid, grid), np.float32)
    centre = np.zeros((n, grid, grid), np.float32)
    cells = np.arange(grid)
    for i in range(n):
        for (x0, y0, x1, y1), c in zip(boxes[i], labels[i]):
            cx = min(int((x0 + x1) / 2 // STRIDE), grid - 1)
            cy = min(int((y0 + y1) / 2 // STRIDE), grid - 1)
            g = np.exp(-((cells[None, :] - cx) ** 2 + (cells[:, None] - cy) ** 2)
                       / (2 * SIGMA ** 2))
            heat[i, c] = np.maximum(heat[i, c], g)
            size[i, :, cy, cx] = (x1 - x0, y1 - y0)
            centre[i, cy, cx] = 1.0
    return heat, size, centre


def focal_loss(logits: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (α = 2, β = 4), per object."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    positive = heat.eq(1).float()
    pos = -torch.log(p) * (1 - p) ** 2 * positive
    neg = -torch.log(1 - p) * p ** 2 * (1 - heat) ** 4 * (1 - positive)
    return (pos.sum() + neg.sum()) / positive.sum().clamp(min=1)


def scene_data(split: str, first: int, last: int, n: int, seed: int) -> dict:
    """``n`` seeded scenes from items ``first..last - 1`` of a Fashion-MNIST split."""
    images, labels = load_fashion_mnist(split)
    scenes = make_scenes(images[first:last], labels[first:last], n, size=SIZE, seed=seed)
    heat, size, centre = detection_targets(scenes.boxes, scenes.box_labels, n)
    return {"x": scenes.images, "masks": scenes.masks.astype(np.int64), "heat": heat,
            "size": size, "centre": centre, "scenes": scenes}


def task_loss(name: str, out: torch.Tensor, batch: dict) -> torch.Tensor:
    if name.startswith("unet"):
        return F.cross_entropy(out, batch["masks"])
    centre = batch["centre"][:, None]
    size_loss = (torch.abs(out[:, CLASSES:] - batch["size"]) * centre).sum()
    return focal_loss(out[:, :CLASSES], batch["heat"]) + 0.1 * size_loss / centre.sum().clamp(
        min=1)


def _tensors(data: dict, index) -> dict:
    return {k: torch.from_numpy(data[k][index]) for k in ("x", "masks", "heat", "size", "centre")}


@torch.no_grad()
def held_out_score(name: str, model: nn.Module, data: dict) -> float:
    """Held-out mIoU (segmenter) or the negative loss (detector) of the ANN in eval mode."""
    model.eval()
    outs = [model(torch.from_numpy(data["x"][s:s + 256])) for s in range(0, len(data["x"]), 256)]
    out = torch.cat(outs)
    if name.startswith("unet"):
        return mean_iou(out.argmax(1).numpy(), data["masks"])
    return -float(task_loss(name, out, _tensors(data, slice(None))))


def mean_iou(pred: np.ndarray, truth: np.ndarray, classes: int = CLASSES + 1) -> float:
    """Mean over the classes present in ``truth`` or ``pred`` of |pred ∩ truth| / |pred ∪ truth|."""
    ious = []
    for c in range(classes):
        p, t = pred == c, truth == c
        union = np.sum(p | t)
        if union:
            ious.append(np.sum(p & t) / union)
    return float(np.mean(ious))


def train(name: str, epochs: int, train_data: dict, held_out: dict,
          time_batches: int | None = None) -> tuple[nn.Module, dict]:
    """Train ``name``; return the kept epoch's model (eval mode) and its card's fields.

    With ``time_batches``, run 5 + that many batches and return seconds per batch instead.
    """
    description, build, _ = MODELS[name]
    torch.manual_seed(SEED)
    model = build()
    n = len(train_data["x"])
    steps = epochs * math.ceil(n / BATCH)
    optimiser = torch.optim.Adam(model.parameters(), lr=LR, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, LR, total_steps=steps)
    generator = torch.Generator().manual_seed(SEED)
    best, best_state, history, kept = -math.inf, None, [], 0
    for epoch in range(epochs):
        model.train()
        durations = []
        for i, index in enumerate(torch.randperm(n, generator=generator).split(BATCH)):
            if time_batches is not None and i == 5 + time_batches:
                return model, {"seconds_per_batch": float(np.median(durations[5:])),
                               "batches_per_epoch": math.ceil(n / BATCH)}
            start = time.perf_counter()
            batch = _tensors(train_data, index.numpy())
            optimiser.zero_grad()
            loss = task_loss(name, model(batch["x"]), batch)
            loss.backward()
            optimiser.step()
            schedule.step()
            durations.append(time.perf_counter() - start)
        score = round(held_out_score(name, model, held_out), 4)
        key = "held_out_miou" if name.startswith("unet") else "held_out_loss"
        entry = {"epoch": epoch + 1, "loss": round(float(loss.detach()), 4),
                 key: score if name.startswith("unet") else -score}
        if score > best:
            best, best_state, kept = score, copy.deepcopy(model.state_dict()), epoch + 1
        history.append(entry)
        print(f"  {name} epoch {epoch + 1}/{epochs}: {entry}", flush=True)
    model.load_state_dict(best_state)
    model.eval()
    recipe = {"optimizer": "Adam", "lr": LR, "schedule": "OneCycleLR per batch",
              "weight_decay": 1e-4, "augmentation": "none (every scene is new)",
              "epochs": epochs, "batch_size": BATCH, "seed": SEED, "train_scenes": n,
              "train_items": f"training images 0..{TRAIN_END - 1}",
              "held_out": f"{len(held_out['x'])} scenes of training images "
                          f"{TRAIN_END}..59999",
              "selection": ("held-out mIoU" if name.startswith("unet") else
                            "held-out loss (focal heatmap + 0.1 L1 size)"),
              "kept_epoch": kept, "torch_version": torch.__version__}
    if name.startswith("centernet"):
        recipe["targets"] = (f"Gaussian heatmaps (std {SIGMA} cell) at each box centre's cell, "
                             "width and height in pixels there")
    return model, {"description": description, "recipe": recipe, "history": history}
