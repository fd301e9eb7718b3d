"""The order in which OpenBLAS's single-precision GEMM sums each output, with one BLAS
thread, as NumPy's ``W @ X`` reaches it (W: C_out × K, X: K × N, both C-contiguous): what
:mod:`evsim.simulate.dense_gather` and :mod:`evsim.simulate.dense_tiles` follow so that a
sum over the non-zero inputs alone gives the GEMM's result bit for bit. Two kernel
families are modelled (:class:`GemmOrder`); the dense engine takes the one whose sums
agree with this machine's product on its probes, or keeps the GEMM path.

**Haswell** (:data:`HASWELL`: OpenBLAS's Haswell and Zen cores, AVX2). NumPy passes the
row-major product to BLAS as the column-major ``Xᵀ · Wᵀ``, so BLAS's rows are the N
columns of X (a convolution's output positions) and its columns are the C_out output
channels. OpenBLAS's level-3 driver and its Haswell kernel
(``sgemm_kernel_8x4_haswell_2.c``) then sum as follows:

- **K in blocks.** The driver takes at most Q = 320 of the K products per pass, each
  block's sums added to the output (``C = acc + C``; the first to zero): a remainder
  between Q and 2Q is halved, rounded up to a multiple of 8 (:func:`k_blocks`).
- **Rows in blocks.** It takes the N rows in blocks of P = 320, halving a remainder
  between P and 2P the same way (:func:`row_blocks`).
- **One or two accumulators.** Within a block, each output sums its products in order by
  fused multiply-adds into one accumulator, except where the kernel unrolls K by two into
  two accumulators (even and odd products of the block, up to its last multiple of 8; the
  rest into the first), added together at the end (:func:`paired`): the 8 × 4 tiles of a
  4-column panel, and the first and last 8 rows of each 12-column panel (its left six
  columns first, its last 8 rows on whichever side the kernel's alternation leaves them).
  The first row block's columns come in panels of 12, then 4 (the driver packs them as
  it goes); the later blocks' in panels of 12, 8, 4, 2, 1.

**SkylakeX** (:data:`SKYLAKEX`: the SkylakeX, Cooperlake and Sapphire Rapids cores,
AVX-512). Products of more than 100³ multiply-adds (M·N·K) go through the same driver
with ``sgemm_kernel_16x4_skylakex_3.c``: K in blocks as above with Q = 448 and halved
remainders rounded up to 16, and every output one chain of fused multiply-adds per block,
never two. Smaller products take OpenBLAS's small-matrix kernels, whose order is not
modelled (:func:`modelled`). Measured on an Emerald Rapids core (Intel family 6, model
207, which OpenBLAS 0.3.31 takes for SkylakeX): 71 of 98 random products of at most 100³
multiply-adds matched neither one chain nor the blocks, and all 62 larger ones matched
the blocks.

Other BLAS builds (another library, other kernels, double precision, several BLAS
threads) sum in other orders; :func:`evsim.simulate.dense_gather.gemm_order` checks each
model against this machine's product before the dense engine relies on one.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

class GemmOrder(NamedTuple):
    """How one family of OpenBLAS kernels sums a single-precision GEMM's outputs."""

    name: str
    q: int  #: products per K block (SGEMM_DEFAULT_Q)
    unroll_m: int  #: a halved K block is rounded up to a multiple of this
    pairs: bool  #: whether some outputs sum with two accumulators (:func:`paired`)
    small: int  #: products of at most this many multiply-adds are not modelled


HASWELL = GemmOrder("Haswell", q=320, unroll_m=8, pairs=True, small=0)
SKYLAKEX = GemmOrder("SkylakeX", q=448, unroll_m=16, pairs=False, small=100 ** 3)
#: The models the dense engine tries, in this order.
ORDERS = (HASWELL, SKYLAKEX)

Q = HASWELL.q  #: the Haswell kernel's products per K block
P = 320  #: the Haswell kernel's rows per row block (SGEMM_DEFAULT_P)
UNROLL_M = HASWELL.unroll_m  #: the Haswell kernel's halving unit; its pairs end on a multiple
UNROLL_N = 4  #: column unroll of the Haswell kernel (SGEMM_DEFAULT_UNROLL_N)


def _halving_blocks(total: int, size: int, unit: int) -> list[tuple[int, int]]:
    """(start, length) of the driver's blocks of ``total``: ``size`` while at least twice
    that is left, a remainder between ``size`` and twice that halved and rounded up to
    ``unit``, and the rest."""
    blocks, start = [], 0
    while start < total:
        length = total - start
        if length >= 2 * size:
            length = size
        elif length > size:
            length = (length // 2 + unit - 1) // unit * unit
        blocks.append((start, length))
        start += length
    return blocks


def modelled(m: int, n: int, k: int, order: GemmOrder = HASWELL) -> bool:
    """Whether ``order`` models an ``m`` × ``k`` by ``k`` × ``n`` product: one of more than
    ``order.small`` multiply-adds."""
    return m * n * k > order.small


def k_blocks(k: int, order: GemmOrder = HASWELL) -> list[tuple[int, int]]:
    """(first product, products) of each K block of a product with ``k`` products summed
    in ``order``."""
    return _halving_blocks(k, order.q, order.unroll_m)


def row_blocks(n: int) -> list[tuple[int, int]]:
    """(first row, rows) of each row block of a product with ``n`` BLAS rows (the N
    columns of X), in the Haswell driver."""
    return _halving_blocks(n, P, UNROLL_M)


def _kernel_panels(first: int, columns: int) -> list[tuple[int, int]]:
    """(first column, width) of the panels the kernel makes of ``columns`` columns."""
    panels = []
    while columns >= 12:
        panels.append((first, 12))
        first, columns = first + 12, columns - 12
    for width in (8, 4, 2, 1):
        if columns >= width:
            panels.append((first, width))
            first, columns = first + width, columns - width
    return panels


def _panels(channels: int, first_block: bool) -> list[tuple[int, int]]:
    """The panels of ``channels`` columns in the first row block (the driver hands the
    kernel 12, or at most UNROLL_N, columns at a time) or in a later one (all at once)."""
    if not first_block:
        return _kernel_panels(0, channels)
    panels, start = [], 0
    while start < channels:
        left = channels - start
        width = 3 * UNROLL_N if left >= 3 * UNROLL_N else min(left, UNROLL_N)
        panels += _kernel_panels(start, width)
        start += width
    return panels


def paired(channels: int, n: int, order: GemmOrder = HASWELL) -> np.ndarray:
    """(channels, n) bool: whether the output (channel, position) sums with two
    accumulators (else one), in a product of ``n`` BLAS rows summed in ``order``."""
    pairs = np.zeros((channels, n), bool)
    if not order.pairs:
        return pairs
    for index, (start, rows) in enumerate(row_blocks(n)):
        whole = rows - rows % 8  # the rows of 8-row tiles; the rest are single
        for first, width in _panels(channels, index == 0):
            if width == 4:
                pairs[first:first + 4, start:start + whole] = True
            elif width == 12 and rows >= 16:
                tiles = rows // 8
                pairs[first:first + 6, start:start + 8] = True
                last = slice(start + 8 * tiles - 8, start + 8 * tiles)
                if tiles % 2 == 0:
                    pairs[first:first + 6, last] = True
                else:
                    pairs[first + 6:first + 12, last] = True
    return pairs


class PairTables(NamedTuple):
    """:func:`paired` as the kernel reads it, per distinct column pattern ("mode").

    ``mode`` (n,) the pattern of each position; ``vectors`` (modes, ⌈C/8⌉) the first
    channel of each 8-channel vector holding paired channels (``n_vectors`` of them);
    ``channels`` (modes, C) the paired channels (``n_channels`` of them)."""
    mode: np.ndarray
    vectors: np.ndarray
    n_vectors: np.ndarray
    channels: np.ndarray
    n_channels: np.ndarray


@functools.lru_cache(maxsize=64)
def pair_tables(channels: int, n: int, order: GemmOrder = HASWELL) -> PairTables:
    """:class:`PairTables` of a product with ``channels`` output channels and ``n`` BLAS
    rows summed in ``order`` (cached: a layer's products repeat their shapes)."""
    patterns, mode = np.unique(paired(channels, n, order).T, axis=0, return_inverse=True)
    vector_slots = (channels + 7) // 8
    vectors = np.zeros((len(patterns), vector_slots), np.int64)
    n_vectors = np.zeros(len(patterns), np.int64)
    paired_channels = np.zeros((len(patterns), channels), np.int64)
    n_channels = np.zeros(len(patterns), np.int64)
    for index, pattern in enumerate(patterns):
        chosen = np.flatnonzero(pattern)
        paired_channels[index, :len(chosen)] = chosen
        n_channels[index] = len(chosen)
        firsts = np.unique(chosen // 8) * 8
        vectors[index, :len(firsts)] = firsts
        n_vectors[index] = len(firsts)
    return PairTables(mode.reshape(-1).astype(np.int64), vectors, n_vectors,
                      paired_channels, n_channels)


def block_ends(k: int, order: GemmOrder = HASWELL) -> tuple[np.ndarray, np.ndarray]:
    """(ends, pair ends) of the K blocks of ``k`` products summed in ``order``: each
    block's end (one past its last product), and where its paired accumulation stops (its
    first product plus its last multiple of 8); a sentinel end past any product closes the
    list."""
    blocks = k_blocks(k, order)
    ends = np.array([first + length for first, length in blocks] + [np.iinfo(np.int64).max],
                    np.int64)
    pair_ends = np.array([first + length // 8 * 8 for first, length in blocks] + [0], np.int64)
    return ends, pair_ends


__all__ = ["GemmOrder", "HASWELL", "SKYLAKEX", "ORDERS", "modelled", "k_blocks", "row_blocks",
           "paired", "pair_tables", "PairTables", "block_ends", "P", "Q"]
