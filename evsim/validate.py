"""Checks of what users pass in: images, labels, step counts, batch sizes and memory.

Each check raises an :class:`~evsim.errors.EvsimError` that names the
parameter and says what to do, or warns with
:class:`~evsim.errors.UnscaledInputWarning`. :func:`evsim.simulate`,
:func:`evsim.forward`, :meth:`SimResult.accuracy` and the ``evsim`` command
call them; :func:`check_images` is the one to call on calibration data
(``check_images(images, what="calibration images")``).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from .errors import (EvsimTypeError, EvsimValueError, InsufficientMemoryError,
                     UnscaledInputWarning)

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
#: Elements scanned at a time by :func:`check_images` (bounds its working memory).
_SCAN = 1 << 22


def _stacklevel() -> int:
    """The stack level of the first caller outside evsim, for warnings."""
    import sys

    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


def _scan(x: np.ndarray, what: str) -> tuple[float, float]:
    """(min, max) of numeric ``x``; raise for a non-numeric dtype or a NaN/Inf value."""
    if x.dtype.kind not in "fiub":
        raise EvsimTypeError(f"{what} must be numeric, got dtype {x.dtype}")
    if x.size == 0:
        return 0.0, 0.0
    flat = x.reshape(len(x), -1) if x.ndim > 1 else x.reshape(-1, 1)
    lo, hi, nan, inf, first = np.inf, -np.inf, 0, 0, None
    step = max(1, _SCAN // max(flat.shape[1], 1))
    for start in range(0, len(flat), step):
        chunk = flat[start:start + step]
        if x.dtype.kind == "f":
            finite = np.isfinite(chunk)
            if not finite.all():
                nans = int(np.isnan(chunk).sum())
                nan, inf = nan + nans, inf + int((~finite).sum()) - nans
                if first is None:
                    first = start + int(np.flatnonzero(~finite.all(axis=1))[0])
                continue
        lo, hi = min(lo, float(chunk.min())), max(hi, float(chunk.max()))
    if first is not None:
        raise EvsimValueError(
            f"{what} hold {nan} NaN and {inf} infinite value(s), the first in image {first}; "
            "a network cannot compute with them (NaN neurons never fire, yet the image still "
            "gets a class). Drop or repair those images, e.g. with np.nan_to_num")
    return lo, hi


def check_finite(images: np.ndarray, *, what: str = "inputs") -> None:
    """Raise :class:`~evsim.errors.EvsimValueError` for NaN or infinite values in
    ``images`` ``(B, ...)``, naming how many and the first image holding one
    (:class:`~evsim.errors.EvsimTypeError` for a non-numeric dtype)."""
    _scan(np.asarray(images), what)


def check_images(images: np.ndarray, *, what: str = "inputs", encoding: str = "analog") -> None:
    """:func:`check_finite`, and warn when analog images look unscaled.

    Parameters
    ----------
    images:
        ``(B, ...)`` images, batch first.
    what:
        How to name them in messages (``"inputs"``, ``"calibration images"``).
    encoding:
        ``"analog"`` warns (:class:`~evsim.errors.UnscaledInputWarning`) when
        values exceed 1: raw 8-bit pixels, or a missing ``/ 255``. Rate
        encoding has its own [0, 1] check, so ``"rate"`` does not warn.
    """
    x = np.asarray(images)
    lo, hi = _scan(x, what)
    if encoding != "analog" or hi <= 1:
        return
    if x.dtype.kind in "iu":
        message = (f"{what} are {x.dtype} with values in [{lo:g}, {hi:g}]: they look like "
                   "unscaled pixels. Networks usually expect floats scaled like their "
                   "training data, e.g. images.astype(np.float32) / 255 for [0, 1]")
    else:
        hint = "255" if hi <= 255 and float(hi).is_integer() else "the largest value"
        message = (f"{what} range over [{lo:.4g}, {hi:.4g}], above 1: if the network was trained "
                   f"on images in [0, 1], divide them by {hint}")
    warnings.warn(UnscaledInputWarning(message), stacklevel=_stacklevel())


#: The largest integer the engines count with (int64): steps, image indices and seeds stay
#: below it.
INT64_MAX = 2 ** 63 - 1


def check_below_int64(value: int, name: str) -> int:
    """``value`` (an int) unless it reaches 2**63, which the engines' int64 counters cannot
    hold; then an error naming ``name``."""
    if value > INT64_MAX:
        raise EvsimValueError(f"{name} must be below 2**63 (the engines count in 64-bit "
                              f"integers), got {value}")
    return int(value)


def check_count(value, name: str, unit: str) -> int:
    """``value`` as an int in [1, 2**63); bool, float and other types are refused by name."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        hint = (f"; pass int({name})" if isinstance(value, (float, np.floating))
                and float(value).is_integer() else "")
        raise EvsimTypeError(f"{name} must be a positive integer (a number of {unit}), got "
                             f"{value!r} ({type(value).__name__}){hint}")
    if value < 1:
        raise EvsimValueError(f"{name} must be a positive integer (a number of {unit}), got "
                              f"{value}")
    return check_below_int64(value, name)


def check_index(value, name: str) -> int:
    """``value`` as an int ≥ 0 (an index); bool, float and other types are refused by name."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise EvsimTypeError(f"{name} must be an integer index >= 0, got {value!r} "
                             f"({type(value).__name__})")
    if value < 0:
        raise EvsimValueError(f"{name} must be an integer index >= 0, got {value}")
    return check_below_int64(value, name)


def check_steps(T, name: str = "T") -> int:
    """The number of time steps ``T`` as an int ≥ 1 (bool and float refused)."""
    return check_count(T, name, "time steps")


def check_batch_size(batch_size) -> int:
    """``batch_size`` as an int ≥ 1."""
    return check_count(batch_size, "batch_size", "images")


def check_labels(labels, n_classes: int, n_images: int | None = None,
                 what: str = "labels") -> np.ndarray:
    """``labels`` as int64 class indices in ``[0, n_classes)``; one per image if ``n_images``.

    Integral floats (``3.0``) are accepted; anything else names the first bad label.
    """
    y = np.asarray(labels)
    if n_images is not None and y.shape != (n_images,):
        raise EvsimValueError(f"{what} have shape {y.shape}; expected ({n_images},), one class "
                              "index per image")
    if y.dtype.kind not in "iubf":
        raise EvsimTypeError(f"{what} must be integer class indices, got dtype {y.dtype}")
    if y.size == 0:
        return y.astype(np.int64)
    integral = np.isfinite(y) & (y == np.round(y)) if y.dtype.kind == "f" else np.ones(
        y.shape, bool)
    bad = ~integral | (y < 0) | (y >= n_classes)
    if bad.any():
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        raise EvsimValueError(
            f"{what} must be class indices in [0, {n_classes}) (the network has {n_classes} "
            f"outputs), but {int(bad.sum())} of them are not, the first being "
            f"{y.reshape(-1)[i].item()!r} at index {i}")
    return y.astype(np.int64)


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable, within a cgroup limit; or None."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError):
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            return None
    room = cgroup_room()
    if room is not None:
        available = room if available is None else min(available, room)
    return available


def cgroup_room(folder: str | os.PathLike = "/sys/fs/cgroup") -> int | None:
    """Bytes left under the cgroup v2 memory limit in ``folder``, or None without a limit.

    Page cache the kernel can reclaim (``inactive_file`` in ``memory.stat``) counts as room:
    ``memory.current`` includes it, and after reading large files it can fill the limit.
    """
    folder = Path(folder)
    try:
        limit = (folder / "memory.max").read_text("ascii").strip()
        if limit == "max":
            return None
        used = int((folder / "memory.current").read_text("ascii"))
    except (OSError, ValueError):
        return None
    try:
        for line in (folder / "memory.stat").read_text("ascii").splitlines():
            key, _, value = line.partition(" ")
            if key == "inactive_file":
                used -= int(value)
    except (OSError, ValueError):
        pass
    return max(int(limit) - used, 0)


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError


def simulation_memory(snn, n_images: int, T: int, *, engine: str, batch_size: int,
                      checkpoints: int, per_image_counts: bool, recorded: int,
                      dtype) -> dict[str, int]:
    """A lower bound on the bytes :func:`evsim.simulate` allocates, by what needs them.

    Counts only allocations every engine makes: the per-step SOP counters
    (and, in the event engine, those of the current batch), the accumulated
    outputs, per-image spike counts, membrane traces of ``recorded`` neurons
    (after and before each reset) and one batch of neuron state.
    """
    net = snn.network
    itemsize = np.dtype(dtype).itemsize
    neurons = sum(int(np.prod(net.shape(name))) for name in snn.neurons)
    counters = max(1, sum(1 for name in snn.neurons if name != net.output_name))
    batch = min(batch_size, n_images)
    parts = {
        "SOP counters per step": counters * T * 8 * (2 if engine == "event" else 1),
        "outputs at checkpoints": checkpoints * n_images * int(np.prod(net.output_shape))
        * itemsize,
        "neuron state of one batch": batch * neurons * (itemsize + 8),
        "inputs": n_images * int(np.prod(net.input_shape)) * itemsize,
    }
    if per_image_counts:
        parts["per-image spike counts"] = n_images * neurons * 8
    if recorded:
        parts["membrane traces"] = 2 * T * n_images * recorded * itemsize
    return parts


def check_simulation_memory(snn, n_images: int, T: int, **run) -> None:
    """Raise :class:`~evsim.errors.InsufficientMemoryError` if :func:`simulation_memory`
    exceeds what the machine has available (``run``: its keyword arguments)."""
    parts = simulation_memory(snn, n_images, T, **run)
    needed, available = sum(parts.values()), available_memory()
    if available is None or needed <= available:
        return
    biggest = max(parts, key=parts.get)
    raise InsufficientMemoryError(
        f"simulating {n_images} image(s) for T = {T} steps needs at least {_bytes(needed)} of "
        f"memory ({biggest}: {_bytes(parts[biggest])}), but {_bytes(available)} is available; "
        "use a smaller T, fewer images, a smaller batch_size or fewer recorded neurons",
        needed, available)


__all__ = ["check_images", "check_finite", "check_index", "check_steps", "check_batch_size",
           "check_count", "check_labels", "simulation_memory", "check_simulation_memory",
           "available_memory"]
