"""Batched NumPy arithmetic of the layers' ANN forward computation.

Each layer kind's rules (:mod:`evsim.kinds`) name the function here that computes it;
:func:`evsim.kinds.apply` runs any layer. Shared by the ANN forward pass and the dense
SNN engine so that both apply exactly the same arithmetic. Arrays are batch-first and channel-first:
``(B, C, H, W)`` or ``(B, N)``. Convolutions use im2col and one BLAS GEMM.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from . import layers as L
from .arena import Arena
from .errors import EvsimValueError
from .threads import on_threads, shares


def dense(layer: L.Dense, x: np.ndarray, out: np.ndarray | None = None,
          per_image: bool = False) -> np.ndarray:
    """``x`` (B, in) -> (B, out), into ``out`` if given; with ``per_image``, one product per
    image (see :func:`conv2d`)."""
    out = _output(out, (len(x), layer.weight.shape[0]), x.dtype)
    weight = layer.weight.T.astype(x.dtype, copy=False)
    if per_image:
        np.matmul(x[:, None, :], weight, out=out[:, None, :])
    else:
        np.matmul(x, weight, out=out)
    if layer.bias is not None:
        out += layer.bias.astype(x.dtype, copy=False)
    return out


def _output(out: np.ndarray | None, shape: tuple, dtype) -> np.ndarray:
    """``out`` checked against the result's shape and dtype, or a new array."""
    if out is None:
        return np.empty(shape, dtype)
    if out.shape != tuple(shape) or out.dtype != dtype or not out.flags.c_contiguous:
        raise EvsimValueError(f"out must be a C-contiguous {np.dtype(dtype)} array of shape "
                              f"{tuple(shape)}, got {out.dtype} {out.shape}")
    return out


def _pad(x: np.ndarray, pad_h: int, pad_w: int, extra_h: int = 0, extra_w: int = 0,
         value: float = 0.0) -> np.ndarray:
    if not (pad_h or pad_w or extra_h or extra_w):
        return x
    return np.pad(x, ((0, 0), (0, 0), (pad_h, pad_h + extra_h), (pad_w, pad_w + extra_w)),
                  constant_values=value)


#: Copies a group's GEMM result into the output, adding the bias: ``lay_out(result, bias,
#: group, out)`` as :func:`_lay_out`.
LayOut = Callable[[np.ndarray, "np.ndarray | None", int, np.ndarray], None]
#: Fills a group's GEMM columns at stride 1 and dilation 1: ``columns(layer, x, cols,
#: start, n, group)`` as :func:`_conv2d_images` does.
Columns = Callable[["L.Conv2d", np.ndarray, np.ndarray, int, int, int], None]

#: Floats of im2col matrix per GEMM: small enough to stay in cache while the GEMM reads it.
IM2COL_FLOATS = 1 << 19


def images_per_product(layer: L.Conv2d, input_shape: tuple) -> int:
    """How many images of ``input_shape`` (C, H, W) :func:`conv2d` takes per im2col matrix
    and GEMM (an image's result depends on them: see there)."""
    _, cin_g, kh, kw = layer.weight.shape
    _, ho, wo = layer.output_shape([tuple(input_shape)])
    return max(1, IM2COL_FLOATS // (cin_g * kh * kw * ho * wo))


def product_row_width(layer: L.Conv2d, input_shape: tuple) -> int:
    """The columns per output row of :func:`conv2d`'s GEMMs for inputs of ``input_shape``
    (C, H, W): the padded width at stride 1 and dilation 1 (see :func:`_conv2d_images`),
    else the output's."""
    (sh, sw), (_, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    if (sh, sw, dh, dw) == (1, 1, 1, 1):
        return input_shape[2] + 2 * pw
    return layer.output_shape([tuple(input_shape)])[2]


def conv2d(layer: L.Conv2d, x: np.ndarray, threads: int = 1,
           out: np.ndarray | None = None, per_image: bool = False,
           lay_out: LayOut | None = None, columns: Columns | None = None) -> np.ndarray:
    """``x`` (B, C_in, H, W) -> (B, C_out, H_out, W_out) by im2col and one GEMM per group,
    into ``out`` if given (C-contiguous, that shape, x's dtype).

    Images are taken a few at a time so that each im2col matrix (reused) stays in cache;
    with ``threads`` > 1 these groups of images are shared among threads (the same GEMMs,
    so the same result). BLAS rounds a GEMM by its shape, so an image's result depends on
    the images that share its GEMM; ``per_image`` makes one GEMM of each image's columns
    (one BLAS call per image), so that it does not. ``lay_out`` copies each GEMM's result
    into ``out`` (default :func:`_lay_out`; the dense engine passes a compiled one with the
    same arithmetic). ``columns(layer, x, cols, start, n, group)``, if given, fills a
    group's GEMM columns ``cols[:, :, :, :n]`` for images ``start .. start + n − 1`` at
    stride 1 and dilation 1 (the dense engine passes a compiled copy of the same values).
    """
    b = x.shape[0]
    cout, cin_g, kh, kw = layer.weight.shape
    _, ho, wo = layer.output_shape([x.shape[1:]])
    weight = layer.weight.astype(x.dtype, copy=False)
    out = _output(out, (b, cout, ho, wo), x.dtype)
    step = images_per_product(layer, x.shape[1:])
    bias = None if layer.bias is None else layer.bias.astype(x.dtype, copy=False)[:, None, None]

    def images(lo: int, hi: int) -> None:
        _conv2d_images(layer, x[lo:hi], weight, bias, out[lo:hi], step, per_image,
                       lay_out or _lay_out, columns)

    # a few shares per thread: a core that runs faster takes more of them
    on_threads(images, shares(b, 4 * threads, unit=step, item_size=cin_g * kh * kw * ho * wo),
               threads)
    return out


def _conv2d_images(layer: L.Conv2d, x: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                   out: np.ndarray, step: int, per_image: bool, lay_out: LayOut,
                   columns: Columns | None = None) -> None:
    """conv2d of ``x`` into ``out``, ``step`` images per im2col matrix and GEMM (per image,
    with ``per_image``), each result copied by ``lay_out``; ``bias`` (C_out, 1, 1) or None;
    ``columns`` as in :func:`conv2d`.

    With stride 1 and dilation 1 the output is computed at every column of the padded
    width (the extra columns are dropped), so that each kernel tap's patch is one
    contiguous run of the flattened padded image and im2col copies long runs instead of
    rows of W_out values.
    """
    b, _, h, w = x.shape
    cout, cin_g, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    ho, wo = out.shape[2:]
    hp, wp = h + 2 * ph, w + 2 * pw
    rows = (sh, sw, dh, dw) == (1, 1, 1, 1)
    width = product_row_width(layer, x.shape[1:])
    cout_g = cout // layer.groups
    w2 = [weight[g * cout_g:(g + 1) * cout_g].reshape(cout_g, -1) for g in range(layer.groups)]
    cols = _scratch("cols", (cin_g, kh, kw, min(step, b), ho, width), x.dtype)
    product = _scratch("product", (min(step, b), cout_g, ho * width) if per_image
                       else (cout_g, min(step, b) * ho * width), x.dtype)
    compiled = columns is not None and rows
    if not compiled:
        # kw − 1 spare values: the last tap's run ends there (in columns that are dropped)
        flat = _scratch("padded", (min(step, b), x.shape[1], hp * wp + kw - 1), x.dtype)
        flat.fill(0)
        padded = flat[:, :, :hp * wp].reshape(len(flat), x.shape[1], hp, wp)
    for start in range(0, b, step):
        n = min(step, b - start)
        if not compiled:
            padded[:n, :, ph:ph + h, pw:pw + w] = x[start:start + n]
        for g in range(layer.groups):
            channels = slice(g * cin_g, (g + 1) * cin_g)
            if compiled:
                columns(layer, x, cols, start, n, g)
            else:
                for i in range(kh):
                    for j in range(kw):
                        if rows:
                            run = flat[:n, channels, i * wp + j:i * wp + j + ho * wp]
                            patch = run.reshape(n, cin_g, ho, wp)
                        else:
                            patch = padded[:n, channels, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                                           j * dw:j * dw + sw * (wo - 1) + 1:sw]
                        cols[:, i, j, :n] = patch.transpose(1, 0, 2, 3)
            matrix = cols[:, :, :, :n].reshape(cin_g * kh * kw, n, ho * width)
            if per_image:  # a stack of GEMMs, one image's columns each
                result = np.matmul(w2[g], matrix.transpose(1, 0, 2), out=product[:n])
                result = result.reshape(n, cout_g, ho, width)
            else:
                result = np.matmul(w2[g], matrix.reshape(cin_g * kh * kw, -1),
                                   out=product[:, :n * ho * width])
                result = result.reshape(cout_g, n, ho, width).transpose(1, 0, 2, 3)
            lay_out(result[..., :wo], bias, g,
                     out[start:start + n, g * cout_g:(g + 1) * cout_g])


def conv_transpose2d(layer: L.ConvTranspose2d, x: np.ndarray, threads: int = 1,
                     out: np.ndarray | None = None, per_image: bool = False) -> np.ndarray:
    """``x`` (B, C_in, H, W) -> (B, C_out, H_out, W_out), into ``out`` if given, by one
    GEMM per image and group (the kernel taps' contributions of every input position)
    and col2im: each tap's contributions added at their strided output positions.

    Every image has GEMMs of its own, so its result does not depend on the batch
    (``per_image`` holds whatever it says); groups of images are shared among
    ``threads``.
    """
    b, _, h, w = x.shape
    cin_g, cout_g = layer.weight.shape[0] // layer.groups, layer.weight.shape[1]
    kh, kw = layer.kernel_size
    shape = (b,) + layer.output_shape([x.shape[1:]])
    out = _output(out, shape, x.dtype)
    weight = layer.weight.astype(x.dtype, copy=False)
    # per group: (C_out/g · KH · KW, C_in/g), rows in (output channel, tap) order
    w2 = [weight[g * cin_g:(g + 1) * cin_g].reshape(cin_g, -1).T for g in range(layer.groups)]
    step = max(1, IM2COL_FLOATS // (cout_g * kh * kw * h * w))

    def images(lo: int, hi: int) -> None:
        for start in range(lo, hi, step):
            stop = min(hi, start + step)
            _conv_transpose_images(layer, x[start:stop], w2, out[start:stop])

    on_threads(images, shares(b, 4 * threads, unit=step, item_size=cout_g * kh * kw * h * w),
               threads)
    return out


def _tap_range(size: int, n_out: int, tap: int, stride: int, pad: int,
               dilation: int) -> tuple[int, int, int]:
    """(first input, last input + 1, first output) of the inputs whose output
    ``i·stride − pad + tap·dilation`` lies in ``[0, n_out)``, along one axis."""
    offset = tap * dilation - pad
    first = max(0, -(offset // stride))  # ceil(−offset / stride), at least 0
    last = min(size, (n_out - 1 - offset) // stride + 1)
    return first, max(first, last), first * stride + offset


def _conv_transpose_images(layer: L.ConvTranspose2d, x: np.ndarray, w2: list,
                           out: np.ndarray) -> None:
    """conv_transpose2d of a few images ``x`` into ``out`` (bias added last)."""
    n, _, h, w = x.shape
    cin_g, cout_g = layer.weight.shape[0] // layer.groups, layer.weight.shape[1]
    kh, kw = layer.kernel_size
    (sh, sw), (ph, pw), (dh, dw) = layer.stride, layer.padding, layer.dilation
    ho, wo = out.shape[2:]
    out.fill(0)
    for g in range(layer.groups):
        columns = np.matmul(w2[g], x[:, g * cin_g:(g + 1) * cin_g].reshape(n, cin_g, h * w))
        columns = columns.reshape(n, cout_g, kh, kw, h, w)
        target = out[:, g * cout_g:(g + 1) * cout_g]
        for i in range(kh):
            y0, y1, oy = _tap_range(h, ho, i, sh, ph, dh)
            for j in range(kw):
                x0, x1, ox = _tap_range(w, wo, j, sw, pw, dw)
                if y1 > y0 and x1 > x0:
                    target[:, :, oy:oy + sh * (y1 - y0 - 1) + 1:sh,
                           ox:ox + sw * (x1 - x0 - 1) + 1:sw] += columns[:, :, i, j, y0:y1, x0:x1]
    if layer.bias is not None:
        out += layer.bias.astype(x.dtype, copy=False)[:, None, None]


_thread_scratch = threading.local()


def _scratch(role: str, shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array for this thread's convolution work, in the memory of the last
    one of that role (:mod:`evsim.arena`: kept between calls, one buffer per role and
    thread, a few MB)."""
    arena = _thread_scratch.__dict__.setdefault("arena", Arena())
    return arena.take(role, shape, dtype)


def _lay_out(result: np.ndarray, bias: np.ndarray | None, group: int, out: np.ndarray) -> None:
    """Copy a group's GEMM result (images, C_out/g, H_out, W_out) into ``out``, adding the
    group's bias on the way (one rounding, as adding it afterwards)."""
    if bias is None:
        out[...] = result
    else:
        np.add(result, bias[group * out.shape[1]:(group + 1) * out.shape[1]], out=out)


def _windows(layer: L._Pool2d, x: np.ndarray, fill: float):
    """Yield the (B, C, H_out, W_out) slices of the padded input, one per window offset."""
    _, ho, wo = layer.output_shape([x.shape[1:]])
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    extra_h = max(0, (ho - 1) * sh + kh - (x.shape[2] + 2 * ph))
    extra_w = max(0, (wo - 1) * sw + kw - (x.shape[3] + 2 * pw))
    if fill == -np.inf and x.dtype.kind in "iu":
        fill = np.iinfo(x.dtype).min
    xp = _pad(x, ph, pw, extra_h, extra_w, fill)
    for i in range(kh):
        for j in range(kw):
            yield xp[:, :, i:i + sh * (ho - 1) + 1:sh, j:j + sw * (wo - 1) + 1:sw]


def avgpool_divisor(layer: L.AvgPool2d, height: int, width: int) -> np.ndarray:
    """Per-window divisor (H_out, W_out), as PyTorch/ONNX define it.

    With ``count_include_pad`` a window counts the padding it covers but not
    the part that ``ceil_mode`` lets hang past the padded input; without it,
    only real inputs.
    """
    _, ho, wo = layer.output_shape([(1, height, width)])
    counts = []
    for axis, (size, n_out) in enumerate(((height, ho), (width, wo))):
        k, s, p = layer.kernel_size[axis], layer.stride[axis], layer.padding[axis]
        start = np.arange(n_out) * s - p
        end = np.minimum(start + k, size + p)
        if not layer.count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        counts.append(end - start)
    return np.outer(counts[0], counts[1])


def avgpool2d(layer: L.AvgPool2d, x: np.ndarray) -> np.ndarray:
    """``x`` (B, C, H, W) -> (B, C, H_out, W_out)."""
    total = None
    for window in _windows(layer, x, 0.0):
        total = window.copy() if total is None else total + window
    return total / avgpool_divisor(layer, x.shape[2], x.shape[3]).astype(x.dtype)


def maxpool2d(layer: L.MaxPool2d, x: np.ndarray) -> np.ndarray:
    """``x`` (B, C, H, W) -> (B, C, H_out, W_out); padding never wins."""
    best = None
    for window in _windows(layer, x, -np.inf):
        best = window.copy() if best is None else np.maximum(best, window)
    return best


def maxpool2d_argmax(layer: L.MaxPool2d, x: np.ndarray) -> np.ndarray:
    """Index (into the kernel offsets, row-major) of each window's first maximum."""
    best, arg = None, None
    for k, window in enumerate(_windows(layer, x, -np.inf)):
        if best is None:
            best, arg = window.copy(), np.zeros(window.shape, dtype=np.int32)
        else:
            better = window > best
            best = np.where(better, window, best)
            arg[better] = k
    return arg


def gather_windows(layer: L._Pool2d, x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Pick, in each window, the member at kernel offset ``index`` (B, C, H_out, W_out)."""
    out = np.zeros(index.shape, dtype=x.dtype)
    for k, window in enumerate(_windows(layer, x, 0.0)):
        chosen = index == k
        out[chosen] = window[chosen]
    return out


def global_avgpool(x: np.ndarray) -> np.ndarray:
    """``x`` (B, C, H, W) -> (B, C, 1, 1)."""
    return x.mean(axis=(2, 3), keepdims=True, dtype=x.dtype)


def concat(inputs: list[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
    """``(B, C_i, H, W)`` inputs -> ``(B, ΣC_i, H, W)``, laid side by side along the channels,
    into ``out`` if given (the dense engine's arena: no fresh pages to fault in)."""
    return np.concatenate(inputs, axis=1, out=out)


def pad(layer: L.Pad, x: np.ndarray) -> np.ndarray:
    """``x`` (B, C, H, W) with zeros around: ``layer.padding`` (top, bottom, left, right)."""
    top, bottom, left, right = layer.padding
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def upsample_matrix(size: int, scale: int, mode: str, align_corners: bool) -> np.ndarray:
    """The weights ``(size * scale, size)`` in float64 with which one axis of ``size`` samples
    becomes ``size * scale`` (PyTorch's ``F.interpolate`` on that axis): nearest copies,
    bilinear mixes the two nearest input samples."""
    n_out = size * scale
    matrix = np.zeros((n_out, size))
    out = np.arange(n_out)
    if mode == "nearest":
        matrix[out, out // scale] = 1.0
        return matrix
    if align_corners:
        source = out * ((size - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        source = np.maximum((out + 0.5) / scale - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), size - 1)
    high = np.minimum(low + 1, size - 1)
    frac = source - low
    np.add.at(matrix, (out, low), 1.0 - frac)
    np.add.at(matrix, (out, high), frac)
    return matrix


def upsample_taps(size: int, scale: int, mode: str,
                  align_corners: bool) -> tuple[np.ndarray, np.ndarray]:
    """The at most two input samples ``(size * scale, taps)`` (int64, ascending) that each
    output sample of one axis mixes, and their weights (float64): the non-zero columns of
    :func:`upsample_matrix`'s rows, the other tap of a one-sample row weighted 0."""
    matrix = upsample_matrix(size, scale, mode, align_corners)
    taps = min(2, size)
    # Stable sort of "is zero" puts each row's non-zero columns first, in column order.
    index = np.sort(np.argsort(matrix == 0, axis=1, kind="stable")[:, :taps], axis=1)
    return index, np.take_along_axis(matrix, index, axis=1)


def upsample(layer: L.Upsample, x: np.ndarray) -> np.ndarray:
    """``x`` (B, C, H, W) -> (B, C, H s_h, W s_w), nearest or bilinear (:func:`upsample_matrix`).

    Bilinear is separable: the rows first, then the columns, each output the sum of its
    (at most two) taps' products in tap order (:func:`upsample_taps`)."""
    (sh, sw), h, w = layer.scale, x.shape[2], x.shape[3]
    if layer.mode == "nearest":
        return np.ascontiguousarray(np.repeat(np.repeat(x, sh, axis=2), sw, axis=3))
    rows, row_weights = upsample_taps(h, sh, layer.mode, layer.align_corners)
    cols, col_weights = upsample_taps(w, sw, layer.mode, layer.align_corners)
    row_weights, col_weights = row_weights.astype(x.dtype), col_weights.astype(x.dtype)
    with np.errstate(invalid="ignore"):  # an infinite input times a 0 weight: NaN, silently
        tall = np.take(x, rows[:, 0], axis=2) * row_weights[:, 0, None]
        for k in range(1, rows.shape[1]):
            tall += np.take(x, rows[:, k], axis=2) * row_weights[:, k, None]
        out = np.take(tall, cols[:, 0], axis=3) * col_weights[:, 0]
        for k in range(1, cols.shape[1]):
            out += np.take(tall, cols[:, k], axis=3) * col_weights[:, k]
    return np.ascontiguousarray(out)


def batchnorm(layer: L.BatchNorm, x: np.ndarray) -> np.ndarray:
    """Per-channel (axis 1) affine map of inference-mode batch normalisation."""
    scale, shift = layer.scale_shift()
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return x * scale.astype(x.dtype).reshape(shape) + shift.astype(x.dtype).reshape(shape)


def relu(layer: L.ReLU, x: np.ndarray) -> np.ndarray:
    """``max(x, 0)``, element-wise."""
    return np.maximum(x, 0)


def clip(layer: L.Clip, x: np.ndarray) -> np.ndarray:
    """``clip(x, 0, max_value)``, element-wise, in x's dtype."""
    return np.clip(x, 0, layer.max_value).astype(x.dtype, copy=False)


def leaky_relu(layer: L.LeakyReLU, x: np.ndarray) -> np.ndarray:
    """``x`` where ``x ≥ 0``, else ``alpha · x``, element-wise, in x's dtype."""
    return np.where(x >= 0, x, x * x.dtype.type(layer.alpha))


def identity(layer: L.Identity, x: np.ndarray) -> np.ndarray:
    """``x`` itself (a copy)."""
    return x.copy()


def qcfs(layer: L.QCFS, x: np.ndarray) -> np.ndarray:
    """``λ clip(floor(x L / λ + shift), 0, L) / L``, element-wise, in x's dtype."""
    lam, levels = x.dtype.type(layer.lam), x.dtype.type(layer.levels)
    q = np.floor(x * levels / lam + x.dtype.type(layer.shift))
    return lam * np.clip(q, 0, levels) / levels


def sigmoid(layer: L.Sigmoid, x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(−x))``, element-wise, in x's dtype (no overflow warning for large |x|)."""
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-x))).astype(x.dtype, copy=False)


def softmax(layer: L.Softmax, x: np.ndarray) -> np.ndarray:
    """Softmax over axis 1 (channels or features) of ``x`` (B, C, ...), in x's dtype."""
    shifted = np.exp(x - x.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(x.dtype, copy=False)


def add(inputs: list[np.ndarray], threads: int = 1, out: np.ndarray | None = None) -> np.ndarray:
    """Element-wise sum of ``inputs`` (all one shape), into ``out`` if given; the images are
    shared among ``threads``, each share written in place (no joining copy)."""
    total = _output(out, inputs[0].shape, inputs[0].dtype)

    def share(lo: int, hi: int) -> None:
        np.add(inputs[0][lo:hi], inputs[1][lo:hi], out=total[lo:hi])
        for other in inputs[2:]:
            total[lo:hi] += other[lo:hi]

    on_threads(share, shares(len(total), threads, item_size=total[:1].size))
    return total


__all__ = ["dense", "conv2d", "conv_transpose2d", "avgpool2d", "avgpool_divisor", "maxpool2d",
           "maxpool2d_argmax",
           "gather_windows", "global_avgpool", "batchnorm", "relu", "clip", "qcfs", "add",
           "sigmoid", "softmax", "IM2COL_FLOATS", "concat", "pad", "upsample",
           "upsample_matrix", "upsample_taps", "leaky_relu", "identity"]
