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
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import evsim
from evsim.data import load_fashion_mnist
from evsim.data.scenes import fashion_mnist_scenes, make_scenes
from evsim.analysis import COCO_IOU_THRESHOLDS, average_precision, segmentation_scores
from evsim.io.torch import from_torch
from evsim.tasks import CenterNetHead, decode_detections, decode_masks
from evsim.training import QCFS

OUT = Path(__file__).resolve().parents[1] / "evsim" / "models"
SIZE = 64  # scene side, pixels
CLASSES = 10
STRIDE = 4  # the detector's output stride
TRAIN_END = 55_000
SEED = 0
BATCH = 64
LR = 3e-3
TRAIN_SCENES = 10_000
HELD_OUT = 500  # held-out scenes (items 55,000..59,999) that pick the epoch
TEST = 1000  # test scenes (test split, seed 0: the first 300 are the bundled sample)
HEAD = CenterNetHead(classes=CLASSES, stride=STRIDE, offset=False)  # the detector's readout
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
                  lambda: UNet("relu"), 5),
    "unet_qcfs": ("U-Net-style segmenter, 11 classes per pixel, QCFS L = 4",
                  lambda: UNet("qcfs"), 5),
    "centernet_relu": ("CenterNet-style detector, stride 4, 10 heatmaps + box size, ReLU",
                       lambda: CenterNet("relu"), 8),
    "centernet_qcfs": ("CenterNet-style detector, stride 4, 10 heatmaps + box size, QCFS L = 4",
                       lambda: CenterNet("qcfs"), 8),
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
    scenes = make_scenes(images[first:last], labels[first:last], n, size=SIZE, seed=seed,
                         source=f"Fashion-MNIST {split} items {first}..{last - 1}")
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
        return segmentation_scores(out.argmax(1).numpy(), data["masks"], CLASSES + 1).miou
    return -float(task_loss(name, out, _tensors(data, slice(None))))


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


class _QCFSForExport(nn.Module):
    """QCFS written with plain operators (Floor, Clip, Mul, Div), which ONNX has."""

    def __init__(self, qcfs: QCFS):
        super().__init__()
        self.levels, self.shift, self.lam = qcfs.levels, qcfs.shift, float(qcfs.lam.detach())

    def forward(self, x):
        q = torch.clamp(torch.floor(x * (self.levels / self.lam) + self.shift), 0, self.levels)
        return q * (self.lam / self.levels)


def export_onnx(model: nn.Module, path: Path) -> None:
    """Write ``model`` (eval mode) as ONNX, opset 17, batch dimension dynamic."""
    model = copy.deepcopy(model).eval()
    for name, module in list(model.named_children()):
        if isinstance(module, QCFS):
            setattr(model, name, _QCFSForExport(module))
    torch.onnx.export(model, (torch.zeros(1, 1, SIZE, SIZE),), str(path), dynamo=False,
                      input_names=["input"], output_names=["output"], opset_version=17,
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})


def evaluate(name: str, network: evsim.Network, test) -> dict:
    """The ANN's test metrics with evsim's forward pass and decoding (:mod:`evsim.tasks`):
    mIoU and pixel accuracy (segmenter), mAP@.5 and mAP@[.5:.95] (detector)."""
    out = np.concatenate([evsim.forward(network, test.images[s:s + 250])
                          for s in range(0, len(test.images), 250)])
    if name.startswith("unet"):
        scores = segmentation_scores(decode_masks(out), test.masks, CLASSES + 1)
        return {"test_miou": round(scores.miou, 4),
                "test_pixel_accuracy": round(scores.pixel_accuracy, 4),
                "test_scenes": len(test.images)}
    found = decode_detections(out, HEAD)
    ap = average_precision(found, test.boxes, test.box_labels,
                           iou_thresholds=COCO_IOU_THRESHOLDS)
    return {"test_map50": round(float(np.nanmean(ap[:, 0])), 4),
            "test_coco_map": round(float(np.nanmean(ap)), 4), "test_scenes": len(test.images)}


def card(name: str, info: dict, layers: list[str]) -> str:
    metric = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in info.items()
                       if k.startswith("test"))
    recipe = ", ".join(f"{k} {v}" for k, v in info["recipe"].items())
    kept = next(e for e in info["history"] if e["epoch"] == info["recipe"]["kept_epoch"])
    kept = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in kept.items() if k != "epoch")
    cpu = (f" ({info['training_cpu_seconds']:.0f} s CPU)" if "training_cpu_seconds" in info
           else "")
    return (f"# {name}\n\n{info['description']}.\n\n- ANN {metric}\n- output: "
            f"{info['output']}\n- kept epoch {info['recipe']['kept_epoch']} of "
            f"{info['recipe']['epochs']}: {kept}\n- layers: {', '.join(layers)}\n"
            f"- parameters: {info['parameters']}\n- training time: "
            f"{info['training_seconds']:.0f} s wall clock{cpu} on {info['machine']} "
            f"({info['date']})\n"
            f"- recipe: {recipe}\n\nRetrain: "
            f"`python examples/train_task_models.py --model {name}`\n")


OUTPUTS = {
    "unet": "(11, 64, 64): logits per pixel, channel 0 background, channel 1 + c class c; "
            "the mask is their argmax",
    "centernet": f"(12, 16, 16) at stride {STRIDE}: channels 0..9 the class heatmaps' logits "
                 "(decoding applies the sigmoid), channels 10, 11 the box width and height "
                 "in input pixels at the box centre's cell floor(centre / 4)",
}


def bundle(name: str, model: nn.Module, info: dict, seconds: float, threads: int, test,
           out: Path) -> None:
    """Check evsim's import against torch and ONNX Runtime, then write the model's files."""
    import onnxruntime

    network = from_torch(model, (1, SIZE, SIZE))
    export_onnx(model, out / f"{name}.onnx")
    check = test.images[:16]
    session = onnxruntime.InferenceSession(str(out / f"{name}.onnx"))
    reference = session.run(None, {"input": check})[0]
    with torch.no_grad():
        torch_out = model(torch.from_numpy(check)).numpy()
    got = evsim.forward(network, check)
    # A quantised activation turns a last-bit float difference at a level boundary into a
    # whole level, so compare the decoded argmax of most outputs rather than every value.
    for what, ref in (("ONNX Runtime", reference), ("torch", torch_out)):
        if np.mean(got.argmax(1) == ref.argmax(1)) < 0.99:
            raise RuntimeError(f"{name}: evsim.forward differs from {what}")
    info.update(name=name, output=OUTPUTS[name.split("_")[0]],
                parameters=int(sum(p.numel() for p in model.parameters())),
                training_seconds=round(seconds, 1), date=str(datetime.date.today()),
                machine=f"{platform.machine()} CPU, {threads} torch thread(s), shared",
                **evaluate(name, network, test))
    evsim.save(network, out / f"{name}.npz")
    (out / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
    (out / f"{name}.md").write_text(card(name, info, [n.name for n in network.nodes[1:]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all", choices=["all", *MODELS])
    parser.add_argument("--epochs", type=int, default=None, help="override the model's epochs")
    parser.add_argument("--scenes", type=int, default=TRAIN_SCENES, help="training scenes")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--time-batches", type=int, default=None, metavar="N",
                        help="only time N training batches per model and print s/epoch")
    parser.add_argument("--evaluate", action="store_true",
                        help="only measure the written models again on the test scenes and "
                        "rewrite their .json and .md")
    parser.add_argument("--smoke", action="store_true",
                        help="1 epoch on 256 scenes into a temporary directory")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    n_train, n_held, n_test = (256, 64, 64) if args.smoke else (args.scenes, HELD_OUT, TEST)
    test = fashion_mnist_scenes("test", n_test, size=SIZE, seed=0)
    names = list(MODELS) if args.model == "all" else [args.model]
    out = args.out or (Path(tempfile.mkdtemp(prefix="evsim-models-")) if args.smoke else OUT)
    out.mkdir(parents=True, exist_ok=True)
    if args.evaluate:
        for name in names:
            info = json.loads((out / f"{name}.json").read_text())
            info = {k: v for k, v in info.items() if not k.startswith("test")}
            network = evsim.load(out / f"{name}.npz")
            info.update(evaluate(name, network, test))
            (out / f"{name}.json").write_text(json.dumps(info, indent=2) + "\n")
            (out / f"{name}.md").write_text(card(name, info, [n.name for n in network.nodes[1:]]))
            print(name, {k: v for k, v in info.items() if k.startswith("test")}, flush=True)
        return
    train_data = scene_data("train", 0, TRAIN_END, n_train, SEED + 1)
    held_out = scene_data("train", TRAIN_END, 60_000, n_held, SEED + 2)
    for name in names:
        epochs = 1 if args.smoke else (args.epochs or MODELS[name][2])
        if args.time_batches:
            _, timing = train(name, epochs, train_data, held_out, args.time_batches)
            per_epoch = timing["seconds_per_batch"] * timing["batches_per_epoch"]
            print(f"{name}: {per_epoch:.0f} s per epoch, {epochs} epochs "
                  f"{epochs * per_epoch / 60:.1f} min on {args.threads} thread(s)", flush=True)
            continue
        start, cpu = time.perf_counter(), time.process_time()
        model, info = train(name, epochs, train_data, held_out)
        seconds = time.perf_counter() - start
        info["training_cpu_seconds"] = round(time.process_time() - cpu, 1)
        bundle(name, model, info, seconds, args.threads, test, out)
        print(f"{name}: {seconds:.0f} s, " + ", ".join(f"{k} {v}" for k, v in info.items()
                                                      if k.startswith("test")), flush=True)


if __name__ == "__main__":
    main()
