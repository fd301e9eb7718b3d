"""Reader for IDX files, the binary array format of the MNIST family of data sets.

An IDX file is a 4-byte magic number ``0x00 0x00 <dtype code> <ndim>``, then ``ndim``
big-endian uint32 dimension sizes, then the array elements in C order, big-endian.
Files are often distributed gzipped; :func:`read_idx` detects gzip by its magic
bytes, so the file name does not matter.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np
from ..errors import EvsimValueError

__all__ = ["read_idx"]

_GZIP_MAGIC = b"\x1f\x8b"

# IDX dtype code -> big-endian numpy dtype of the stored elements.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, plain or gzipped, into a numpy array.

    Parameters
    ----------
    path:
        Path of the ``.idx``/``-ubyte`` file, optionally gzip-compressed.

    Returns
    -------
    numpy.ndarray
        A new, writable, C-contiguous array in native byte order whose shape is the
        dimension list from the header (``ndim >= 1``) and whose dtype follows the
        header's dtype code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
        0x0D float32, 0x0E float64.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not valid IDX: broken gzip stream, bad magic number, unknown
        dtype code, a header shorter than announced, or a payload whose size does not
        equal the product of the dimensions (truncated or with trailing bytes). The
        message names the file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise EvsimValueError(
                f"{path}: corrupt or truncated gzip stream ({exc}); "
                "re-download or re-extract the file"
            ) from exc

    if len(raw) < 4:
        raise EvsimValueError(
            f"{path}: {len(raw)} bytes is too short for an IDX header (needs at least 4)"
        )
    zero0, zero1, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 != 0 or zero1 != 0:
        raise EvsimValueError(
            f"{path}: not an IDX file (magic starts with {raw[:2].hex()}, expected 0000)"
        )
    if code not in _IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in _IDX_DTYPES)
        raise EvsimValueError(f"{path}: unknown IDX dtype code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise EvsimValueError(f"{path}: IDX header declares 0 dimensions; expected at least 1")

    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise EvsimValueError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header_len} bytes, "
            f"file has {len(raw)}"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))

    dtype = _IDX_DTYPES[code]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(raw) - header_len
    if actual != expected:
        problem = "truncated" if actual < expected else "has trailing bytes"
        raise EvsimValueError(
            f"{path}: IDX payload {problem}: shape {shape} of {dtype.name} needs "
            f"{expected} bytes after the header, found {actual}"
        )

    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="))
