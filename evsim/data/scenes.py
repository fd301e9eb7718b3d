"""Fashion-MNIST scenes: real items pasted on a larger canvas, for segmentation and detection.

A scene is a ``size × size`` black canvas on which a few Fashion-MNIST items
(28 × 28) are pasted at random positions, possibly overlapping. Each scene has a
per-pixel class mask and one box per item. The rules (``docs/datasets.md`` has
the same list) are:

1. **Item count.** Each scene draws ``k`` uniformly from ``items = (lo, hi)``,
   both ends included, and then tries to place ``k`` items one after another.
2. **An item.** Each item is a source image drawn uniformly (with replacement)
   from the given images; its class is the source's label. Its *shape* is the
   set of its pixels brighter than :data:`ITEM_CUTOFF` (intensity > 0.1 on the
   [0, 1] scale, i.e. > 25.5 of 255). Only the shape is pasted: the item's
   fainter pixels are transparent and leave the canvas as it was.
3. **Placement.** The item's 28 × 28 square is placed with its top-left corner
   drawn uniformly from ``0 .. size − 28`` in each axis (always fully inside the
   canvas). A later item covers earlier ones: in its shape, the canvas takes the
   item's intensity and the mask its class.
4. **Occlusion limit.** A placement is rejected if it would leave any earlier item
   with fewer than ``min_visible`` (default 0.5) of its shape's pixels visible, or
   with none at all (which matters for ``min_visible=0``); up
   to ``tries`` (default 10) positions are drawn, and an item that fits none of
   them is **dropped** (it leaves no pixel, no mask and no box). So every
   non-background mask pixel belongs to exactly one boxed item, and a scene may
   hold fewer than ``k`` items (never fewer than one when ``lo ≥ 1``, since the
   first item always fits).
5. **Mask.** ``masks[i, y, x]`` is 0 for background and ``1 + class`` of the
   topmost item whose shape covers the pixel (classes 0..9 → mask values 1..10).
   Hence ``masks > 0`` exactly where ``images > 0``.
6. **Box.** Each item's box is the half-open pixel extent of its *visible*
   pixels: ``(x0, y0, x1, y1)`` with ``x0 = min column``, ``x1 = max column + 1``
   (likewise for rows), in pixels of the canvas; ``x`` is the column.
7. **Determinism.** All randomness comes from ``numpy.random.default_rng(seed)``,
   drawn scene by scene and item by item in the order above, so a seed and the
   same source images give the same scenes on every platform.

Nothing is downloaded: :func:`fashion_mnist_scenes` reads the IDX files of
Debian's ``dataset-fashion-mnist`` package (see :mod:`evsim.data.fashion_mnist`);
:func:`evsim.data.bundled_scenes` loads a small sample that ships with evsim.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .fashion_mnist import CLASS_NAMES, check_split, load_fashion_mnist
from ..errors import EvsimFileError, EvsimTypeError, EvsimValueError

__all__ = [
    "ITEM_CUTOFF",
    "ITEM_SIZE",
    "MASK_CLASS_NAMES",
    "Scenes",
    "fashion_mnist_scenes",
    "load_scenes",
    "make_scenes",
    "save_scenes",
]

#: An item pixel belongs to the item's shape when its intensity (on [0, 1]) exceeds this.
ITEM_CUTOFF = 0.1

#: Side of a Fashion-MNIST item, in pixels.
ITEM_SIZE = 28

#: Mask value ``v`` names ``MASK_CLASS_NAMES[v]``: 0 is background, ``1 + c`` is class ``c``.
MASK_CLASS_NAMES: tuple[str, ...] = ("background",) + CLASS_NAMES

_N_CLASSES = len(CLASS_NAMES)


@dataclass(frozen=True, eq=False)
class Scenes:
    """Scenes with their segmentation masks and detection boxes (validated when made).

    Attributes
    ----------
    images:
        float32 ``(N, 1, H, W)``, intensities in [0, 1].
    masks:
        uint8 ``(N, H, W)``: 0 background, ``1 + class`` (1..10) for an item's pixel.
    boxes:
        ``N`` float32 arrays ``(K_i, 4)``, one row per item: ``(x0, y0, x1, y1)``,
        the half-open pixel extent of the item's visible pixels (``x`` = column).
    box_labels:
        ``N`` int64 arrays ``(K_i,)``: the class (0..9) of each box.
    item_sources:
        ``N`` int64 arrays ``(K_i,)``: the index, in the source images, of each
        box's item; ``None`` when unknown.
    seed:
        The generator's seed, ``None`` when unknown.
    source:
        Where the items came from, e.g. ``"Fashion-MNIST test"``.
    """

    images: np.ndarray
    masks: np.ndarray
    boxes: tuple[np.ndarray, ...]
    box_labels: tuple[np.ndarray, ...]
    item_sources: tuple[np.ndarray, ...] | None = None
    seed: int | None = None
    source: str = ""

    def __post_init__(self) -> None:
        _check_images_and_masks(self.images, self.masks)
        n, _, height, width = self.images.shape
        object.__setattr__(self, "boxes", _per_scene(self.boxes, "boxes", n))
        object.__setattr__(self, "box_labels", _per_scene(self.box_labels, "box_labels", n))
        if self.item_sources is not None:
            sources = _per_scene(self.item_sources, "item_sources", n)
            object.__setattr__(self, "item_sources", sources)
        for i in range(n):
            _check_scene_boxes(self, i, height, width)
        if self.seed is not None and (isinstance(self.seed, bool)
                                      or not isinstance(self.seed, (int, np.integer))):
            raise EvsimTypeError(f"Scenes: seed must be an int or None, got {self.seed!r}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``, the canvas size in pixels."""
        return self.images.shape[2], self.images.shape[3]

    def take(self, indices: Sequence[int] | np.ndarray | slice) -> Scenes:
        """The scenes at ``indices`` (a slice or integer indices), as new ``Scenes``."""
        picked = np.arange(len(self))[indices]
        return Scenes(
            images=self.images[picked],
            masks=self.masks[picked],
            boxes=tuple(self.boxes[i] for i in picked),
            box_labels=tuple(self.box_labels[i] for i in picked),
            item_sources=(None if self.item_sources is None
                          else tuple(self.item_sources[i] for i in picked)),
            seed=self.seed,
            source=self.source,
        )


def _check_images_and_masks(images: object, masks: object) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.float32 or images.ndim != 4 \
            or images.shape[1] != 1:
        raise EvsimValueError(
            "Scenes: images must be a float32 array (N, 1, H, W), got "
            f"{getattr(images, 'dtype', type(images).__name__)} {np.shape(images)}")
    if images.size and not (np.all(images >= 0) and np.all(images <= 1)):
        raise EvsimValueError("Scenes: images must lie in [0, 1] (NaN is not allowed)")
    n, _, height, width = images.shape
    if not isinstance(masks, np.ndarray) or masks.dtype != np.uint8 \
            or masks.shape != (n, height, width):
        raise EvsimValueError(
            f"Scenes: masks must be a uint8 array of shape {(n, height, width)} (one per "
            f"image), got {getattr(masks, 'dtype', type(masks).__name__)} {np.shape(masks)}")
    if masks.size and masks.max() > _N_CLASSES:
        raise EvsimValueError(
            f"Scenes: mask value {masks.max()} out of range 0..{_N_CLASSES} "
            "(0 background, 1 + class for items)")


def _per_scene(arrays: object, name: str, n: int) -> tuple[np.ndarray, ...]:
    if isinstance(arrays, np.ndarray) or not isinstance(arrays, Sequence):
        raise EvsimTypeError(f"Scenes: {name} must be a list of {n} arrays (one per scene), "
                             f"got {type(arrays).__name__}")
    if len(arrays) != n:
        raise EvsimValueError(f"Scenes: {name} has {len(arrays)} entries for {n} scenes")
    return tuple(arrays)


def _check_scene_boxes(scenes: Scenes, i: int, height: int, width: int) -> None:
    boxes, labels = scenes.boxes[i], scenes.box_labels[i]
    if not isinstance(boxes, np.ndarray) or boxes.dtype != np.float32 or boxes.ndim != 2 \
            or boxes.shape[1] != 4:
        raise EvsimValueError(f"Scenes: boxes[{i}] must be float32 (K, 4), got "
                              f"{getattr(boxes, 'dtype', type(boxes).__name__)} "
                              f"{np.shape(boxes)}")
    k = len(boxes)
    for name, values in (("box_labels", labels),) + (
            (("item_sources", scenes.item_sources[i]),) if scenes.item_sources else ()):
        if not isinstance(values, np.ndarray) or values.dtype != np.int64 \
                or values.shape != (k,):
            raise EvsimValueError(f"Scenes: {name}[{i}] must be int64 of shape ({k},) like "
                                  f"boxes[{i}], got {getattr(values, 'dtype', '?')} "
                                  f"{np.shape(values)}")
    if k and (labels.min() < 0 or labels.max() >= _N_CLASSES):
        raise EvsimValueError(f"Scenes: box_labels[{i}] out of range 0..{_N_CLASSES - 1}")
    x0, y0, x1, y1 = boxes.T
    if k and not (np.all(x0 >= 0) and np.all(y0 >= 0) and np.all(x1 > x0) and np.all(y1 > y0)
                  and np.all(x1 <= width) and np.all(y1 <= height)):
        raise EvsimValueError(f"Scenes: boxes[{i}] must satisfy 0 <= x0 < x1 <= {width} and "
                              f"0 <= y0 < y1 <= {height} (x0, y0, x1, y1 in pixels)")


def _check_generator_args(images: object, labels: object, n: int, size: int,
                          items: tuple[int, int], min_visible: float, tries: int,
                          seed: int) -> None:
    if not isinstance(images, np.ndarray) or images.ndim != 4 \
            or images.shape[1:] != (1, ITEM_SIZE, ITEM_SIZE):
        raise EvsimValueError(f"make_scenes: images must be (N, 1, {ITEM_SIZE}, {ITEM_SIZE}) "
                              f"as the Fashion-MNIST loaders return, got {np.shape(images)}")
    if len(images) == 0:
        raise EvsimValueError("make_scenes: images is empty; give at least one item")
    if not isinstance(labels, np.ndarray) or labels.shape != (len(images),) \
            or not np.issubdtype(labels.dtype, np.integer):
        raise EvsimValueError(f"make_scenes: labels must be integers of shape ({len(images)},),"
                              f" got {getattr(labels, 'dtype', type(labels).__name__)} "
                              f"{np.shape(labels)}")
    if labels.min() < 0 or labels.max() >= _N_CLASSES:
        raise EvsimValueError(f"make_scenes: labels must lie in 0..{_N_CLASSES - 1}")
    for name, value, low in (("n", n, 0), ("size", size, ITEM_SIZE), ("tries", tries, 1),
                             ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise EvsimValueError(f"make_scenes: {name} must be an int >= {low}, got {value!r}")
    if (len(items) != 2 or not all(isinstance(v, (int, np.integer)) for v in items)
            or not 1 <= items[0] <= items[1]):
        raise EvsimValueError(f"make_scenes: items must be (lo, hi) with 1 <= lo <= hi, got "
                              f"{items!r}")
    if not 0.0 <= min_visible <= 1.0:
        raise EvsimValueError(f"make_scenes: min_visible must lie in [0, 1], got {min_visible}")


def _place_items(rng: np.random.Generator, images: np.ndarray, size: int,
                 items: tuple[int, int], min_visible: float, tries: int
                 ) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """One scene: the canvas (H, W), the owner map (item number or -1) and the sources."""
    canvas = np.zeros((size, size), np.float32)
    owner = np.full((size, size), -1, np.int64)
    sources: list[int] = []
    shape_pixels: list[int] = []
    for _ in range(int(rng.integers(items[0], items[1] + 1))):
        source = int(rng.integers(len(images)))
        item = images[source, 0]
        shape = item > ITEM_CUTOFF
        if not shape.any():
            continue  # an item with no pixel above the cutoff has nothing to show
        visible = np.bincount(owner[owner >= 0], minlength=len(sources))
        for _ in range(tries):
            y, x = (int(v) for v in rng.integers(0, size - ITEM_SIZE + 1, size=2))
            window = owner[y:y + ITEM_SIZE, x:x + ITEM_SIZE]
            covered = np.bincount(window[shape & (window >= 0)], minlength=len(sources))
            remaining = visible - covered
            if np.all((remaining >= min_visible * np.asarray(shape_pixels)) & (remaining > 0)):
                break
        else:
            continue  # no position keeps the earlier items visible enough: drop the item
        window[shape] = len(sources)
        canvas[y:y + ITEM_SIZE, x:x + ITEM_SIZE][shape] = item[shape]
        sources.append(source)
        shape_pixels.append(int(shape.sum()))
    return canvas, owner, sources


def _visible_boxes(owner: np.ndarray, count: int) -> np.ndarray:
    """float32 (count, 4): the half-open extent (x0, y0, x1, y1) of each item's pixels."""
    boxes = np.zeros((count, 4), np.float32)
    for item in range(count):
        rows, columns = np.nonzero(owner == item)
        boxes[item] = (columns.min(), rows.min(), columns.max() + 1, rows.max() + 1)
    return boxes


def make_scenes(
    images: np.ndarray,
    labels: np.ndarray,
    n: int,
    *,
    size: int = 64,
    items: tuple[int, int] = (1, 4),
    seed: int = 0,
    min_visible: float = 0.5,
    tries: int = 10,
    source: str = "",
) -> Scenes:
    """Compose ``n`` scenes from Fashion-MNIST items by the rules in the module docstring.

    Parameters
    ----------
    images:
        float ``(M, 1, 28, 28)`` in [0, 1], the items to draw from (as
        :func:`~evsim.data.load_fashion_mnist` returns them).
    labels:
        integer ``(M,)``, the class (0..9) of each item.
    n:
        Number of scenes.
    size:
        Canvas side in pixels (>= 28).
    items:
        ``(lo, hi)``: each scene tries to place between ``lo`` and ``hi`` items, inclusive.
    seed:
        Seed of ``numpy.random.default_rng``; the same seed gives the same scenes.
    min_visible:
        Fraction of an item's shape that must stay visible when later items cover it.
    tries:
        Positions drawn per item before it is dropped.
    source:
        Free text recorded in :attr:`Scenes.source`.

    Returns
    -------
    Scenes
        ``images`` float32 ``(n, 1, size, size)``, ``masks`` uint8 ``(n, size, size)``,
        one box, label and source index per placed item.
    """
    _check_generator_args(images, labels, n, size, tuple(items), min_visible, tries, seed)
    rng = np.random.default_rng(seed)
    items_f = np.asarray(images, np.float32)
    canvases = np.zeros((n, 1, size, size), np.float32)
    masks = np.zeros((n, size, size), np.uint8)
    boxes, box_labels, item_sources = [], [], []
    for i in range(n):
        canvas, owner, sources = _place_items(rng, items_f, size, tuple(items), min_visible,
                                              tries)
        classes = np.asarray(labels, np.int64)[sources]
        canvases[i, 0] = canvas
        masks[i] = np.where(owner >= 0, 1 + classes[np.maximum(owner, 0)], 0) if sources else 0
        boxes.append(_visible_boxes(owner, len(sources)))
        box_labels.append(classes)
        item_sources.append(np.asarray(sources, np.int64))
    return Scenes(canvases, masks, tuple(boxes), tuple(box_labels), tuple(item_sources),
                  seed=int(seed), source=source)


def fashion_mnist_scenes(
    split: str = "test",
    n: int = 1000,
    *,
    size: int = 64,
    items: tuple[int, int] = (1, 4),
    seed: int = 0,
    path: str | os.PathLike | None = None,
    min_visible: float = 0.5,
    tries: int = 10,
) -> Scenes:
    """Scenes made from the full Fashion-MNIST ``split`` (10 000 test or 60 000 training items).

    The IDX files are found as :func:`~evsim.data.load_fashion_mnist` finds them
    (``path``, ``$EVSIM_DATA``, then Debian's ``dataset-fashion-mnist`` package);
    when they are missing, the ``FileNotFoundError`` says how to install them
    (``apt-get install dataset-fashion-mnist``). Other parameters as in
    :func:`make_scenes`; ``Scenes.item_sources`` are indices into the split's files.
    """
    check_split(split, "fashion_mnist_scenes")
    images, labels = load_fashion_mnist(split, path=path)
    return make_scenes(images, labels, n, size=size, items=items, seed=seed,
                       min_visible=min_visible, tries=tries, source=f"Fashion-MNIST {split}")


def _to_uint8_if_exact(images: np.ndarray) -> np.ndarray:
    """Pixels as uint8 when ``images`` are exact multiples of 1/255 (as Fashion-MNIST's are)."""
    pixels = np.rint(images * 255.0).astype(np.uint8)
    if np.array_equal(pixels.astype(np.float32) / np.float32(255.0), images):
        return pixels
    return images


def save_scenes(path: str | os.PathLike, scenes: Scenes) -> Path:
    """Write ``scenes`` to a compressed ``.npz`` file, atomically; returns the path.

    Images made of Fashion-MNIST pixels are stored as uint8 (exactly), others as
    float32. Boxes are stored concatenated with per-scene counts. The file is
    written to a temporary file beside ``path`` and renamed over it, so a reader
    sees the old file or the complete new one (the same rule as
    :mod:`evsim.io.atomic`, which lies above the data layer and cannot be used here).
    """
    if not isinstance(scenes, Scenes):
        raise EvsimTypeError(f"save_scenes: expected Scenes, got {type(scenes).__name__}")
    target = Path(path)
    counts = np.array([len(b) for b in scenes.boxes], np.int64)
    arrays = {
        "images": _to_uint8_if_exact(scenes.images),
        "masks": scenes.masks,
        "box_counts": counts,
        "boxes": np.concatenate(scenes.boxes) if len(scenes) else np.zeros((0, 4), np.float32),
        "box_labels": (np.concatenate(scenes.box_labels) if len(scenes)
                       else np.zeros(0, np.int64)),
        "seed": np.int64(-1 if scenes.seed is None else scenes.seed),
        "source": np.array(scenes.source),
    }
    if scenes.item_sources is not None:
        arrays["item_sources"] = (np.concatenate(scenes.item_sources) if len(scenes)
                                  else np.zeros(0, np.int64))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".tmp")
        with os.fdopen(fd, "wb") as stream:
            np.savez_compressed(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except OSError as err:
        with suppress(OSError, UnboundLocalError):
            os.unlink(temporary)
        raise EvsimFileError(target, f"cannot be written ({err.strerror or err})") from err
    return target


def _split_by_counts(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(np.split(values, np.cumsum(counts)[:-1])) if len(counts) else ()


def load_scenes(path: str | os.PathLike) -> Scenes:
    """Read scenes written by :func:`save_scenes` (validated as any ``Scenes``)."""
    target = Path(path)
    try:
        with np.load(target, allow_pickle=False) as file:
            arrays = {name: file[name] for name in file.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as err:
        raise EvsimFileError(target, f"is not a scenes file written by save_scenes ({err})"
                             ) from err
    missing = {"images", "masks", "box_counts", "boxes", "box_labels"} - set(arrays)
    if missing:
        raise EvsimFileError(target, f"is not a scenes file: it lacks {sorted(missing)}")
    images = arrays["images"]
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / np.float32(255.0)
    counts = arrays["box_counts"]
    if counts.ndim != 1 or len(counts) != len(arrays["images"]) or np.any(counts < 0) \
            or counts.sum() != len(arrays["boxes"]):
        raise EvsimFileError(target, "box_counts do not match the images and boxes it holds")
    seed = int(arrays.get("seed", -1))
    sources = arrays.get("item_sources")
    try:
        return Scenes(
            images=images,
            masks=arrays["masks"],
            boxes=_split_by_counts(arrays["boxes"], counts),
            box_labels=_split_by_counts(arrays["box_labels"], counts),
            item_sources=None if sources is None else _split_by_counts(sources, counts),
            seed=None if seed < 0 else seed,
            source=str(arrays.get("source", "")),
        )
    except EvsimValueError as err:
        raise EvsimFileError(target, f"holds invalid scenes: {err}") from err
