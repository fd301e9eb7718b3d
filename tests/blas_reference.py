"""A naive reference for the dense engine's sparse convolutions (evsim.simulate.dense_gather
and dense_tiles): OpenBLAS's summation order as evsim.simulate.blas_order models it, by
plain loops with no BLAS involved."""

import numba
import numpy as np

from evsim import ann_ops
from evsim import layers as L
from evsim.simulate import blas_order as bo
from evsim.simulate.dense_conv import _fma


@numba.njit(cache=True)
def naive_product(w, x, pairs, starts, lengths):
    """``w @ x`` (float32) summed as the order says: per output and K block, one fused
    multiply-add chain from zero, or where ``pairs`` two (the block's odd offsets before
    its last multiple of 8 in the second), the block's sum added to the total."""
    channels, k = w.shape
    out = np.zeros((channels, x.shape[1]), np.float32)
    for c in range(channels):
        for p in range(x.shape[1]):
            total = np.float32(0)
            for b in range(starts.shape[0]):
                first, length = starts[b], lengths[b]
                paired_until = length // 8 * 8 if pairs[c, p] else 0
                even = np.float32(0)
                odd = np.float32(0)
                for i in range(length):
                    if i < paired_until and i % 2 == 1:
                        odd = _fma(w[c, first + i], x[first + i, p], odd)
                    else:
                        even = _fma(w[c, first + i], x[first + i, p], even)
                total = (even + odd) + total
            out[c, p] = total
    return out


def model_product(w, x, order=bo.HASWELL):
    """``w @ x`` (C_out × K by K × N) summed as ``order`` says, by :func:`naive_product`."""
    channels, k = w.shape
    blocks = np.array(bo.k_blocks(k, order), np.int64).reshape(-1, 2)
    return naive_product(w, x, bo.paired(channels, x.shape[1], order), blocks[:, 0],
                         blocks[:, 1])


def naive_conv(layer, x, order=bo.HASWELL):
    """ann_ops.conv2d's arithmetic with the model's product: the same images per product
    and columns (padded width at stride 1), each product by model_product in ``order``,
    bias added."""
    cout, cin, kh, kw = layer.weight.shape
    (sh, sw), (ph, pw) = layer.stride, layer.padding
    _, ho, wo = layer.output_shape([x.shape[1:]])
    width = ann_ops.product_row_width(layer, x.shape[1:])
    step = ann_ops.images_per_product(layer, x.shape[1:])
    h, w = x.shape[2:]
    padded = np.zeros((len(x), cin, h + 2 * ph + kh, w + 2 * pw + kw), np.float32)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    weights = layer.weight.reshape(cout, -1).astype(np.float32)
    out = np.empty((len(x), cout, ho, wo), np.float32)
    for start in range(0, len(x), step):
        frames = range(start, min(start + step, len(x)))
        columns = np.zeros((cin, kh, kw, len(frames), ho, width), np.float32)
        for m, f in enumerate(frames):
            for i in range(kh):
                for j in range(kw):
                    columns[:, i, j, m] = padded[f, :, i:i + sh * ho:sh, j:j + sw * width:sw][
                        :, :ho, :width]
        product = model_product(weights, columns.reshape(cin * kh * kw, -1), order)
        result = product.reshape(cout, len(frames), ho, width)[..., :wo].transpose(1, 0, 2, 3)
        if layer.bias is not None:
            result = result + layer.bias.astype(np.float32)[:, None, None]
        out[start:start + len(frames)] = result
    return out


def case(g):
    """(layer, frames) of a hypothesis geometry ``g`` (see the tests), or None where its
    window does not fit."""
    rng = np.random.default_rng(g["seed"])
    weight = rng.standard_normal((g["cout"], g["cin"], g["kh"], g["kw"])).astype(np.float32)
    layer = L.Conv2d(weight=weight,
                     bias=rng.standard_normal(g["cout"]).astype(np.float32) if g["bias"] else None,
                     stride=g["stride"], padding=g["padding"])
    shape = (g["cin"], g["h"], g["w"])
    try:
        layer.output_shape([shape])
    except L.ShapeError:  # the window does not fit
        return None
    values = rng.choice(np.array([-2.0, -0.5, 0.75, 1.0, 3.5], np.float32), (g["frames"],) + shape)
    x = np.where(rng.random(values.shape) < g["density"], values, np.float32(0))
    return layer, np.ascontiguousarray(x, np.float32)
